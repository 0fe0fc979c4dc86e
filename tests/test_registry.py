"""The model registry against real tags: grammar, fold, concurrency, hand-made tags, URIs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import git, gitml

import gitml as api
from gitml import artifacts, registry
from gitml.core.errors import BadInputError
from gitml.core.tags import TagName, bump, format_tag, parse_tag


@pytest.mark.parametrize("name", ["churn@v1.2.0", "churn@v0.0.1!", "churn#prod#5", "churn#prod!#6",
                                  "churn@deprecated", "nlp/sentiment@v0.0.1", "a-b#dev-2#12",
                                  "churn@v1.0.0-rc.1", "churn@v2.0.0-alpha+build.5!"])
def test_tag_grammar_round_trips(name):
    parsed = parse_tag(name)
    assert parsed is not None and format_tag(parsed) == name


@pytest.mark.parametrize("name", ["v1.2.0", "release-2026", "churn@1.2", "Churn@v1.0.0", "churn#prod",
                                  "churn@v01.0.0", "-x@v1.0.0", "a..b@v1.0.0", "churn#v1.0.0#3"])
def test_non_registry_tags_are_ignored(name):
    assert parse_tag(name) is None


def test_bad_names_are_refused():
    for event in (TagName("register", "has space", "v1.0.0"), TagName("assign", "m", "v1.0.0", "v1.0", 1),
                  TagName("register", "m", "1.0"), TagName("assign", "m", "v1.0.0", "-prod", 1)):
        with pytest.raises(BadInputError):
            format_tag(event)
    assert bump(None) == "v0.0.1" and bump("v1.2.3", "minor") == "v1.3.0" and bump("v1.2.3", "major") == "v2.0.0"
    assert bump("v1.0.0-rc.1") == "v1.0.0"  # more cases in test_versions.py


@pytest.fixture
def model_repo(repo, tmp_path):
    (repo / "model.pkl").write_bytes(b"model v1")
    first = api.commit_run(name="first", artifacts=[repo / "model.pkl"], repo=repo)
    (repo / "model.pkl").write_bytes(b"model v2")
    second = api.commit_run(name="second", artifacts=[repo / "model.pkl"], repo=repo)
    return repo, first.id, second.id


def test_register_assign_show_history_which(model_repo, tmp_path):
    repo, first, second = model_repo
    assert registry.register_model("churn", first, repo=repo).version == "v0.0.1"
    assert registry.register_model("churn", second, bump_part="minor", repo=repo).version == "v0.1.0"
    registry.assign("churn", "v0.0.1", "prod", repo=repo)
    registry.assign("churn", "v0.1.0", "prod", message="better AUC", repo=repo)
    (state,) = registry.show(repo=repo)
    assert state.latest == "v0.1.0" and state.stages == {"prod": "v0.1.0"}
    registry.unassign("churn", "v0.1.0", "prod", repo=repo)
    assert registry.which("churn@prod", repo=repo).version == "v0.0.1"  # the previous holder
    found = registry.which("churn@latest", repo=repo)
    assert found.run == second and found.uri == f"runs:/{second}/model.pkl"
    events = registry.history("churn", repo=repo)
    assert [e.kind for e in events] == ["register", "register", "assign", "assign", "unassign"]
    assert events[3].title == "better AUC" and events[3].tagger == "Test User <test@example.com>"
    assert git(repo, "cat-file", "-t", "churn#prod#2").strip() == "tag"
    assert git(repo, "rev-parse", "churn@v0.0.1^{commit}").strip() == git(repo, "rev-parse", "HEAD").strip()
    git(repo, "fsck", "--strict", "--no-progress")
    # models:/ URIs work wherever artifact URIs do.
    got = artifacts.download("models:/churn@prod", tmp_path / "prod.pkl", repo=repo)
    assert got[0].read_bytes() == b"model v1"
    cli = gitml(repo, "artifacts", "get", "models:/churn/v0.1.0", "-o", str(tmp_path / "v010.pkl"))
    assert cli.code == 0, cli.err
    assert (tmp_path / "v010.pkl").read_bytes() == b"model v2"


def test_deregister_and_deprecate(model_repo):
    repo, first, second = model_repo
    registry.register_model("churn", first, repo=repo)
    registry.register_model("churn", second, repo=repo)
    registry.deregister("churn", "v0.0.2", repo=repo)
    (state,) = registry.show("churn", repo=repo)
    assert state.latest == "v0.0.1" and state.versions["v0.0.2"].deregistered
    assert registry.register_model("churn", second, repo=repo).version == "v0.0.3"  # numbers never reused
    registry.deregister("churn", "v0.0.3", repo=repo)
    with pytest.raises(BadInputError):
        registry.assign("churn", "v0.0.2", "prod", repo=repo)
    registry.deprecate("churn", repo=repo)
    assert registry.show(repo=repo)[0].deprecated
    with pytest.raises(BadInputError, match="deprecated"):
        registry.register_model("churn", first, repo=repo)


def test_bad_input_writes_no_tag(model_repo):
    repo, first, _ = model_repo
    registry.register_model("churn", first, repo=repo)
    before = git(repo, "tag", "-l")
    cases = [
        ("registry", "register", "bad name", "--run", first),
        ("registry", "register", "churn", "--run", first, "--version", "v0.0.1"),
        ("registry", "register", "churn", "--run", first, "--path", "missing.pkl"),
        ("registry", "register", "churn", "--run", "ffff"),
        ("registry", "assign", "churn", "--version", "v9.0.0", "--stage", "prod"),
        ("registry", "assign", "churn", "--version", "v0.0.1", "--stage", "v1.0"),
        ("registry", "assign", "nope", "--version", "v0.0.1", "--stage", "prod"),
        ("registry", "unassign", "churn", "--version", "v0.0.1", "--stage", "prod"),
        ("registry", "which", "churn@prod"),
    ]
    for args in cases:
        result = gitml(repo, *args)
        assert result.code in (1, 2), args
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err, args
    assert git(repo, "tag", "-l") == before


def test_run_without_artifact_cannot_be_registered(repo):
    run = api.commit_run(name="bare", repo=repo)
    with pytest.raises(BadInputError, match="0 artifacts"):
        registry.register_model("churn", run.id, repo=repo)


ASSIGNER = """
import sys
from gitml import registry
for i in range(5):
    registry.assign("churn", "v0.0.1", f"s{sys.argv[2]}-{i}", repo=sys.argv[1])
