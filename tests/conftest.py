"""Hermetic fixtures: real git repositories in tmp dirs, no user config, fixed identity."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

GITML = [sys.executable, "-m", "gitml"]


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory, monkeypatch):
    """Scrub GIT_* and HOME so neither the user's config nor the CI's leaks into a test."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    for key in list(os.environ):
        if key.startswith("GIT_") or key.startswith("GITML_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield home


def git(cwd: Path | str, *args: str, check: bool = True) -> str:
    """Run the real git CLI and return its stdout."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


@dataclass
class Result:
    code: int
    out: str
    err: str


def gitml(cwd: Path | str, *args: str, input: str | None = None) -> Result:
    """Run the real ``gitml`` CLI in a separate process."""
    proc = subprocess.run([*GITML, *args], cwd=cwd, capture_output=True, text=True, input=input)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository with one commit and a work tree."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "train.py").write_text("print('training')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def empty_repo(tmp_path) -> Path:
    """A git repository with no commit yet."""
    path = tmp_path / "fresh"
    path.mkdir()
    git(path, "init", "-q")
    return path


def runs_tip(path: Path) -> str:
    return git(path, "rev-parse", "-q", "--verify", "refs/gitml/runs", check=False).strip()
