"""Issue 11, registry and first-use items: MLflow stage names, registration warnings, a demo run
twice, and a fresh clone whose runs are not pulled yet."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import git, gitml

import gitml as api
from gitml import registry
from gitml.core.errors import BadInputError
from gitml.core.tags import check_stage, tag_problem
from gitml.core.workspace import open_workspace

GTO = os.environ.get("GITML_GTO")  # read before the hermetic fixture scrubs GITML_*


def _run_with_model(repo, content: bytes, **params):
    (repo / ".gitignore").write_text("model.pkl\n")
    (repo / "model.pkl").write_bytes(content)
    return api.commit_run(params=params or {"lr": 0.1}, artifacts=[repo / "model.pkl"], repo=repo)


def _tags(repo) -> list[str]:
    return git(repo, "tag", "--list").split()


# -- item 16: MLflow's stage names -------------------------------------------------------------------
@pytest.mark.parametrize(("given", "stage"), [
    ("Staging", "staging"), ("Production", "production"), ("Archived", "archived"),
    ("PRODUCTION", "production"), ("pRoD", "prod"), ("prod", "prod"), ("Canary-2", "canary-2"),
])
def test_stage_names_are_read_in_lowercase(given, stage):
    assert check_stage(given) == stage


@pytest.mark.parametrize("bad", ["V1", "v1.0.0", "Prod_x", "1prod", "prod-", "", "\u212aeep", "Pr\u00f6d", "\u0130nt"])
def test_stage_names_that_stay_refused(bad):
    # The Kelvin sign lowercases to an ASCII "k", and the dotted capital I to "i" + a dot: only
    # ASCII letters fold, so neither sneaks in.
    with pytest.raises(BadInputError, match="invalid stage name"):
        check_stage(bad)


def test_mlflow_stage_names_on_the_command_line(repo):
    run = _run_with_model(repo, b"weights")
    assert gitml(repo, "registry", "register", "churn", "--run", run.id).out == "churn@v0.0.1\n"
    done = gitml(repo, "registry", "assign", "churn", "--version", "v0.0.1", "--stage", "Production")
    assert (done.code, done.out, done.err) == (0, "churn#production#1\n", "")
    assert gitml(repo, "registry", "assign", "churn", "--version", "v0.0.1", "--stage", "STAGING").out \
        == "churn#staging#2\n"
    assert "churn#production#1" in _tags(repo) and "churn#Production#1" not in _tags(repo)
    # Every spelling of a reference names the same stage.
    for ref in ("churn@Production", "churn@production", "churn@PRODUCTION"):
        assert gitml(repo, "registry", "which", ref).out == f"v0.0.1\t{run.id}\truns:/{run.id}/model.pkl\n"
    for uri in ("models:/churn@Production", "models:/churn/Production", "models:/churn@staging"):
        assert api.registry.resolve_model_uri(uri, repo=repo) == f"runs:/{run.id}/model.pkl"
    out = repo / "fetched.pkl"
    got = gitml(repo, "artifacts", "get", "models:/churn@Production", "-o", str(out))
    assert got.code == 0, got.err
    assert out.read_bytes() == b"weights"
    gone = gitml(repo, "registry", "unassign", "churn", "--version", "v0.0.1", "--stage", "Staging")
    assert gone.out == "churn#staging!#3\n"
    assert registry.show("churn", repo=repo)[0].stages == {"production": "v0.0.1"}
    missing = gitml(repo, "registry", "which", "churn@Archived")
    assert (missing.code, missing.err) == (1, "gitml: error: no version of churn is in stage 'archived'\n")


def test_stage_rules_compare_in_lowercase(repo):
    (repo / "gitml.yaml").write_text("registry:\n  stages: [Staging, Production]\n  promotion: [Staging, Production]\n")
    git(repo, "add", "gitml.yaml")
    git(repo, "commit", "-qm", "rules")
    run = _run_with_model(repo, b"weights")
    registry.register_model("churn", run.id, repo=repo)
    early = gitml(repo, "registry", "assign", "churn", "--version", "v0.0.1", "--stage", "production")
    assert early.code == 2 and "must be in stage 'staging' before 'production'" in early.err
    assert registry.assign("churn", "v0.0.1", "staging", repo=repo).tag == "churn#staging#1"
    assert registry.assign("churn", "v0.0.1", "PRODUCTION", repo=repo).tag == "churn#production#2"
    refused = gitml(repo, "registry", "assign", "churn", "--version", "v0.0.1", "--stage", "Archived")
    assert refused.code == 2
    assert "stage 'archived' is not allowed here (gitml.yaml allows: staging, production)" in refused.err


def test_a_stage_tag_with_capitals_is_reported_not_dropped(repo):
    run = _run_with_model(repo, b"weights")
    registry.register_model("churn", run.id, repo=repo)
    git(repo, "tag", "-a", "churn#Production#1", "-m", "made by GTO with a capital")
    assert tag_problem("churn#Production#1") == (
        "tag 'churn#Production#1' is not a registry event for gitml: its stage 'Production' is not "
        "lowercase (gitml assigns 'production'); it is ignored")
    assert tag_problem("churn#production#1") is None and tag_problem("v1.0.0") is None
    shown = gitml(repo, "registry", "show", "churn")
    assert shown.code == 0 and "its stage 'Production' is not lowercase" in shown.err
    assert registry.show("churn", repo=repo)[0].stages == {}


@pytest.mark.skipif(not GTO, reason="GTO not available (set GITML_GTO to a gto executable)")
def test_gto_reads_a_stage_given_in_mlflow_spelling(repo):
    run = _run_with_model(repo, b"weights")
    registry.register_model("churn", run.id, repo=repo)
    registry.assign("churn", "v0.0.1", "Production", repo=repo)
    proc = subprocess.run([GTO, "show", "--json"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["churn"]["stage"]["production"] == "v0.0.1"


# -- item 17: registrations that go ahead with a warning ---------------------------------------------
def test_a_dirty_run_registers_with_a_warning(repo):
    (repo / "train.py").write_text("print('edited, not committed')\n")
    run = _run_with_model(repo, b"weights")
    done = registry.register_model("churn", run.id, repo=repo)
    assert done.warnings == [f"run {run.id[:8]} was made from a dirty work tree: the version records its patch"]
    assert done.to_dict()["warnings"] == done.warnings
    assert "diff --git a/train.py b/train.py" in api.get_run(run.id, repo=repo).patch
    again = gitml(repo, "registry", "register", "fraud", "--run", run.id)
    assert (again.code, again.out) == (0, "fraud@v0.0.1\n")
    assert again.err == (f"gitml: warning: run {run.id[:8]} was made from a dirty work tree: the version records "
                         "its patch\ngitml: warning: same bytes as churn v0.0.1\n")


def test_a_clean_new_artifact_registers_silently(repo):
    run = _run_with_model(repo, b"weights")
    done = gitml(repo, "registry", "register", "churn", "--run", run.id)
    assert (done.code, done.out, done.err) == (0, "churn@v0.0.1\n", "")
    assert "warnings" not in registry.register_model("churn", _run_with_model(repo, b"other").id,
                                                     repo=repo).to_dict()


def test_the_same_bytes_name_every_twin(repo):
    first = _run_with_model(repo, b"weights", lr=0.1)
    second = _run_with_model(repo, b"weights", lr=0.2)
    assert registry.register_model("churn", first.id, repo=repo).warnings == []
    assert registry.register_model("churn", second.id, repo=repo).warnings == ["same bytes as churn v0.0.1"]
    registry.deregister("churn", "v0.0.1", repo=repo)
    third = _run_with_model(repo, b"weights", lr=0.3)
    done = registry.register_model("nlp/sentiment", third.id, repo=repo)
    assert done.warnings == ["same bytes as churn v0.0.1 (deregistered), churn v0.0.2"]
    # A different artifact, or a directory with different content, has no twin.
    (repo / "model.pkl").write_bytes(b"weights, retrained")
    fourth = api.commit_run(params={"lr": 0.4}, artifacts=[repo / "model.pkl"], repo=repo)
    assert registry.register_model("churn", fourth.id, repo=repo).warnings == []


# -- item 9: gitml demo a second time ----------------------------------------------------------------
def test_a_second_demo_says_where_the_first_one_is(tmp_path):
    first = gitml(tmp_path, "demo")
    assert first.code == 0, first.err
    tip = git(tmp_path / "gitml-demo", "rev-parse", "refs/gitml/runs").strip()
    again = gitml(tmp_path, "demo")
    assert (again.code, again.out) == (2, "")
    assert again.err == ("gitml: error: gitml-demo already holds a demo: cd gitml-demo (or give another "
                         "directory to make a new one: gitml demo other-dir)\n")
    # Through -C, and by an absolute path, it is still recognised; nothing changed.
    assert "already holds a demo: cd " in gitml(tmp_path / "gitml-demo", "demo", str(tmp_path / "gitml-demo")).err
    assert gitml(tmp_path, "-C", "gitml-demo", "demo", ".").code == 2
    assert git(tmp_path / "gitml-demo", "rev-parse", "refs/gitml/runs").strip() == tip


def test_a_taken_directory_that_is_no_demo(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x\n")
    taken = gitml(tmp_path, "demo", "notes")
    assert (taken.code, taken.err) == (2, "gitml: error: notes exists and is not empty (give a new or empty "
                                          "directory: gitml demo other-dir)\n")
    afile = gitml(tmp_path, "demo", "notes/todo.txt")
    assert (afile.code, afile.err) == (2, "gitml: error: notes/todo.txt exists and is not a directory (give a "
                                          "new directory: gitml demo other-dir)\n")
    # A repository with the demo's script names but no runs is not taken for a demo.
    (tmp_path / "lookalike").mkdir()
    git(tmp_path / "lookalike", "init", "-q")
    for name in ("train.py", "train_with_api.py"):
        (tmp_path / "lookalike" / name).write_text("print('mine')\n")
    assert "lookalike exists and is not empty" in gitml(tmp_path, "demo", "lookalike").err
    assert (tmp_path / "notes" / "todo.txt").read_text() == "x\n"
    assert not (tmp_path / "notes" / ".git").exists()


# -- item 10: a fresh clone before `gitml pull` ------------------------------------------------------
@pytest.fixture
def team(tmp_path):
    """A bare remote holding one registered run, pushed with gitml, and the team's repository."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    a = tmp_path / "a"
    a.mkdir()
    git(a, "init", "-q")
    (a / "train.py").write_text("print(1)\n")
    (a / ".gitignore").write_text("model.pkl\n")
    git(a, "add", ".")
    git(a, "commit", "-qm", "init")
    git(a, "remote", "add", "origin", str(origin))
    git(a, "push", "-q", "-u", "origin", "main")
    (a / "model.pkl").write_bytes(b"weights")
    run = api.commit_run(name="first", artifacts=[a / "model.pkl"], repo=a)
    registry.register_model("churn", run.id, repo=a)
    registry.assign("churn", "v0.0.1", "prod", repo=a)
    # The runs ref and the tags, by git itself: the artifacts are not the point here.
    git(a, "push", "-q", "origin", "refs/gitml/runs:refs/gitml/runs", "--tags")
    return origin, a, run


