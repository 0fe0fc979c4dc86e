#!/usr/bin/env python
"""``gitml ui`` against ``mlflow server``'s UI on the same runs (issue 17).

Run from the repository root (MLflow in its own virtualenv, as ``.ci/run`` installs it)::

    python bench/bench_ui.py --out bench/RESULTS-ui.md   # 1,000 and 100,000 runs, ~14 min on 2 cores
    python bench/bench_ui.py --quick                     # 1,000 and 10,000 runs, 3 repetitions, ~4 min

Options: ``--runs-small`` (1,000), ``--runs-large`` (100,000), ``--reps`` (7 timed requests a
page, after one untimed), ``--starts`` (5 timed starts of ``gitml ui``), ``--mlflow-starts`` (3:
each takes 10-20 s), ``--mlflow-timeout`` (120 s: an MLflow request not answered by then is
reported as such, and its server replaced for the next rows), ``--no-mlflow-large`` (MLflow at the
small size only), ``--no-mlflow``, ``--work-tree`` (measure gitml/ as it is in the work tree
rather than HEAD's), ``--mlflow-python`` (default ``/tmp/gitml-ci-mlflow/bin/python``; its
``mlflow`` is beside it), ``--keep`` (leave the temporary folder), ``--out FILE`` (the Markdown
report, printed too), ``--json FILE`` (every figure, raw).

The runs (the same in both tools, the same ids): N runs over 4 experiments, one a minute, each
with 10 params (floats, ints, text), 10 metrics ``m0`` … ``m9`` (one point each), 3 tags, a
source commit; 1 run in 50 FAILED. Run N/2 also has a metric ``loss`` of 10,000 points (the
run page's chart) and the 10 runs from N/3 on a ``loss`` of 1,000 points (the compare page's
curves). gitml: ``gitml.tracking.commit.write_runs`` in batches of 10,000 into a ``git init``
repository with one commit, then the query index built (timed: what the first ``gitml ui``
after a clone pays). MLflow: its sqlite schema and the 4 experiments made by MLflow's client,
then the rows written straight into its tables with :mod:`sqlite3` (``runs``, ``params``,
``tags``, ``metrics``, ``latest_metrics``, as its sqlalchemy store writes them, as
bench_import.py does), because logging 100,000 runs through MLflow's client takes hours.

What is timed, over HTTP from this process (``http.client``, one connection a request):

- start: ``python -m gitml ui --port 0`` started in the repository (process start included), its
  URL read from its first stdout line, then ``/runs`` asked for at once: until the whole page has
  arrived. ``--starts`` times, median; once more at the large size with the query index deleted
  first (a fresh clone's first start). MLflow: ``mlflow server --backend-store-uri sqlite:///…
  --port P --workers 1`` (one process, as gitml's), ``/health`` polled every 20 ms, then its
  runs search: until that answer has arrived.
- each page: a fresh server; its first request is the cold one (reported); then ``--reps``
  browser-like full loads, medians reported. TTFB is the time until the status line and headers
  are read (``getresponse()``), "page" until its whole body is read, "full load" a browser's
  critical path with an empty cache: the HTML, then the stylesheets and scripts it names
  (``/static/uPlot.min.css``, ``gitml.css``, ``uPlot.iife.min.js``, ``gitml.js``) in parallel, then the JSON the page's
  script fetches (the run page: each chart's ``/api/runs/<id>/history``; compare: the overlay's
  first metric for each run) in parallel, on at most 6 connections (a browser's per-host limit).
- MLflow's UI is a React single page; what is comparable is timed: the shell (``/`` and the JS
  and CSS it names), the search its runs page calls (``POST /ajax-api/2.0/mlflow/runs/search``,
  100 runs, ``attributes.start_time DESC``, every experiment; sorted by a metric; filtered and sorted; the last page
  through the page token), ``runs/get`` and ``metrics/get-history`` for the run page, and, for
  compare, 10 ``runs/get`` then 10 ``get-history`` in parallel. gitml's JSON twins are timed at
  100 runs a page for these rows.

Where the time goes: every gitml page is also timed in one process calling the route's function
itself (no HTTP, no uvicorn) under cProfile, ``--reps`` calls after one untimed; the functions
with the most cumulative time are in the report.

Environment of every process: ``_common.scrubbed_env`` (no ``GIT_*``/``MLFLOW_*``/``PYTHONPATH``
from the caller, ``HOME`` a temporary folder), ``PYTHONDONTWRITEBYTECODE`` removed and
``PYTHONPYCACHEPREFIX`` in the temporary folder (one untimed start of each server compiles its
bytecode first, as an install would have), gitml's code HEAD's ``gitml/`` exported with ``git
archive`` (so edits in the work tree meanwhile do not change what is measured).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    LoadSampler,
    bench_home,
    emit_result,
    fmt,
    fmt_ratio,
    machine_line,
    run_worker,
    scrubbed_env,
    typical_params,
)

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
EXPERIMENTS = ("baseline", "tuning", "ablation", "production")
T0_MS = 1_780_000_000_000
LONG_POINTS, COMPARE_POINTS, COMPARE_RUNS = 10_000, 1_000, 10
GITML_PAGE = 50  # gitml's default page size (views.DEFAULT_PAGE)
MLFLOW_PAGE = 100  # what MLflow's runs page asks for
FILTER, ORDER = "metrics.m0 > 0.5", "metrics.m1 DESC"
SORTED_PAGE = f"runs page, sorted by `{ORDER}` (a column header clicked)"
PARALLEL = 6
SAMPLED = 320  # points a run MLflow's UI asks get-history-bulk-interval for (its JS bundle's maxResults)
GOALS = {"runs": 200.0, "run": 300.0, "start": 1000.0}  # ms


# ------------------------------------------------------------------------------------------------
# The dataset: one deterministic generator both loaders call (stdlib only: MLflow's Python runs it)
# ------------------------------------------------------------------------------------------------
def special(n: int) -> tuple[int, list[int]]:
    """(index of the run with the 10,000-point metric, indexes of the 10 compared runs)."""
    return n // 2, [n // 3 + k for k in range(COMPARE_RUNS)]


def run_spec(i: int, n: int) -> dict:
    """Run number ``i`` of ``n``: id, name, experiment, times (ms), status, params, metrics, tags, loss."""
    rnd = random.Random(i * 7919 + 17)
    start = T0_MS + i * 60_000
    long_i, compared = special(n)
    points = LONG_POINTS if i == long_i else COMPARE_POINTS if i in compared else 0
    end = start + 30_000 + rnd.randrange(600_000) + points * 100
    params = typical_params(rnd)
    loss = []
    if points:
        value = 2.0 + rnd.random()
        for step in range(points):
            value *= 0.9995 + rnd.random() * 0.0004
            loss.append((step, start + step * 100, value))
    return {
        "id": f"{rnd.getrandbits(128):032x}",
        "name": f"run-{i}",
        "experiment": EXPERIMENTS[i % len(EXPERIMENTS)],
        "start": start,
        "end": end,
        "status": "FAILED" if i % 50 == 7 else "FINISHED",
        "params": params,
        "metrics": {f"m{k}": rnd.random() for k in range(10)},
        "tags": {"team": rnd.choice(["vision", "nlp", "tabular"]), "stage": rnd.choice(["dev", "staging", "prod"]),
                 "ticket": f"ML-{i % 997}"},
        "loss": loss,
    }


# ------------------------------------------------------------------------------------------------
# Workers (each its own process)
# ------------------------------------------------------------------------------------------------
def w_gitml_load(spec: dict) -> dict:
    """The runs onto the runs ref with write_runs, batches of 10,000 (the query index not built)."""
    import gitml
    from gitml.core import formats
    from gitml.core.gitrepo import GitRepo
    from gitml.tracking.commit import write_runs

    def iso(ms: int) -> str:
        return formats.iso_time(ms / 1000)

    n, chunk = spec["n"], 10_000
    t0 = time.perf_counter()
    with GitRepo(spec["repo"]) as repo:
        for lo in range(0, n, chunk):
            batch = []
            for i in range(lo, min(lo + chunk, n)):
                r = run_spec(i, n)
                end = iso(r["end"])
                metrics = {k: formats.metric_value(k, v) for k, v in r["metrics"].items()}
                info = {k: {"step": 0, "timestamp": end} for k in metrics}
                points = []
                if r["loss"]:
                    points = [formats.Metric("loss", v, step, iso(ms)) for step, ms, v in r["loss"]]
                    points += [formats.Metric(k, v, 0, end) for k, v in metrics.items()]
                    last = points[len(r["loss"]) - 1]
                    metrics["loss"] = last.value
                    info["loss"] = {"step": last.step, "timestamp": last.timestamp}
                run = formats.Run(
                    id=r["id"], name=r["name"], experiment=r["experiment"], status=r["status"],
                    start_time=iso(r["start"]), end_time=end, updated=end, user="Bench User",
                    source={"commit": spec["commit"], "branch": "main", "dirty": False, "remote": None},
                    command="python train.py", gitml_version=gitml.__version__,
                    params={k: formats.param_value(k, v) for k, v in r["params"].items()},
                    metrics=metrics, metric_info=info, tags=dict(r["tags"]),
                )
                batch.append((run, points))
            write_runs(repo, batch, f"bench: {len(batch)} runs")
    return {"s": time.perf_counter() - t0}


def w_gitml_index(spec: dict) -> dict:
    """Build the query index (as the first question after a clone does), timed."""
    from gitml.core.workspace import open_workspace

    t0 = time.perf_counter()
    with open_workspace(spec["repo"]) as ws:
        count = ws.index.count()
    return {"s": time.perf_counter() - t0, "count": count}


MLFLOW_RUN_COLUMNS = ("run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, "
                      "end_time, source_version, lifecycle_stage, artifact_uri, experiment_id")


def w_mlflow_load(spec: dict) -> dict:
    """MLflow's schema and experiments by its client, then the same runs' rows with sqlite3."""
    from mlflow import MlflowClient

    t0 = time.perf_counter()
    db = Path(spec["db"])
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp_ids = {name: int(client.create_experiment(name, artifact_location=str(db.parent / "mlartifacts" / name)))
               for name in EXPERIMENTS}
    t_schema = time.perf_counter() - t0
    del client
    n = spec["n"]
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    runs, params, tags, metrics, latest = [], [], [], [], []

    def flush() -> None:
        conn.executemany(f"INSERT INTO runs ({MLFLOW_RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
        conn.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)",
                         metrics)
        conn.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                         "VALUES (?,?,?,?,?,?)", latest)
        conn.commit()
        for rows in (runs, params, tags, metrics, latest):
            rows.clear()

    for i in range(n):
        r = run_spec(i, n)
        rid, exp = r["id"], r["experiment"]
        runs.append((rid, r["name"], "LOCAL", "train.py", "", "Bench User", r["status"], r["start"], r["end"],
                     spec["commit"], "active", f"{db.parent}/mlartifacts/{exp}/{rid}/artifacts", exp_ids[exp]))
        params += [(k, str(v), rid) for k, v in r["params"].items()]
        tags += [(k, v, rid) for k, v in r["tags"].items()]
        tags += [("mlflow.runName", r["name"], rid), ("mlflow.user", "Bench User", rid),
                 ("mlflow.source.name", "train.py", rid), ("mlflow.source.type", "LOCAL", rid),
                 ("mlflow.source.git.commit", spec["commit"], rid)]
        for k, v in r["metrics"].items():
            metrics.append((k, v, r["end"], rid, 0, 0))
            latest.append((k, v, r["end"], 0, 0, rid))
        if r["loss"]:
            metrics += [("loss", v, ms, rid, step, 0) for step, ms, v in r["loss"]]
            step, ms, v = r["loss"][-1]
            latest.append(("loss", v, ms, step, 0, rid))
        if i % 10_000 == 9_999:
            flush()
    flush()
    conn.close()
    return {"s": time.perf_counter() - t0, "schema_s": t_schema, "experiments": exp_ids}


def w_profile(spec: dict) -> dict:
    """Each gitml page's route function called in this process (no HTTP), timed and profiled."""
    import cProfile
    import pstats

    from starlette.requests import Request
    from starlette.routing import Match

    from gitml.ui.server import create_app

    app = create_app(spec["repo"])
    while not hasattr(app, "routes"):  # middleware around the Starlette app (the Host check)
        app = app.app
    out = {}
    for label, target in spec["pages"].items():
        parts = urlsplit(target)
        scope = {"type": "http", "method": "GET", "path": parts.path, "raw_path": parts.path.encode(),
                 "query_string": parts.query.encode(), "headers": [], "app": app, "root_path": ""}
        for route in app.routes:
            match, child = route.matches(scope)
            if match == Match.FULL and hasattr(route, "endpoint"):
                break
        else:
            raise SystemExit(f"no route for {target}")
        call_scope = dict(scope, **child)

        def call(route=route, call_scope=call_scope, target=target):
            response = route.endpoint(Request(call_scope))
            assert response.status_code == 200, (target, response.status_code, response.body[:300])
            return response

        call()  # untimed
        times = []
        for _ in range(spec["reps"]):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1e3)
        prof = cProfile.Profile()
        for _ in range(spec["reps"]):
            prof.enable()
            call()
            prof.disable()
        path = Path(spec["dir"]) / (re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-") + ".prof")
        prof.dump_stats(path)
        stats = pstats.Stats(str(path))
        rows = []
        for (file, line, func), (_cc, ncalls, tt, ct, _callers) in stats.stats.items():
            rows.append({"func": f"{_short_file(file)}:{line}({func})", "ncalls": ncalls,
                         "tottime_ms": tt * 1e3 / spec["reps"], "cumtime_ms": ct * 1e3 / spec["reps"]})
        rows.sort(key=lambda r: -r["cumtime_ms"])
        own = sorted(rows, key=lambda r: -r["tottime_ms"])[:12]
        out[label] = {"median_ms": statistics.median(times), "top_cum": rows[:40], "top_own": own,
                      "prof": str(path)}
    return out


def _short_file(file: str) -> str:
    for marker in ("/gitml/", "/site-packages/", "/lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1] if marker != "/gitml/" else "gitml/" + file.split(marker, 1)[1]
    return file


WORKERS = {"gitml_load": w_gitml_load, "gitml_index": w_gitml_index, "mlflow_load": w_mlflow_load,
           "profile": w_profile}


# ------------------------------------------------------------------------------------------------
# HTTP timing
# ------------------------------------------------------------------------------------------------
def request(base: str, path: str, method: str = "GET", body: dict | None = None, timeout: float = 600) -> dict:
    """One request on a new connection: ``{ttfb, full}`` in ms, status, bytes, body.

    Raises:
        TimeoutError: no answer within ``timeout`` seconds.
    """
    parts = urlsplit(base)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        t1 = time.perf_counter()
        payload = resp.read()
        t2 = time.perf_counter()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {payload[:300]!r}")
    return {"ttfb": (t1 - t0) * 1e3, "full": (t2 - t0) * 1e3, "bytes": len(payload), "body": payload}


POOL = concurrent.futures.ThreadPoolExecutor(PARALLEL)


def wave(base: str, calls: list[tuple], timeout: float = 600) -> list[dict]:
    """Requests in parallel (at most PARALLEL at a time), as a browser sends a page's resources."""
    return list(POOL.map(lambda c: request(base, *c, timeout=timeout), calls))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process of ours (its own process group), stopped by SIGTERM to that group."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict, log: Path):
        self.log = open(log, "ab")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True)
        self.url = None

    def stop(self, grace: float = 30) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # its children (MLflow's job runner and huey consumers) end with it: wait for the whole group
        deadline = time.perf_counter() + 15
        while group_members(self.proc.pid):
            if time.perf_counter() > deadline:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                deadline = time.perf_counter() + 15
            time.sleep(0.1)
        self.proc.stdout.close()
        self.log.close()


def group_members(pgid: int) -> list[int]:
    """The live processes (not zombies) of process group ``pgid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def start_gitml(ctx: dict, repo: Path) -> Server:
    """``python -m gitml ui --port 0`` in ``repo``; its URL read from its first stdout line."""
    server = Server([sys.executable, "-m", "gitml", "ui", "--port", "0"], repo, ctx["env"], ctx["tmp"] / "gitml-ui.log")
    line = server.proc.stdout.readline().decode()
    found = re.search(r" on (http://\S+) ", line)
    if not found:
        server.stop()
        raise RuntimeError(f"gitml ui did not print its URL: {line!r}; see {ctx['tmp'] / 'gitml-ui.log'}")
    server.url = found.group(1)
    return server


def start_mlflow(ctx: dict, db: Path, tries: int = 3) -> Server:
    """``mlflow server`` on the sqlite store, one worker; answers once ``/health`` does.

    A server that ends before answering (it happened once, exit 0, its log saying nothing) is
    started again, up to ``tries`` times.
    """
    for attempt in range(tries):
        try:
            return _start_mlflow(ctx, db)
        except EndedEarly as exc:
            if attempt == tries - 1:
                raise RuntimeError(str(exc)) from None
            print(f"{exc}; starting it again", file=sys.stderr, flush=True)
            ctx.setdefault("mlflow_restarts", []).append(str(exc))
            time.sleep(2)
    raise AssertionError


class EndedEarly(Exception):
    pass


def _start_mlflow(ctx: dict, db: Path) -> Server:
    port = free_port()
    cwd = db.parent
    cmd = [ctx["mlflow_bin"], "server", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1", "--artifacts-destination", str(cwd / "mlartifacts")]
    server = Server(cmd, cwd, ctx["mlflow_env"], ctx["tmp"] / "mlflow-server.log")
    server.url = f"http://127.0.0.1:{port}"
    deadline = time.perf_counter() + 180
    while time.perf_counter() < deadline:
        if server.proc.poll() is not None:
            code = server.proc.returncode
            server.stop()
            raise EndedEarly(f"mlflow server ended before answering (exit {code}); see {server.log.name}")
        try:
            request(server.url, "/health")
            return server
        except (OSError, RuntimeError, http.client.HTTPException):
            time.sleep(0.02)
    server.stop()
    raise RuntimeError("mlflow server did not answer /health within 180 s")


def median(values: list[float]) -> float:
    return statistics.median(values)


# ------------------------------------------------------------------------------------------------
# What a browser loads, per gitml page
# ------------------------------------------------------------------------------------------------
def gitml_followups(label: str, html: bytes) -> list[tuple]:
    """The JSON requests the page's script makes once gitml.js has run."""
    text = html.decode()
    if label.startswith("run page"):
        return [(f"/api/runs/{run}/history?key={quote(key, safe='')}",)
                for run, key in re.findall(r'<figure class="chart" data-run="([0-9a-f]+)" data-key="([^"]+)"', text)]
    if label.startswith("compare"):
        found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', text, re.S)
        data = json.loads(found.group(1))
        keys = sorted(data["history_keys"])
        if not keys:
            return []
        return [(f"/api/runs/{run}/history?key={quote(keys[0], safe='')}",) for run in data["history_keys"][keys[0]]]
    return []


def assets(html: str) -> list[str]:
    """The stylesheets and scripts a page names (what a browser fetches before it runs the page's script)."""
    found = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) + re.findall(r'<script src="([^"]+)"', html)
    return [url if url.startswith(("/", "http")) else "/" + url.removeprefix("./") for url in found]


