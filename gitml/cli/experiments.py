"""``gitml experiments …``: list, show, create, rename, tag and describe experiments."""

from __future__ import annotations

import click

from gitml.cli.output import echo_json, echo_table, output_options, printable
from gitml.core.errors import BadInputError


@click.group("experiments")
def experiments_group() -> None:
    """List, show, create, rename, tag and describe experiments."""


def _when(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ")


@experiments_group.command("list")
@click.option("-f", "--filter", "filter_", default=None,
              help="MLflow experiment filter, e.g. \"name LIKE 'churn%' AND tags.team = 'ml'\".")
@click.option("-o", "--order-by", "order_by", multiple=True,
              help="Sort key: name, experiment_id, creation_time or last_update_time, "
                   "then ASC or DESC (repeatable; default newest first).")
@click.option("-n", "--limit", type=click.IntRange(min=0), default=0, help="At most this many (0: all).")
@output_options
def list_cmd(filter_: str | None, order_by: tuple[str, ...], limit: int | None, as_json: bool, as_csv: bool) -> None:
    """A table of experiments: recorded ones and those only runs name."""
    from gitml.cli.context import workspace
    from gitml.tracking.experiments import search_experiments

    problems: dict[str, str] = {}
    with workspace() as ws:
        found = search_experiments(filter_, list(order_by) or None, limit or None, repo=ws, problems=problems)
    from gitml.tracking.experiments import DUPLICATE

    for key, message in problems.items():
        skipped = "" if key.startswith(DUPLICATE) else "skipped "
        click.echo(f"gitml: warning: {skipped}{printable(message)}", err=True)
    if as_json:
        echo_json([exp.to_dict() for exp in found])
        return
    rows = [[exp.experiment_id[:8], exp.name, exp.run_count, _when(exp.creation_time),
             _when(exp.last_update_time), "" if exp.recorded else "(runs only)",
             (exp.description or "").splitlines()[0][:60] if exp.description else ""] for exp in found]
    echo_table(["id", "name", "runs", "created", "updated", "record", "description"], rows, as_csv)


@experiments_group.command("show")
@click.argument("experiment")
@click.option("--json", "as_json", is_flag=True, help="Write JSON (stable, documented).")
def show_cmd(experiment: str, as_json: bool) -> None:
    """One experiment: id, name, runs, times, description and tags."""
    from gitml.cli.context import workspace
    from gitml.tracking.experiments import get_experiment

    with workspace() as ws:
        exp = get_experiment(experiment, repo=ws)
    if as_json:
        echo_json(exp.to_dict())
        return
    lines = [f"experiment {exp.experiment_id}", f"name       {exp.name}", f"runs       {exp.run_count}",
             f"created    {exp.creation_time or '-'}", f"updated    {exp.last_update_time or '-'}"]
    if not exp.recorded:
        lines.append("record     none yet (known from its runs; tagging or describing it writes one)")
    if exp.description:
        lines += ["", *("    " + line for line in exp.description.splitlines())]
    tags = {k: v for k, v in exp.tags.items() if k != "mlflow.note.content"}
    if tags:
        lines += ["", "tags:", *(f"  {key} = {value}" for key, value in sorted(tags.items()))]
    click.echo("\n".join(printable(line) if i else line for i, line in enumerate(lines)))


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadInputError(f"tags are KEY=VALUE, not {item!r}")
        pairs[key] = value
    return pairs


@experiments_group.command("create")
@click.argument("name")
@click.option("-t", "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option("-d", "--description", default=None, help="Free text describing the experiment.")
def create_cmd(name: str, tags: tuple[str, ...], description: str | None) -> None:
    """Record a new experiment; print its id."""
    from gitml.cli.context import workspace
    from gitml.tracking.experiments import create_experiment

    with workspace() as ws:
        click.echo(create_experiment(name, tags=_pairs(tags), description=description, repo=ws))


@experiments_group.command("rename")
@click.argument("experiment")
@click.argument("new_name")
def rename_cmd(experiment: str, new_name: str) -> None:
    """Rename an experiment and its runs in one commit (the id stays)."""
    from gitml.cli.context import workspace
    from gitml.tracking.experiments import get_experiment, rename_experiment
    from gitml.tracking.query import list_active_runs

    with workspace() as ws:
        old = get_experiment(experiment, repo=ws).name
        exp = rename_experiment(experiment, new_name, repo=ws)
        running = [m["id"] for m in list_active_runs(repo=ws) if m.get("experiment") == old and m.get("alive")]
    click.echo(f"{exp.experiment_id} {printable(exp.name)} ({exp.run_count} runs)")
    for run_id in running:
        click.echo(f"gitml: warning: run {run_id[:8]} is in progress under {printable(old)!r}: it will list "
                   f"there once it ends; run this rename again then to move it", err=True)


@experiments_group.command("set-tag")
@click.argument("experiment")
@click.argument("tags", nargs=-1, metavar="KEY=VALUE...")
@click.option("-d", "--delete", "delete", multiple=True, metavar="KEY", help="Remove this tag (repeatable).")
def set_tag_cmd(experiment: str, tags: tuple[str, ...], delete: tuple[str, ...]) -> None:
    """Set (or with -d remove) tags of an experiment: one commit for all the tags given."""
    from gitml.cli.context import workspace
    from gitml.core.ids import check_key
    from gitml.tracking.experiments import delete_experiment_tag, get_experiment, set_experiment_tags

    pairs = _pairs(tags)
    if not pairs and not delete:
        raise BadInputError("nothing to do: give KEY=VALUE tags or -d KEY")
    delete = tuple(dict.fromkeys(delete))  # -d a -d a removes it once
    both = sorted(set(pairs) & set(delete))
    if both:
        raise BadInputError(f"tag {both[0]!r} is both set and removed: choose one")
    for key in [*pairs, *delete]:  # every key checked before the first commit
        check_key(key, "tag key")
    with workspace() as ws:
        exp = get_experiment(experiment, repo=ws)  # one that does not exist fails before any write
        missing = [key for key in delete if key not in exp.tags and key not in pairs]
        if missing:
            raise BadInputError(f"experiment {exp.name!r} has no tag {missing[0]!r}")
        if pairs:
            exp = set_experiment_tags(pairs, exp.experiment_id, repo=ws)
        for key in delete:
            exp = delete_experiment_tag(key, exp.experiment_id, repo=ws)
    click.echo(exp.experiment_id)


@experiments_group.command("describe")
@click.argument("experiment")
@click.argument("text")
def describe_cmd(experiment: str, text: str) -> None:
    """Set an experiment's description (an empty TEXT clears it)."""
    from gitml.cli.context import workspace
    from gitml.tracking.experiments import set_experiment_description

    with workspace() as ws:
        click.echo(set_experiment_description(text, experiment, repo=ws).experiment_id)
