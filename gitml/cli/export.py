"""``gitml export …``: send this repository's runs and registry to another tracker."""

from __future__ import annotations

import click

from gitml.cli.interop import _Bar
from gitml.cli.output import echo_json, printable
from gitml.core.store import human_size


@click.group("export")
def export_group() -> None:
    """Export runs, experiments, artifacts and registered models to another tracker."""


@export_group.command("mlflow")
@click.argument("dest")
@click.option("-e", "--experiment", "experiments", multiple=True, metavar="NAME",
              help="Export only this experiment (repeatable; default: every one).")
@click.option("--since", default=None, metavar="TIME",
              help="Only runs started at or after TIME (ISO 8601: 2026-01-31 or 2026-01-31T12:00:00Z).")
@click.option("--dry-run", is_flag=True, help="Say what would be exported; write nothing.")
@click.option("--no-registry", is_flag=True, help="Leave the registry out.")
@click.option("--artifact-root", default=None, metavar="PATH|URI",
              help="Where a database store keeps artifacts (default for sqlite: mlartifacts/ beside the file).")
@click.option("--json", "as_json", is_flag=True, help="Write the summary as JSON.")
def mlflow_cmd(dest: str, experiments: tuple[str, ...], since: str | None, dry_run: bool, no_registry: bool,
               artifact_root: str | None, as_json: bool) -> None:
    """Export to MLflow: a database (sqlite:///mlflow.db), an mlruns/ folder or a server's http:// URL.

    Needs MLflow installed beside gitml (pip install 'gitml[mlflow]'). Runs keep their ids in a
    database or folder; a server gives new ids and each run carries its own in the tag
    gitml_run_id. A second export writes nothing new.
    """
    from gitml.cli.context import path_arg, workspace
    from gitml.interop.exporter import export_mlflow
    from gitml.interop.importer import parse_since

    if "://" not in dest and dest.strip():  # a blank DEST is refused by export_mlflow, not read as "."
        dest = str(path_arg(dest))
    elif dest.startswith("sqlite:///") and not dest.startswith("sqlite:////"):
        dest = "sqlite:///" + str(path_arg(dest[len("sqlite:///"):]))
    since_ms = parse_since(since) if since else None
    _quiet_mlflow()
    bar = _Bar("export")
    try:
        with workspace() as ws:
            summary = export_mlflow(dest, experiments=list(experiments) or None, since=since_ms, dry_run=dry_run,
                                    registry=not no_registry, repo=ws, progress=bar,
                                    artifact_root=str(path_arg(artifact_root)) if artifact_root and "://" not in
                                    artifact_root else artifact_root)
    finally:
        bar.close()
    if as_json:
        echo_json(summary.to_dict())
        return
    verb = "would export" if dry_run else "exported"
    lines = [f"{verb} {summary.runs} runs ({summary.points} metric points, {summary.artifacts} artifacts, "
             f"{human_size(summary.bytes)}) to {dest}"]
    if summary.present:
        lines.append(f"already there: {summary.present} runs")
    if summary.versions or summary.aliases:
        lines.append(f"{verb} {summary.versions} model versions, {summary.aliases} aliases")
    if summary.skipped:
        lines.append(f"skipped {len(summary.skipped)}:")
        lines.extend(f"  {what}: {why}" for what, why in summary.skipped)
    click.echo("\n".join(printable(line) for line in lines))


def _quiet_mlflow() -> None:
    """MLflow logs its database set-up at INFO on stderr; a successful export leaves stderr empty."""
    import logging

    try:
        import mlflow  # noqa: F401 - its import configures its loggers; ours come after
    except ImportError:
        return  # export_mlflow says how to install it
    for name in ["mlflow", *logging.root.manager.loggerDict]:
        if name == "mlflow" or name.startswith("mlflow.") or name.startswith("alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
