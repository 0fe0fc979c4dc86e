"""gitml's run search answers as MLflow's does: one dataset, several hundred searches, both tools.

The runs of tests/search_corpus.py are logged into gitml through its fluent API and, with the
same start and end times, users, statuses, params, metric points and tags, into real MLflow
(its sqlite store, the default, and its file store) by tests/mlflow_oracle.py, which runs in
MLflow's own virtualenv (``GITML_MLFLOW``, the Python that ``.ci/run`` installs MLflow for).
Every search of the corpus then runs in both tools, and gitml must return the same runs in the
same order, or refuse when MLflow refuses, except for the deliberate differences the corpus
marks (each is listed in docs/tracking.md). Locally the test is skipped without MLflow; in CI
(``CI`` set) it never is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import git, mlflow_python
from search_corpus import DIFFERENCES, RUNS, SEARCHES, Search

import gitml
from gitml.core.workspace import open_workspace
from gitml.errors import BadInputError

pytestmark = pytest.mark.interop
MLFLOW = mlflow_python()
HERE = Path(__file__).parent

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _millis(record_time: str) -> int:
    moment = datetime.fromisoformat(record_time.replace("Z", "+00:00"))
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _log_into_gitml(repo: Path) -> list[dict]:
    """Log RUNS through gitml's fluent API; return them as the oracle's spec (times read back)."""
    specs = []
    for spec in RUNS:
        git(repo, "config", "user.name", spec["user"])
        # As the oracle does: mlflow.user at creation, the other tags after it.
        at_start = {k: v for k, v in spec["tags"].items() if k == "mlflow.user"}
        with gitml.start_run(name=spec["name"], experiment="differential", tags=at_start, repo=repo) as run:
            for key, value in spec["params"].items():
                gitml.log_param(key, value)
            for key, points in spec["metrics"].items():
                for value, step, *stamp in points if isinstance(points, list) else [(points, None)]:
                    gitml.log_metric(key, value, step=step, timestamp=stamp[0] if stamp else None)
            gitml.set_tags(spec["tags"])
            gitml.end_run(spec["status"])
        time.sleep(0.005)  # distinct start times: MLflow breaks ties by its own run ids
        stored = gitml.get_run(run.id, repo=repo)
        metrics: dict[str, list] = {}
        for point in stored.history:
            metrics.setdefault(point.key, []).append((point.value, point.step, _millis(point.timestamp)))
        specs.append({
            "name": spec["name"], "user": spec["user"], "status": spec["status"], "tags": spec["tags"],
            "start_time": _millis(stored.start_time), "end_time": _millis(stored.end_time),
            # What MLflow's log_param stores: str() of the object logged.
            "params": {k: str(v) for k, v in spec["params"].items()}, "metrics": metrics,
        })  # fmt: skip
    return specs


def _fill(text: str, times: dict[str, int]) -> str:
    """Put run start times into a filter: {start:name} as milliseconds, {iso:name} as ISO text."""
    def one(match: re.Match) -> str:
        millis = times[match.group(2)]
        if match.group(1) == "start":
            return str(millis)
        moment = _EPOCH + timedelta(milliseconds=millis)
        return moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(timespec="milliseconds")
    return re.sub(r"\{(start|iso):([^}]+)\}", one, text)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(gitml repository, searches with times filled in, MLflow's answers per store)."""
    repo = tmp_path_factory.mktemp("differential") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "runs@example.com")
    git(repo, "config", "user.name", "setup")
    (repo / "train.py").write_text("print('training')\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    specs = _log_into_gitml(repo)
    times = {s["name"]: s["start_time"] for s in specs}
    searches = [s._replace(filter=_fill(s.filter, times),
                           same_as=None if s.same_as is None else tuple(_fill(f, times) for f in s.same_as))
                for s in SEARCHES]
    # MLflow answers every search, every filter a difference is measured against, and the plain
    # order of each order_by (which orders those runs).
    asked: dict[tuple, None] = {}
    for s in searches:
        asked[(s.filter, s.order_by)] = None
        for f in s.same_as or ():
            asked[(f, s.order_by)] = None
        asked[("", s.order_by)] = None
    asked_list = list(asked)
    work = tmp_path_factory.mktemp("mlflow")
    (work / "spec.json").write_text(json.dumps({
        "runs": specs, "searches": [{"filter": f, "order_by": list(o)} for f, o in asked_list]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GIT_"))}
    proc = subprocess.run([MLFLOW, str(HERE / "mlflow_oracle.py"), str(work / "spec.json"),
                           str(work / "answer.json"), str(work)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = json.loads((work / "answer.json").read_text())
    mlflow = {store: dict(zip(asked_list, results, strict=True)) for store, results in answer.items()}
    return repo, searches, mlflow


def _gitml_answer(ws, search: Search) -> dict:
    try:
        runs = gitml.search_runs(filter=search.filter or None, order_by=list(search.order_by) or None, repo=ws)
    except BadInputError as exc:
        return {"error": exc.message}
    return {"runs": [r.name for r in runs]}


def _expected(search: Search, answers: dict) -> dict | None:
    """What gitml must answer: MLflow's answer, or for a difference the runs of ``same_as``."""
    if search.differs is None:
        return answers[(search.filter, search.order_by)]
    if search.same_as is None:
        return None  # gitml accepts it; its runs are checked by tests/test_filter.py
    wanted: set[str] = set()
    for f in search.same_as:
        got = answers[(f, search.order_by)]
        assert "runs" in got, f"MLflow refused {f!r}, the equivalent of {search.filter!r}: {got['error']}"
        wanted.update(got["runs"])
    order = answers[("", search.order_by)]["runs"]
    return {"runs": [name for name in order if name in wanted]}


def _mismatch(search: Search, want: dict | None, got: dict, file_answer: dict) -> str | None:
    if search.refused:
        return None if "error" in got else f"gitml should refuse it, but returns {got['runs']}"
    if want is None:
        return f"gitml refuses it: {got['error']}" if "error" in got else None
    if "error" in want and "runs" in file_answer and file_answer["runs"] == got.get("runs"):
        return None  # only MLflow's sqlite store refuses it (a key named twice): gitml answers as its file store
    if "error" in want:
        if "error" in got:
            return None
        return f"MLflow refuses it ({want['error']}), gitml returns {got['runs']}"
    if "error" in got:
        return f"gitml refuses it ({got['error']}), MLflow returns {want['runs']}"
    if got["runs"] == want["runs"]:
        return None
    missing = [n for n in want["runs"] if n not in got["runs"]]
    extra = [n for n in got["runs"] if n not in want["runs"]]
    if not missing and not extra:
        return f"same runs, other order:\n      MLflow {want['runs']}\n      gitml  {got['runs']}"
    return f"MLflow finds {len(want['runs'])}, gitml {len(got['runs'])}: gitml lacks {missing}, has extra {extra}"


def test_every_search_answers_as_mlflow_does(both):
    repo, searches, mlflow = both
    problems = []
    with open_workspace(repo) as ws:
        for search in searches:
            key = (search.filter, search.order_by)
            want = _expected(search, mlflow["sqlite"])
            got = _gitml_answer(ws, search)
            problem = _mismatch(search, want, got, mlflow["file"].get(key, {}))
            if problem:
                problems.append(f"filter={search.filter!r} order_by={list(search.order_by)}"
                                f"{' [' + search.differs + ']' if search.differs else ''}\n    {problem}")
    assert not problems, f"{len(problems)} of {len(searches)} searches differ from MLflow:\n" + "\n".join(problems)


def test_where_mlflows_stores_disagree_gitml_answers_as_sqlite(both):
    """MLflow's two stores part ways on ties with NaN and on ±inf (its database keeps ±1.797e308).

    The corpus meets such cases, and gitml answers them as the sqlite store, MLflow's default,
    does (the test above holds gitml to the sqlite store everywhere).
    """
    _repo, _searches, mlflow = both
    split = [key for key in mlflow["sqlite"] if mlflow["sqlite"][key] != mlflow["file"][key]]
    assert any("metrics.loss = 0.5" == f for f, _ in split) and any("1e400" in f for f, _ in split)


def test_every_difference_is_documented():
    text = (HERE.parent / "docs" / "tracking.md").read_text()
    used = {s.differs for s in SEARCHES if s.differs}
    assert used <= set(DIFFERENCES)
    for name in DIFFERENCES:
        assert f"`{name}`" in text, f"docs/tracking.md does not list the difference {name!r}"
