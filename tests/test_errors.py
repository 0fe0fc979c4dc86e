"""Errors with a contract: each failure of git, a remote or the runs ref gets its class and exit code.

Real git throughout: a remote that does not exist, an unknown revision, a git process killed by
a signal (an alias that kills its own git), an object deleted from the repository.
"""

from __future__ import annotations

import os

import pytest
from conftest import git, gitml, runs_tip

from gitml import errors
from gitml.artifacts.backend import ObjectStore
from gitml.core import runsref
from gitml.core.gitrepo import GitRepo
from gitml.core.remotes import Remote
from gitml.sync import fetch


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_every_class_has_its_documented_exit_code():
    codes = {name: getattr(errors, name).exit_code for name in errors.__all__}
    assert codes == {
        "BadInputError": 2, "ConcurrencyError": 1, "CorruptRunError": 1, "DirtyWorktreeError": 1,
        "GateFailedError": 1, "GitmlError": 1, "InternalError": 3, "MissingObjectError": 1,
        "NotARepositoryError": 2, "ExperimentNotFoundError": 2, "NoRunError": 1, "NoVersionError": 1, "RemoteError": 1, "RunNotFoundError": 2,
        "StaleLockError": 1, "ModelFormatError": 2, "SchemaError": 2, "TamperedError": 1,
    }
    # ... and docs/cli.md's table says the same, class by class.
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    table = text[text.index("| class | code | raised for |"):]
    for name, code in codes.items():
        row = next((line for line in table.splitlines() if f"`{name}`" in line), None)
        assert row is not None and f"| {code} |" in row, f"docs/cli.md's error table: {name} -> {code}"


def test_not_found_is_bad_input_and_nothing_there_is_a_failure(repo):
    """A name that designates nothing exits 2; one that exists but holds nothing now exits 1."""
    (repo / ".gitignore").write_text("model.pkl\n")
    (repo / "model.pkl").write_bytes(b"m")
    run = gitml(repo, "commit-run", "-m", "acc=1", "-a", "model.pkl").out.strip()
    assert gitml(repo, "registry", "register", "churn", "--run", run).code == 0
    cases = [(["registry", "which", "churn@prod"], 1, "no version of churn is in stage 'prod'"),
             (["registry", "which", "churn@v9.9.9"], 2, "no registered version"),
             (["registry", "which", "nosuch@prod"], 2, "no model 'nosuch'"),
             (["runs", "show", "abcdef"], 2, "no run matches"),
             (["diff", "HEAD", "HEAD~0"], 0, "")]
    assert gitml(repo, "registry", "deregister", "churn", "--version", "v0.0.1").code == 0
    cases.append((["registry", "which", "churn@latest"], 1, "every version is deregistered"))
    for args, code, said in cases:
        result = gitml(repo, *args)
        assert result.code == code, (args, result.err)
        if code:
            assert said in one_line(result.err), (args, result.err)


def test_fetch_from_a_remote_that_does_not_exist(repo, tmp_path):
    git(repo, "remote", "add", "origin", str(tmp_path / "nowhere"))
    result = gitml(repo, "fetch")
    assert result.code == 1
    line = one_line(result.err)
    assert line.startswith("gitml: error: git ls-remote origin failed: ")
    assert "Could not read from remote repository" in line
    with pytest.raises(errors.RemoteError):
        fetch(repo=repo)


def test_push_to_a_remote_that_does_not_exist(repo, tmp_path):
    git(repo, "remote", "add", "origin", str(tmp_path / "nowhere"))
    assert gitml(repo, "commit-run", "-m", "acc=1").code == 0
    result = gitml(repo, "push")
    assert result.code == 1
    assert one_line(result.err).startswith("gitml: error: git push origin failed: ")
    assert runs_tip(repo)  # nothing lost locally


def test_unknown_revision_in_diff_is_bad_input(repo):
    result = gitml(repo, "diff", "nosuch", "HEAD")
    assert result.code == 2
    assert "nosuch" in one_line(result.err)
    assert result.out == ""


