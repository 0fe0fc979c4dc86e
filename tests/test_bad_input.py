"""Bad input, through the real CLI: one clear stderr line, exit code 2 (unless stated), no
traceback, and nothing changed — the runs ref's tip stays put and no run is left in progress.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
from conftest import GITML, Result, git, gitml, runs_tip

import gitml as api
from gitml.core import runsref
from gitml.core.formats import Run, iso_time, run_files
from gitml.core.gitrepo import GitRepo
from gitml.errors import BadInputError, GitmlError, RunNotFoundError

# -- helpers -----------------------------------------------------------------------------------


def one_line(result: Result) -> str:
    """The single stderr line every refusal must give, with no traceback and no stdout."""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert lines[0].startswith("gitml: error: "), lines[0]
    assert result.out == "", result.out
    return lines[0]


def active_dirs(repo: Path) -> list[str]:
    root = repo / ".git" / "gitml" / "active"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def refused(repo: Path, *args: str, code: int = 2) -> str:
    """Run gitml in ``repo`` and check it refused and changed nothing; return the stderr line."""
    tip = runs_tip(repo)
    result = gitml(repo, *args)
    assert result.code == code, f"gitml {' '.join(args)} -> {result.code}: {result.out}{result.err}"
    line = one_line(result)
    assert runs_tip(repo) == tip
    assert active_dirs(repo) == []
    return line


def gitml_all(cwd: Path, arg_lists: list[list[str]]) -> list[Result]:
    """Run several independent gitml commands at once (real processes, in parallel: faster on
    a multi-core machine, and refusals must hold when they overlap)."""
    procs = [subprocess.Popen([*GITML, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for args in arg_lists]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        results.append(Result(proc.returncode, out, err))
    return results


def refused_all(repo: Path, cases: list[tuple[list[str], str]], code: int = 2) -> None:
    """Each ``(args, needle)``: refused with ``code``, one stderr line containing ``needle``; and
    nothing changed once they all ran."""
    tip = runs_tip(repo)
    results = gitml_all(repo, [args for args, _ in cases])
    for (args, needle), result in zip(cases, results, strict=True):
        assert result.code == code, f"gitml {args!r} -> {result.code}: {result.out}{result.err}"
        assert needle in one_line(result), (args, needle, result.err)
    assert runs_tip(repo) == tip
    assert active_dirs(repo) == []


@pytest.fixture
def base(repo) -> Path:
    """A repository whose runs ref already holds one run (so "unchanged" means something)."""
    api.commit_run(name="base", experiment="exp", params={"model": "rf"}, metrics={"acc": 0.5},
                   tags={"team": "growth"}, repo=repo)
    assert runs_tip(repo)
    return repo


def unused_prefix(repo: Path) -> str:
    ids = [r.id for r in api.search_runs(repo=repo)]
    return next(p for p in ("abcd", "bcde", "cdef", "0123") if not any(i.startswith(p) for i in ids))


def rewrite_run(repo: Path, run_id: str, files: dict[str, bytes | None]) -> None:
    """Commit new contents for a run's files onto the runs ref with git plumbing only (a hand edit,
    or another tool's): a temporary index, ``hash-object -w``, ``write-tree``, ``commit-tree``."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "gitml-test-index")}

    def plumb(*args: str, input: bytes | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, env=env, input=input, capture_output=True, check=True)
        return proc.stdout.decode().strip()

    tip = plumb("rev-parse", "refs/gitml/runs")
    plumb("read-tree", tip)
    for name, data in files.items():
        path = f"runs/{run_id[:2]}/{run_id}/{name}"
        if data is None:
            plumb("update-index", "--force-remove", path)
        else:
            blob = plumb("hash-object", "-w", "--stdin", input=data)
            plumb("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    commit = plumb("commit-tree", plumb("write-tree"), "-p", tip, "-m", f"hand edit of {run_id}")
    plumb("update-ref", "refs/gitml/runs", commit, tip)
    os.unlink(env["GIT_INDEX_FILE"])


# -- where gitml runs --------------------------------------------------------------------------

COMMANDS = (("runs", "list"), ("commit-run", "-m", "acc=1"), ("init",), ("runs", "show", "abcd"),
            ("index", "rebuild"))


def test_not_a_git_repository(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "params.yaml").write_text("a: 1\n")
    for args, result in zip(COMMANDS, gitml_all(plain, [list(c) for c in COMMANDS]), strict=True):
        assert result.code == 2, (args, result)
        assert "not a git repository" in one_line(result)
    assert sorted(p.name for p in plain.iterdir()) == ["params.yaml"]  # nothing created


def test_bare_repository(tmp_path):
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    before = sorted(str(p.relative_to(bare)) for p in bare.rglob("*"))
    for args, result in zip(COMMANDS, gitml_all(bare, [list(c) for c in COMMANDS]), strict=True):
        assert result.code == 2, (args, result)
        assert "bare" in one_line(result)
    assert sorted(str(p.relative_to(bare)) for p in bare.rglob("*")) == before
    assert git(bare, "for-each-ref") == ""


def test_dash_C_to_nowhere(tmp_path):
    (tmp_path / "file").write_text("x")
    for target in ("/nonexistent", str(tmp_path / "file")):
        result = gitml(tmp_path, "-C", target, "runs", "list")
        assert result.code == 2
        assert target in one_line(result)


def test_unknown_command_and_option(base):
    refused_all(base, [(["frobnicate"], "frobnicate"), (["commit-run", "--bogus"], "--bogus"),
                       (["runs", "list", "--limit", "many"], "many")])


# -- values -------------------------------------------------------------------------------------


def test_metric_that_is_not_a_number(base):
    refused_all(base, [(["commit-run", "-m", f"acc={text}"], "'acc' must be a number")
                       for text in ("abc", "", "true", "1,5")])


def test_api_metric_that_is_not_a_number(repo):
    with api.start_run(name="api", repo=repo):
        for bad in ("x", None, True, [1.0]):
            with pytest.raises(BadInputError) as caught:
                api.log_metric("acc", bad)
            assert isinstance(caught.value, ValueError)  # still a ValueError, as callers expect
            assert "acc" in str(caught.value)
        api.log_metric("ok", 1.0)
    (run,) = api.search_runs(repo=repo)
    assert run.metrics == {"ok": 1.0}  # the refused values left no trace


def test_nan_and_infinities_are_numbers(base):
    result = gitml(base, "commit-run", "-n", "odd", "-m", "a=nan", "-m", "b=inf", "-m", "c=-inf", "-m", "d=1e999")
    assert result.code == 0 and result.err == "", result.err
    run_id = result.out.strip()
    run = api.get_run(run_id, repo=base)
    assert math.isnan(run.metrics["a"])
    assert run.metrics["b"] == math.inf and run.metrics["c"] == -math.inf and run.metrics["d"] == math.inf
    metrics_yaml = git(base, "show", f"refs/gitml/runs:runs/{run_id[:2]}/{run_id}/metrics.yaml")
    assert ".nan" in metrics_yaml and "-.inf" in metrics_yaml
    listed = gitml(base, "runs", "list", "--filter", "name = 'odd'")
    assert listed.code == 0 and listed.err == "" and "nan" in listed.out and "-inf" in listed.out
    shown = gitml(base, "runs", "show", run_id)
    assert shown.code == 0 and shown.err == "" and "nan" in shown.out


def test_runs_show_json_with_a_nan_metric(repo):
    run_id = api.commit_run(metrics={"a": math.nan, "b": math.inf}, repo=repo).id
    result = gitml(repo, "runs", "show", run_id, "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["metrics"] == {"a": "nan", "b": "inf"}
    assert sorted(p["value"] for p in doc["history"]) == ["inf", "nan"]


def test_json_output_with_a_nan_param(repo):
    result = gitml(repo, "commit-run", "-p", "x=nan", "-p", "y=-inf", "-m", "acc=1")
    assert result.code == 0
    run_id = result.out.strip()
    for args in (["runs", "list", "--json"], ["runs", "show", run_id, "--json"]):
        result = gitml(repo, *args)
        assert result.code == 0 and result.err == "", result.err
        doc = json.loads(result.out)
        run = doc[0] if isinstance(doc, list) else doc
        assert run["params"]["x"] in ("nan", ".nan", None), run["params"]
        assert run["params"]["y"] in ("-inf", "-.inf", None), run["params"]


BAD_COMMIT_ARGS = [
    (["-p", "=1"], "=1"),  # empty key
    (["-p", " =1"], "empty"),  # blank key
    (["-p", "k" * 251 + "=1"], "250"),
    (["-p", "a\x01b=1"], "control"),
    (["-p", "a/../b=1"], ".."),
    (["-p", "../b=1"], ".."),
    (["-p", "/abs=1"], "/abs"),
    (["-p", "novalue"], "novalue"),  # no '='
    (["-m", "=1"], "=1"),
    (["-m", "a/./b=1"], "a/./b"),
    (["--tag", "=x"], "=x"),
    (["--tag", "t\x7f=x"], "control"),
    (["-p", "long=" + "v" * 6001], "long"),
    (["-n", ""], "name"),
    (["-n", "two\nlines"], "name"),
]


def test_bad_keys_names_and_values(base):
    refused_all(base, [(["commit-run", *args], needle) for args, needle in BAD_COMMIT_ARGS])
    ok = gitml(base, "commit-run", "-p", "k" * 250 + "=1")  # the longest key allowed
    assert ok.code == 0 and ok.err == ""


def test_empty_experiment_name(base):
    refused(base, "commit-run", "-e", "", "-m", "acc=1")


def test_api_bad_keys(repo):
    with api.start_run(name="keys", repo=repo):
        for key in ("", " ", "k" * 251, "a\x01b", "a\u2028b", "a/../b", "..", "/abs", 7):
            for call in (lambda k: api.log_param(k, 1), lambda k: api.log_metric(k, 1.0),
                         lambda k: api.set_tag(k, "v")):
                with pytest.raises(BadInputError):
                    call(key)
        api.log_param("k" * 250, 1)  # the longest key allowed
    (run,) = api.search_runs(repo=repo)
    assert run.params == {"k" * 250: 1} and run.metrics == {} and run.tags == {}


def test_status_not_known(base):
    line = refused(base, "commit-run", "--status", "BOGUS", "-m", "acc=1")
    assert "BOGUS" in line and "FINISHED" in line


def test_artifact_that_does_not_exist(base):
    (base / "real.pkl").write_bytes(b"x")
    line = refused(base, "commit-run", "-a", "real.pkl", "-a", "missing.pkl", "-m", "acc=1")
    assert "missing.pkl" in line
    cache = base / ".git" / "gitml" / "cache" / "sha256"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))  # real.pkl not stored