def test_a_fresh_clone_says_gitml_pull(team, tmp_path):
    origin, _, run = team
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))  # brings the tags, not refs/gitml/*
    hint = "this clone has no runs yet, but registry tag churn@v0.0.1 names a run: gitml pull"
    listed = gitml(clone, "runs", "list")
    assert (listed.code, listed.err) == (0, f"gitml: warning: {hint}\n")
    assert json.loads(gitml(clone, "runs", "list", "--json").out) == []
    got = gitml(clone, "artifacts", "get", "models:/churn@prod", "-o", "m.pkl")
    assert (got.code, got.err) == (2, f"gitml: error: models:/churn@prod: the run of churn v0.0.1 ({run.id}) is not "
                                      f"on refs/gitml/runs here (churn@v0.0.1 names it, but this clone has no "
                                      f"runs yet: gitml pull)\n")
    shown = gitml(clone, "runs", "show", run.id[:8])
    assert (shown.code, shown.err) == (2, f"gitml: error: no run matches '{run.id[:8]}' (churn@v0.0.1 names it, "
                                          "but this clone has no runs yet: gitml pull)\n")
    assert gitml(clone, "runs", "show", run.id).err.endswith("but this clone has no runs yet: gitml pull)\n")
    diffed = gitml(clone, "diff", "HEAD", "HEAD")
    assert diffed.code == 1 and diffed.err.endswith(f"({hint})\n") and "--max-depth" not in diffed.err
    # After the pull, everything answers and nothing is said on stderr.
    assert gitml(clone, "pull").code == 0
    listed = gitml(clone, "runs", "list")
    assert (listed.code, listed.err) == (0, "") and run.id[:8] in listed.out
    assert gitml(clone, "registry", "which", "churn@prod").out == f"v0.0.1\t{run.id}\truns:/{run.id}/model.pkl\n"


