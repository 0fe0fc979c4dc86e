"""``gitml ui``: every page and JSON endpoint over real HTTP against a real server process (issue 17).

The server is ``gitml ui --port 0`` started as a user would, in a repository made with gitml's
API: runs on two branches, one made from a dirty work tree, a metric of 10,000 points,
artifacts of every kind the run page previews (text, JSON, CSV, PNG, SVG, a model folder), a
registered version with a stage, and untrusted text (``<script>``) in param values, tags, file
names and artifact contents. The browser tests are in tests/test_ui_browser.py.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import GITML, git, gitml

import gitml as api

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

EVIL = '<script>alert("x")</script>'


def make_repository(path: Path) -> dict:
    """The repository the UI shows; returns the ids and names the tests look for."""
    from PIL import Image

    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('training')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first model\n\nwith a <b>body</b>")
    files = path.parent / "files"
    (files / "model").mkdir(parents=True)
    (files / "model" / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: m\n  sklearn:\n"
                                             "    sklearn_version: 1.5.0\nsignature:\n  inputs: '[{\"type\": \"double\"}]'\n"
                                             "utc_time_created: '2026-12-01 10:00:00'\n")
    (files / "model" / "model.pkl").write_bytes(b"\x80\x04not really a pickle")
    (files / "notes.txt").write_text(f"hello {EVIL}\n")
    (files / "cfg.json").write_text('{"b": [1, 2], "a": "<i>x</i>"}')
    (files / "table.csv").write_text("name,score\n<b>alice</b>,1\nbob,2\n")
    (files / "evil.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(buffer, "PNG")
    (files / "plot.png").write_bytes(buffer.getvalue())
    with api.start_run(name="base", experiment="churn", repo=path) as base:
        api.log_params({"lr": 0.1, "note": EVIL, "depth": 3})
        for step in range(10_000):
            api.log_metric("loss", 1.0 / (step + 1), step=step)
        api.log_metric("acc", 0.8)
        api.set_tag("owner", "<img src=x onerror=alert(1)>")
        for name in ("model", "notes.txt", "cfg.json", "table.csv", "evil.svg", "plot.png"):
            api.log_artifact(str(files / name))
    api.register_model("churn", base.id, "model", repo=path)
    from gitml.registry import assign

    assign("churn", "v0.0.1", "prod", repo=path)
    git(path, "checkout", "-q", "-b", "feature")
    (path / "train.py").write_text("print('training harder')\n")
    git(path, "commit", "-q", "-am", "train harder")
    with api.start_run(name="feature-run", experiment="churn", repo=path) as feature:
        api.log_params({"lr": 0.05, "note": "plain", "depth": 4})
        for step in range(50):
            api.log_metric("loss", 0.5 / (step + 1), step=step)
        api.log_metric("acc", 0.9)
    (path / "train.py").write_text("print('uncommitted')\n")
    with api.start_run(name="dirty-run", experiment="other", repo=path) as dirty:
        api.log_param("lr", 0.2)
        api.log_metric("acc", 0.7)
        # a diverging metric: NaN and infinities among finite points, and a step logged twice
        for step, value in enumerate([1.0, float("nan"), 0.5, float("inf"), 0.25, float("-inf"), 0.1]):
            api.log_metric("wild", value, step=step)
        api.log_metric("wild", 0.05, step=6)
    git(path, "checkout", "-q", "--", "train.py")
    git(path, "checkout", "-q", "main")
    return {"base": base.id, "feature": feature.id, "dirty": dirty.id}


@contextmanager
def ui_server(repo: Path, *args: str, warns: str = "", indexed: bool = True):
    """``gitml ui --port 0`` in ``repo``; yields its URL, stops it with SIGTERM and checks it ended cleanly.

    ``warns``: what stderr must hold at the end (nothing, by default). ``indexed``: yield once
    the query index the server may be building is done (under load, a small repository's can
    take longer than the pages wait for it).
    """
    proc = subprocess.Popen([*GITML, "ui", "--port", "0", *args], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert " on http://" in line, proc.stderr.read()[-2000:] if proc.poll() is not None else line
        url = line.split(" on ", 1)[1].split()[0]
        deadline = time.monotonic() + 600
        while indexed and json.loads(get(url, "/api/status")[2])["indexing"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and (warns in err if warns else err == ""), err[-2000:]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("ui")
    repo = base / "repo"
    ids = make_repository(repo)
    with ui_server(repo) as url:
        yield {"url": url, "repo": repo, "shots": base / "screenshots", **ids}


def get(url: str, path: str) -> tuple[int, Any, bytes]:
    try:
        with urllib.request.urlopen(url + path, timeout=30) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def page(site: dict, path: str, status: int = 200) -> str:
    code, headers, body = get(site["url"], path)
    assert code == status, body[:2000]
    assert headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    return body.decode()


def api_json(site: dict, path: str, status: int = 200) -> dict:
    code, headers, body = get(site["url"], path)
    assert code == status, body[:2000]
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def q(**kwargs) -> str:
    return urllib.parse.urlencode(kwargs)


def test_runs_page_and_its_json(site):
    data = api_json(site, "/api/runs")
    assert data["total"] == 3 and data["error"] is None
    assert [r["name"] for r in data["runs"]] == ["dirty-run", "feature-run", "base"]  # newest first
    assert data["columns"]["metrics"] == ["acc", "loss", "wild"] and "owner" in data["available"]["tags"]
    assert not {"mlflow.runName", "mlflow.user"} & set(data["available"]["tags"])  # the index's, no run's own
    base = next(r for r in data["runs"] if r["id"] == site["base"])
    assert base["params"]["note"] == EVIL and base["branch"] == "main" and len(base["commit"]) == 40
    assert next(r for r in data["runs"] if r["id"] == site["dirty"])["dirty"] is True
    assert data["experiments"] == ["churn", "other"]
    html = page(site, "/runs")
    assert f'href="/runs/{site["base"]}"' in html and "+patch" in html
    assert "3 runs" in html


def test_runs_filter_sort_page_and_columns(site):
    data = api_json(site, "/api/runs?" + q(filter="metrics.acc > 0.75", order_by="metrics.acc DESC"))
    assert [r["name"] for r in data["runs"]] == ["feature-run", "base"] and data["total"] == 2
    data = api_json(site, "/api/runs?" + q(experiment="other"))
    assert [r["name"] for r in data["runs"]] == ["dirty-run"]
    assert data["columns"] == {"metrics": ["acc", "wild"], "params": ["lr"], "tags": []}  # the runs shown have these
    picked_none = page(site, "/runs?" + q(cols=1, metrics="acc"))  # no param column: kept by sort and paging links
    assert "cols=1&amp;metrics=acc&amp;order_by=" in picked_none and 'class="param"' not in picked_none
    beyond = page(site, "/runs?" + q(offset=100))
    assert "no run on this page: 3 runs in all" in beyond
    page_two = api_json(site, "/api/runs?" + q(limit=25, offset=2))
    assert page_two["total"] == 3 and [r["name"] for r in page_two["runs"]] == ["base"]
    picked = api_json(site, "/api/runs?" + q(params="lr", metrics="", tags="owner"))
    assert picked["columns"] == {"params": ["lr"], "metrics": [], "tags": ["owner"]}
    assert next(r for r in picked["runs"] if r["id"] == site["base"])["tags"] == {"owner": "<img src=x onerror=alert(1)>"}
    html = page(site, "/runs?" + q(filter="params.lr = '0.05'", order_by="attributes.start_time DESC"))
    assert "feature-run" in html and "dirty-run" not in html and "1–1 of 1 run" in html
    assert api_json(site, "/api/runs?limit=7", 400)["error"].startswith("bad page size")
    assert api_json(site, "/api/runs?offset=x", 400)["error"].startswith("bad offset")


def test_a_filter_error_is_shown_inline_with_its_position(site):
    data = api_json(site, "/api/runs?" + q(filter="metrics.acc >"))
    assert data["runs"] == [] and "position" in data["error"]["message"] and data["error"]["position"] == 13
    html = page(site, "/runs?" + q(filter="metrics.acc >"))
    assert 'id="filter-error"' in html and "metrics.acc &gt;\n" + " " * 13 + "^" in html
    bad_sort = api_json(site, "/api/runs?" + q(filter="metrics.acc > 0.1", order_by="metrics.acc SIDEWAYS"))
    assert bad_sort["error"]["field"] == "order_by" and bad_sort["runs"] == []
    html = page(site, "/runs?" + q(filter="metrics.acc > 0.1", order_by="metrics.acc SIDEWAYS"))
    assert "Sort: " in html and "metrics.acc SIDEWAYS\n" + " " * bad_sort["error"]["position"] + "^" in html


def test_run_page_shows_provenance_params_metrics_artifacts_and_versions(site):
    data = api_json(site, f"/api/runs/{site['base']}")
    assert data["run"]["params"]["note"] == EVIL
    assert data["commit"]["message"].startswith("first model") and data["commit"]["missing"] is False
    assert data["history_keys"] == {"acc": 1, "loss": 10_000}
    paths = {a["path"]: a for a in data["artifacts"]}
    assert set(paths) == {"model/MLmodel", "model/model.pkl", "notes.txt", "cfg.json", "table.csv", "evil.svg", "plot.png"}
    assert all(a["cached"] for a in paths.values())
    assert data["models"] == [{"path": "model", "flavors": ["python_function", "sklearn"],
                               "signature": {"inputs": '[{"type": "double"}]'}, "created": "2026-12-01 10:00:00"}]
    assert data["versions"] == [{"model": "churn", "version": "v0.0.1", "stages": ["prod"], "path": "model"}]
    html = page(site, f"/runs/{site['base'][:8]}")  # a prefix works too
    assert 'data-key="loss"' in html and 'data-key="acc"' not in html  # one point: no chart
    assert "first model" in html and "&lt;b&gt;body&lt;/b&gt;" in html
    history = api_json(site, f"/api/runs/{site['base']}/history?key=loss")
    assert len(history["steps"]) == 10_000 and history["values"][1] == 0.5 and history["times"][0] > 1.7e12
    dirty = api_json(site, f"/api/runs/{site['dirty']}")
    assert "uncommitted" in dirty["patch"]
    assert 'id="patch"' in page(site, f"/runs/{site['dirty']}")


def test_untrusted_text_is_escaped_everywhere(site):
    for path in ("/runs", f"/runs/{site['base']}", "/runs?" + q(tags="owner"),
                 f"/runs/{site['base']}/artifact?" + q(path="notes.txt"),
                 f"/runs/{site['base']}/artifact?" + q(path="table.csv"),
                 f"/runs/{site['base']}/artifact?" + q(path="evil.svg"),
                 f"/runs/{site['base']}/artifact?" + q(path="cfg.json"),
                 f"/compare?runs={site['base']},{site['feature']}"):
        html = page(site, path)
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>alice" not in html, path
        assert "<i>x</i>" not in html, path
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page(site, f"/runs/{site['base']}")
    compare = page(site, f"/compare?runs={site['base']},{site['feature']}")
    assert '<script type="application/json" id="page-data">' in compare and "\\u003cscript\\u003e" in compare


def test_artifact_previews_downloads_and_images(site):
    run = site["base"]
    assert api_json(site, f"/api/runs/{run}/artifact?" + q(path="notes.txt"))["text"] == f"hello {EVIL}\n"
    as_json = api_json(site, f"/api/runs/{run}/artifact?" + q(path="cfg.json"))
    assert as_json["kind"] == "json" and json.loads(as_json["text"]) == {"b": [1, 2], "a": "<i>x</i>"}
    assert api_json(site, f"/api/runs/{run}/artifact?" + q(path="table.csv"))["rows"][1] == ["<b>alice</b>", "1"]
    assert api_json(site, f"/api/runs/{run}/artifact?" + q(path="plot.png"))["kind"] == "image"
    assert api_json(site, f"/api/runs/{run}/artifact?" + q(path="model/model.pkl"))["kind"] == "none"
    code, headers, body = get(site["url"], f"/runs/{run}/download?" + q(path="model/MLmodel"))
    assert code == 200 and body.startswith(b"flavors:") and headers["Content-Disposition"].startswith("attachment")
    assert headers["X-Content-Type-Options"] == "nosniff"
    code, headers, body = get(site["url"], f"/runs/{run}/raw?" + q(path="plot.png"))
    assert code == 200 and headers["Content-Type"] == "image/png" and body.startswith(b"\x89PNG")
    code, headers, _ = get(site["url"], f"/runs/{run}/raw?" + q(path="evil.svg"))  # SVG can hold script
    assert code == 400
    code, headers, _ = get(site["url"], f"/runs/{run}/download?" + q(path="evil.svg"))
    assert code == 200 and headers["Content-Disposition"].startswith("attachment")


def test_wrong_ids_paths_and_pages_are_404_or_400(site):
    run = site["base"]
    assert "no run" in page(site, "/runs/" + "f" * 32, 404)
    assert api_json(site, "/api/runs/" + "0" * 32, 404)["error"]
    assert api_json(site, "/api/runs/zz-not-an-id", 404)["error"]
    for bad in ("../../../../etc/passwd", "/etc/passwd", "model/../../x", "notes.txt/../../../etc/passwd"):
        code, _, body = get(site["url"], f"/runs/{run}/download?" + q(path=bad))
        assert code == 400, (bad, body)
    code, _, body = get(site["url"], f"/runs/{run}/download?" + q(path="nothere.txt"))
    assert code == 404 and b"has no artifact" in body
    for view in ("/runs", "/api/runs"):  # the preview page and its JSON: the same answers as a download
        assert get(site["url"], f"{view}/{run}/artifact?" + q(path="nothere.txt"))[0] == 404
        assert get(site["url"], f"{view}/{run}/artifact?" + q(path="../../etc/passwd"))[0] == 400
        assert get(site["url"], f"{view}/{run}/artifact")[0] == 400
    assert "no page" in page(site, "/nowhere", 404)
    assert api_json(site, "/api/nowhere", 404)["error"]
    assert api_json(site, f"/api/runs/{run}/history?key=", 400)["error"]
    assert api_json(site, "/api/registry/nosuchmodel", 404)["error"]
    assert api_json(site, f"/api/compare?runs={run}", 400)["error"].startswith("compare takes 2")


def test_compare_page(site):
    data = api_json(site, f"/api/compare?runs={site['base']},{site['feature']},{site['dirty']}")
    assert [r["name"] for r in data["runs"]] == ["base", "feature-run", "dirty-run"]
    rows = {(r["kind"], r["key"]): r for r in data["rows"]}
    assert rows[("param", "lr")]["values"] == [0.1, 0.05, 0.2] and rows[("param", "lr")]["status"] == "changed"
    assert data["history_keys"]["loss"] == [site["base"], site["feature"]] and data["default_key"] == "loss"
    assert data["params"] == ["depth", "lr", "note"] and data["metrics"] == ["acc", "loss", "wild"]
    html = page(site, f"/compare?runs={site['base']}&runs={site['feature']}")
    assert 'id="overlay-key"' in html and 'class="param changed' in html


def test_branches_page_diffs_two_revisions(site):
    data = api_json(site, "/api/branches?" + q(a="main", b="feature"))
    assert data["error"] is None and {"main", "feature"} <= set(data["refs"])
    sides = data["diff"]["sides"]
    assert [s["run_id"] for s in sides] == [site["base"], site["dirty"]]  # the latest run at feature's tip
    data = api_json(site, "/api/branches?" + q(a="main", b="feature", experiment="churn"))
    assert [s["run_id"] for s in data["diff"]["sides"]] == [site["base"], site["feature"]]
    assert {r["key"] for r in data["diff"]["rows"]} >= {"lr", "acc"}
    html = page(site, "/branches?" + q(a="main", b="feature", experiment="churn"))
    assert 'id="diff"' in html and "feature-run" in html and '<option value="churn" selected>' in html
    assert api_json(site, "/api/branches?" + q(a="nosuchbranch"))["error"]
    assert 'id="diff-error"' in page(site, "/branches?" + q(a="nosuchbranch"))
    # git's range syntax and bytes no revision holds: an error on the page, never a 500
    for a, b in (("main..feature", ""), ("^main", ""), ("..main", ""), ("main\0", ""), ("main", "feature\nmain")):
        assert "neither a git revision nor a run id" in api_json(site, "/api/branches?" + q(a=a, b=b))["error"], a
        assert 'id="diff-error"' in page(site, "/branches?" + q(a=a, b=b))


def test_registry_pages_show_versions_stages_and_the_timeline(site):
    data = api_json(site, "/api/registry")
    assert data["models"][0]["name"] == "churn" and data["models"][0]["stages"] == {"prod": "v0.0.1"}
    model = api_json(site, "/api/registry/churn")
    assert model["versions"]["v0.0.1"]["run_id"] == site["base"]
    assert [e["kind"] for e in model["events"]] == ["register", "assign"]
    assert model["events"][1]["stage"] == "prod" and model["events"][1]["time"].endswith("+00:00")
    html = page(site, "/registry/churn")
    assert 'id="timeline"' in html and f'href="/runs/{site["base"]}"' in html
    assert "churn" in page(site, "/registry")


def test_a_request_for_another_host_is_refused(site):
    """A page elsewhere that renames 127.0.0.1 (DNS rebinding) reads nothing: only this server's names are answered."""
    port = urllib.parse.urlparse(site["url"]).port
    for host, status in ((f"attacker.example:{port}", 400), ("attacker.example", 400), (f"localhost:{port}", 200),
                         (f"127.0.0.1:{port}", 200), (f"[::1]:{port}", 200), ("", 400)):
        request = urllib.request.Request(site["url"] + "/api/runs", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                code = answer.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        assert code == status, host


def test_static_files_are_served_from_the_package(site):
    code, headers, body = get(site["url"], "/static/uPlot.iife.min.js")
    assert code == 200 and b"uPlot" in body[:200]
    code, _, body = get(site["url"], "/static/uPlot.LICENSE")
    assert code == 200 and b"MIT" in body
    assert get(site["url"], "/static/../server.py")[0] == 404


def test_new_runs_show_without_a_restart_and_nothing_is_written(tmp_path):
    repo = tmp_path / "repo"
    make_repository(repo)
    refs = git(repo, "for-each-ref")
    objects = sorted(p.relative_to(repo) for p in (repo / ".git" / "objects").rglob("*") if p.is_file())
    with ui_server(repo) as url:
        site = {"url": url}
        for path in ("/runs", "/registry", "/registry/churn", "/branches?a=main&b=feature"):
            page(site, path)
        assert git(repo, "for-each-ref") == refs  # read-only: no ref, tag or object written
        assert sorted(p.relative_to(repo) for p in (repo / ".git" / "objects").rglob("*") if p.is_file()) == objects
        with api.start_run(name="late", repo=repo) as late:
            api.log_metric("acc", 0.99)
            running = api_json(site, "/api/runs")
            assert [a["id"] for a in running["active"]] == [late.id] and running["active"][0]["alive"] is True
            assert "1 run in progress in this clone" in page(site, "/runs")
        assert api_json(site, "/api/runs")["runs"][0]["name"] == "late"
        assert api_json(site, "/api/runs")["active"] == []
        with api.start_run(name="sweep", repo=repo) as parent:
            for n in range(2):
                with api.start_run(name=f"trial-{n}", nested=True, repo=repo):
                    api.log_metric("acc", 0.5 + n / 10)
        children = api_json(site, f"/api/runs/{parent.id}")["children"]
        assert [(c["name"], c["metrics"]) for c in children] == [("trial-0", {"acc": 0.5}), ("trial-1", {"acc": 0.6})]
        assert 'id="children"' in page(site, f"/runs/{parent.id}")


def test_a_repository_without_runs_says_how_runs_arrive(repo):
    with ui_server(repo) as url:
        html = page({"url": url}, "/runs")
        assert "no run yet" in html and "gitml pull" in html


def test_bad_addresses_and_places_are_one_line_exit_2(tmp_path, repo):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = gitml(repo, "ui", "--port", str(port))
    assert result.code == 2 and result.err.count("\n") <= 2 and "cannot listen on 127.0.0.1" in result.err
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    result = gitml(outside, "ui", "--port", "0")
    assert result.code == 2 and "git repository" in result.err
    result = gitml(repo, "ui", "--host", "203.0.113.9", "--port", "0")  # not this machine's address
    assert result.code == 2 and "cannot listen" in result.err


def test_another_host_is_a_warned_choice(repo):
    with ui_server(repo, "--host", "0.0.0.0", warns="your runs are reachable from the network") as url:
        assert url.startswith("http://0.0.0.0:")


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """100,000 runs over 3 experiments, written with the bulk writer (``write_runs``, 20,000 a commit)."""
    from gitml.core import formats
    from gitml.core.gitrepo import GitRepo
    from gitml.core.ids import new_run_id
    from gitml.tracking.commit import write_runs
    from gitml.tracking.query import count_runs

    repo = tmp_path_factory.mktemp("ui-big") / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "init")
    sha = git(repo, "rev-parse", "HEAD").strip()
    count_runs(repo=repo)  # the index exists first: each batch is added to it as it is written
    with GitRepo(repo) as g:
        for start in range(0, 100_000, 20_000):
            batch = []
            for i in range(start, start + 20_000):
                stamp = formats.iso_time(1_790_000_000 + i)
                batch.append((formats.Run(
                    id=new_run_id(), name=f"run-{i}", experiment=f"exp-{i % 3}", status="FINISHED",
                    start_time=stamp, end_time=stamp, updated=stamp, user="bench",
                    source={"commit": sha, "branch": "main", "dirty": False, "remote": None},
                    gitml_version=api.__version__, params={"lr": (i % 7) / 10, "depth": i % 5},
                    metrics={"acc": (i % 1000) / 1000, "loss": 1 / (i + 1)},
                    metric_info={"acc": {"step": 0, "timestamp": stamp}, "loss": {"step": 0, "timestamp": stamp}}),
                    []))
            write_runs(g, batch, f"bulk {len(batch)} runs")
    with ui_server(repo) as url:
        yield {"url": url, "repo": repo}


