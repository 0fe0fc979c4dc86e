"""The Python tracking API against real repositories."""

from __future__ import annotations

import hashlib
import math

import pytest
from conftest import git, runs_tip

import gitml
from gitml.core import active, formats
from gitml.core.errors import BadInputError, DirtyWorktreeError, GitmlError
from gitml.tracking.provenance import strip_credentials


def test_start_run_commits_finished_run(repo):
    losses = [1.0, 0.5, 0.25]
    with gitml.start_run(name="rf", experiment="churn", repo=repo) as run:
        assert gitml.active_run() is run
        gitml.log_params({"n_estimators": 200, "max_depth": 8, "model": "rf"})
        for step, loss in enumerate(losses):
            gitml.log_metric("loss", loss, step=step)
        gitml.log_metric("accuracy", 0.91)
        gitml.set_tag("team", "growth")
    assert gitml.active_run() is None
    got = gitml.get_run(run.id[:6], repo=repo)
    assert (got.name, got.experiment, got.status) == ("rf", "churn", "FINISHED")
    assert got.params == {"n_estimators": 200, "max_depth": 8, "model": "rf"}
    assert got.metrics == {"loss": 0.25, "accuracy": 0.91}
    assert got.metric_info["loss"]["step"] == 2
    assert [p.value for p in got.history if p.key == "loss"] == losses
    assert got.tags == {"team": "growth"}
    assert got.source["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert got.source["branch"] == "main" and got.source["dirty"] is False
    assert got.end_time >= got.start_time
    assert not list((repo / ".git" / "gitml" / "active").iterdir())


def test_exception_commits_failed_and_reraises(repo):
    with pytest.raises(ZeroDivisionError):
        with gitml.start_run(name="boom", repo=repo):
            gitml.log_metric("x", 1)
            1 / 0  # noqa: B018
    (run,) = gitml.search_runs(repo=repo)
    assert run.status == "FAILED" and run.metrics == {"x": 1.0}


def test_end_run_with_status_and_nesting(repo):
    outer = gitml.start_run(name="outer", repo=repo)
    inner = gitml.start_run(name="inner", repo=repo)
    assert gitml.active_run() is inner
    gitml.end_run(status="KILLED")
    assert gitml.active_run() is outer
    gitml.end_run()
    gitml.end_run()  # no active run: a no-op, as in MLflow
    by_name = {r.name: r.status for r in gitml.search_runs(repo=repo)}
    assert by_name == {"outer": "FINISHED", "inner": "KILLED"}


def test_logging_without_run_and_bad_values(repo):
    with pytest.raises(GitmlError, match="no active run"):
        gitml.log_metric("x", 1.0)
    with gitml.start_run(repo=repo):
        for bad in ("x", None, True, [1]):
            with pytest.raises(BadInputError):
                gitml.log_metric("m", bad)
        for key in ("", " ", "a" * 251, "a\x01b", "../x", "a/../b", "/abs"):
            with pytest.raises(BadInputError):
                gitml.log_param(key, 1)
        with pytest.raises(BadInputError):
            gitml.log_metric("m", 1.0, step="3")
        gitml.log_metrics({"nan": float("nan"), "inf": float("inf"), "ninf": -math.inf})
    (run,) = gitml.search_runs(repo=repo)
    assert math.isnan(run.metrics["nan"]) and run.metrics["inf"] == math.inf
    assert run.metrics["ninf"] == -math.inf


def test_default_steps_count_up_per_key(repo):
    with gitml.start_run(repo=repo) as run:
        for value in (3.0, 2.0, 1.0):
            gitml.log_metric("loss", value)
        gitml.log_metric("acc", 0.5)
    got = gitml.get_run(run.id, repo=repo)
    assert [(p.step, p.value) for p in got.history if p.key == "loss"] == [(0, 3.0), (1, 2.0), (2, 1.0)]
    assert got.metric_info["acc"]["step"] == 0


def test_log_artifact_file_and_dir(repo, tmp_path):
    model = tmp_path / "model.pkl"
    model.write_bytes(b"weights" * 1000)
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(b"png")
    (folder / "sub" / "b.txt").write_text("b")
    with gitml.start_run(repo=repo) as run:
        entry = gitml.log_artifact(str(model))
        gitml.log_artifact(str(folder), artifact_path="figures")
        with pytest.raises(BadInputError):
            gitml.log_artifact(str(tmp_path / "missing.bin"))
        with pytest.raises(BadInputError):
            gitml.log_artifact(str(model), artifact_path="../escape")
    got = gitml.get_run(run.id, repo=repo)
    assert entry == got.artifacts["model.pkl"]
    assert entry["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert got.artifacts["figures/plots"]["kind"] == "dir" and got.artifacts["figures/plots"]["files"] == 2
    cache = repo / ".git" / "gitml" / "cache" / "sha256"
    digest = entry["sha256"]
    assert (cache / digest[:2] / digest[2:]).read_bytes() == model.read_bytes()


def test_search_filter_order_experiment(repo):
    for i, model in enumerate(["rf", "rf", "lr", "xgb"]):
        gitml.commit_run(name=f"r{i}", experiment="a" if i < 3 else "b",
                         params={"model": model, "depth": i * 4},
                         metrics={"acc": 0.6 + i / 10}, tags={"team": "growth" if i % 2 else "core"},
                         repo=repo)
    found = gitml.search_runs("metrics.acc > 0.65 and params.model = 'rf'", repo=repo)
    assert [r.name for r in found] == ["r1"]
    ordered = gitml.search_runs(order_by="metrics.acc DESC", repo=repo)
    assert [r.name for r in ordered] == ["r3", "r2", "r1", "r0"]
    assert [r.name for r in gitml.search_runs(experiment="b", repo=repo)] == ["r3"]
    assert len(gitml.search_runs(limit=2, repo=repo)) == 2
    assert {r.name for r in gitml.search_runs("params.depth >= 8", repo=repo)} == {"r2", "r3"}
    assert {r.name for r in gitml.search_runs("tags.team = 'growth'", repo=repo)} == {"r1", "r3"}
    injected = gitml.search_runs("params.model = 'x'' OR 1=1 --'", repo=repo)
    assert injected == []
    with pytest.raises(BadInputError):
        gitml.search_runs("metrics.acc >", repo=repo)


def test_index_follows_the_ref_incrementally_and_rebuilds(repo):
    first = gitml.commit_run(name="one", metrics={"m": 1.0}, repo=repo)
    assert [r.name for r in gitml.search_runs(repo=repo)] == ["one"]
    gitml.commit_run(name="two", metrics={"m": 2.0}, repo=repo)
    gitml.delete_run(first.id, repo=repo)
    assert [r.name for r in gitml.search_runs(repo=repo)] == ["two"]
    index_file = repo / ".git" / "gitml" / "index.sqlite"
    index_file.write_bytes(b"this is not sqlite")
    assert [r.name for r in gitml.search_runs(repo=repo)] == ["two"]
    assert gitml.rebuild_index(repo=repo) == 1
    # The index is never trusted over the ref: move the ref back by hand and it follows.
    git(repo, "update-ref", "refs/gitml/runs", "refs/gitml/runs~1")
    assert {r.name for r in gitml.search_runs(repo=repo)} == {"one", "two"}


def test_long_history_is_sampled_with_full_copy_in_store(repo, monkeypatch):
    monkeypatch.setattr("gitml.tracking.commit.HISTORY_BOUND", 4096)
    with gitml.start_run(repo=repo) as run:
        for step in range(2000):
            gitml.log_metric("loss", 1 / (step + 1), step=step)
    got = gitml.get_run(run.id, repo=repo)
    assert got.full_history is not None
    steps = [p.step for p in got.history]
    assert steps[0] == 0 and steps[-1] == 1999 and len(steps) < 2000
    raw = git(repo, "show", f"refs/gitml/runs:runs/{run.id[:2]}/{run.id}/history.tsv")
    assert len(raw.encode()) <= 4096
    full = repo / ".git" / "gitml" / "cache" / "sha256" / got.full_history[:2] / got.full_history[2:]
    assert len(full.read_text().splitlines()) == 2001
    assert got.metrics["loss"] == 1 / 2000


def test_a_sampled_history_keeps_short_series_whole(repo, monkeypatch):
    """Sampling shares the bound out shortest series first: a few validation points beside a long loss stay."""
    monkeypatch.setattr("gitml.tracking.commit.HISTORY_BOUND", 8192)
    with gitml.start_run(repo=repo) as run:
        for step in range(4000):
            gitml.log_metric("loss", 1 / (step + 1), step=step)
            if step % 1000 == 999:
                gitml.log_metric("val_loss", float("nan") if step < 2000 else 0.5, step=step)
        gitml.log_metric("late", 1.0, step=4000)
    got = gitml.get_run(run.id, repo=repo)
    assert got.full_history is not None
    kept = {}
    for point in got.history:
        kept.setdefault(point.key, []).append(point.step)
    assert kept["val_loss"] == [999, 1999, 2999, 3999] and kept["late"] == [4000]
    assert 2 < len(kept["loss"]) < 4000 and kept["loss"][0] == 0 and kept["loss"][-1] == 3999
    raw = git(repo, "show", f"refs/gitml/runs:runs/{run.id[:2]}/{run.id}/history.tsv")
    assert len(raw.encode()) <= 8192


def test_dirty_tree_records_patch_and_require_clean_refuses(repo):
    (repo / "train.py").write_text("print('changed')\n")
    (repo / "new_data.csv").write_text("a,b\n")
    tip = runs_tip(repo)
    with pytest.raises(DirtyWorktreeError):
        gitml.start_run(require_clean=True, repo=repo)
    with pytest.raises(DirtyWorktreeError):
        gitml.commit_run(require_clean=True, repo=repo)
    assert runs_tip(repo) == tip and gitml.active_run() is None
    run = gitml.commit_run(name="dirty", repo=repo)
    got = gitml.get_run(run.id, repo=repo)
    assert got.source["dirty"] is True
    assert "+print('changed')" in got.patch and "new_data.csv" in got.patch
    # The patch applies to the recorded commit.
    git(repo, "stash", "-q")
    patch_file = repo.parent / "p.diff"
    patch_file.write_text(got.patch)
    git(repo, "apply", "--check", str(patch_file))


def test_untracked_files_alone_are_not_dirty(repo):
    (repo / "model.pkl").write_bytes(b"x")
    run = gitml.commit_run(repo=repo)
    assert gitml.get_run(run.id, repo=repo).source["dirty"] is False


def test_remote_url_has_no_credentials(repo):
    git(repo, "remote", "add", "origin", "https://alice:s3cret@example.com/team/repo.git")
    run = gitml.commit_run(repo=repo)
    assert gitml.get_run(run.id, repo=repo).source["remote"] == "https://example.com/team/repo.git"


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://tok@github.com/a/b.git", "https://github.com/a/b.git"),
        ("ssh://git:pw@host/x.git", "ssh://git@host/x.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("/srv/repos/b.git", "/srv/repos/b.git"),
    ],
)
def test_strip_credentials(url, clean):
    assert strip_credentials(url) == clean


def test_active_runs_listing_and_resume(repo):
    handle = gitml.start_run(name="left-behind", repo=repo)
    gitml.log_metric("loss", 0.3)
    handle._log.close()  # as if the process died: the handle is gone, the directory stays
    from gitml import api as fluent

    fluent._stack.clear()
    (listed,) = gitml.list_active_runs(repo=repo)
    assert listed["id"] == handle.id and listed["alive"] is True  # this process still lives
    run = gitml.commit_run(resume=handle.id[:6], status="KILLED", repo=repo)
    assert run.status == "KILLED" and run.metrics == {"loss": 0.3}
    assert gitml.list_active_runs(repo=repo) == []


def test_crash_mid_line_loses_only_that_line(repo):
    handle = gitml.start_run(repo=repo)
    gitml.log_metric("a", 1.0)
    handle._log.close()
    with open(handle._log.path, "a") as log:
        log.write('["m", "b", 2.0, 0, 17')  # a write cut short by a kill
    folded = active.read_log(handle._log.path)
    assert [m.key for m in folded.metrics] == ["a"]
    from gitml import api as fluent

    fluent._stack.clear()


def test_run_files_round_trip():
    run = formats.Run(id="ab" * 16, name="n", experiment="e", status="FINISHED",
                      start_time="2026-01-01T00:00:00.000Z", params={"a": 1, "b": "x", "c": None},
                      metrics={"m": 0.5}, metric_info={"m": {"step": 3, "timestamp": "t"}},
                      tags={"k": "v"})
    files = formats.run_files(run)
    assert formats.run_files(formats.parse_run(run.id, files)) == files


def test_run_whose_commit_was_rewritten_away_still_shows(repo):
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-qam", "v2")
    run = gitml.commit_run(name="on-feature", repo=repo)
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-D", "feature")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    (listed,) = gitml.search_runs(repo=repo)
    assert listed.id == run.id and listed.source["commit_missing"] is True
    assert gitml.get_run(run.id, repo=repo).source["commit_missing"] is True


def test_clean_tree_cache_never_hides_an_edit(repo, monkeypatch):
    """A sweep process re-checks a clean tree by lstat; any edit or commit is still seen."""
    import os
    import time

    from gitml.tracking import provenance

    # The files were just written (ctime cannot be backdated): lift the racy window for the
    # test and give every later edit an explicit, different mtime instead.
    monkeypatch.setattr(provenance._CleanTreeCache, "RACY_SECONDS", 0.0)
    old = time.time() - 60
    os.utime(repo / "train.py", (old, old))
    first = gitml.commit_run(name="a", repo=repo)
    assert str(repo) in provenance._clean_trees._entries
    second = gitml.commit_run(name="b", repo=repo)  # answered from the snapshot
    assert gitml.get_run(second.id, repo=repo).source == gitml.get_run(first.id, repo=repo).source
    (repo / "train.py").write_text("print('trainin!')\n")  # same size, new content
    os.utime(repo / "train.py", (old + 1, old + 1))
    edited = gitml.get_run(gitml.commit_run(name="c", repo=repo).id, repo=repo)
    assert edited.source["dirty"] is True and "trainin!" in edited.patch
    git(repo, "commit", "-qam", "v2")
    committed = gitml.get_run(gitml.commit_run(name="d", repo=repo).id, repo=repo)
    assert committed.source["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert committed.source["dirty"] is False
