"""``gitml init`` and ``gitml demo``."""

from __future__ import annotations

import click


@click.command("init")
def init_cmd() -> None:
    """Write a commented gitml.yaml and add non-forced fetch refspecs for the runs ref."""
    from gitml.api import init
    from gitml.cli.context import workspace

    with workspace() as ws:
        lines = init(ws)
    for line in lines:
        click.echo(line)


@click.command("demo")
@click.argument("directory", default="gitml-demo", required=False)
def demo_cmd(directory: str) -> None:
    """Create DIRECTORY (default gitml-demo): a git repo, a training script and a few runs."""
    from gitml.api import demo
    from gitml.cli.context import path_arg
    from gitml.cli.runs import render_runs

    path, runs = demo(path_arg(directory))
    click.echo(f"Created {path} with {len(runs)} runs; models pushed to .storage/; the best one is "
               f"toy-classifier v0.0.1 in prod.\n"
               f"Try: cd {path} && gitml diff main more-epochs && gitml registry show\n")
    render_runs(runs)