def test_a_repository_of_100000_runs_pages_filters_and_sorts(big):
    """The runs page at 100,000 runs: first and last page, a filter with a sort, a run (times: bench/bench_ui.py)."""
    first = api_json(big, "/api/runs?limit=100")
    assert first["total"] == 100_000 and [r["name"] for r in first["runs"][:2]] == ["run-99999", "run-99998"]
    last = api_json(big, "/api/runs?" + q(limit=100, offset=99_950))
    assert len(last["runs"]) == 50 and last["runs"][-1]["name"] == "run-0"
    found = api_json(big, "/api/runs?" + q(filter="metrics.acc > 0.998 and params.depth = '4'", order_by="metrics.loss",
                                        experiment="exp-1", limit=25))
    # acc 0.999: i = 999 + 1000k (so depth i % 5 is 4); exp-1: i % 3 == 1, so k % 3 == 1: 33 runs
    assert found["total"] == 33 and [r["metrics"]["acc"] for r in found["runs"]] == [0.999] * 25
    assert found["runs"][0]["metrics"]["loss"] < found["runs"][-1]["metrics"]["loss"]
    html = page(big, "/runs?" + q(order_by="metrics.acc DESC"))
    assert "1–50 of 100000 runs" in html
    many = api_json(big, "/api/runs?" + q(filter="metrics.acc >= 0.5"))  # 50,000 match: counted to 10,000
    assert (many["total"], many["total_capped"], len(many["runs"])) == (10_000, True, 50)
    assert "1–50 of 10000+ runs" in page(big, "/runs?" + q(filter="metrics.acc >= 0.5"))
    assert api_json(big, f"/api/runs/{first['runs'][0]['id']}")["run"]["name"] == "run-99999"