def full_load(base: str, label: str, path: str) -> dict:
    """A browser's critical path, empty cache: HTML; CSS + JS in parallel; the script's JSON in parallel."""
    t0 = time.perf_counter()
    page = request(base, path)
    html = page["body"]
    static = [] if path.startswith("/api/") else wave(base, [(a,) for a in assets(html.decode())])
    follow = wave(base, gitml_followups(label, html)) if static else []
    total = (time.perf_counter() - t0) * 1e3
    return {"ttfb": page["ttfb"], "page": page["full"], "full": total, "bytes": page["bytes"],
            "all_bytes": page["bytes"] + sum(r["bytes"] for r in static + follow), "requests": 1 + len(static) + len(follow)}


def gitml_pages(n: int, ids: dict) -> dict[str, str]:
    """label -> path of every gitml page timed."""
    last = (n - 1) // GITML_PAGE * GITML_PAGE
    last100 = (n - 1) // MLFLOW_PAGE * MLFLOW_PAGE
    filt = urlencode({"filter": FILTER, "order_by": ORDER})
    sort = urlencode({"order_by": ORDER})
    return {
        "runs page (default: 50 newest)": "/runs",
        f"runs page, `{FILTER}` sorted by `{ORDER}`": f"/runs?{filt}",
        SORTED_PAGE: f"/runs?{sort}",
        "runs page, last page (offset)": f"/runs?offset={last}",
        "/api/runs (default, 50)": "/api/runs",
        "/api/runs, 100 runs": f"/api/runs?limit={MLFLOW_PAGE}",
        "/api/runs, 100 runs, filtered, sorted": f"/api/runs?limit={MLFLOW_PAGE}&{filt}",
        "/api/runs, 100 runs, sorted": f"/api/runs?limit={MLFLOW_PAGE}&{sort}",
        "/api/runs, 100 runs, last page": f"/api/runs?limit={MLFLOW_PAGE}&offset={last100}",
        "run page (10,000-point chart)": f"/runs/{ids['long']}",
        "/api/runs/<id>": f"/api/runs/{ids['long']}",
        "/api/runs/<id>/history (10,000 points)": f"/api/runs/{ids['long']}/history?key=loss",
        "compare page, 10 runs": "/compare?runs=" + ",".join(ids["compared"]),
        "/api/compare, 10 runs": "/api/compare?runs=" + ",".join(ids["compared"]),
    }