def test_artifact_that_is_not_a_file_or_directory(base):
    os.mkfifo(base / "pipe")
    line = refused(base, "commit-run", "-a", "pipe", "-m", "acc=1")
    assert "pipe" in line and "does not exist" not in line


def test_two_artifacts_with_one_name(base):
    for sub in ("a", "b"):
        (base / sub).mkdir()
        (base / sub / "model.pkl").write_text(sub)
    # one logical name for two files: refused, never one silently replacing the other
    assert "model.pkl" in refused(base, "commit-run", "-a", "a/model.pkl", "-a", "b/model.pkl")


# -- files ---------------------------------------------------------------------------------------


def test_params_file_with_invalid_yaml(base):
    (base / "bad.yaml").write_text("a: 1\nb: 2\nc: [unclosed\nd: 4\n")
    line = refused(base, "commit-run", "--params", "bad.yaml")
    assert "bad.yaml" in line and "line " in line
    (base / "list.yaml").write_text("- 1\n- 2\n")
    (base / "adir").mkdir()
    (base / "badkey.yaml").write_text('nested:\n  ok: 2\n  "a/../b": 1\n')
    (base / "ctrl.yaml").write_text('"a\\x01b": 3\n')  # YAML's own escape: a real control char
    refused_all(base, [
        (["commit-run", "--params", "list.yaml"], "list.yaml"),
        (["commit-run", "--params", "nothere.yaml"], "nothere.yaml"),
        (["commit-run", "--params", "adir"], "adir"),
        (["commit-run", "--params", "badkey.yaml"], "a/../b"),
        (["commit-run", "--params", "ctrl.yaml"], "control"),
    ])