"""


def test_parallel_assignments_get_distinct_counters(model_repo):
    repo, first, _ = model_repo
    registry.register_model("churn", first, repo=repo)
    procs = [subprocess.Popen([sys.executable, "-c", ASSIGNER, str(repo), str(w)], stderr=subprocess.PIPE)
             for w in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    counters = sorted(int(t.rsplit("#", 1)[1]) for t in git(repo, "tag", "-l", "churn#*").split())
    assert counters == list(range(1, 21))
    assert len(registry.show(repo=repo)[0].stages) == 20


def test_hand_made_and_lightweight_tags_are_read(model_repo):
    repo, first, _second = model_repo
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "-a", "fraud@v1.0.0", "-m", "Registering artifact fraud version v1.0.0", head)
    git(repo, "tag", "fraud#staging#1", head)  # lightweight, as a hand-made tag might be
    git(repo, "tag", "-a", "fraud#prod#2", "-m", "ship it", head)
    for i in range(300):  # unrelated release tags change nothing
        git(repo, "tag", f"release-{i}", head)
    states = {m.name: m for m in registry.show(repo=repo)}
    assert states["fraud"].stages == {"prod": "v1.0.0", "staging": "v1.0.0"}
    # No gitml block: the run is found from the commit (the latest finished run made there).
    assert registry.which("fraud@prod", repo=repo).uri == f"runs:/{_second}/model.pkl"
    data = json.loads(gitml(repo, "registry", "show", "--json").out)
    assert [m["name"] for m in data] == ["fraud"]


def test_stage_rules_from_config(model_repo):
    repo, first, second = model_repo
    (repo / "gitml.yaml").write_text(
        "registry:\n  stages: [dev, staging, prod]\n  promotion: [dev, staging, prod]\n"
        "  one_stage_per_version: true\n")
    registry.register_model("churn", first, repo=repo)
    with pytest.raises(BadInputError, match="not allowed"):
        registry.assign("churn", "v0.0.1", "qa", repo=repo)
    with pytest.raises(BadInputError, match="must be in stage 'staging'"):
        registry.assign("churn", "v0.0.1", "prod", repo=repo)
    registry.assign("churn", "v0.0.1", "dev", repo=repo)
    registry.assign("churn", "v0.0.1", "staging", repo=repo)
    assert registry.show(repo=repo)[0].stages == {"staging": "v0.0.1"}  # kanban: one stage at a time
    registry.assign("churn", "v0.0.1", "prod", repo=repo)
    assert registry.show(repo=repo)[0].stages == {"prod": "v0.0.1"}


def test_log_artifact_register_as(repo, tmp_path):
    model = tmp_path / "model.pkl"
    model.write_bytes(b"weights")
    with api.start_run(repo=repo) as run:
        api.log_artifact(str(model), register_as="churn")
    found = registry.which("churn@latest", repo=repo)
    assert found.version == "v0.0.1" and found.run == run.id and found.path == "model.pkl"
    with pytest.raises(RuntimeError):
        with api.start_run(repo=repo):
            api.log_artifact(str(model), register_as="churn")
            raise RuntimeError("training diverged")
    assert registry.show(repo=repo)[0].latest == "v0.0.1"  # a failed run registers nothing
    with api.start_run(repo=repo):
        with pytest.raises(BadInputError):
            api.log_artifact(str(model), register_as="Bad Name")


def test_results_are_documented_dataclasses(model_repo):
    repo, first, second = model_repo
    head = git(repo, "rev-parse", "HEAD").strip()
    done = registry.register_model("churn", first, repo=repo)
    assert isinstance(done, registry.Registration)
    assert done.to_dict() == {"model": "churn", "version": "v0.0.1", "tag": "churn@v0.0.1", "run": first,
                              "path": "model.pkl", "commit": head}
    change = registry.assign("churn", "v0.0.1", "prod", repo=repo)
    assert isinstance(change, registry.StageChange)
    assert change.to_dict() == {"model": "churn", "version": "v0.0.1", "stage": "prod", "tag": "churn#prod#1",
                                "counter": 1}
    assert registry.unassign("churn", "v0.0.1", "prod", repo=repo).tag == "churn#prod!#2"
    registry.register_model("churn", second, repo=repo)
    gone = registry.deregister("churn", "v0.0.2", repo=repo)
    assert gone.to_dict() == {"model": "churn", "version": "v0.0.2", "tag": "churn@v0.0.2!"}
    found = registry.which("churn@v0.0.1", repo=repo)
    assert isinstance(found, registry.ModelVersionInfo)
    assert found.to_dict() == {"model": "churn", "version": "v0.0.1", "stages": [], "commit": head, "run": first,
                               "path": "model.pkl", "sha256": found.sha256, "uri": f"runs:/{first}/model.pkl"}
    recorded = yaml.safe_load(git(repo, "show", f"refs/gitml/runs:runs/{first[:2]}/{first}/artifacts.yaml"))
    assert found.sha256 == recorded["model.pkl"]["sha256"]
    # The CLI prints exactly to_dict() with --json.
    assert json.loads(gitml(repo, "registry", "which", "churn@v0.0.1", "--json").out) == found.to_dict()
    deprecated = registry.deprecate("churn", repo=repo)
    assert deprecated.version is None and deprecated.to_dict() == {"model": "churn", "tag": "churn@deprecated"}


def test_cli_works_on_the_repository_given_with_dash_c(model_repo, tmp_path):
    repo, first, _ = model_repo
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert gitml(elsewhere, "-C", str(repo), "registry", "register", "churn", "--run", first[:8]).out == "churn@v0.0.1\n"
    assert gitml(elsewhere, "-C", str(repo), "registry", "assign", "churn", "--version", "v0.0.1",
                 "--stage", "prod").out == "churn#prod#1\n"
    which = gitml(elsewhere, "-C", str(repo), "registry", "which", "churn@prod")
    assert (which.code, which.out, which.err) == (0, f"v0.0.1\t{first}\truns:/{first}/model.pkl\n", "")
    assert git(repo, "tag", "-l") == "churn#prod#1\nchurn@v0.0.1\n"


REGISTERER = """
import sys
from gitml import registry
for _ in range(3):
    print(registry.register_model("churn", sys.argv[2], repo=sys.argv[1]).version)
