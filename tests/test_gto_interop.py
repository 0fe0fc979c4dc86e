"""gitml and GTO read each other's registries the same way (real GTO, in its own virtualenv).

``.ci/run`` installs GTO into a separate virtual environment and points ``GITML_GTO`` at its
``gto`` executable. Locally the tests are skipped without it; in CI (``CI`` set) they never are.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import git, gitml

import gitml as api
from gitml import registry

pytestmark = pytest.mark.interop
GTO = os.environ.get("GITML_GTO")

if not GTO:
    if os.environ.get("CI"):
        raise RuntimeError("GITML_GTO is not set in CI: .ci/run must install GTO for the interop tests")
    pytest.skip("GTO not available (set GITML_GTO to a gto executable)", allow_module_level=True)


def gto(repo, *args: str) -> str:
    proc = subprocess.run([GTO, *args], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _gto_state(repo) -> dict:
    data = json.loads(gto(repo, "show", "--json"))
    # GTO lists every stage known in the repository, with null where the model has none.
    return {name: (info["version"], {s: v for s, v in info["stage"].items() if v is not None})
            for name, info in data.items()}


def _gitml_state(repo) -> dict:
    data = json.loads(gitml(repo, "registry", "show", "--json").out)
    return {m["name"]: (m["latest"], m["stages"]) for m in data if not m["deprecated"]}


def test_gto_reads_a_gitml_registry(repo):
    (repo / "model.pkl").write_bytes(b"v1")
    first = api.commit_run(artifacts=[repo / "model.pkl"], repo=repo)
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-qam", "v2")
    (repo / "model.pkl").write_bytes(b"v2")
    second = api.commit_run(artifacts=[repo / "model.pkl"], repo=repo)
    registry.register_model("churn", first.id, repo=repo)
    registry.register_model("churn", second.id, bump_part="minor", repo=repo)
    registry.register_model("nlp/sentiment", second.id, repo=repo)
    registry.assign("churn", "v0.0.1", "prod", repo=repo)
    registry.assign("churn", "v0.1.0", "prod", repo=repo)
    registry.assign("churn", "v0.1.0", "dev", repo=repo)
    registry.unassign("churn", "v0.1.0", "prod", repo=repo)
    registry.assign("nlp/sentiment", "v0.0.1", "staging", repo=repo)
    assert _gto_state(repo) == _gitml_state(repo)
    assert _gitml_state(repo)["churn"] == ("v0.1.0", {"dev": "v0.1.0", "prod": "v0.0.1"})


def test_gitml_reads_a_gto_registry(repo):
    gto(repo, "register", "churn")
    (repo / "b.txt").write_text("b\n")
    git(repo, "add", "b.txt")
    git(repo, "commit", "-qm", "b")
    gto(repo, "register", "churn", "--bump-minor")
    gto(repo, "register", "fraud")
    gto(repo, "assign", "churn", "--version", "v0.0.1", "--stage", "prod")
    gto(repo, "assign", "churn", "--version", "v0.1.0", "--stage", "prod")
    gto(repo, "deprecate", "churn", "v0.1.0", "prod")  # GTO's unassign
    gto(repo, "assign", "fraud", "--version", "v0.0.1", "--stage", "dev")
    gto(repo, "deprecate", "fraud", "v0.0.1")  # GTO's deregister
    assert _gitml_state(repo) == _gto_state(repo)
    history = registry.history("churn", repo=repo)
    assert [e.kind for e in history].count("assign") == 2 and history[-1].kind == "unassign"


def test_pre_release_versions_read_alike(repo):
    (repo / "model.pkl").write_bytes(b"v1")
    run = api.commit_run(artifacts=[repo / "model.pkl"], repo=repo)
    registry.register_model("churn", run.id, version="v1.0.0-rc.1", repo=repo)
    for n, version in enumerate(("v1.0.0", "v1.1.0-rc.1", "v1.0.1-alpha+build.5")):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"c{n}")
        gto(repo, "register", "fraud", "--version", version)
    registry.assign("churn", "v1.0.0-rc.1", "staging", repo=repo)
    gto(repo, "assign", "fraud", "--version", "v1.0.1-alpha+build.5", "--stage", "dev")
    # Both take latest as the semver maximum, pre-releases included.
    assert _gitml_state(repo) == _gto_state(repo) == {
        "churn": ("v1.0.0-rc.1", {"staging": "v1.0.0-rc.1"}),
        "fraud": ("v1.1.0-rc.1", {"dev": "v1.0.1-alpha+build.5"})}
