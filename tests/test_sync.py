"""gitml push / pull / fetch between real clones through a bare remote."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import git, gitml, runs_tip

import gitml as api
from gitml import artifacts, registry, sync
from gitml.core.errors import GitmlError


def _names(repo):
    return sorted(r.name for r in api.search_runs(repo=repo))


def test_push_pull_union_and_no_force(clones):
    origin, a, b = clones
    api.commit_run(name="a1", metrics={"m": 1.0}, repo=a)
    sync.push(repo=a)
    api.commit_run(name="b1", metrics={"m": 2.0}, repo=b)
    result = sync.push(repo=b)  # origin moved: b merges a's runs, then pushes
    assert result.merged == 1
    sync.pull(repo=a)
    assert _names(a) == _names(b) == ["a1", "b1"]
    assert git(a, "rev-parse", "refs/gitml/runs") == git(origin, "rev-parse", "refs/gitml/runs")
    fetched = gitml(a, "fetch")
    assert fetched.code == 0 and runs_tip(a) == git(a, "rev-parse", "refs/gitml/remotes/origin/runs").strip()
    for repo in (origin, a, b):
        git(repo, "fsck", "--strict", "--no-progress")


def test_same_run_changed_on_both_sides_later_update_wins(clones):
    origin, a, b = clones
    run = api.commit_run(name="shared", repo=a)
    sync.push(repo=a)
    sync.pull(repo=b)
    api.delete_run(run.id, repo=a)  # a deletes it; b leaves it alone
    api.commit_run(name="other", repo=b)
    sync.push(repo=a)
    sync.pull(repo=b)
    assert _names(b) == ["other"]  # deleted on one side, untouched on the other: stays deleted
    history = git(b, "log", "--format=%s", "refs/gitml/runs")
    assert f"run {run.id}: shared" in history  # and history keeps it


WORKER = """
import sys
import gitml
from gitml import sync
repo, tag = sys.argv[1], sys.argv[2]
for i in range(6):
    gitml.commit_run(name=f"{tag}{i}", repo=repo)
    sync.push(repo=repo)
"""


def test_two_clones_pushing_in_parallel_lose_nothing(clones):
    origin, a, b = clones
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(repo), tag], stderr=subprocess.PIPE)
             for repo, tag in ((a, "a"), (b, "b"))]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    sync.pull(repo=a)
    sync.pull(repo=b)
    expected = sorted(f"{t}{i}" for t in "ab" for i in range(6))
    assert _names(a) == _names(b) == expected
    for repo in (origin, a, b):
        git(repo, "fsck", "--strict", "--no-progress")


def test_push_uploads_artifacts_first_or_refuses(clones, tmp_path):
    origin, a, b = clones
    (a / "model.pkl").write_bytes(b"weights")
    run = api.commit_run(name="with-model", artifacts=[a / "model.pkl"], repo=a)
    with pytest.raises(GitmlError, match="no artifact remote"):
        sync.push(repo=a)
    assert git(origin, "rev-parse", "-q", "--verify", "refs/gitml/runs", check=False) == ""
    storage = tmp_path / "storage"
    artifacts.add_remote("storage", str(storage), default=True, repo=a)
    git(a, "add", "gitml.yaml")
    git(a, "commit", "-qm", "team artifact remote")
    git(a, "push", "-q")
    registry.register_model("churn", run.id, repo=a)
    registry.assign("churn", "v0.0.1", "prod", repo=a)
    result = sync.push(repo=a)
    assert result.uploaded == 1 and result.tags == ["churn#prod#1", "churn@v0.0.1"]
    # The colleague's clone gets runs, tags and (lazily) the bytes.
    git(b, "pull", "-q")  # brings gitml.yaml with the team remote
    sync.pull(repo=b)
    assert registry.which("churn@prod", repo=b).run == run.id
    got = artifacts.download("models:/churn@prod", tmp_path / "m.pkl", repo=b)
    assert got[0].read_bytes() == b"weights"


def test_sync_bad_input(clones, tmp_path):
    origin, a, b = clones
    result = gitml(a, "push", "nowhere")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    git(lonely, "init", "-q")
    assert gitml(lonely, "pull").code == 2


def test_shallow_ci_clone_gets_runs_and_tags(clones, tmp_path):
    origin, a, b = clones
    (a / "model.pkl").write_bytes(b"w")
    run = api.commit_run(name="ci", artifacts=[a / "model.pkl"], repo=a)
    artifacts.add_remote("storage", str(tmp_path / "storage"), default=True, repo=a)
    registry.register_model("churn", run.id, repo=a)
    sync.push(repo=a)
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin}", str(shallow))
    sync.pull(repo=shallow)
    assert _names(shallow) == ["ci"]
    assert registry.which("churn@latest", repo=shallow).run == run.id


def test_hook_refusal_is_reported_not_retried_and_release_tags_stay_home(clones, monkeypatch):
    import os

    from gitml import hooks

    origin, a, b = clones
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    hooks.install(repo=a)
    refusing = a / ".git" / "hooks" / "pre-push.chained"
    refusing.write_text("#!/bin/sh\necho 'policy: no pushes today' >&2\nexit 1\n")
    refusing.chmod(0o755)
    api.commit_run(name="m", repo=a)
    result = gitml(a, "push")
    assert result.code == 1 and "kept moving" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    git(origin, "tag", "release-1", git(origin, "rev-parse", "main").strip())
    fetched = sync.fetch(repo=b)
    assert "release-1" not in git(b, "tag", "-l") and fetched.tags == []


def test_colliding_registry_tags_are_named_on_push_and_kept_on_pull(clones):
    """Two clones register the same version offline: the second push names the tag it cannot
    push, and pull keeps the local tag while saying it differs (docs/sync.md)."""
    _, a, b = clones
    runs = {}
    for clone in (a, b):
        assert gitml(clone, "remote", "add", "store", str(a.parent / "store"), "--default", "--local").code == 0
        (clone / "model.pkl").write_bytes(clone.name.encode())
        runs[clone] = gitml(clone, "commit-run", "-m", "acc=1", "-a", "model.pkl").out.strip()
        assert gitml(clone, "registry", "register", "churn", "--run", runs[clone]).code == 0
    assert gitml(a, "push").code == 0
    pushed = gitml(b, "push")
    assert pushed.code == 1
    line = pushed.err.strip()
    assert line.startswith("gitml: error: git push origin failed: refs/tags/churn@v0.0.1 rejected (already exists)")
    assert "Registry tags that collide" in line and "\\t" not in line and "\t" not in line
    pulled = gitml(b, "pull")
    assert pulled.code == 0, pulled.err
    assert "gitml: warning: registry tag churn@v0.0.1 differs from origin's copy; yours is kept" in pulled.err
    assert registry.which("churn@v0.0.1", repo=b).run == runs[b]  # never overwritten