def test_git_failures_by_kind(repo):
    # The typed plumbing answers questions; what it cannot answer fails by kind.
    with GitRepo(repo) as repository:
        head = repository.head()[0]
        assert repository.rev_parse("nosuch") is None
        assert repository.rev_parse("HEAD") == head
        assert repository.is_ancestor(head, head)
        assert repository.merge_base(head, head) == head
        with pytest.raises(errors.BadInputError, match="git rev-list failed: .*nosuch"):
            repository.rev_list("nosuch")
        with pytest.raises(errors.RemoteError, match="git fetch nowhere failed"):
            repository.fetch("nowhere", ["refs/heads/main:refs/heads/x"])
        with pytest.raises(errors.RemoteError, match="git ls-remote nowhere failed"):
            repository.ls_remote_tags("nowhere")
        # gitml.core's own escape hatch, for the kinds no typed question hits on purpose.
        with pytest.raises(errors.InternalError, match="git status rejected its arguments") as usage:
            repository._git("status", "--no-such-option")
        assert usage.value.exit_code == 3
        # The alias's shell kills its parent: the git process gitml started dies of SIGKILL.
        with pytest.raises(errors.InternalError, match="git selfkill was killed by SIGKILL"):
            repository._git("-c", "alias.selfkill=!kill -9 $PPID", "selfkill")
        with pytest.raises(errors.InternalError, match="killed by SIGKILL"):
            repository._git_result("-c", "alias.selfkill=!kill -9 $PPID", "selfkill")
        # A local failure that is nobody's bad input: exit 1, git's own line.
        (repo / ".git" / "index.lock").write_text("")
        with pytest.raises(errors.GitmlError, match="git update-index failed: .*index.lock") as locked:
            repository._git("update-index", "--refresh")
        assert type(locked.value) is errors.GitmlError


def test_no_git_command_line_is_built_outside_core():
    """DESIGN.md §6: gitml.core is the only place that starts git or assembles its arguments."""
    import re
    from pathlib import Path

    package = Path(errors.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if path.parent.name == "core":
            continue
        text = path.read_text()
        for pattern in (r"\._git\(", r"\._git_result\(", r"\bsubprocess\.(run|Popen|call|check_output)\(\s*\[\s*[\"']git"):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(package)}: {pattern}")
    assert offenders == []


def _commit_run(repo) -> str:
    result = gitml(repo, "commit-run", "-m", "acc=1")
    assert result.code == 0, result.err
    return result.out.strip()


def test_missing_object_in_the_runs_ref_is_named(repo):
    _commit_run(repo)
    tip = runs_tip(repo)
    root = git(repo, "rev-parse", f"{tip}^{{tree}}").strip()
    os.remove(repo / ".git" / "objects" / root[:2] / root[2:])  # loose: nothing packed yet
    with GitRepo(repo) as repository:
        tree = repository.write_tree({})
        with pytest.raises(errors.MissingObjectError) as missing:
            runsref.commit_runs(repository, {"0" * 32: tree}, "another run")
    assert missing.value.sha == root
    assert root in str(missing.value) and "corrupt" in str(missing.value)
    assert "git fsck" in str(missing.value)
    assert runs_tip(repo) == tip  # nothing written


def test_missing_object_through_the_cli(repo):
    _commit_run(repo)
    tip = runs_tip(repo)
    root = git(repo, "rev-parse", f"{tip}^{{tree}}").strip()
    os.remove(repo / ".git" / "objects" / root[:2] / root[2:])
    result = gitml(repo, "commit-run", "-m", "acc=2")
    assert result.code == 1
    line = one_line(result.err)
    assert line.startswith("gitml: error: ") and root in line
    assert "another process" not in line
    assert runs_tip(repo) == tip


def test_artifact_backend_errors(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = ObjectStore(Remote("team", str(blocker)))
    source = tmp_path / "object"
    source.write_bytes(b"data")
    with pytest.raises(errors.RemoteError, match="artifact remote 'team'.*uploading"):
        store.put(str(source), "a" * 64)  # the backend's OSError: the remote failed
    # A bad digest is the caller's bad input, no longer passed off as a remote failure.
    with pytest.raises(errors.BadInputError):
        store.existing(["not-a-digest"])


@pytest.mark.parametrize("command", [["runs", "list"], ["runs", "show", "0" * 32], ["diff", "HEAD", "HEAD"],
                                     ["artifacts", "gc", "--dry-run"]])
def test_a_missing_object_when_reading_is_one_line_exit_1(repo, command):
    _commit_run(repo)
    root = git(repo, "rev-parse", f"{runs_tip(repo)}^{{tree}}").strip()
    os.remove(repo / ".git" / "objects" / root[:2] / root[2:])
    (repo / ".git" / "gitml" / "index.sqlite").unlink(missing_ok=True)  # make list read the ref
    result = gitml(repo, *command)
    assert result.code == 1, result.err
    line = one_line(result.err)
    if command[0] == "artifacts":  # read by git ls-tree, whose own words say it
        assert line.startswith("gitml: error: git ls-tree failed: ")
    else:
        assert line.startswith("gitml: error: object ") and root in line


# A group without its command shows its help, exit 0: tests/test_issue11_cli.py walks every group.