def test_metrics_file_with_a_non_number(base):
    (base / "m.json").write_text('{"acc": 0.9, "note": "high"}')
    (base / "b.json").write_text('{"ok": true}')
    (base / "broken.json").write_text('{"acc": 0.9,')
    (base / "m.yaml").write_text("acc: 0.9\nloss: [1, 2]\n")
    refused_all(base, [
        (["commit-run", "--metrics", "m.json"], "'note' must be a number"),
        (["commit-run", "--metrics", "b.json"], "b.json"),
        (["commit-run", "--metrics", "broken.json"], "broken.json"),
        (["commit-run", "--metrics", "m.yaml"], "m.yaml"),
    ])


def test_invalid_gitml_yaml(base):
    (base / "gitml.yaml").write_text("params: [oops\nmetrics: [m.json]\n")
    assert "gitml.yaml" in refused(base, "commit-run")
    assert "gitml.yaml" in refused(base, "commit-run", "-m", "acc=1")  # experiment comes from it
    (base / "gitml.yaml").write_text("params: 3\n")
    assert "gitml.yaml" in refused(base, "commit-run")
    (base / "gitml.yaml").write_text("- a list\n")
    assert "gitml.yaml" in refused(base, "commit-run")


# -- run ids ---------------------------------------------------------------------------------------