def measure_gitml(ctx: dict, repo: Path, n: int, ids: dict, log) -> dict:
    reps = ctx["reps"]
    res: dict = {"pages": {}, "starts": []}
    # One untimed start: Python compiles the bytecode (PYTHONPYCACHEPREFIX) as an install would have.
    s = start_gitml(ctx, repo)
    request(s.url, "/runs")
    s.stop()
    for _ in range(ctx["starts"]):
        s = start_gitml(ctx, repo)
        t_url = (time.perf_counter() - s.t0) * 1e3
        page = request(s.url, "/runs")
        res["starts"].append({"url": t_url, "first_page": (time.perf_counter() - s.t0) * 1e3,
                              "ttfb": page["ttfb"], "page": page["full"]})
        s.stop()
    log(f"gitml start to first page: {median([x['first_page'] for x in res['starts']]):.0f} ms")
    for label, path in gitml_pages(n, ids).items():
        s = start_gitml(ctx, repo)
        try:
            cold = full_load(s.url, label, path)
            cold["since_start"] = (time.perf_counter() - s.t0) * 1e3
            loads = [full_load(s.url, label, path) for _ in range(reps)]
        finally:
            s.stop()
        res["pages"][label] = {"path": path, "cold": cold, "bytes": loads[0]["bytes"],
                               "all_bytes": loads[0]["all_bytes"], "requests": loads[0]["requests"],
                               **{k: median([x[k] for x in loads]) for k in ("ttfb", "page", "full")}}
        r = res["pages"][label]
        log(f"gitml {label}: ttfb {r['ttfb']:.1f} page {r['page']:.1f} full {r['full']:.1f} ms "
            f"(cold {cold['page']:.0f})")
    return res