def test_runs_fetched_but_not_pulled_are_named(team, tmp_path):
    origin, a, run = team
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert gitml(clone, "pull").code == 0
    (a / "model.pkl").write_bytes(b"weights 2")
    later = api.commit_run(name="second", artifacts=[a / "model.pkl"], repo=a)
    git(a, "push", "-q", "origin", "refs/gitml/runs:refs/gitml/runs")
    assert gitml(clone, "fetch").code == 0  # the remote-tracking ref moves; the local one does not
    with open_workspace(clone) as ws:
        missing = ws.unpulled_runs()
        assert (missing.remotes, missing.registered, missing.no_runs_here) == (["origin"], {}, False)
    shown = gitml(clone, "runs", "show", later.id)
    assert (shown.code, shown.err) == (2, f"gitml: error: no run {later.id} on refs/gitml/runs (it is on origin's "
                                          "runs, not pulled here yet: gitml pull origin)\n")
    prefix = gitml(clone, "runs", "show", later.id[:8])
    assert prefix.err.endswith("(origin has runs this clone has not pulled: gitml pull origin)\n")
    # The listing is not empty, so it says nothing; after the pull nothing is missing.
    assert gitml(clone, "runs", "list").err == ""
    assert gitml(clone, "pull", "origin").code == 0
    with open_workspace(clone) as ws:
        assert not ws.unpulled_runs() and ws.unpulled_hint(later.id) is None
    assert gitml(clone, "runs", "show", later.id[:8]).code == 0