def test_unknown_run_prefix(base):
    prefix = unused_prefix(base)
    refused_all(base, [
        (["runs", "show", prefix], prefix),
        (["runs", "delete", prefix], prefix),
        (["runs", "show", prefix + "0" * 28], prefix),  # a full id that is not there
        (["commit-run", "--resume", prefix], prefix),
        *[(["runs", "show", bad], "4 to 32 hex") for bad in ("abc", "zzzz", "a" * 33, "ab cd")],
    ])


def test_empty_resume_id(base):
    refused(base, "commit-run", "--resume", "")


def test_ambiguous_run_prefix(base):
    ids = ["abcd1" + "0" * 27, "abcd2" + "f" * 27]
    stamp = iso_time(1_700_000_000)
    with GitRepo(base) as repo:
        trees = {
            run_id: runsref.write_run_tree(repo, run_files(Run(
                id=run_id, name=f"hand-{run_id[4]}", experiment="exp", status="FINISHED",
                start_time=stamp, end_time=stamp, params={"x": 1}, metrics={"acc": 0.1})))
            for run_id in ids
        }
        runsref.commit_runs(repo, trees, "two runs sharing a prefix")
    line = refused(base, "runs", "show", "abcd")
    assert "ambiguous" in line and "abcd1" in line and "abcd2" in line
    assert "ambiguous" in refused(base, "runs", "delete", "ABCD")
    with pytest.raises(RunNotFoundError, match="ambiguous"):
        api.resolve_run_id("abcd", repo=base)
    assert api.resolve_run_id("abcd2", repo=base) == ids[1]
    shown = gitml(base, "runs", "show", "abcd1", "--json")
    assert shown.code == 0 and json.loads(shown.out)["name"] == "hand-1"


# -- filters -------------------------------------------------------------------------------------


def test_filter_injection_matches_nothing(base):
    tip = runs_tip(base)
    exprs = ["params.model = 'x'' OR 1=1 --'",
             "params.model = 'x\\' OR 1=1 --'",
             "tags.team = 'growth''; DROP TABLE runs; --'"]
    for expr, result in zip(exprs, gitml_all(base, [["runs", "list", "--json", "--filter", e] for e in exprs]),
                            strict=True):
        assert result.code == 0 and result.err == "", result.err
        assert json.loads(result.out) == [], expr
    result = gitml(base, "runs", "list", "--json", "--filter", "params.model = 'rf'")
    assert [r["name"] for r in json.loads(result.out)] == ["base"]  # the table survived
    assert runs_tip(base) == tip


def test_bad_filter_and_order(base):
    refused_all(base, [
        *[(["runs", "list", "--filter", expr], "filter")
          for expr in ("metrics.acc >", "metrics.acc > 0.5 and", "foo.acc > 1", "metrics.acc >> 1",
                       "params.model = 'unterminated", "(metrics.acc > 1")],
        *[(["runs", "list", "--order-by", key], "") for key in
          ("metrics.acc SIDEWAYS", "metrics.acc; DROP TABLE runs", "nonsense")],
    ])
    listed = gitml(base, "runs", "list", "--json")
    assert [r["name"] for r in json.loads(listed.out)] == ["base"]


