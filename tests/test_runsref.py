"""The runs ref against real git: CAS updates, parallel writers, packing, fsck."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import git, runs_tip

import gitml
from gitml.core import runsref
from gitml.core.gitrepo import GitRepo


def test_commit_run_touches_nothing_but_the_ref(repo):
    (repo / "notes.txt").write_text("untracked\n")
    head, index, status = git(repo, "rev-parse", "HEAD"), git(repo, "ls-files", "-s"), git(repo, "status", "--porcelain")
    run = gitml.commit_run(name="r1", params={"a": 1}, metrics={"m": 0.5}, repo=repo)
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "ls-files", "-s") == index
    assert git(repo, "status", "--porcelain") == status
    git(repo, "fsck", "--strict", "--no-progress")
    log = git(repo, "log", "--format=%an <%ae>|%s", "refs/gitml/runs")
    assert log.strip() == f"Test User <test@example.com>|run {run.id}: r1"
    files = git(repo, "ls-tree", "-r", "--name-only", "refs/gitml/runs").split()
    base = f"runs/{run.id[:2]}/{run.id}/"
    assert {base + n for n in ("run.yaml", "params.yaml", "metrics.yaml", "tags.yaml", "artifacts.yaml")} <= set(files)


def test_cas_refuses_a_stale_expected_tip(repo):
    gitml.commit_run(name="first", repo=repo)
    with GitRepo(repo) as g:
        tip = g.ref(runsref.RUNS_REF)
        assert not g.set_ref_if_equals(runsref.RUNS_REF, None, tip)  # must-not-exist fails
        assert not g.set_ref_if_equals(runsref.RUNS_REF, "0" * 40, tip)
        assert g.ref(runsref.RUNS_REF) == tip


def test_commit_rebuilds_on_a_moved_tip(repo):
    """A writer whose tip moved underneath it keeps both runs (the retry path)."""
    with GitRepo(repo) as g:
        a = runsref.write_run_tree(g, {"run.yaml": b"a\n"})
        b = runsref.write_run_tree(g, {"run.yaml": b"b\n"})
        id_a, id_b = "aa" + "0" * 30, "bb" + "0" * 30
        runsref.commit_runs(g, {id_a: a}, "a")
        runsref.commit_runs(g, {id_b: b}, "b")
        assert dict(runsref.iter_run_trees(g, g.ref(runsref.RUNS_REF))) == {id_a: a, id_b: b}
        changed, removed = runsref.diff_runs(g, None, g.ref(runsref.RUNS_REF))
        assert changed == {id_a: a, id_b: b} and not removed


WRITER = textwrap.dedent(
    """
    import sys
    import gitml
    repo, worker = sys.argv[1], int(sys.argv[2])
    for i in range(50):
        gitml.commit_run(name=f"w{worker}-{i}", params={"worker": worker, "i": i},
                         metrics={"score": worker + i / 100}, repo=repo)
    """
)


def test_parallel_writers_lose_nothing(repo):
    """8 real processes x 50 runs against one repository: all 400 are on the ref."""
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(repo), str(w)], stderr=subprocess.PIPE)
        for w in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    names = {r.name for r in gitml.search_runs(repo=repo)}
    assert names == {f"w{w}-{i}" for w in range(8) for i in range(50)}
    assert int(git(repo, "rev-list", "--count", "refs/gitml/runs")) == 400
    git(repo, "fsck", "--strict", "--no-progress")


def _object_counts(repo) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())}


def test_loose_objects_get_packed(repo):
    """Past gc.auto, commits trigger git's own packing (estimated, as git does, from objects/17)."""
    git(repo, "config", "gc.auto", "1")
    for i in range(300):
        gitml.commit_run(name=f"r{i}", params={"i": i}, repo=repo)
        if _object_counts(repo)["in-pack"]:
            break
    counts = _object_counts(repo)
    assert counts["in-pack"] > 0
    assert counts["count"] < counts["in-pack"]
    assert len(gitml.search_runs(repo=repo)) == i + 1
    git(repo, "fsck", "--strict", "--no-progress")


def test_delete_is_a_commit_and_history_keeps_the_run(repo):
    keep = gitml.commit_run(name="keep", repo=repo)
    gone = gitml.commit_run(name="gone", repo=repo)
    assert gitml.delete_run(gone.id[:8], repo=repo) == gone.id
    assert [r.id for r in gitml.search_runs(repo=repo)] == [keep.id]
    assert f"delete run {gone.id}" in git(repo, "log", "--format=%s", "refs/gitml/runs")
    assert git(repo, "show", f"refs/gitml/runs~1:runs/{gone.id[:2]}/{gone.id}/run.yaml")


def test_repository_without_commits(empty_repo):
    (empty_repo / "train.py").write_text("x = 1\n")
    run = gitml.commit_run(name="first", metrics={"m": 1.0}, repo=empty_repo)
    got = gitml.get_run(run.id, repo=empty_repo)
    assert got.source["commit"] == ""
    assert got.source["note"] == "repository has no commit yet"
    assert got.source["dirty"] is False
    assert runs_tip(empty_repo)
    git(empty_repo, "fsck", "--strict", "--no-progress")


def test_linked_worktrees_share_one_store(repo, tmp_path):
    other = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(other), "-b", "side")
    run = gitml.commit_run(name="from-worktree", repo=other)
    got = gitml.get_run(run.id, repo=repo)
    assert got.source["branch"] == "side"
    assert [r.id for r in gitml.search_runs(repo=repo)] == [run.id]
