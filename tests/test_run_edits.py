"""Runs after they finish (issue 14): tag, rename, describe, add a metric point; the run's history.

Each edit is one commit on the runs ref that rewrites that run's folder only; real processes
edit in parallel and nothing is lost; ``git fsck --strict`` reads what was written; bad input
changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import RUNS_REF, git, gitml

import gitml as api
from gitml.core import runsref
from gitml.core.gitrepo import GitRepo
from gitml.errors import BadInputError, RunNotFoundError
from gitml.tracking import edit


def _runs(repo, n: int) -> list[str]:
    ids = []
    for i in range(n):
        with api.start_run(name=f"r{i}", repo=repo) as run:
            api.log_param("i", i)
            api.log_metric("loss", 1.0 / (i + 1), step=1)
        ids.append(run.id)
    return ids


def _trees(repo) -> dict[str, str]:
    git_repo = GitRepo(repo)
    try:
        return dict(runsref.iter_run_trees(git_repo, git_repo.ref(runsref.RUNS_REF)))
    finally:
        git_repo.close()


def test_each_edit_is_one_commit_that_changes_that_run_only(repo, monkeypatch):
    first, second = _runs(repo, 2)
    monkeypatch.chdir(repo)  # the fluent calls with run_id= and no active run edit this repository
    before = _trees(repo)
    commits = int(git(repo, "rev-list", "--count", runsref.RUNS_REF))
    api.set_tag("team", "search", run_id=first[:8])  # MLflow's set_tag(run_id=...) on a finished run
    api.log_metric("loss", 0.05, step=2, timestamp=1_790_000_000_000, run_id=first)
    api.log_metric("auc", 0.9, run_id=first)
    edit.rename_run(first, "deeper", repo=repo)
    edit.set_description(first, "depth 8; the loss kept falling", repo=repo)
    edit.delete_tag(first, "team", repo=repo)
    after = _trees(repo)
    assert int(git(repo, "rev-list", "--count", runsref.RUNS_REF)) == commits + 6
    assert after[second] == before[second] and after[first] != before[first]
    run = api.get_run(first, repo=repo)
    assert (run.name, run.description, run.tags, run.params) == ("deeper", "depth 8; the loss kept falling", {},
                                                                 {"i": 0})
    assert run.metrics == {"loss": 0.05, "auc": 0.9} and run.metric_info["loss"]["step"] == 2
    assert [(m.key, m.step, m.value) for m in run.history] == [("auc", 0, 0.9), ("loss", 1, 1.0), ("loss", 2, 0.05)]
    assert run.updated > run.end_time
    api.log_metric("loss", 7.0, step=0, run_id=first)  # an earlier step joins the history, not the latest value
    assert api.get_run(first, repo=repo).metrics["loss"] == 0.05
    found = api.search_runs("attributes.run_name = 'deeper' and metrics.auc > 0.5", repo=repo)
    assert [r.id for r in found] == [first]  # the query index follows the edits
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stderr == ""
    history = edit.run_history(first[:6], repo=repo)
    assert [h["message"].split(": ", 1)[1] for h in history[1:]] == [
        "set tag team", "log metric loss", "log metric auc", "rename to deeper", "describe", "delete tag team",
        "log metric loss"]
    assert history[0]["changes"] == [] and history[4]["changes"] == [
        {"field": "name", "key": None, "old": "r0", "new": "deeper"}]
    assert history[6]["changes"] == [{"field": "tags", "key": "team", "old": "search", "new": None}]


def test_run_id_of_the_active_run_logs_into_it(repo):
    with api.start_run(name="live", repo=repo) as run:
        api.set_tag("phase", "warmup", run_id=run.id.upper())  # any case, as the id prints
        api.log_metric("lr", 0.1, run_id=run.id[:8])
        with pytest.raises(BadInputError, match="run_id must be a run id"):
            api.set_tag("a", "b", run_id=123)
        with pytest.raises(BadInputError, match="invalid run name"):  # it would rename the run
            api.set_tag("mlflow.runName", "a\nb")
    record = api.get_run(run.id, repo=repo)
    assert record.tags == {"phase": "warmup"} and record.metrics == {"lr": 0.1}
    assert int(git(repo, "rev-list", "--count", runsref.RUNS_REF)) == 1  # no edit commits


EDITOR = textwrap.dedent("""
    import sys
    from gitml.tracking import edit
    repo, run, key = sys.argv[1:]
    for i in range(5):
        edit.set_tag(run, f"{key}-{i}", str(i), repo=repo)
