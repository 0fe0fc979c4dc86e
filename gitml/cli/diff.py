"""``gitml diff`` and ``gitml compare``."""

from __future__ import annotations

import sys

import click

from gitml.cli.output import echo_json, echo_table, printable

MARK = {"improvement": "▲", "regression": "▼", "within-tolerance": "≈"}


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _pct(value) -> str:
    return "" if value is None else f"{value:+.2f}%"


def _side_line(label: str, side) -> str:
    run = side.run
    where = ""
    if side.kind == "rev":
        used = f" (run from {side.used_commit[:7]}, {side.distance} back)" if side.distance else ""
        where = f" commit {side.commit[:7]}{used}"
    dirty = " [dirty tree]" if run.source.get("dirty") else ""
    return printable(f"{label}: {side.spec}{where} run {run.id[:8]} {run.name}{dirty}")


def _filters(func):
    for option in reversed([
        click.option("--all", "show_all", is_flag=True, help="Show unchanged rows too."),
        click.option("--metrics-only", is_flag=True, help="Only metrics."),
        click.option("--params-only", is_flag=True, help="Only params."),
        click.option("-k", "--key", metavar="PATTERN", help="Only keys matching a glob (e.g. 'val_*')."),
        click.option("--md", "as_md", is_flag=True, help="GitHub-flavoured Markdown (PR comments)."),
        click.option("--json", "as_json", is_flag=True, help="JSON (stable, documented)."),
        click.option("--csv", "as_csv", is_flag=True, help="CSV."),
    ]):
        func = option(func)
    return func


def _render(result, labels: list[str], as_md: bool, as_json: bool, as_csv: bool) -> None:
    if as_json:
        echo_json(result.to_dict())
        return
    two = len(result.sides) == 2
    headers = ["kind", "name", *labels] + (["change", "change %"] if two else [])
    rows = []
    for row in result.rows:
        cells = [row.kind, row.key, *[_fmt(v) for v in row.values]]
        if two:
            mark = MARK.get(row.verdict or "", "")
            change = _fmt(row.change) if row.change is not None else row.status
            cells += [f"{change} {mark}".strip(), _pct(row.change_pct)]
            if not as_md and not as_csv and sys.stdout.isatty() and row.verdict in ("improvement", "regression"):
                cells[-2] = click.style(cells[-2], fg="green" if row.verdict == "improvement" else "red")
        rows.append(cells)
    if as_csv:
        echo_table(headers, rows, as_csv=True)
        return
    header = [_side_line(label, side) for label, side in zip(labels, result.sides, strict=True)]
    if result.same_commit:
        header.append(f"both sides are commit {result.sides[0].commit[:7]}")
    header += [f"note: {n}" for n in result.notes]
    if as_md:
        click.echo("\n".join(f"- {line}" for line in header) + "\n")
        click.echo(_markdown_table(headers, rows) if rows else "No param or metric changed.")
    else:
        click.echo("\n".join(header) + "\n")
        if rows:
            echo_table(headers, rows)
        else:
            click.echo("no param or metric changed")
    if result.code_stat:
        click.echo(("\n```\n" + result.code_stat + "```") if as_md else "\n" + result.code_stat.rstrip())


def _md_cell(value) -> str:
    # tabulate leaves a `|` inside a cell as it is, which would end the cell early; and a value
    # from a run record may hold a newline, which would start a forged row: escape both.
    return printable(str(value)).replace("|", "\\|")


def _markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured Markdown pipe table; cells are shown as given (no number parsing)."""
    from tabulate import tabulate

    return tabulate([[_md_cell(c) for c in row] for row in rows], headers=[_md_cell(h) for h in headers],
                    tablefmt="github", disable_numparse=True)


@click.command("diff")
@click.argument("a")
@click.argument("b", required=False)
@click.option("-e", "--experiment", help="Only runs of this experiment.")
@click.option("--select", metavar="HOW", help="latest (default), best:metrics.NAME, min:metrics.NAME, max:…")
@click.option("--max-depth", type=int, default=100, show_default=True,
              help="First-parent commits to walk back to find a run.")
@click.option("--code", is_flag=True, help="Add git diff --stat between the two source commits.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when a metric with a goal regresses (becoming NaN or missing counts).")
@_filters
def diff_cmd(a, b, experiment, select, max_depth, code, fail_on_regression, show_all, metrics_only,
             params_only, key, as_md, as_json, as_csv) -> None:
    """Params and metrics that changed between A and B (default HEAD).

    A and B are git revisions (branch, tag, HEAD~3, commit) or run ids; `A...B` compares B with
    the merge base of A and B. A revision wins over a run id; force either with rev: or run:.
    """
    from gitml.cli.context import workspace
    from gitml.core.errors import GateFailedError
    from gitml.diff import diff

    with workspace() as ws:
        result = diff(a, b, experiment=experiment, select=select, max_depth=max_depth, show_all=show_all,
                      metrics_only=metrics_only, params_only=params_only, key=key, code=code, repo=ws)
    _render(result, ["A", "B"], as_md, as_json, as_csv)
    if fail_on_regression and result.regressions:
        raise GateFailedError("regression beyond tolerance: " + ", ".join(r.key for r in result.regressions))


@click.command("compare")
@click.argument("runs", nargs=-1, required=True)
@_filters
def compare_cmd(runs, show_all, metrics_only, params_only, key, as_md, as_json, as_csv) -> None:
    """RUNS side by side, one column per run; only differing rows unless --all."""
    from gitml.cli.context import workspace
    from gitml.diff import compare

    with workspace() as ws:
        result = compare(list(runs), show_all=show_all, metrics_only=metrics_only, params_only=params_only,
                         key=key, repo=ws)
    _render(result, [s.run.id[:8] for s in result.sides], as_md, as_json, as_csv)
