"""``gitml push``, ``gitml pull``, ``gitml fetch``."""

from __future__ import annotations

import click


def _report(result, verb: str) -> None:
    for tag in result.diverged:
        click.echo(f"gitml: warning: registry tag {tag} differs from {result.remote}'s copy; yours is kept "
                   "(see 'Registry tags that collide' in docs/sync.md)", err=True)
    parts = [f"{verb} {result.remote}"]
    if result.uploaded:
        parts.append(f"{result.uploaded} artifact object(s) uploaded")
    if result.merged:
        parts.append(f"{result.merged} run(s) merged from the remote")
    if result.tags:
        parts.append(f"{len(result.tags)} registry tag(s)")
    click.echo(", ".join(parts))


@click.command("push")
@click.argument("remote", required=False)
@click.option("-r", "--artifacts-remote", help="Artifact remote (default: the default one).")
def push_cmd(remote, artifacts_remote) -> None:
    """Upload artifacts, then push the runs ref and registry tags to REMOTE (never forced)."""
    from gitml.cli.context import workspace
    from gitml.sync import push

    with workspace() as ws:
        _report(push(remote, artifacts_remote=artifacts_remote, repo=ws), "pushed to")


@click.command("pull")
@click.argument("remote", required=False)
@click.option("--exclude-bad", is_flag=True,
              help="Merge the runs that pass validation and leave out (remove) those that don't.")
def pull_cmd(remote, exclude_bad) -> None:
    """Fetch REMOTE's runs and registry tags and merge its runs into yours.

    Incoming runs are validated first; any that fail stop the merge, naming them.
    """
    from gitml.cli.context import workspace
    from gitml.cli.output import printable
    from gitml.sync import pull

    with workspace() as ws:
        result = pull(remote, exclude_bad=exclude_bad, repo=ws)
    for problem in result.excluded.values():
        click.echo(f"gitml: warning: left out: {printable(problem)}", err=True)
    _report(result, "pulled from")


@click.command("fetch")
@click.argument("remote", required=False)
def fetch_cmd(remote) -> None:
    """Bring REMOTE's runs ref to refs/gitml/remotes/REMOTE/runs, and its tags."""
    from gitml.cli.context import workspace
    from gitml.sync import fetch

    with workspace() as ws:
        _report(fetch(remote, repo=ws), "fetched from")