def _fresh_clone(source: Path, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", "--no-local", str(source), dest.name)
    git(dest, "fetch", "-q", "origin", "refs/gitml/*:refs/gitml/*")
    assert not (dest / ".git" / "gitml" / "index.sqlite").exists()
    return dest


def test_a_fresh_clone_of_100000_runs_answers_while_its_index_is_built(big, tmp_path):
    """The first page of a fresh clone comes from the runs ref's map while another process builds the index."""
    clone = _fresh_clone(big["repo"], tmp_path / "clone")
    with ui_server(clone, indexed=False) as url:
        site = {"url": url}
        first = api_json(site, "/api/runs")
        assert first["indexing"] is True and first["total"] is None and first["waiting"] is False
        assert [r["name"] for r in first["runs"][:3]] == ["run-99999", "run-99998", "run-99997"]
        assert first["available"]["metrics"] == ["acc", "loss"] and first["experiments"]
        html = page(site, "/runs")
        assert 'id="indexing"' in html and "the 50 newest runs" in html and 'id="next"' not in html
        sorted_ = api_json(site, "/api/runs?" + q(order_by="metrics.acc DESC"))
        assert (sorted_["waiting"], sorted_["runs"], sorted_["total"]) == (True, [], None)
        assert "waiting for the index" in page(site, "/runs?" + q(filter="metrics.acc > 0.5"))
        run = api_json(site, f"/api/runs/{first['runs'][0]['id']}")
        assert run["run"]["name"] == "run-99999" and run["children"] is None and run["indexing"] is True
        assert api_json(site, "/api/status") == {"indexing": True}
        deadline = time.monotonic() + 600
        while api_json(site, "/api/status")["indexing"]:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        after = api_json(site, "/api/runs?" + q(order_by="metrics.acc DESC", limit=25))
        assert after["indexing"] is False and after["total"] == 100_000 and after["runs"][0]["metrics"]["acc"] == 0.999
        assert 'id="indexing"' not in page(site, "/runs")
        assert api_json(site, f"/api/runs/{first['runs'][0]['id']}")["children"] == []


def _index_builders(repo: Path) -> list[int]:
    """The pids of the processes building ``repo``'s index beside a UI server (read off /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and b"ws.index.count()" in b" ".join(argv) and str(repo).encode() in argv:
            found.append(int(entry.name))
    return found


def test_stopping_the_ui_while_it_builds_the_index_stops_the_build(big, tmp_path):
    clone = _fresh_clone(big["repo"], tmp_path / "clone")
    with ui_server(clone, indexed=False) as url:
        assert api_json({"url": url}, "/api/status") == {"indexing": True}
        builders = _index_builders(clone)
        assert builders
    for pid in builders:  # ui_server checked the server ended with 0 and printed nothing
        with pytest.raises(ProcessLookupError):
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
    # the build's transaction was rolled back: the next start builds it again
    with ui_server(clone, indexed=False) as url:
        assert api_json({"url": url}, "/api/status") == {"indexing": True}


LIVE_WRITER = """
import sys
import gitml

with gitml.start_run(name="live-run", experiment="churn") as run:
    gitml.log_param("lr", 0.1)
    step = 0
    for _ in range(3):
        gitml.log_metric("loss", 1.0 / (step + 1), step=step)
        step += 1
    print(run.id, flush=True)
    for line in sys.stdin:
        if line.strip() == "end":
            break
        for _ in range(int(line)):
            gitml.log_metric("loss", 1.0 / (step + 1), step=step)
            step += 1
        gitml.log_metric("acc", 0.5, step=step)
        print("logged", step, flush=True)
"""


@contextmanager
def live_run(repo: Path):
    """A run in progress in ``repo`` (its own process): yields ``(id, more, kill)``.

    ``more(n)`` logs n loss points and one acc point; ``kill()`` kills the process (SIGKILL), as a
    crash would, leaving the run in progress.
    """
    proc = subprocess.Popen([sys.executable, "-c", LIVE_WRITER], cwd=repo, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        assert len(run_id) == 32, proc.stderr.read() if proc.poll() is not None else run_id

        def more(n: int) -> None:
            proc.stdin.write(f"{n}\n")
            proc.stdin.flush()
            assert proc.stdout.readline().startswith("logged")

        def kill() -> None:
            proc.kill()
            proc.wait(30)

        yield run_id, more, kill
        if proc.poll() is None:
            proc.stdin.write("end\n")
            proc.stdin.close()
            assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_run_in_progress_has_a_live_page_that_becomes_the_run(repo):
    with ui_server(repo) as url, live_run(repo) as (run_id, more, _):
        site = {"url": url}
        listing = api_json(site, "/api/runs")
        assert listing["runs"] == [] and [a["id"] for a in listing["active"]] == [run_id]
        assert f'href="/runs/{run_id}"' in page(site, "/runs")
        live = api_json(site, f"/api/runs/{run_id[:8]}")
        assert live["live"] == {"alive": True, "commit_failed": False}
        assert (live["run"]["status"], live["run"]["end_time"], live["run"]["params"]) == ("RUNNING", None, {"lr": 0.1})
        assert live["history_keys"] == {"loss": 3} and live["run"]["metrics"] == {"loss": 1 / 3}
        html = page(site, f"/runs/{run_id}")
        assert 'id="live"' in html and 'data-follow="1"' in html and "every 5 seconds" in html
        assert api_json(site, f"/api/runs/{run_id}/history?key=loss")["values"] == [1.0, 0.5, 1 / 3]
        more(5)
        grown = api_json(site, f"/api/runs/{run_id}")
        assert grown["history_keys"] == {"loss": 8, "acc": 1} and grown["run"]["metrics"]["loss"] == 1 / 8
        assert len(api_json(site, f"/api/runs/{run_id}/history?key=loss")["steps"]) == 8
    with ui_server(repo) as url:
        done = api_json({"url": url}, f"/api/runs/{run_id}")
        assert done["live"] is None and done["run"]["status"] == "FINISHED" and done["history_keys"]["loss"] == 8
        assert api_json({"url": url}, "/api/runs")["active"] == []
        assert api_json({"url": url}, "/api/runs/0000aaaa", 404)["error"]


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """A sweep with three nested trials, and a run with a note: nested runs, notes and tag columns."""
    repo = tmp_path_factory.mktemp("ui-family") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "init")
    ids = {}
    with api.start_run(name="sweep", experiment="tune", repo=repo) as parent:
        ids["sweep"] = parent.id
        for i, team in enumerate(["nlp", "vision", "ads"]):
            with api.start_run(name=f"trial-{i}", experiment="tune", nested=True, repo=repo) as child:
                ids[f"trial-{i}"] = child.id
                api.log_params({"lr": 0.1 * (i + 1), "depth": 3})
                api.set_tag("team", team)
                for step in range(5):
                    api.log_metric("loss", 1.0 / (step + 1 + i), step=step)
    with api.start_run(name="solo", experiment="other", repo=repo) as solo:
        ids["solo"] = solo.id
        api.log_params({"lr": 0.1, "depth": 3})
        api.set_tags({"team": "core", "mlflow.note.content": "<b>bold</b> claim\nsecond line"})
        for step in range(5):
            api.log_metric("loss", 0.9 / (step + 1), step=step)
    with ui_server(repo) as url:
        yield {"url": url, "repo": repo, "ids": ids, "shots": repo.parent / "screenshots"}


def test_nested_runs_show_their_parent_and_children_in_the_table(family):
    ids = family["ids"]
    runs = {r["name"]: r for r in api_json(family, "/api/runs")["runs"]}
    assert runs["sweep"]["children"] == 3 and runs["sweep"]["parent"] is None
    assert (runs["trial-1"]["parent"], runs["trial-1"]["parent_name"], runs["trial-1"]["children"]) == (
        ids["sweep"], "sweep", 0)
    html = page(family, "/runs")
    assert "3 child runs" in html and html.count("child of") == 3
    link = "/runs?" + q(filter=f"tags.`mlflow.parentRunId` = '{ids['sweep']}'", order_by="attributes.start_time")
    assert link.replace("&", "&amp;") in html
    children = api_json(family, "/api/" + link.removeprefix("/"))
    assert [r["name"] for r in children["runs"]] == ["trial-0", "trial-1", "trial-2"]
    # a parent outside the page is named too; outside the repository, its id stands
    alone = api_json(family, "/api/runs?" + q(filter="attributes.run_name = 'trial-2'"))["runs"][0]
    assert alone["parent_name"] == "sweep"


def test_every_column_sorts_tags_included(family):
    by_team = api_json(family, "/api/runs?" + q(order_by="tags.`team` DESC", tags="team"))
    assert [r["tags"].get("team") for r in by_team["runs"]] == ["vision", "nlp", "core", "ads", None]
    html = page(family, "/runs?" + q(tags="team", cols=1))
    for key in ("tags.`team`", "attributes.status", "attributes.experiment", "attributes.branch", "attributes.commit"):
        assert q(order_by=f"{key} DESC") in html.replace("&amp;", "&"), key
    assert [r["experiment"] for r in api_json(family, "/api/runs?" + q(order_by="attributes.experiment"))["runs"]] == [
        "other", "tune", "tune", "tune", "tune"]


def test_a_runs_note_shows_as_text_with_its_lines(family):
    html = page(family, f"/runs/{family['ids']['solo']}")
    assert '<div class="note-text" id="note">&lt;b&gt;bold&lt;/b&gt; claim\nsecond line</div>' in html


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    """Runs with non-finite params, very long keys and values, and artifacts that are not what they seem."""
    base = tmp_path_factory.mktemp("ui-odd")
    repo = base / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "init")
    files = base / "files"
    files.mkdir()
    (files / "fake.png").write_text("<html><script>alert(1)</script></html>")
    (files / "utf16.txt").write_bytes("naïve résumé\nline two\n".encode("utf-16"))
    (files / "bom.csv").write_bytes("\ufeffa,b\n1,2\n".encode("utf-8"))
    (files / "deep.json").write_text("[" * 5000 + "]" * 5000)
    (files / "wide.csv").write_text(",".join(f"c{i}" for i in range(100)) + "\n" + ",".join("1" * 100) + "\n")
    with api.start_run(name="odd", experiment="odd", repo=repo) as run:
        api.log_params({"thr": float("nan"), "cap": float("inf"), "floor": float("-inf"), "lr": 0.1})
        api.log_param("long", "x" * 5000)
        api.log_params({"we`ird": 3, "a,b": "comma"})
        api.log_param("k" * 250, 1)
        api.set_tag("words", "word " * 1000)
        api.set_tag("best_run_id", "f" * 32)
        api.log_metric("acc", 0.5)
        for name in ("fake.png", "utf16.txt", "bom.csv", "wide.csv", "deep.json"):
            api.log_artifact(str(files / name))
        api.log_input({"digest": "ab" * 32, "source_type": "s3", "source": "s3://data/<b>train</b>.csv",
                       "num_rows": 1200}, "training", name="train")
        api.log_table({"city": ["Oslo", "<i>Lima</i>"], "temp": [3.5, 19.0]}, "tables/weather.json")
    with api.start_run(name="plain", experiment="odd", repo=repo) as plain:
        api.log_params({"thr": 0.5, "lr": 0.2})
        api.log_metric("acc", 0.7)
    with ui_server(repo) as url:
        yield {"url": url, "repo": repo, "odd": run.id, "plain": plain.id, "shots": base / "screenshots"}


def test_non_finite_params_show_as_text_on_every_page(odd):
    """NaN and infinities in params (not only metrics) are JSON's strings everywhere, never a 500."""
    for path in ("/api/runs", "/api/runs?" + q(params="thr,cap,floor"), "/api/runs?" + q(order_by="params.thr")):
        runs = {r["name"]: r for r in api_json(odd, path)["runs"]}
        assert runs["odd"]["params"]["thr"] == "nan", path
    assert {"cap": "inf", "floor": "-inf"}.items() <= api_json(odd, "/api/runs?" + q(params="cap,floor"))["runs"][1][
        "params"].items()
    assert api_json(odd, f"/api/runs/{odd['odd']}")["run"]["params"]["thr"] == "nan"
    compared = api_json(odd, "/api/compare?" + q(runs=f"{odd['odd']},{odd['plain']}"))
    assert ["nan", 0.5] in [row["values"] for row in compared["rows"]]
    for path in ("/runs", "/runs?" + q(params="thr,cap,floor"), f"/runs/{odd['odd']}",
                 "/compare?" + q(runs=f"{odd['odd']},{odd['plain']}")):
        html = page(odd, path)
        assert ">nan<" in html or '"nan"' in html, path


def test_files_that_are_not_what_their_names_say(odd):
    run = odd["odd"]
    fake = api_json(odd, f"/api/runs/{run}/artifact?" + q(path="fake.png"))
    assert fake["kind"] == "none" and "not a PNG image" in fake["reason"]
    assert get(odd["url"], f"/runs/{run}/raw?" + q(path="fake.png"))[0] == 400
    text = api_json(odd, f"/api/runs/{run}/artifact?" + q(path="utf16.txt"))
    assert (text["kind"], text["text"]) == ("text", "naïve résumé\nline two\n")
    assert api_json(odd, f"/api/runs/{run}/artifact?" + q(path="bom.csv"))["rows"] == [["a", "b"], ["1", "2"]]
    wide = page(odd, f"/runs/{run}/artifact?" + q(path="wide.csv"))
    assert '<div class="scroll-x"><table class="csv" id="preview"><tr><th>c0</th>' in wide


def test_odd_requests_get_one_clear_answer(odd):
    run = odd["odd"]
    assert "has no metric 'nope'" in api_json(odd, f"/api/runs/{run}/history?key=nope", 404)["error"]
    assert "2 to 20 different runs, got 1" in api_json(odd, "/api/compare?" + q(runs=f"{run},{run[:8]}"), 400)["error"]
    assert "got 0" in page(odd, "/compare", 400)
    assert "0 to 1,000,000,000,000" in api_json(odd, "/api/runs?offset=99999999999999999999999", 400)["error"]
    for method, path, kind in (("POST", "/api/runs", "application/json"), ("DELETE", "/runs", "text/html")):
        request = urllib.request.Request(odd["url"] + path, method=method)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=30)
        assert info.value.code == 405 and info.value.headers["Content-Type"].startswith(kind)
        assert "only reads" in info.value.read().decode()
    # a value that is a run id links to that run; the run need not be here
    assert f'<a href="/runs/{"f" * 32}">' in page(odd, f"/runs/{run}")


