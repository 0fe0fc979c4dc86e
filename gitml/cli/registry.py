"""``gitml registry …``."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from gitml.cli.context import workspace
from gitml.cli.output import echo_json, echo_table


@click.group("registry")
def registry_group() -> None:
    """Register model versions and move them through stages (annotated git tags, GTO's grammar)."""


def _version_options(func):
    func = click.option("--bump-major", "bump", flag_value="major", help="Bump the major version.")(func)
    func = click.option("--bump-minor", "bump", flag_value="minor", help="Bump the minor version.")(func)
    return click.option("--version", "version", metavar="vX.Y.Z", help="An explicit version (semver, e.g. v1.0.0-rc.1).")(func)


@registry_group.command("register")
@click.argument("model")
@click.option("--run", "run", required=True, help="Run id or prefix whose artifact is the model.")
@click.option("--path", help="The run's artifact path (needed when the run has several).")
@_version_options
@click.option("-m", "--message", help="Tag message (first line) and description.")
def register_cmd(model, run, path, version, bump, message) -> None:
    """Register RUN's artifact as the next version of MODEL; print the tag."""
    from gitml.registry import register_model

    if version and bump:
        raise click.UsageError("--version and --bump-* exclude each other")
    with workspace() as ws:
        done = register_model(model, run, path=path, version=version, bump_part=bump or "patch", message=message,
                              repo=ws)
    _warn(done.warnings)
    click.echo(done.tag)


def _warn(warnings: list[str]) -> None:
    from gitml.cli.output import printable

    for warning in warnings:
        click.echo(f"gitml: warning: {printable(warning)}", err=True)


def _stage_command(name: str, doc: str):
    @registry_group.command(name, help=doc)
    @click.argument("model")
    @click.option("--version", "version", required=True, metavar="vX.Y.Z", help="The version.")
    @click.option("--stage", required=True, help="The stage (e.g. prod).")
    @click.option("-m", "--message", help="Tag message.")
    def command(model, version, stage, message) -> None:
        from gitml import registry

        with workspace() as ws:
            done = getattr(registry, name)(model, version, stage, message=message, repo=ws)
        click.echo(done.tag)

    return command


assign_cmd = _stage_command("assign", "Put VERSION of MODEL in STAGE; print the tag.")
unassign_cmd = _stage_command("unassign", "Take STAGE away from VERSION of MODEL; print the tag.")


@registry_group.command("deregister")
@click.argument("model")
@click.option("--version", "version", required=True, metavar="vX.Y.Z", help="The version.")
@click.option("-m", "--message", help="Tag message.")
def deregister_cmd(model, version, message) -> None:
    """Withdraw VERSION of MODEL (its history stays); print the tag."""
    from gitml.registry import deregister

    with workspace() as ws:
        done = deregister(model, version, message=message, repo=ws)
    click.echo(done.tag)


@registry_group.command("deprecate")
@click.argument("model")
@click.option("-m", "--message", help="Tag message.")
def deprecate_cmd(model, message) -> None:
    """Deprecate MODEL as a whole; print the tag."""
    from gitml.registry import deprecate

    with workspace() as ws:
        done = deprecate(model, message=message, repo=ws)
    click.echo(done.tag)


@registry_group.command("show")
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True, help="Write JSON.")
def show_cmd(model, as_json) -> None:
    """Models, their latest version, and which version each stage holds now.

    Tags that look like versions but are not semver (churn@v1.2) are named on stderr.
    """
    from gitml.cli.output import printable
    from gitml.registry import overview, problems, show

    with workspace() as ws:
        found = overview(repo=ws) if model is None else None  # every model: one listing, a cached summary
        for problem in found.problems if found else problems(model, repo=ws):
            click.echo(f"gitml: warning: {printable(problem)}", err=True)
        models = found.models if found else show(model, repo=ws)
    if as_json:
        echo_json([m.to_dict() for m in models])
        return
    if model is None:
        stages = sorted({s for m in models for s in m.stages})
        rows = [[m.name + (" (deprecated)" if m.deprecated else ""), m.latest or "",
                 *[m.stages.get(s, "") for s in stages]] for m in models]
        echo_table(["model", "latest", *stages], rows)
        return
    (found,) = models
    rows = [[v, "yes" if i.deregistered else "", ", ".join(i.stages), (i.run_id or "")[:8], i.path or "",
             i.commit[:7]] for v, i in found.to_versions()]
    echo_table(["version", "deregistered", "stages", "run", "path", "commit"], rows)


def _when(stamp) -> str:
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if stamp else ""


@registry_group.command("history")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Write JSON.")
def history_cmd(model, as_json) -> None:
    """Every event of MODEL, oldest first: who, when, what."""
    from dataclasses import asdict

    from gitml.registry import history

    with workspace() as ws:
        events = history(model, repo=ws)
    if as_json:
        echo_json([asdict(e) for e in events])
        return
    echo_table(["when (UTC)", "event", "version", "stage", "by", "message"],
               [[_when(e.time), e.kind, e.version or "", e.stage or "", e.tagger or "", e.title] for e in events])


@registry_group.command("which")
@click.argument("ref", metavar="MODEL@STAGE|MODEL@latest|MODEL@vX.Y.Z")
@click.option("--json", "as_json", is_flag=True, help="Write JSON.")
def which_cmd(ref, as_json) -> None:
    """Print the version, run id and artifact URI a reference resolves to (for CI scripts)."""
    from gitml.registry import which

    with workspace() as ws:
        found = which(ref, repo=ws)
    if as_json:
        echo_json(found.to_dict())
        return
    click.echo(f"{found.version}\t{found.run or ''}\t{found.uri or ''}")
