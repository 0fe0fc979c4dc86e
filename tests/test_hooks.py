"""The pre-push hook through real `git push` runs to a bare repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import GITML, git, gitml

import gitml as api
from gitml import artifacts, hooks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pushing(repo, tmp_path, gitml_on_path):
    """A repo with a bare origin and the hook installed; this interpreter's `gitml` first on PATH for the hook."""
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
    assert code == 0 and "gitml" not in err, err


def test_runs_without_artifact_remote_are_blocked_then_uploaded_first(pushing, tmp_path):
    repo, origin = pushing
    _model_run(repo)
    code, err = push(repo, "refs/gitml/runs")
    assert code != 0 and "gitml remote add NAME URL --default" in err, err
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
    assert code != 0 and "'dead'" in err, err
    (repo / "gitml.yaml").write_text((repo / "gitml.yaml").read_text() + "hooks:\n  pre-push:\n    on_unreachable: warn\n")
    code, err = push(repo, "refs/gitml/runs")
    assert code == 0 and "warning" in err, err


def test_missing_bytes_and_malformed_run_are_blocked(pushing, tmp_path):
    repo, origin = pushing
    artifacts.add_remote("store", str(tmp_path / "store"), repo=repo)
    run = _model_run(repo)
    shutil.rmtree(repo / ".git" / "gitml" / "cache")
    code, err = push(repo, "refs/gitml/runs")
    assert code != 0 and f"model.pkl of run {run.id[:8]} is neither on 'store' nor in the local cache" in err, err
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
    assert code != 0 and f"run {good.id}" in err and "metrics.yaml" in err, err


def test_stage_tag_without_version_is_blocked(pushing):
    repo, origin = pushing
    git(repo, "tag", "-a", "churn#prod#1", "-m", "promote")
    code, err = push(repo, "refs/tags/churn#prod#1")
    assert code != 0 and "not registered" in err, err


def test_gate_blocks_then_allows(pushing, tmp_path):
    repo, origin = pushing
    artifacts.add_remote("store", str(tmp_path / "store"), repo=repo)
    (repo / "gitml.yaml").write_text((repo / "gitml.yaml").read_text() + (
        "hooks:\n  pre-push:\n    gates:\n      - branches: [main]\n        require_run: true\n"
        "        metrics:\n          acc: {min: 0.8}\n"))
    git(repo, "add", "gitml.yaml")
    git(repo, "commit", "-qm", "gates")
    code, err = push(repo, "main")
    assert code != 0 and "no finished run" in err, err
    _model_run(repo, "weak", acc=0.5)
    code, err = push(repo, "main")
    assert code != 0 and "acc = 0.5 is below the minimum 0.8" in err, err
    code, err = push(repo, "main", env={"GITML_SKIP_HOOKS": "1"})
    assert code == 0 and "skipped" in err, err
    (repo / "train.py").write_text("print('better')\n")  # the fix: new code, a better run
    git(repo, "commit", "-qam", "better model")
    _model_run(repo, "strong", acc=0.95)
    code, err = push(repo, "main")
    assert code == 0, err
    assert gitml(repo, "check").code == 0