def cold_index_start(ctx: dict, repo: Path) -> dict:
    """Start to first page with the query index deleted first (a fresh clone's first ``gitml ui``)."""
    for suffix in ("", "-wal", "-shm"):
        (repo / ".git" / "gitml" / f"index.sqlite{suffix}").unlink(missing_ok=True)
    s = start_gitml(ctx, repo)
    try:
        page = request(s.url, "/runs")
        first = (time.perf_counter() - s.t0) * 1e3
        # the server builds the index in another process meanwhile: the full answers come when it is done
        while json.loads(request(s.url, "/api/status")["body"])["indexing"]:
            time.sleep(0.2)
        return {"first_page": first, "ttfb": page["ttfb"], "interim": b'id="indexing"' in page["body"],
                "index_ready": (time.perf_counter() - s.t0) * 1e3}
    finally:
        s.stop()


# ------------------------------------------------------------------------------------------------
# MLflow
# ------------------------------------------------------------------------------------------------
def mlflow_calls(n: int, ids: dict, exp_ids: list[str]) -> dict[str, list[list[tuple]]]:
    """label -> the waves of requests (each wave's requests in parallel)."""
    search = "/ajax-api/2.0/mlflow/runs/search"
    base = {"experiment_ids": exp_ids, "run_view_type": "ACTIVE_ONLY", "max_results": MLFLOW_PAGE}
    last100 = (n - 1) // MLFLOW_PAGE * MLFLOW_PAGE
    token = base64.b64encode(json.dumps({"offset": last100}).encode()).decode()
    newest = dict(base, order_by=["attributes.start_time DESC"])

    def get_run(run):
        return ("/ajax-api/2.0/mlflow/runs/get?run_id=" + run,)

    def history(run):
        return ("/ajax-api/2.0/mlflow/metrics/get-history?run_id=" + run + "&metric_key=loss",)

    def sampled(runs):  # what MLflow's charts load: at most 320 points a run, in one call
        return ("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?"
                + urlencode([("run_ids", r) for r in runs] + [("metric_key", "loss"), ("max_results", SAMPLED)]),)

    return {
        "runs search, 100 newest": [[(search, "POST", newest)]],
        "runs search, 100, filtered, sorted": [[(search, "POST", dict(base, filter=FILTER, order_by=[ORDER]))]],
        "runs search, 100, sorted": [[(search, "POST", dict(base, order_by=[ORDER]))]],
        "runs search, 100, last page (page token)": [[(search, "POST", dict(newest, page_token=token))]],
        "runs/get": [[get_run(ids["long"])]],
        "metrics/get-history (10,000 points)": [[history(ids["long"])]],
        f"metrics/get-history-bulk-interval ({SAMPLED} of 10,000 points)": [[sampled([ids["long"]])]],
        f"run: runs/get, then get-history-bulk-interval ({SAMPLED} points)": [[get_run(ids["long"])],
                                                                             [sampled([ids["long"]])]],
        "run: runs/get, then get-history (10,000 points)": [[get_run(ids["long"])], [history(ids["long"])]],
        f"compare: 10 runs/get, then one get-history-bulk-interval ({SAMPLED} points a run)": [
            [get_run(r) for r in ids["compared"]], [sampled(ids["compared"])]],
    }


