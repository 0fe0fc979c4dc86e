"""``gitml hooks …`` and ``gitml check``."""

from __future__ import annotations

import sys

import click


@click.group("hooks")
def hooks_group() -> None:
    """Install or run gitml's pre-push hook."""


@hooks_group.command("install")
@click.option("--force", is_flag=True, help="Replace an existing pre-push hook instead of chaining it.")
def install_cmd(force) -> None:
    """Install the pre-push hook (an existing one is kept and runs first)."""
    from gitml.cli.context import workspace
    from gitml.hooks import install

    with workspace() as ws:
        lines = install(force=force, repo=ws)
    for line in lines:
        click.echo(line)


@hooks_group.command("uninstall")
def uninstall_cmd() -> None:
    """Remove gitml's pre-push hook (restoring a chained one)."""
    from gitml.cli.context import workspace
    from gitml.hooks import uninstall

    with workspace() as ws:
        lines = uninstall(repo=ws)
    for line in lines:
        click.echo(line)


@hooks_group.command("pre-push", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def pre_push_cmd(args) -> None:
    """What git's pre-push hook runs: REMOTE URL, git's ref lines on stdin."""
    from gitml.cli.prepush import run_pre_push

    sys.exit(run_pre_push(list(args)))


@click.command("check")
@click.argument("revs", nargs=-1)
@click.option("--remote", help="The git remote to check against (default: the branch's, else origin).")
def check_cmd(revs, remote) -> None:
    """Run the pre-push checks without pushing (for CI); exit 1 on any problem."""
    from gitml.cli.context import workspace
    from gitml.core.errors import GitmlError
    from gitml.hooks import check

    with workspace() as ws:
        result = check(list(revs) or None, remote=remote, repo=ws)
    for line in result.warnings:
        click.echo(f"warning: {line}")
    for line in result.problems:
        click.echo(f"problem: {line}")
    click.echo(f"{len(result.runs)} run(s), {len(result.tags)} registry tag(s) checked")
    if result.problems:
        raise GitmlError(f"{len(result.problems)} problem(s)")
