"""Issue 11, item 6: a command group typed without its command answers with its help, as `gitml` alone.

Every group of the command tree is found by walking click's tree (lazy commands loaded), so a
group added later is held to the same rule without editing this file.
"""

from __future__ import annotations

import re

import click
import pytest
from conftest import git, gitml

from gitml.cli.main import cli


def groups(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The argument paths of every command group under ``group``, itself included (``()``)."""
    found = [path]
    ctx = click.Context(group, info_name="gitml")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found.extend(groups(command, (*path, name)))
    return found


GROUPS = groups()


def test_the_walk_finds_every_group():
    assert {("runs",), ("registry",), ("artifacts",), ("index",), ("hooks",), ("remote",)} <= set(GROUPS)
    assert () in GROUPS  # `gitml` itself


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(("gitml", *p)))
def test_a_group_without_its_command_prints_its_help_and_exits_0(tmp_path, path):
    expected = gitml(tmp_path, *path, "--help")  # outside any repository: help needs none
    assert (expected.code, expected.err) == (0, "")
    assert expected.out.startswith(f"Usage: {' '.join(('gitml', *path))} [OPTIONS] COMMAND [ARGS]...\n")
    result = gitml(tmp_path, *path)
    assert (result.code, result.out, result.err) == (0, expected.out, "")


@pytest.mark.parametrize("path", [p for p in GROUPS if p], ids=lambda p: " ".join(("gitml", *p)))
def test_in_a_repository_and_under_minus_c_too(repo, tmp_path, path):
    expected = gitml(tmp_path, *path, "--help").out
    assert gitml(repo, *path).out == expected
    result = gitml(tmp_path, "-C", str(repo), *path)
    assert (result.code, result.out, result.err) == (0, expected, "")


@pytest.mark.parametrize("options", [["-C", "."], ["--debug"], ["-C", ".", "--debug"]])
def test_gitml_with_only_global_options_is_gitml_alone(repo, options):
    alone = gitml(repo)
    assert alone.code == 0 and alone.out.startswith("Usage: gitml [OPTIONS] COMMAND [ARGS]...\n")
    result = gitml(repo, *options)
    assert (result.code, result.out, result.err) == (0, alone.out, "")


def test_showing_a_groups_help_changes_nothing(repo):
    before = git(repo, "for-each-ref")
    for path in GROUPS:
        assert gitml(repo, *path).code == 0
    assert git(repo, "for-each-ref") == before
    assert not (repo / ".git" / "gitml").exists() and not (repo / "gitml.yaml").exists()


@pytest.mark.parametrize("args, pattern", [
    (["runs", "nope"], r"gitml: error: No such command 'nope'\. \(see `gitml runs --help`\)"),
    (["registry", "--nope"], r"gitml: error: No such option:? '?--nope'?\.? \(see `gitml registry --help`\)"),
    (["nope"], r"gitml: error: No such command 'nope'\. \(see `gitml --help`\)"),
    (["-C", "missing-dir", "runs"], r"gitml: error: Invalid value for -C: cannot change to missing-dir: "
                                    r"No such file or directory \(see `gitml --help`\)"),
])
def test_a_wrong_command_or_option_in_a_group_is_still_one_line_exit_2(repo, args, pattern):
    result = gitml(repo, *args)  # (click's wording of an unknown option changed across 8.x)
    assert (result.code, result.out) == (2, "")
    assert re.fullmatch(pattern + "\n", result.err), result.err