def test_chained_hook_runs_and_uninstall_restores(repo, tmp_path, gitml_on_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    hook = repo / ".git" / "hooks" / "pre-push"
    marker = tmp_path / "ran"
    hook.write_text(f"#!/bin/sh\ncat > {marker}\n")
    hook.chmod(0o755)
    assert "kept your pre-push hook" in " ".join(hooks.install(repo=repo))
    code, err = push(repo, "main")
    assert code == 0 and "refs/heads/main" in marker.read_text(), err
    hooks.uninstall(repo=repo)
    assert hook.read_text().startswith("#!/bin/sh\ncat >")


def test_missing_gitml_fails_loudly(pushing, monkeypatch):
    repo, origin = pushing
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    code, err = push(repo, "main", env={"PATH": "/usr/bin:/bin"})
    assert code != 0 and "not on PATH" in err, err
    code, _ = subprocess.run(["git", "push", "--no-verify", "origin", "main"], cwd=repo,
                             capture_output=True).returncode, None
    assert code == 0


# -- gates: read from the branch pushed to, and never passing what they should stop ---------------


def _gates(rules: str, branches: str = "[main]") -> str:
    return f"hooks:\n  pre-push:\n    gates:\n      - branches: {branches}\n        metrics:\n{rules}"


def _commit_config(repo, text, message="config"):
    (repo / "gitml.yaml").write_text(text)
    git(repo, "add", "gitml.yaml")
    git(repo, "commit", "-qm", message)


def _gitml_lines(err):
    return [line for line in err.splitlines() if line.startswith("gitml:")]


@pytest.fixture
def team(pushing):
    """origin's main already holds a gate `acc >= 0.9` and a run that passes it."""
    repo, origin = pushing
    _commit_config(repo, _gates("          acc: {min: 0.9}\n"))
    api.commit_run(name="good", metrics={"acc": 0.95}, repo=repo)
    code, err = push(repo, "main")
    assert code == 0, err
    return repo, origin


def test_pushed_commit_cannot_loosen_its_own_gate(team):
    repo, origin = team
    _commit_config(repo, _gates("          acc: {min: 0.1}\n"), "loosen the gate")
    api.commit_run(name="weak", metrics={"acc": 0.5}, repo=repo)
    code, err = push(repo, "main")
    assert code != 0, err
    assert _gitml_lines(err)[0] == "gitml: pre-push: gate for main: acc = 0.5 is below the minimum 0.9"
    assert git(origin, "rev-parse", "main").strip() != git(repo, "rev-parse", "main").strip()
    # Nor can removing the gates altogether (the fast path must not skip the check either).
    _commit_config(repo, "params: [params.yaml]\n", "drop the gates")
    api.commit_run(name="weak-again", metrics={"acc": 0.5}, repo=repo)
    code, err = push(repo, "main")
    assert code != 0 and "acc = 0.5 is below the minimum 0.9" in err, err
    check = gitml(repo, "check", "main")
    assert check.code == 1 and "problem: gate for main: acc = 0.5 is below the minimum 0.9" in check.out


def test_fast_path_reads_the_target_gates_without_a_runs_ref(pushing, tmp_path):
    repo, origin = pushing
    _commit_config(repo, _gates("          acc: {min: 0.9}\n") + "        require_run: true\n")
    assert push(repo, "main", env={"GITML_SKIP_HOOKS": "1"})[0] == 0
    _commit_config(repo, "params: [params.yaml]\n", "no gates here")  # and no runs ref at all
    code, err = push(repo, "main")
    assert code != 0 and "gate for main: no finished run for" in err, err


def test_new_branch_is_ruled_by_the_default_branch_gates(team):
    repo, origin = team
    _commit_config(repo, _gates("          acc: {min: 0.9}\n", "[main, release/*]"), "gate releases too")
    api.commit_run(name="ok", metrics={"acc": 0.95}, repo=repo)
    assert push(repo, "main")[0] == 0
    git(repo, "checkout", "-qb", "release/1")
    _commit_config(repo, "params: [params.yaml]\n", "a release without gates")
    api.commit_run(name="weak", metrics={"acc": 0.5}, repo=repo)
    code, err = push(repo, "release/1")
    assert code != 0 and "gate for release/1: acc = 0.5 is below the minimum 0.9" in err, err


def test_first_push_uses_the_work_tree_config(pushing):
    repo, origin = pushing  # origin is empty: no team configuration to read yet
    _commit_config(repo, _gates("          acc: {min: 0.9}\n"))
    api.commit_run(name="weak", metrics={"acc": 0.5}, repo=repo)
    code, err = push(repo, "main")
    assert code != 0 and "gate for main: acc = 0.5 is below the minimum 0.9" in err, err


@pytest.mark.parametrize("value, problem", [
    ("nan", "gate for main: acc is NaN, not a number (the rule: max_regression 0.05)"),
    ("0.5", "gate for main: acc regressed by 0.45 against main (0.95 -> 0.5; allowed 0.05)"),
    ("-inf", "gate for main: acc regressed by inf against main (0.95 -> -inf; allowed 0.05)"),
])
def test_max_regression_compares_with_the_remote_branch(pushing, value, problem):
    repo, origin = pushing
    _commit_config(repo, _gates("          acc: {max_regression: 0.05}\n"))
    api.commit_run(name="base", metrics={"acc": 0.95}, repo=repo)
    assert push(repo, "main")[0] == 0
    (repo / "train.py").write_text("print('changed')\n")
    git(repo, "commit", "-qam", "change")
    api.commit_run(name="new", metrics={"acc": float(value)}, repo=repo)
    code, err = push(repo, "main")
    assert code != 0 and _gitml_lines(err)[0] == f"gitml: pre-push: {problem}", err


def test_infinity_in_the_goal_direction_passes(pushing):
    repo, origin = pushing
    _commit_config(repo, _gates("          acc: {max_regression: 0.05, min: 0.5}\n"))
    api.commit_run(name="base", metrics={"acc": 0.95}, repo=repo)
    assert push(repo, "main")[0] == 0
    (repo / "train.py").write_text("print('changed')\n")
    git(repo, "commit", "-qam", "change")
    api.commit_run(name="perfect", metrics={"acc": float("inf")}, repo=repo)
    code, err = push(repo, "main")
    assert code == 0, err


def test_nan_and_missing_metric_fail_min_and_max(pushing):
    repo, origin = pushing
    _commit_config(repo, _gates("          acc: {min: 0.5}\n          loss: {max: 1}\n"))
    api.commit_run(name="broken", metrics={"acc": float("nan")}, repo=repo)
    code, err = push(repo, "main")
    assert code != 0, err
    problems = _gitml_lines(err)
    assert "gitml: pre-push: gate for main: acc is NaN, not a number (the rule: min 0.5)" in problems
    assert any(line.endswith("has no metric 'loss'") for line in problems)


def test_branches_given_as_one_string_match(pushing):
    repo, origin = pushing
    _commit_config(repo, _gates("          acc: {min: 0.9}\n", "main"))
    api.commit_run(name="weak", metrics={"acc": 0.5}, repo=repo)
    code, err = push(repo, "main")
    assert code != 0 and "gate for main: acc = 0.5 is below the minimum 0.9" in err, err


@pytest.mark.parametrize("config, message", [
    (_gates("          accuracy: {minimum: 0.9}\n"),
     "gitml.yaml: hooks.pre-push.gates[0].metrics.accuracy.minimum: unknown key "
     "(expected one of: against, max, max_regression, min)"),
    (_gates("          accuracy: 0.9\n"),
     "gitml.yaml: hooks.pre-push.gates[0].metrics.accuracy: expected a mapping with min, max, "
     "max_regression or against, got a number (0.9)"),
    (_gates('          accuracy: {min: "0.9"}\n'),
     "gitml.yaml: hooks.pre-push.gates[0].metrics.accuracy.min: expected a number, got text ('0.9')"),
    ("hooks:\n  pre-push:\n    gates:\n      main: {accuracy: {min: 0.9}}\n",
     "gitml.yaml: hooks.pre-push.gates: expected a list of gates, got a mapping"),
    ("hooks:\n  pre-push:\n    gates:\n      - metrics: {accuracy: {min: 0.9}}\n",
     "gitml.yaml: hooks.pre-push.gates[0].branches: required"),
])
def test_badly_shaped_gate_is_one_line_and_exit_2(pushing, config, message):
    repo, origin = pushing
    _commit_config(repo, config)
    code, err = push(repo, "main")
    assert code != 0 and "Traceback" not in err, err
    assert _gitml_lines(err) == [f"gitml: pre-push: {message}"]
    direct = gitml(repo, "hooks", "pre-push", "origin", str(origin),
                   input=f"refs/heads/main {git(repo, 'rev-parse', 'main').strip()} refs/heads/main {'0' * 40}\n")
    assert direct.code == 2 and direct.err.splitlines() == [f"gitml: pre-push: {message}"]
    check = gitml(repo, "check")
    assert check.code == 2 and check.err.splitlines() == [f"gitml: error: {message}"]


def test_an_invalid_pushed_config_is_stopped_before_it_lands(team):
    repo, origin = team
    _commit_config(repo, _gates("          acc: {min: 0.9}\n") + "        require_runs: true\n", "typo")
    sha = git(repo, "rev-parse", "HEAD").strip()
    code, err = push(repo, "main")
    assert code != 0, err
    assert _gitml_lines(err)[0] == (
        f"gitml: pre-push: gitml.yaml at {sha[:7]}: hooks.pre-push.gates[0].require_runs: unknown key "
        "(expected one of: branches, metrics, require_run) — once on main, it would refuse every push "
        "to main; fix it, then push again")
    assert git(origin, "rev-parse", "main").strip() != sha


# -- the `gitml` a hook runs: this interpreter's console script, or a failure that says so ---------


def test_the_hook_runs_this_interpreters_gitml(gitml_on_path):
    from conftest import script_problem

    assert script_problem(gitml_on_path) is None
    assert shutil.which("gitml") == str(gitml_on_path)  # first on PATH, ahead of any other install
    proc = subprocess.run(["gitml", "--version"], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"gitml, version {api.__version__}\n", "")


def test_console_script_is_looked_up_in_this_interpreters_script_folders(tmp_path):
    from conftest import console_script

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert console_script(dirs=[first, second]) is None
    (first / "gitml").write_text("#!/bin/sh\n")  # not executable: pip never leaves one so
    assert console_script(dirs=[first, second]) is None
    (second / "gitml").write_text("#!/bin/sh\n")
    (second / "gitml").chmod(0o755)
    assert console_script(dirs=[first, second]) == second / "gitml"
    (first / "gitml").chmod(0o755)
    assert console_script(dirs=[first, second]) == first / "gitml"


def test_a_missing_or_foreign_console_script_is_named_not_a_bare_assert(tmp_path):
    import sys

    from conftest import script_problem

    missing = script_problem(None)
    assert missing.startswith(f"this test runs `gitml` from PATH (as a git hook does), but {sys.executable} has no ")
    assert missing.endswith(f"install it with this interpreter: {sys.executable} -m pip install -e '.[dev]'")
    foreign = tmp_path / "gitml"
    foreign.write_text("#!/bin/sh\nexec true\n")  # its interpreter cannot import gitml
    foreign.chmod(0o755)
    problem = script_problem(foreign)
    assert problem.startswith(f"the `gitml` console script {foreign} runs nothing (")
    assert f"not the code under test ({api.__file__})" in problem


@pytest.mark.parametrize("stdin, env, words", [
    ("refs/heads/main zzzz refs/heads/main " + "0" * 40 + "\n", {}, "'zzzz' names no commit"),
    ("refs/heads/main " + "1234567890" * 4 + " refs/heads/main " + "0" * 40 + "\n", {}, "is not in this repository"),
    ("", {"PRE_COMMIT_FROM_REF": "nope", "PRE_COMMIT_TO_REF": "HEAD", "PRE_COMMIT_REMOTE_NAME": "origin",
          "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main", "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/main"},
     "'nope' names no commit"),
])
def test_pre_push_input_that_names_no_commit_is_one_line_and_exit_2(pushing, stdin, env, words):
    repo, origin = pushing
    _model_run(repo)  # a repository with runs: the hook has something to check
    proc = subprocess.run([*GITML, "hooks", "pre-push", "origin", str(origin)], cwd=repo, input=stdin, text=True,
                          capture_output=True, env={**os.environ, **env})
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_pre_commit_names_revisions_and_they_are_resolved(pushing):
    repo, origin = pushing
    env = {"PRE_COMMIT_FROM_REF": "HEAD", "PRE_COMMIT_TO_REF": "HEAD", "PRE_COMMIT_REMOTE_NAME": "origin",
           "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main", "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/main"}
    proc = subprocess.run([*GITML, "hooks", "pre-push", "origin", str(origin)], cwd=repo, input="", text=True,
                          capture_output=True, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