def mlflow_shell(base: str) -> dict:
    """``/`` then the JS and CSS it names, in parallel: what the browser needs before any API call."""
    t0 = time.perf_counter()
    page = request(base, "/")
    html = page["body"].decode()
    named = re.findall(r'<script[^>]+src="([^"]+)"', html) + re.findall(r'<link[^>]+href="([^"]+\.css)"', html)
    named = ["/" + a.lstrip("./") if not a.startswith(("http", "/")) else a for a in named]
    loaded = wave(base, [(a,) for a in named])
    return {"ttfb": page["ttfb"], "page": page["full"], "full": (time.perf_counter() - t0) * 1e3,
            "all_bytes": page["bytes"] + sum(r["bytes"] for r in loaded), "requests": 1 + len(loaded)}


def settle(pgid: int, quiet: float = 0.1, most: float = 90.0) -> float:
    """Wait until the processes of group ``pgid`` use under ``quiet`` CPU-seconds a second; seconds waited.

    ``mlflow server`` starts a job runner and huey consumers beside its web process, which are
    busy for a while after it answers; steady-state requests are timed once they are quiet.
    """
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:  # pgrp
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    t0 = time.perf_counter()
    last = cpu()
    while time.perf_counter() - t0 < most:
        time.sleep(1.0)
        now = cpu()
        if now - last < quiet:
            break
        last = now
    return time.perf_counter() - t0


def run_waves(base: str, waves: list[list[tuple]], timeout: float = 600) -> dict:
    """The waves one after the other, each's requests in parallel: the first request's TTFB and the whole time."""
    t0 = time.perf_counter()
    first = None
    nbytes = 0
    for calls in waves:
        got = wave(base, calls, timeout)
        first = first or got[0]
        nbytes += sum(r["bytes"] for r in got)
    return {"ttfb": first["ttfb"], "page": first["full"], "full": (time.perf_counter() - t0) * 1e3,
            "all_bytes": nbytes, "requests": sum(len(w) for w in waves), "body": first["body"]}