"""


def test_parallel_registrations_take_distinct_versions(model_repo):
    repo, first, _ = model_repo
    procs = [subprocess.Popen([sys.executable, "-c", REGISTERER, str(repo), first], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    taken = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        taken += out.split()
    expected = [f"v0.0.{n}" for n in range(1, 13)]
    assert sorted(taken, key=lambda v: int(v.rsplit(".", 1)[1])) == expected  # each once, none lost
    assert sorted(registry.show("churn", repo=repo)[0].versions) == sorted(expected)


OPS_ONLY = """
import sys
from gitml import registry
from gitml.core.workspace import open_workspace
with open_workspace(sys.argv[1]) as ws:
    registry.register_model("churn", sys.argv[2], repo=ws)
    registry.assign("churn", "v0.0.1", "prod", repo=ws)
    assert registry.which("churn@prod", repo=ws).run == sys.argv[2]
    assert registry.resolve_model_uri("models:/churn@prod", repo=ws) == f"runs:/{sys.argv[2]}/model.pkl"
    registry.history("churn", repo=ws), registry.show(repo=ws), registry.problems(repo=ws)
upward = sorted(m for m in sys.modules if m.split(".")[:2] in
                [["gitml", s] for s in ("tracking", "artifacts", "diff", "sync", "hooks", "api", "cli")])
assert not upward, upward
"""


def test_registry_needs_only_core(model_repo):
    repo, first, _ = model_repo
    proc = subprocess.run([sys.executable, "-c", OPS_ONLY, str(repo), first], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
