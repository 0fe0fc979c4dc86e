"""The pre-push hook through real `git push` runs to a bare repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, gitml

import gitml as api
from gitml import artifacts, hooks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pushing(repo, tmp_path, monkeypatch):
    """A repo with a bare origin and the hook installed; `gitml` on PATH for the hook."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    hooks.install(repo=repo)
    return repo, origin


def push(repo, *refs, env=None):
    proc = subprocess.run(["git", "push", "origin", *refs], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    return proc.returncode, proc.stderr


def _model_run(repo, name="m", acc=0.9):
    (repo / "model.pkl").write_bytes(f"weights {name}".encode())
    return api.commit_run(name=name, metrics={"acc": acc}, artifacts=[repo / "model.pkl"], repo=repo)


def test_shim_in_tree_is_the_installed_one():
    assert (ROOT / "hooks" / "pre-push").read_text() == hooks.SHIM


def test_ordinary_push_passes_silently(pushing):
    repo, origin = pushing
    code, err = push(repo, "main")
    assert code == 0 and "gitml" not in err


def test_runs_without_artifact_remote_are_blocked_then_uploaded_first(pushing, tmp_path):
    repo, origin = pushing
    _model_run(repo)
    code, err = push(repo, "refs/gitml/runs")
    assert code != 0 and "gitml remote add NAME URL --default" in err
    assert git(origin, "rev-parse", "-q", "--verify", "refs/gitml/runs", check=False) == ""
    artifacts.add_remote("store", str(tmp_path / "store"), repo=repo)
    code, err = push(repo, "refs/gitml/runs")
    assert code == 0, err
    assert "uploaded 1 artifact object(s) first" in err
    assert len(list((tmp_path / "store" / "sha256").rglob("*"))) == 2  # a shard folder and the object


def test_unreachable_store_blocks_or_warns(pushing, aws_env):
    repo, origin = pushing
    _model_run(repo)
    artifacts.add_remote("dead", "s3://nowhere/x", {"endpoint_url": "http://127.0.0.1:9"}, repo=repo)
    code, err = push(repo, "refs/gitml/runs")
    assert code != 0 and "'dead'" in err
    (repo / "gitml.yaml").write_text((repo / "gitml.yaml").read_text() + "hooks:\n  pre-push:\n    on_unreachable: warn\n")
    code, err = push(repo, "refs/gitml/runs")
    assert code == 0 and "warning" in err


def test_missing_bytes_and_malformed_run_are_blocked(pushing, tmp_path):
    repo, origin = pushing
    artifacts.add_remote("store", str(tmp_path / "store"), repo=repo)
    run = _model_run(repo)
    shutil.rmtree(repo / ".git" / "gitml" / "cache")
    code, err = push(repo, "refs/gitml/runs")
    assert code != 0 and f"model.pkl of run {run.id[:8]} is neither on 'store' nor in the local cache" in err
    api.delete_run(run.id, repo=repo)
    # A corrupted record: metrics.yaml replaced by garbage with git plumbing.
    good = api.commit_run(name="ok", repo=repo)
    tree = git(repo, "rev-parse", f"refs/gitml/runs:runs/{good.id[:2]}/{good.id}").strip()
    listing = git(repo, "ls-tree", tree)
    proc = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input="m: [\n", capture_output=True,
                          text=True)
    bad_blob = proc.stdout.strip()
    new_listing = "".join(line if "metrics.yaml" not in line else line.split(" blob ")[0] + f" blob {bad_blob}\tmetrics.yaml\n"
                          for line in listing.splitlines(keepends=True))
    new_tree = subprocess.run(["git", "mktree"], cwd=repo, input=new_listing, capture_output=True,
                              text=True).stdout.strip()
    from gitml.core import runsref
    from gitml.core.gitrepo import GitRepo

    with GitRepo(repo) as g:
        runsref.commit_runs(g, {good.id: new_tree}, "corrupt")
    code, err = push(repo, "refs/gitml/runs")
    assert code != 0 and f"run {good.id}" in err and "metrics.yaml" in err


def test_stage_tag_without_version_is_blocked(pushing):
    repo, origin = pushing
    git(repo, "tag", "-a", "churn#prod#1", "-m", "promote")
    code, err = push(repo, "refs/tags/churn#prod#1")
    assert code != 0 and "not registered" in err


def test_gate_blocks_then_allows(pushing, tmp_path):
    repo, origin = pushing
    artifacts.add_remote("store", str(tmp_path / "store"), repo=repo)
    (repo / "gitml.yaml").write_text((repo / "gitml.yaml").read_text() + (
        "hooks:\n  pre-push:\n    gates:\n      - branches: [main]\n        require_run: true\n"
        "        metrics:\n          acc: {min: 0.8}\n"))
    git(repo, "add", "gitml.yaml")
    git(repo, "commit", "-qm", "gates")
    code, err = push(repo, "main")
    assert code != 0 and "no finished run" in err
    _model_run(repo, "weak", acc=0.5)
    code, err = push(repo, "main")
    assert code != 0 and "acc = 0.5 is below the minimum 0.8" in err
    code, err = push(repo, "main", env={"GITML_SKIP_HOOKS": "1"})
    assert code == 0 and "skipped" in err
    (repo / "train.py").write_text("print('better')\n")  # the fix: new code, a better run
    git(repo, "commit", "-qam", "better model")
    _model_run(repo, "strong", acc=0.95)
    code, err = push(repo, "main")
    assert code == 0, err
    assert gitml(repo, "check").code == 0


def test_chained_hook_runs_and_uninstall_restores(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    hook = repo / ".git" / "hooks" / "pre-push"
    marker = tmp_path / "ran"
    hook.write_text(f"#!/bin/sh\ncat > {marker}\n")
    hook.chmod(0o755)
    assert "kept your pre-push hook" in " ".join(hooks.install(repo=repo))
    code, err = push(repo, "main")
    assert code == 0 and "refs/heads/main" in marker.read_text()
    hooks.uninstall(repo=repo)
    assert hook.read_text().startswith("#!/bin/sh\ncat >")


def test_missing_gitml_fails_loudly(pushing, monkeypatch):
    repo, origin = pushing
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    code, err = push(repo, "main", env={"PATH": "/usr/bin:/bin"})
    assert code != 0 and "not on PATH" in err
    code, _ = subprocess.run(["git", "push", "--no-verify", "origin", "main"], cwd=repo,
                             capture_output=True).returncode, None
    assert code == 0