""")


def test_parallel_edits_by_real_processes_lose_nothing(repo):
    ids = _runs(repo, 3)
    # two writers on each run, three runs: six processes at once, 30 edits in all
    jobs = [(run, f"w{n}") for run in ids for n in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", EDITOR, str(repo), run, key], stderr=subprocess.PIPE, text=True)
             for run, key in jobs]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    for run in ids:
        tags = api.get_run(run, repo=repo).tags
        assert sorted(tags) == sorted(f"w{n}-{i}" for n in range(2) for i in range(5)), run
    assert int(git(repo, "rev-list", "--count", runsref.RUNS_REF)) == 3 + 30
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stderr == ""


def test_cli_edits_and_history(repo):
    (run,) = _runs(repo, 1)
    assert gitml(repo, "runs", "tag", run[:8], "team=ml", "stage=try").out.strip() == run
    assert gitml(repo, "runs", "tag", run, "-d", "stage").code == 0
    assert gitml(repo, "runs", "rename", run, "baseline").code == 0
    assert gitml(repo, "runs", "describe", run, "first <b>try</b>").code == 0
    shown = gitml(repo, "runs", "history", run)
    assert shown.code == 0 and "    tags.team: (none) -> 'ml'" in shown.out and "    name: 'r0' -> 'baseline'" in shown.out
    as_json = json.loads(gitml(repo, "runs", "history", run, "--json").out)
    assert [entry["message"].split(": ", 1)[1] for entry in as_json] == [
        "r0", "set tag team", "set tag stage", "delete tag stage", "rename to baseline", "describe"]
    listed = gitml(repo, "runs", "list", "-f", "tags.team = 'ml'", "--json")
    assert [r["name"] for r in json.loads(listed.out)] == ["baseline"]
    assert gitml(repo, "runs", "describe", run, "").code == 0
    assert api.get_run(run, repo=repo).description is None


@pytest.mark.parametrize("argv, words", [
    (("runs", "tag", "RUN", "novalue"), "KEY=VALUE"),
    (("runs", "tag", "RUN"), "nothing to do"),
    (("runs", "tag", "RUN", "-d", "missing"), "has no tag 'missing'"),
    (("runs", "tag", "RUN", "x=1", "-d", "missing"), "has no tag 'missing'"),
    (("runs", "tag", "abcdef01", "a=b"), "abcdef01"),
    (("runs", "tag", "RUN", "=x"), "tag key"),
    (("runs", "tag", "RUN", "good=1", "=x"), "tag key"),  # checked before the first one is written
    (("runs", "rename", "RUN", ""), "run name"),
    (("runs", "rename", "RUN", "a\nb"), "invalid run name"),
    (("runs", "history", "nothing"), "not a run id"),
    (("runs", "tag", "RUN", "a=1", "-d", "a"), "both set and removed"),
    (("runs", "show", "RUN", "--metric", "loss", "--json", "--csv"), "choose one"),
])
def test_bad_edits_change_nothing(repo, argv, words):
    (run,) = _runs(repo, 1)
    tip = git(repo, "rev-parse", runsref.RUNS_REF)
    got = gitml(repo, *(run if arg == "RUN" else arg for arg in argv))
    assert (got.code, got.out) == (2, "") and got.err.count("\n") == 1 and words in got.err, got.err
    assert git(repo, "rev-parse", runsref.RUNS_REF) == tip


def test_bad_api_edits(repo, monkeypatch):
    (run,) = _runs(repo, 1)
    monkeypatch.chdir(repo)
    tip = git(repo, "rev-parse", runsref.RUNS_REF)
    with pytest.raises(RunNotFoundError):
        api.set_tag("a", "b", run_id="ab" * 16)
    with pytest.raises(BadInputError, match="step must be an integer"):
        api.log_metric("loss", 1.0, step=1.5, run_id=run)
    with pytest.raises(BadInputError, match="not a number|must be a number|number"):
        edit.log_metric(run, "loss", "high", repo=repo)
    with pytest.raises(BadInputError, match="a description is text"):
        edit.set_description(run, 3, repo=repo)
    assert git(repo, "rev-parse", runsref.RUNS_REF) == tip


def test_an_edit_that_changes_nothing_writes_no_commit(repo):
    run = api.commit_run(name="same", params={"lr": 0.1}, tags={"team": "a"}, repo=repo).id
    tip = git(repo, "rev-parse", RUNS_REF).strip()
    edit.set_tag(run, "team", "a", repo=repo)          # the value it has
    edit.set_description(run, "", repo=repo)           # no description to remove
    edit.set_description(run, None, repo=repo)
    edit.rename_run(run, "same", repo=repo)
    assert gitml(repo, "runs", "describe", run, "").code == 0
    assert git(repo, "rev-parse", RUNS_REF).strip() == tip
    edit.log_metric(run, "loss", 1.0, step=3, repo=repo)
    edit.log_metric(run, "loss", 2.0, step=1, repo=repo)  # an older step: not the latest, still a point
    assert [(p.step, p.value) for p in api.get_metric_history(run, "loss", repo=repo)] == [(3, 1.0), (1, 2.0)]
    assert len(git(repo, "log", "--format=%s", f"{tip}..{RUNS_REF}").splitlines()) == 2


def test_duplicate_tag_deletions_remove_the_tag_once(repo):
    run = api.commit_run(tags={"a": "1", "b": "2"}, repo=repo).id
    done = gitml(repo, "runs", "tag", run, "x=1", "-d", "a", "-d", "a")
    assert done.code == 0, done.err
    assert api.get_run(run, repo=repo).tags == {"b": "2", "x": "1"}
