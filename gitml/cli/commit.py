"""``gitml commit-run``."""

from __future__ import annotations

import click


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=what)
        out[key] = value
    return out


@click.command("commit-run")
@click.option("-n", "--name", help="Run name (default: a generated one).")
@click.option("-e", "--experiment", help="Experiment (default: gitml.yaml's, else 'default').")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter (repeatable).")
@click.option("-m", "--metric", "metrics", multiple=True, metavar="KEY=NUMBER", help="A metric (repeatable).")
@click.option("--params", "params_files", multiple=True, metavar="FILE", help="YAML/JSON file of params.")
@click.option("--metrics", "metrics_files", multiple=True, metavar="FILE", help="YAML/JSON file of metrics.")
@click.option("-a", "--artifact", "artifacts", multiple=True, metavar="PATH", help="File or directory to store.")
@click.option("-t", "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option("--status", default="FINISHED", show_default=True, help="FINISHED, FAILED or KILLED.")
@click.option("--message", help="A description stored with the run.")
@click.option("--command", "command", metavar="TEXT", help="The command that produced the run.")
@click.option("--require-clean", is_flag=True, help="Refuse when tracked files have uncommitted changes.")
@click.option("--resume", metavar="ID", help="Commit a run in progress (e.g. left by a killed process).")
def commit_run_cmd(name, experiment, params, metrics, params_files, metrics_files, artifacts, tags,
                   status, message, command, require_clean, resume) -> None:
    """Commit one complete run and print its id.

    With no params/metrics options, reads the files gitml.yaml names (params.yaml, metrics.json).

    \b
      python train.py && gitml commit-run -n rf-200 -e churn -a model.pkl
    """  # noqa: D301 - "\b" is click's mark for a paragraph it must not rewrap
    from gitml.api import commit_run
    from gitml.cli.context import path_arg, workspace
    from gitml.core.formats import parse_scalar

    metric_values = {}
    for key, text in _pairs(metrics, "--metric").items():
        value = parse_scalar(text)  # the one grammar of values written as text (docs/formats.md)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise click.BadParameter(f"metric {key!r} must be a number, got {shown!r}", param_hint="--metric")
        metric_values[key] = value
    with workspace() as ws:
        run = commit_run(
            name=name, experiment=experiment,
            params={k: parse_scalar(v) for k, v in _pairs(params, "--param").items()},
            metrics=metric_values, params_files=[path_arg(p) for p in params_files],
            metrics_files=[path_arg(m) for m in metrics_files], artifacts=[path_arg(a) for a in artifacts],
            tags=_pairs(tags, "--tag"), status=status, message=message, command=command,
            require_clean=require_clean, resume=resume, repo=ws,
        )
    click.echo(run.id)
    from gitml.cli.output import printable

    for warning in run.warnings:
        click.echo(f"gitml: warning: {printable(warning)}", err=True)