def measure_mlflow(ctx: dict, db: Path, n: int, ids: dict, exp_ids: list[str], log) -> dict:
    reps = ctx["reps"]
    res: dict = {"pages": {}, "starts": []}
    calls = mlflow_calls(n, ids, exp_ids)
    first_search = calls["runs search, 100 newest"]
    s = start_mlflow(ctx, db)  # untimed: bytecode compiled
    run_waves(s.url, first_search)
    s.stop()
    for _ in range(ctx["mlflow_starts"]):
        s = start_mlflow(ctx, db)
        t_health = (time.perf_counter() - s.t0) * 1e3
        got = run_waves(s.url, first_search)
        res["starts"].append({"health": t_health, "first_page": (time.perf_counter() - s.t0) * 1e3,
                              "ttfb": got["ttfb"]})
        s.stop()
    log(f"mlflow start to first search: {median([x['first_page'] for x in res['starts']]):.0f} ms")
    s = start_mlflow(ctx, db)
    try:
        cold = mlflow_shell(s.url)
        res["cold_search"] = run_waves(s.url, first_search)
        res["cold_search"].pop("body")
        res["settle_s"] = settle(s.proc.pid)
        log(f"mlflow: background processes quiet after {res['settle_s']:.0f} s")
        shells = [mlflow_shell(s.url) for _ in range(reps)]
        res["shell"] = {"cold": cold, "all_bytes": shells[0]["all_bytes"], "requests": shells[0]["requests"],
                        **{k: median([x[k] for x in shells]) for k in ("ttfb", "page", "full")}}
        for label, waves in calls.items():
            try:
                cold = run_waves(s.url, waves, ctx["mlflow_timeout"])
            except TimeoutError:
                # The one worker is still in that query: stop the server, start another for the next rows.
                res["pages"][label] = {"timeout": ctx["mlflow_timeout"]}
                log(f"mlflow {label}: no answer within {ctx['mlflow_timeout']:.0f} s; server restarted")
                s.stop(grace=5)
                s = start_mlflow(ctx, db)
                run_waves(s.url, first_search)
                settle(s.proc.pid)
                continue
            body = json.loads(cold.pop("body"))
            check = len(body.get("runs", body.get("metrics", [body.get("run")])))
            loads = []
            t_spent = 0.0
            for k in range(reps):  # at least 3 unless one takes over 10 s; stop past 30 s
                if cold["full"] > 10_000:
                    loads.append(dict(cold))
                    break
                got = run_waves(s.url, waves)
                got.pop("body")
                loads.append(got)
                t_spent += got["full"] / 1e3
                if k >= 2 and t_spent > 30:
                    break
            res["pages"][label] = {"cold": cold, "items": check, "reps": len(loads), "all_bytes": loads[0]["all_bytes"],
                                   "requests": loads[0]["requests"],
                                   **{k: median([x[k] for x in loads]) for k in ("ttfb", "page", "full")}}
            r = res["pages"][label]
            log(f"mlflow {label}: ttfb {r['ttfb']:.1f} full {r['full']:.1f} ms ({check} items, {len(loads)} reps)")
    finally:
        s.stop()
    return res


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-small", type=int, default=1_000)
    ap.add_argument("--runs-large", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--mlflow-starts", type=int, default=3, help="timed starts of mlflow server (~15 s each)")
    ap.add_argument("--mlflow-timeout", type=float, default=120,
                    help="seconds an MLflow request may take before it is reported as not answered")
    ap.add_argument("--quick", action="store_true", help="1,000 and 10,000 runs, 3 repetitions, 3 starts")
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--no-mlflow-large", action="store_true", help="MLflow at the small size only")
    ap.add_argument("--mlflow-python", default="/tmp/gitml-ci-mlflow/bin/python")
    ap.add_argument("--work-tree", action="store_true", help="measure gitml/ of the work tree, not HEAD's")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", type=Path, help="every figure measured, as JSON")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        emit_result(WORKERS[args.worker[0]](json.loads(Path(args.worker[1]).read_text())))
        return 0
    if args.quick:
        args.runs_large, args.reps, args.starts, args.mlflow_starts = min(args.runs_large, 10_000), 3, 3, 2
    sampler = LoadSampler()
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-ui-", dir="/var/tmp"))
    home = bench_home(tmp)
    env = scrubbed_env(home, PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    mlflow_env = dict(env)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    if args.work_tree:
        env["PYTHONPATH"] = str(ROOT)
        tree_note = "; the work tree measured"
    else:
        src = tmp / "gitml-src"
        src.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD", "gitml"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        env["PYTHONPATH"] = str(src)
        tree_note = "; that commit's gitml/ measured, exported with git archive"
    ctx = {"env": env, "mlflow_env": mlflow_env, "tmp": tmp, "reps": args.reps, "starts": args.starts,
           "mlflow_starts": args.mlflow_starts, "mlflow_timeout": args.mlflow_timeout,
           "mlflow_bin": str(Path(args.mlflow_python).parent / "mlflow")}

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - began:6.0f}s] {msg}", file=sys.stderr, flush=True)

    def worker(python: str, name: str, spec: dict, wenv: dict) -> dict:
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(spec))
        res, proc = run_worker([python, str(HERE), "--worker", name, str(path)], env=wenv, cwd=HERE.parent)
        if res is None:
            sys.exit(f"{name} failed: {proc.stderr.strip()[-1500:]}")
        return res

    machine = machine_line(env, args.mlflow_python, ROOT, tree_note)  # now: HEAD as exported
    sizes = [args.runs_small, args.runs_large]
    results: dict = {}
    try:
        for n in sizes:
            r: dict = {"n": n}
            results[n] = r
            long_i, compared = special(n)
            ids = {"long": run_spec(long_i, n)["id"], "compared": [run_spec(i, n)["id"] for i in compared]}
            repo = tmp / f"repo-{n}"
            repo.mkdir()
            for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "init"]):
                subprocess.run(cmd, cwd=repo, env=env, check=True)
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, env=env, capture_output=True, text=True,
                                    check=True).stdout.strip()
            log(f"{n:,} runs: loading gitml ...")
            r["load"] = worker(sys.executable, "gitml_load", {"repo": str(repo), "n": n, "commit": commit}, env)
            r["git_bytes"] = int(subprocess.run(["du", "-sb", str(repo / ".git")], capture_output=True, text=True,
                                                check=True).stdout.split()[0])
            if n == max(sizes):
                log("start with no query index (a fresh clone's first gitml ui) ...")
                r["cold_index"] = cold_index_start(ctx, repo)
                log(f"... {r['cold_index']['first_page']:.0f} ms")
            else:
                r["index"] = worker(sys.executable, "gitml_index", {"repo": str(repo)}, env)
            r["gitml"] = measure_gitml(ctx, repo, n, ids, log)
            prof_dir = tmp / f"profiles-{n}"
            prof_dir.mkdir()
            r["profile"] = worker(sys.executable, "profile", {"repo": str(repo), "reps": args.reps, "dir": str(prof_dir),
                                                              "pages": {k: v for k, v in gitml_pages(n, ids).items()}},
                                  env)
            if not args.no_mlflow and (n == args.runs_small or not args.no_mlflow_large):
                store = tmp / f"mlflow-{n}"
                store.mkdir()
                db = store / "mlflow.db"
                log(f"{n:,} runs: loading MLflow's sqlite store ...")
                r["mlflow_load"] = worker(args.mlflow_python, "mlflow_load", {"db": str(db), "n": n, "commit": commit},
                                          mlflow_env)
                r["db_bytes"] = db.stat().st_size
                exp_ids = [str(v) for v in r["mlflow_load"]["experiments"].values()]
                r["mlflow"] = measure_mlflow(ctx, db, n, ids, exp_ids, log)
                if not args.keep:
                    shutil.rmtree(store)
            if not args.keep:
                shutil.rmtree(repo)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")
    args.mlflow_restarts = ctx.get("mlflow_restarts", [])
    report = render(args, results, machine, head, sampler.summary(time.perf_counter() - began,
                                                                  f"{os.cpu_count()} cores, shared with a test suite"))
    print(report)
    if args.out:
        args.out.write_text(report)
    if args.json:
        args.json.write_text(json.dumps({str(n): r for n, r in results.items()}, indent=1, default=str))
    return 0


