"""``gitml import …``: bring another tracker's history into this repository (``export`` comes next)."""

from __future__ import annotations

import sys

import click

from gitml.cli.output import echo_json, printable
from gitml.core.store import human_size


@click.group("import")
def import_group() -> None:
    """Import runs, experiments, artifacts and registered models from another tracker."""


class _Bar:
    """A tqdm bar of runs done, on a terminal only."""

    def __init__(self, desc: str = "import") -> None:
        self.bar = None
        self.desc = desc

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if not sys.stderr.isatty():
                return
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="run", desc=self.desc, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@import_group.command("mlflow")
@click.argument("source")
@click.option("-e", "--experiment", "experiments", multiple=True, metavar="NAME",
              help="Import only this experiment (repeatable; default: every active one).")
@click.option("--since", default=None, metavar="TIME",
              help="Only runs started at or after TIME (ISO 8601: 2026-01-31 or 2026-01-31T12:00:00Z).")
@click.option("--dry-run", is_flag=True, help="Read and check everything, write nothing; say what would be imported.")
@click.option("--artifact-root", default=None, metavar="PATH",
              help="Folder that relative artifact locations are read from (sqlite), and that artifacts "
                   "may be read from besides the store's own.")
@click.option("--no-registry", is_flag=True, help="Leave registered models out.")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=500, show_default=True,
              help="Runs per commit on the runs ref.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes reading a file or sqlite store [default: one per core from 400 runs on].")
@click.option("--json", "as_json", is_flag=True, help="Write the summary as JSON (stable, documented).")
def mlflow_cmd(source: str, experiments: tuple[str, ...], since: str | None, dry_run: bool,
               artifact_root: str | None, no_registry: bool, batch_size: int, jobs: int | None,
               as_json: bool) -> None:
    """Import an MLflow store: an mlruns/ folder, sqlite:///mlflow.db or a server's http:// URL.

    Runs keep their MLflow ids; a second import writes nothing new, an interrupted one resumes.
    """
    from gitml.cli.context import path_arg, workspace
    from gitml.interop.importer import import_mlflow

    if "://" not in source:
        source = str(path_arg(source))
    elif source.startswith("sqlite:///") and not source.startswith("sqlite:////"):
        source = "sqlite:///" + str(path_arg(source[len("sqlite:///"):]))
    root = str(path_arg(artifact_root)) if artifact_root else None
    bar = _Bar()
    try:
        with workspace() as ws:
            summary = import_mlflow(source, experiments=experiments, since=since, dry_run=dry_run,
                                    artifact_root=root, registry=not no_registry, batch_size=batch_size,
                                    progress=bar, repo=ws, jobs=jobs)
    finally:
        bar.close()
    if as_json:
        echo_json(summary.to_dict())
        return
    verb = "would import" if dry_run else "imported"
    commits = len(summary.commits)
    lines = [f"{verb} {summary.imported} runs ({summary.points} metric points, {summary.artifacts} artifacts, "
             f"{human_size(summary.artifact_bytes)}) from {summary.source}"
             + ("" if dry_run else f" in {commits} commit{'s' if commits != 1 else ''}")]
    if summary.experiments:
        lines.append(f"{'would create' if dry_run else 'created'} experiments: {', '.join(summary.experiments)}")
    if summary.unchanged:
        lines.append(f"already imported, unchanged: {summary.unchanged} runs")
    if summary.older:
        lines.append(f"started before --since: {summary.older} runs")
    if summary.registry:
        lines.append(f"{'would tag' if dry_run else 'tagged'}: {', '.join(summary.registry)}")
    skipped = summary.skipped + summary.registry_skipped
    if skipped:
        lines.append(f"skipped {len(skipped)}:")
        lines.extend(f"  {what}: {why}" for what, why in skipped)
    click.echo("\n".join(printable(line) for line in lines))