def test_the_ui_mounted_under_a_path_links_under_it(odd, tmp_path):
    """create_app() mounted in a larger starlette application: every link, script and fetch under the prefix."""
    script = tmp_path / "host.py"
    script.write_text(
        "import sys\n"
        "import uvicorn\n"
        "from starlette.applications import Starlette\n"
        "from starlette.routing import Mount\n"
        "from gitml.core.http import bind, quiet_server, url_of\n"
        "from gitml.ui.server import create_app\n"
        "app = Starlette(routes=[Mount('/tools/gitml', app=create_app(sys.argv[1]))])\n"
        "sock = bind('127.0.0.1', 0)\n"
        "config = uvicorn.Config(app, log_config=None, log_level='warning', lifespan='off')\n"
        "quiet_server(config, on_started=lambda: print(url_of(sock), flush=True)).run(sockets=[sock])\n")
    proc = subprocess.Popen([sys.executable, str(script), str(odd["repo"])], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        site = {"url": proc.stdout.readline().strip() + "/tools/gitml"}
        html = page(site, "/runs")
        assert 'href="/tools/gitml/static/gitml.css"' in html and 'data-root="/tools/gitml"' in html
        assert f'href="/tools/gitml/runs/{odd["plain"]}"' in html and 'href="/runs' not in html
        assert get(site["url"], "/static/gitml.js")[0] == 200
        assert len(api_json(site, "/api/runs")["runs"]) == 2
        assert api_json(site, "/api/nowhere", 404)["error"].startswith("no page")
        with urllib.request.urlopen(site["url"] + "/", timeout=30) as answer:  # / goes to the runs page
            assert answer.url.endswith("/tools/gitml/runs")
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_runs_datasets_tables_user_and_duration(odd):
    run = odd["odd"]
    html = page(odd, f"/runs/{run}")
    section = html[html.index('<section id="datasets">'):]
    assert "train" in section and "s3://data/&lt;b&gt;train&lt;/b&gt;.csv" in section and "1200" in section
    table = api_json(odd, f"/api/runs/{run}/artifact?" + q(path="tables/weather.json"))
    assert table["kind"] == "csv" and table["rows"] == [["city", "temp"], ["Oslo", "3.5"], ["<i>Lima</i>", "19.0"]]
    listing = {r["name"]: r for r in api_json(odd, "/api/runs")["runs"]}
    assert listing["odd"]["user"] and 0 <= listing["odd"]["duration"] < 600
    assert "<th>Duration</th>" in page(odd, "/runs")


def test_experiments_page_lists_records_and_experiments_known_from_runs(family):
    made = gitml(family["repo"], "experiments", "create", "<b>planned</b>", "-d", "next quarter's <i>work</i>",
                 "-t", "team=ads")
    assert made.code == 0, made.err
    listed = {e["name"]: e for e in api_json(family, "/api/experiments")["experiments"]}
    assert (listed["tune"]["run_count"], listed["tune"]["recorded"]) == (4, False)
    assert listed["other"]["run_count"] == 1
    planned = listed["<b>planned</b>"]
    assert (planned["run_count"], planned["description"], planned["tags"]["team"]) == (0, "next quarter's <i>work</i>",
                                                                                     "ads")
    html = page(family, "/experiments")
    assert "&lt;b&gt;planned&lt;/b&gt;" in html and "<b>planned</b>" not in html and "team=ads" in html
    assert 'href="/runs?experiment=tune"' in html and 'href="/experiments"' in page(family, "/runs")


def test_keys_with_backquotes_and_commas_sort_and_show(odd):
    html = page(odd, "/runs?" + urllib.parse.urlencode({"cols": 1, "params": ["we`ird", "a,b"]}, doseq=True))
    assert '<th class="param">' in html and "a,b" in html and "we`ird" in html
    assert q(order_by='params."we`ird" DESC') in html.replace("&amp;", "&")  # the header's link quotes the key
    sorted_ = api_json(odd, "/api/runs?" + q(order_by='params."we`ird" DESC', params="we`ird", cols=1))
    assert sorted_["error"] is None and sorted_["runs"][0]["params"] == {"we`ird": 3}
    assert api_json(odd, "/api/runs?" + q(params="a,b", cols=1))["columns"]["params"] == ["a,b"]
    assert api_json(odd, "/api/runs?" + q(params="lr,thr"))["columns"]["params"] == ["lr", "thr"]  # by hand: split


def test_a_request_with_two_host_headers_is_refused_and_long_ids_are_not_echoed(odd):
    import http.client

    host, port = odd["url"].removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("GET", "/api/runs", skip_host=True)
    conn.putheader("Host", "evil.example")
    conn.putheader("Host", "localhost")
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn.close()
    answer = api_json(odd, "/api/runs/" + "a" * 5000, 404)["error"]
    assert len(answer) < 200 and "5,000 characters" in answer


def test_a_long_live_history_is_sampled_and_a_killed_run_says_how_to_record_it(repo):
    with ui_server(repo) as url, live_run(repo) as (run_id, more, kill):
        site = {"url": url}
        more(12_000)
        history = api_json(site, f"/api/runs/{run_id}/history?key=loss")
        assert (len(history["steps"]), history["sampled"], history["steps"][-1]) == (10_000, True, 12_002)
        assert history["steps"][:2] == [0, 1] and isinstance(history["start"], int)
        assert history["start"] <= history["times"][0]
        kill()
        html = page(site, f"/runs/{run_id}")
        assert "KILLED?" in html and f"gitml commit-run --resume {run_id[:8]} --status KILLED" in html
        assert 'data-follow="0"' in html
        assert api_json(site, f"/api/runs/{run_id}")["live"] == {"alive": False, "commit_failed": False}


def test_deep_json_a_long_committed_history_and_pages_that_keep_their_bearings(odd, family, repo):
    deep = api_json(odd, f"/api/runs/{odd['odd']}/artifact?" + q(path="deep.json"))
    assert deep["kind"] == "text" and deep["text"].startswith("[[[")
    # a filter that does not parse: fixing it brings the default columns back, not an empty choice
    assert 'name="cols"' not in page(family, "/runs?" + q(filter="metrics.loss >> 1"))
    assert 'name="cols"' in page(family, "/runs")
    # a sort typed by hand is the header's: its arrow shows and its link reverses it
    html = page(family, "/runs?" + q(order_by="metrics.loss DESC", metrics="loss", cols=1)).replace("&amp;", "&")
    assert q(order_by="metrics.`loss`") in html and "loss</span> ▼" in html, re.findall(r"<th class=.metric.>.*?</th>", html)
    assert '<option value="nosuch" selected>' in page(family, "/runs?experiment=nosuch")
    # a committed run's history is sent whole (only a run in progress is sampled for its chart)
    with api.start_run(name="long", repo=repo) as run:
        for step in range(15_000):
            api.log_metric("m", step / 15_000, step=step)
        api.log_artifact(str(repo / "train.py"))
    for item in (repo / ".git" / "gitml" / "cache").rglob("*"):
        if item.is_file():
            item.unlink()  # a clone that has the run but not its bytes
    with ui_server(repo) as url:
        history = api_json({"url": url}, f"/api/runs/{run.id}/history?key=m")
        assert (len(history["steps"]), history["total"], history["sampled"], history["live"]) == (15_000, 15_000,
                                                                                               False, False)
        preview = page({"url": url}, f"/runs/{run.id}/artifact?" + q(path="train.py"))
        assert "no preview" in preview and "/download?" not in preview