# ------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------
PAIRS = (  # (gitml label, MLflow label): what compares
    ("/api/runs, 100 runs", "runs search, 100 newest"),
    ("/api/runs, 100 runs, filtered, sorted", "runs search, 100, filtered, sorted"),
    ("/api/runs, 100 runs, sorted", "runs search, 100, sorted"),
    ("/api/runs, 100 runs, last page", "runs search, 100, last page (page token)"),
    ("/api/runs/<id>", "runs/get"),
    ("/api/runs/<id>/history (10,000 points)", "metrics/get-history (10,000 points)"),
    ("/api/runs/<id>/history (10,000 points)", f"metrics/get-history-bulk-interval ({SAMPLED} of 10,000 points)"),
    ("run page (10,000-point chart)", "run: runs/get, then get-history (10,000 points)"),
    ("run page (10,000-point chart)", f"run: runs/get, then get-history-bulk-interval ({SAMPLED} points)"),
    ("compare page, 10 runs", f"compare: 10 runs/get, then one get-history-bulk-interval ({SAMPLED} points a run)"),
)


def _relative(path: Path) -> str:
    """``path`` as given from the repository's root when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def render(args, results: dict, machine: str, head: str, load: str) -> str:
    sizes = list(results)
    defaults = {"runs_small": 1_000, "reps": 7, "starts": 5, "mlflow_starts": 3, "mlflow_timeout": 120}
    if args.quick:
        defaults.update(reps=3, starts=3, mlflow_starts=2)
    cmd = "python bench/bench_ui.py" + (" --quick" if args.quick else "") + (
        f" --runs-large {args.runs_large}" if not args.quick and args.runs_large != 100_000 else "") + "".join(
        f" --{name.replace('_', '-')} {getattr(args, name):g}" for name, value in defaults.items()
        if getattr(args, name) != value) + (" --no-mlflow" if args.no_mlflow else "") + (
        " --no-mlflow-large" if args.no_mlflow_large else "") + (f" --out {_relative(args.out)}" if args.out else "")
    lines = ["# gitml ui against mlflow server's UI (issue 17)", "", f"`{cmd}`", "", machine, ""]
    for n in sizes:
        r = results[n]
        idx = r.get("index", {}).get("s")
        lines.append(f"- {n:,} runs: gitml load {r['load']['s']:.0f} s (write_runs), `.git` "
                     f"{r['git_bytes'] / 2**20:.0f} MiB"
                     + (f", query index built in {idx:.1f} s" if idx is not None else "")
                     + (f"; MLflow sqlite rows {r['mlflow_load']['s']:.0f} s, {r['db_bytes'] / 2**20:.0f} MiB"
                        if "mlflow_load" in r else "; MLflow not loaded at this size") + ".")
    lines += ["", f"Medians of {args.reps} browser-like loads after one untimed (cold) one, each page on a fresh "
              "server; ms. TTFB: status line and headers read; page: the whole HTML (or JSON); full load: the "
              f"page, then the stylesheets and scripts it names (2 + 2) in parallel, then the JSON its script fetches in parallel (≤ "
              f"{PARALLEL} connections), empty cache. Cold: the first request to a freshly started server.", ""]
    # gitml table
    head_row = "| page | " + " | ".join(f"{n:,} runs: TTFB / page / full load (cold)" for n in sizes) + " | size (large) |"
    lines += ["## gitml ui", "", head_row, "|---|" + "---:|" * (len(sizes) + 1)]
    for label in results[sizes[0]]["gitml"]["pages"]:
        cells = []
        for n in sizes:
            p = results[n]["gitml"]["pages"].get(label)
            if p is None:
                cells.append("")
                continue
            cells.append(f"{fmt(p['ttfb'])} / {fmt(p['page'])} / **{fmt(p['full'])}** ({fmt(p['cold']['full'])})")
        p = results[sizes[-1]]["gitml"]["pages"][label]
        size = f"{p['bytes'] / 1024:.0f} KiB" + (f", {p['requests']} requests {p['all_bytes'] / 1024:.0f} KiB"
                                                  if p["requests"] > 1 else "")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {size} |")
    start_cells = []
    for n in sizes:
        st = results[n]["gitml"]["starts"]
        start_cells.append(f"URL printed {fmt(median([x['url'] for x in st]))}, page **{fmt(median([x['first_page'] for x in st]))}** "
                           f"(min {fmt(min(x['first_page'] for x in st))}, max {fmt(max(x['first_page'] for x in st))})")
    lines.append(f"| `gitml ui` start to first `/runs` page ({args.starts} starts) | " + " | ".join(start_cells) + " | |")
    big = results[sizes[-1]]
    if "cold_index" in big:
        cold = big["cold_index"]
        note = (" (the newest runs, while another process builds the index"
                + (f": every answer {fmt(cold['index_ready'] / 1000)} s after start)" if "index_ready" in cold else ")")
                if cold.get("interim") else "")
        lines.append("| the same, query index deleted first (a fresh clone), one start | "
                     + " | ".join("" for _ in sizes[:-1]) + f" | **{fmt(cold['first_page'])}**{note} | |")
    # in-process
    lines += ["", "In-process (the route function called directly, no HTTP, no profiler; median ms): "
              + "; ".join(f"{label.split(' (')[0]}: " + " / ".join(fmt(results[n]['profile'][label]['median_ms'])
                                                                  for n in sizes)
                          for label in ("runs page (default: 50 newest)", f"runs page, `{FILTER}` sorted by `{ORDER}`",
                                        SORTED_PAGE, "runs page, last page (offset)", "run page (10,000-point chart)",
                                        "compare page, 10 runs"))
              + f" ({' / '.join(f'{n:,}' for n in sizes)} runs).", ""]
    # goals
    lines += ["## Goals", ""]
    bp = big["gitml"]["pages"]
    worst_label = max((k for k in bp if k.startswith("runs page")), key=lambda k: bp[k]["full"])
    runs_worst = bp[worst_label]["full"]
    runs_default = bp["runs page (default: 50 newest)"]
    run_page = bp["run page (10,000-point chart)"]
    start = median([x["first_page"] for x in big["gitml"]["starts"]])
    ok = lambda v, g: "met" if v <= g else "**not met**"  # noqa: E731
    lines += [
        f"- runs page ≤ 200 ms at {sizes[-1]:,} runs: default page {fmt(runs_default['page'])} ms (full load "
        f"{fmt(runs_default['full'])}): {ok(runs_default['full'], GOALS['runs'])}; the slowest variant, {worst_label.removeprefix('runs page, ')}, "
        f"{fmt(runs_worst)} ms: {ok(runs_worst, GOALS['runs'])}; variants over 200 ms: "
        + (", ".join(f"{k.removeprefix('runs page, ')} {fmt(bp[k]['full'])}" for k in bp
                     if k.startswith("runs page") and bp[k]["full"] > GOALS["runs"]) or "none") + ".",
        f"- run page with a 10,000-point chart ≤ 300 ms: full load {fmt(run_page['full'])} ms "
        f"(HTML {fmt(run_page['page'])}): {ok(run_page['full'], GOALS['run'])}.",
        f"- `gitml ui` start to first page ≤ 1 s: {fmt(start)} ms at {sizes[-1]:,} runs: {ok(start, GOALS['start'])}"
        + (f"; with no query index (first start after a clone) {fmt(big['cold_index']['first_page'])} ms: "
           f"{ok(big['cold_index']['first_page'], GOALS['start'])}." if "cold_index" in big else "."),
        "",
    ]
    # MLflow table
    with_ml = [n for n in sizes if "mlflow" in results[n]]
    if with_ml:
        lines += ["## Side by side with mlflow server (same runs, sqlite store, `--workers 1`)", "",
                  "| what | " + " | ".join(f"{n:,} runs: gitml / MLflow (MLflow ÷ gitml)" for n in with_ml) + " |",
                  "|---|" + "---:|" * len(with_ml)]
        for g, m in PAIRS:
            cells = []
            for n in with_ml:
                gp, mp = results[n]["gitml"]["pages"][g], results[n]["mlflow"]["pages"][m]
                if "timeout" in mp:
                    cells.append(f"{fmt(gp['full'])} / > {fmt(mp['timeout'] * 1e3)}, no answer "
                                 f"(> {fmt_ratio(mp['timeout'] * 1e3, gp['full'])})")
                    continue
                cells.append(f"{fmt(gp['full'])} / {fmt(mp['full'])} ({fmt_ratio(mp['full'], gp['full'])})")
            lines.append(f"| {g} · {m} | " + " | ".join(cells) + " |")
        cells = []
        for n in with_ml:
            gs = median([x["first_page"] for x in results[n]["gitml"]["starts"]])
            ms = median([x["first_page"] for x in results[n]["mlflow"]["starts"]])
            cells.append(f"{fmt(gs)} / {fmt(ms)} ({fmt_ratio(ms, gs)})")
        lines.append("| start to first answer: `gitml ui` + `/runs` · `mlflow server` + runs search | "
                     + " | ".join(cells) + " |")
        cells = []
        for n in with_ml:
            sh = results[n]["mlflow"]["shell"]
            cells.append(f"— / {fmt(sh['full'])} ({sh['requests']} requests, {sh['all_bytes'] / 2**20:.1f} MiB)")
        lines.append("| MLflow's UI shell before any API call: `/` + its JS/CSS (gitml: its pages are the HTML) | "
                     + " | ".join(cells) + " |")
        cold_cells = []
        for n in with_ml:
            gs = results[n]["gitml"]["pages"]["/api/runs, 100 runs"]["cold"]["full"]
            ms = results[n]["mlflow"]["cold_search"]["full"]
            cold_cells.append(f"{fmt(gs)} / {fmt(ms)} ({fmt_ratio(ms, gs)})")
        lines.append("| cold (first request): `/api/runs?limit=100` · runs search (MLflow: after the shell) | "
                     + " | ".join(cold_cells) + " |")
        lines.append("")
        fewer = [f"{m} at {n:,} runs: {p['reps']}" for n in with_ml for m, p in results[n]["mlflow"]["pages"].items()
                 if p.get("reps", args.reps) < args.reps]
        timeouts = [f"{m} at {n:,} runs" for n in with_ml for m, p in results[n]["mlflow"]["pages"].items()
                    if "timeout" in p]
        lines.append(f"MLflow rows are medians of {args.reps} loads after a cold one"
                     + (f", except (a call over 10 s is timed once; at least 3 loads otherwise, fewer than {args.reps} "
                        f"once 30 s are spent): {'; '.join(fewer)}" if fewer else "") + "."
                     + (f" Not answered within {args.mlflow_timeout:.0f} s (the server was stopped and another started "
                        f"for the next rows): {'; '.join(timeouts)}." if timeouts else "")
                     + " MLflow's background processes (job runner, huey consumers) were let settle "
                     + ", ".join(f"{results[n]['mlflow']['settle_s']:.0f} s" for n in with_ml)
                     + " after its start before the warm loads."
                     + (f" `mlflow server` ended before answering {len(args.mlflow_restarts)} time(s) and was started "
                        "again (not counted in the starts)." if args.mlflow_restarts else ""))
        lines.append("")
    # profile
    lines += ["## Where the time goes (cProfile of the route function, largest size, per call)", ""]
    prof = big["profile"]
    for label in ("runs page (default: 50 newest)", f"runs page, `{FILTER}` sorted by `{ORDER}`", SORTED_PAGE,
                  "runs page, last page (offset)", "run page (10,000-point chart)", "compare page, 10 runs"):
        p = prof[label]
        top = [x for x in p["top_cum"] if x["func"].startswith("gitml/") and "server.py" not in x["func"]][:6]
        lines.append(f"- {label}: {fmt(p['median_ms'])} ms; "
                     + "; ".join(f"`{x['func']}` {fmt(x['cumtime_ms'])}" for x in top)
                     + "; own time: " + ", ".join(f"`{x['func']}` {fmt(x['tottime_ms'])}" for x in p["top_own"][:4]) + ".")
    lines += ["", load, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