# -- a corrupted file on the runs ref --------------------------------------------------------------

CORRUPTIONS = {
    "metrics-invalid-yaml": {"metrics.yaml": b"acc: [unclosed\n  b: :\n"},
    "metrics-not-a-number": {"metrics.yaml": b'acc:\n  value: "high"\n'},
    "run-unknown-status": {"run.yaml": None},  # filled in below from the real file
    "run-yaml-missing": {"run.yaml": None},
}


def _corrupt(repo: Path, kind: str) -> tuple[str, set[str]]:
    """Three runs; one of them corrupted on the ref by a hand edit. Returns (its id, the others)."""
    runs = [api.commit_run(name=f"r{i}", metrics={"acc": i / 10}, repo=repo) for i in range(3)]
    victim = runs[1].id
    files = dict(CORRUPTIONS[kind])
    if kind == "run-unknown-status":
        text = git(repo, "show", f"refs/gitml/runs:runs/{victim[:2]}/{victim}/run.yaml")
        files["run.yaml"] = text.replace("FINISHED", "EXPLODED").encode()
    rewrite_run(repo, victim, files)
    return victim, {runs[0].id, runs[2].id}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupted_run_is_reported_and_others_still_list(repo, kind):
    victim, others = _corrupt(repo, kind)
    gitml(repo, "runs", "list")  # brings the index up to date (its stderr: see the test below)
    tip = runs_tip(repo)
    table, as_json, by_prefix, by_id = gitml_all(repo, [
        ["runs", "list"], ["runs", "list", "--json"], ["runs", "show", victim[:6]], ["runs", "show", victim]])
    for result in (table, as_json):
        assert result.code == 0
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and victim in lines[0] and "Traceback" not in result.err, result.err
        assert lines[0].startswith("gitml: warning: ")
    assert {r["id"] for r in json.loads(as_json.out)} == others
    assert all(run_id[:8] in table.out for run_id in others)
    for result in (by_prefix, by_id):
        assert result.code == 1
        assert victim in one_line(result)
    assert runs_tip(repo) == tip  # reading never "repairs" the ref behind the user's back


def test_corrupted_run_is_warned_once_when_the_index_catches_up(repo):
    victim, others = _corrupt(repo, "metrics-invalid-yaml")
    result = gitml(repo, "runs", "show", victim[:6])  # the first read after the bad commit
    assert result.code == 1 and victim in one_line(result)
    second = sorted(others)[0]
    rewrite_run(repo, second, {"tags.yaml": b"team: [growth\n"})
    result = gitml(repo, "runs", "list")
    assert result.code == 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 2, result.err  # one warning per corrupted run
    assert {victim, second} == {line.split("run ")[1].split(":")[0] for line in lines}
    # the way out: delete the corrupted runs (history keeps them), and listing is quiet again
    for run_id in (victim, second):
        deleted = gitml(repo, "runs", "delete", run_id[:6])
        assert deleted.code == 0 and deleted.out == run_id + "\n", deleted.err
    result = gitml(repo, "runs", "list", "--json")
    assert result.code == 0 and result.err == ""
    assert [r["id"] for r in json.loads(result.out)] == [next(iter(others - {second}))]


def test_the_whole_ref_corrupted_is_not_a_traceback(base):
    # the ref points at a blob instead of a commit: a clear error, not an internal one
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=base, input=b"junk",
                          capture_output=True, check=True).stdout.decode().strip()
    git(base, "update-ref", "--no-deref", "refs/gitml/runs", blob)
    for args in (["runs", "list"], ["commit-run", "-m", "acc=1"]):
        result = gitml(base, *args)
        assert result.code in (1, 2), result
        line = one_line(result)
        assert "internal error" not in line, line
    assert runs_tip(base) == blob


def test_errors_are_gitml_errors():
    assert issubclass(BadInputError, GitmlError) and issubclass(RunNotFoundError, BadInputError)
    assert BadInputError("x").exit_code == 2 and GitmlError("x").exit_code == 1