def test_nothing_missing_says_nothing(repo, tmp_path):
    listed = gitml(repo, "runs", "list")
    assert (listed.code, listed.err) == (0, "")
    unknown = gitml(repo, "runs", "show", "abcd1234")
    assert unknown.err == "gitml: error: no run matches 'abcd1234' (see `gitml runs list`)\n"
    # A clone of a repository that never had runs: no remote-tracking runs ref, no tags.
    bare = tmp_path / "plain.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(tmp_path / "plain"))
    assert gitml(tmp_path / "plain", "runs", "list").err == ""


def test_a_deleted_registered_run_is_not_called_unpulled(repo):
    run = _run_with_model(repo, b"weights")
    registry.register_model("churn", run.id, repo=repo)
    kept = _run_with_model(repo, b"other weights")
    assert gitml(repo, "runs", "delete", run.id).code == 0
    got = gitml(repo, "artifacts", "get", "models:/churn@latest", "-o", "m.pkl")
    assert got.code == 2
    assert got.err.endswith("(churn@v0.0.1 names it, but it is not here: deleted, or not pulled yet: gitml pull)\n")
    assert kept.id[:8] in gitml(repo, "runs", "list").out


def test_demo_again_from_inside_the_demo_makes_nothing(tmp_path):
    """The README's first command typed again after the tour's `cd gitml-demo`."""
    made = gitml(tmp_path, "demo", "first")
    assert made.code == 0, made.err
    again = gitml(tmp_path / "first", "demo")
    assert again.code == 2
    assert again.err.startswith(f"gitml: error: you are inside the demo {(tmp_path / 'first').resolve()}")
    assert not (tmp_path / "first" / "gitml-demo").exists()


def test_register_as_keeps_the_registration_and_its_warnings(repo):
    (repo / ".gitignore").write_text("model.pkl\n")
    (repo / "model.pkl").write_bytes(b"bytes")
    (repo / "train.py").write_text("changed, not committed\n")
    with api.start_run(repo=repo) as run:
        api.log_artifact(str(repo / "model.pkl"), register_as="churn")
    (registration,) = run.registrations
    assert registration.version == "v0.0.1"
    assert any("dirty work tree" in w for w in registration.warnings)


@pytest.mark.parametrize("stage", ["None", "none", "NONE"])
def test_mlflows_none_stage_is_refused(stage):
    from gitml.core.tags import check_stage

    with pytest.raises(BadInputError, match="None means no stage"):
        check_stage(stage)


def test_a_fresh_clone_without_registry_tags_asks_its_remote(clones, tmp_path):
    """Runs on the remote, no registry tag to say so: the empty listing asks the git remote."""
    origin, first, fresh = clones
    run = gitml(first, "commit-run", "-m", "acc=1").out.strip()
    assert gitml(first, "push").code == 0
    listed = gitml(fresh, "runs", "list")
    assert listed.code == 0
    assert "origin has runs this clone has not pulled: gitml pull origin" in listed.err
    shown = gitml(fresh, "runs", "show", run)
    assert shown.code == 2 and "gitml pull origin" in shown.err
    assert gitml(fresh, "pull").code == 0
    assert gitml(fresh, "runs", "show", run).code == 0
    # offline (the remote is gone): quiet, as before
    git(tmp_path, "clone", "-q", str(origin), str(tmp_path / "offline"))
    git(tmp_path / "offline", "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    quiet = gitml(tmp_path / "offline", "runs", "list")
    assert quiet.code == 0 and "gitml pull" not in quiet.err
