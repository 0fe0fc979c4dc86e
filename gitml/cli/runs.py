"""``gitml runs …`` and ``gitml index …``."""

from __future__ import annotations

from collections import Counter

import click

from gitml.cli.output import echo_json, echo_table, output_options
from gitml.core.errors import BadInputError

KEY_METRICS = 4


def _when(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ")


def _commit(source: dict) -> str:
    """Short sha; ``*`` marks a dirty tree, ``?`` a commit no longer in the repository."""
    commit = (source.get("commit") or "")[:7] or "-"
    return commit + ("*" if source.get("dirty") else "") + ("?" if source.get("commit_missing") else "")


def _warn_corrupt(corrupt: list[tuple[str, str]]) -> None:
    from gitml.cli.output import printable

    for _, message in corrupt:
        click.echo(f"gitml: warning: {printable(message)}", err=True)


@click.group("runs")
def runs_group() -> None:
    """List, show, search and delete runs."""


@runs_group.command("list")
@click.option("-e", "--experiment", multiple=True, help="Only this experiment (repeatable).")
@click.option("-f", "--filter", "filter_", metavar="EXPR", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\".")
@click.option("-o", "--order-by", multiple=True, metavar="KEY [DESC]", help="Sort key (repeatable).")
@click.option("-n", "--limit", type=int, default=50, show_default=True, help="At most N runs (0: all).")
@click.option("--active", is_flag=True, help="List runs in progress instead.")
@click.option("--columns", metavar="KEYS", help="Columns after id and name: params.lr,metrics.loss,tags.team; "
              "globs too ('params.*'); attributes by name (status, started, commit …).")
@click.option("--tree", is_flag=True, help="Show nested runs under their parent (tags.mlflow.parentRunId).")
@output_options
def list_cmd(experiment, filter_, order_by, limit, active, columns, tree, as_json, as_csv) -> None:
    """A table of runs, newest first."""
    from gitml.cli.context import workspace
    from gitml.tracking import query

    with workspace() as ws:
        if active:
            _list_active(query.list_active_runs(repo=ws), as_json, as_csv)
            return
        runs = query.search_runs(filter_, list(order_by) or None, list(experiment) or None, limit or None, repo=ws)
        # The newest runs of a fresh clone come from the runs ref's maps, before any index
        # exists; which runs are unreadable is known once the index is built (any search).
        corrupt = query.corrupt_runs(repo=ws) if ws.index.current() else sorted(ws.index.skipped.items())
        pull = ws.unpulled_hint() if not runs else None  # runs this clone lacks: say `gitml pull`
        unknown = query.search_warnings(filter_, list(order_by) or None, repo=ws)
    _warn_corrupt(corrupt + ([("", pull)] if pull else []))
    _warn_corrupt([("", note) for note in unknown])  # keys no run has, with "did you mean …?"
    depth = None
    if tree:
        runs, depth = nest(runs)
    render_runs(runs, as_json, as_csv, columns=_columns(columns, runs) if columns else None, depth=depth)


ATTRIBUTES = {
    "id": lambda run: run.id, "name": lambda run: run.name, "experiment": lambda run: run.experiment,
    "status": lambda run: run.status, "started": lambda run: _when(run.start_time),
    "ended": lambda run: _when(run.end_time), "commit": lambda run: _commit(run.source),
    "branch": lambda run: run.source.get("branch") or "", "user": lambda run: run.user or "",
}
PARENT_TAG = "mlflow.parentRunId"


def _columns(spec: str, runs: list) -> list[str]:
    """The columns ``--columns`` names, globs expanded over the keys these runs have.

    A key no listed run has (or a glob that matches none) is a warning on stderr; its column
    stays, empty. A key may be quoted in backticks, as in filters (``metrics.`val loss```).

    Raises:
        BadInputError: an entry that is neither an attribute nor ``params.``/``metrics.``/``tags.``
            followed by a key or glob.
    """
    import fnmatch

    chosen: list[str] = []
    unknown: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if item in ATTRIBUTES:
            chosen.append(item)
            continue
        kind, dot, pattern = item.partition(".")
        if kind not in ("params", "metrics", "tags") or not dot or not pattern:
            raise BadInputError(f"--columns: {item!r} is not params.KEY, metrics.KEY, tags.KEY or one of "
                                f"{', '.join(ATTRIBUTES)}")
        if len(pattern) > 1 and pattern[0] == pattern[-1] == "`":  # metrics.`val loss`, as in filters
            pattern = pattern[1:-1]
        keys = {key for run in runs for key in getattr(run, kind)}
        if any(ch in pattern for ch in "*?["):
            matched = [f"{kind}.{key}" for key in sorted(keys) if fnmatch.fnmatchcase(key, pattern)]
            if not matched and runs:
                unknown.append(f"--columns: no run listed has a {kind[:-1]} matching {pattern!r}")
            chosen += matched
        else:
            if pattern not in keys and runs:
                unknown.append(f"--columns: no run listed has {kind[:-1]} {pattern!r}")
            chosen.append(f"{kind}.{pattern}")
    _warn_corrupt([("", note) for note in unknown])
    return [column for column in dict.fromkeys(chosen) if column not in ("id", "name")]


def _cell_of(run, column: str):
    if column in ATTRIBUTES:
        return ATTRIBUTES[column](run)
    kind, _, key = column.partition(".")
    return getattr(run, kind).get(key)


def nest(runs: list) -> tuple[list, list[int]]:
    """``runs`` ordered as a tree: each run followed by its children (``tags.mlflow.parentRunId``).

    Siblings keep their order; a run whose parent is not among ``runs`` stays at the top.

    Returns:
        The runs in tree order and each one's depth (0 at the top).
    """
    present = {run.id for run in runs}
    children: dict[str, list] = {}
    roots = []
    for run in runs:
        parent = run.tags.get(PARENT_TAG)
        if parent in present and parent != run.id:
            children.setdefault(parent, []).append(run)
        else:
            roots.append(run)
    ordered, depths, seen = [], [], set()

    def visit(run, depth: int) -> None:
        if run.id in seen:  # a cycle of parent tags: each run once
            return
        seen.add(run.id)
        ordered.append(run)
        depths.append(depth)
        for child in children.get(run.id, []):
            visit(child, depth + 1)

    for run in roots:
        visit(run, 0)
    for run in runs:  # runs only reachable through a cycle
        visit(run, 0)
    return ordered, depths


def _tree_prefixes(depth: list[int]) -> list[str]:
    """The drawing before each name of a ``--tree`` listing, in one pass each way.

    ``├ `` marks a child with a later sibling, ``└ `` the last child, and ``│ `` stands under
    each ancestor that has a later sibling.
    """
    later = [False] * len(depth)
    seen: dict[int, bool] = {}  # walking back: a row at this level since the last shallower one
    for i in range(len(depth) - 1, -1, -1):
        level = depth[i]
        later[i] = seen.get(level, False)
        seen = {k: v for k, v in seen.items() if k < level}
        seen[level] = True
    out = []
    ancestors: dict[int, int] = {}  # level -> the last row at it
    for i, level in enumerate(depth):
        ancestors[level] = i
        if level == 0:
            out.append("")
            continue
        bars = "".join("│ " if later[ancestors[k]] else "  " for k in range(1, level))
        out.append(bars + ("├ " if later[i] else "└ "))
    return out


def render_runs(runs: list, as_json: bool = False, as_csv: bool = False, columns: list[str] | None = None,
                depth: list[int] | None = None) -> None:
    """Print runs as the ``runs list`` table (short id … up to four common metrics), JSON or CSV.

    Args:
        runs: the runs, in the order to show.
        as_json: print JSON (every field; ``columns`` and ``depth`` do not apply).
        as_csv: print CSV.
        columns: the columns after id and name (default: experiment, status, started, commit,
            branch and the four most common metrics).
        depth: each run's depth in a ``--tree`` listing (names are indented by it).
    """
    if as_json:
        echo_json([run.to_dict() for run in runs])
        return
    if columns is None:
        counts = Counter(key for run in runs for key in run.metrics)
        keys = sorted(k for k, _ in counts.most_common(KEY_METRICS))
        columns = ["experiment", "status", "started", "commit", "branch", *(f"metrics.{k}" for k in keys)]
        labels = [column.removeprefix("metrics.") for column in columns]
    else:
        labels = columns
    prefixes = _tree_prefixes(depth or [0] * len(runs))
    rows = [
        [run.id[:8], prefix + run.name, *[_cell_of(run, column) for column in columns]]
        for run, prefix in zip(runs, prefixes, strict=True)
    ]
    echo_table(["id", "name", *labels], rows, as_csv, keep_spaces=depth is not None)


def _list_active(found: list[dict], as_json: bool, as_csv: bool) -> None:
    if as_json:
        echo_json(found)
        return
    state = {True: "RUNNING", False: "KILLED?", None: "elsewhere"}
    rows = [[m["id"][:8], m["name"], m["experiment"],
             "COMMIT FAILED" if m.get("commit_failed") else state[m["alive"]], _when(m["start_time"]),
             m.get("host"), m.get("pid")] for m in found]
    echo_table(["id", "name", "experiment", "state", "started", "host", "pid"], rows, as_csv)


@runs_group.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Write JSON with the metric history.")
@click.option("--metric", "metric", metavar="KEY", help="Only this metric's series: step, value, time, and a sparkline.")
@click.option("--csv", "as_csv", is_flag=True, help="With --metric: the series as CSV (step,value,timestamp).")
def show_cmd(run: str, as_json: bool, metric: str | None, as_csv: bool) -> None:
    """Everything about one run (id or unique prefix)."""
    from gitml.cli.context import workspace
    from gitml.tracking.query import get_run

    if as_csv and not metric:
        raise BadInputError("--csv goes with --metric KEY (the run itself: --json)")
    if as_csv and as_json:
        raise BadInputError("--json and --csv: choose one")
    with workspace() as ws:
        found = get_run(run, repo=ws)
    if metric is not None:
        _show_series(found, metric, as_json, as_csv)
        return
    if as_json:
        echo_json(found.to_dict(history=True))
        return
    from gitml.core.urls import mask_text

    source = found.source
    lines = [
        f"run        {found.id}",
        f"name       {found.name}",
        f"experiment {found.experiment}",
        f"status     {found.status}",
        f"started    {found.start_time}",
        f"ended      {found.end_time or ''}",
        f"user       {found.user or ''}",
        f"commit     {source.get('commit') or '(none: ' + source.get('note', 'no commit') + ')'}"
        + ("  (no longer in this repository)" if source.get("commit_missing") else ""),
        f"branch     {source.get('branch') or ''}",
        f"dirty      {'yes (patch.diff recorded)' if source.get('dirty') else 'no'}",
        f"remote     {mask_text(str(source.get('remote') or ''))}",  # a record from elsewhere may hold one
        f"command    {mask_text(str(found.command or ''))}",
    ]
    if found.description:
        lines.append(f"message    {found.description}")
    from gitml.cli.output import printable

    click.echo("\n".join(printable(line) for line in lines))
    _section("params", [[k, v] for k, v in sorted(found.params.items())], ["param", "value"])
    _section("metrics", _metric_rows(found), ["metric", "value", "step", "points", "min", "max"])
    _section("tags", [[k, v] for k, v in sorted(found.tags.items())], ["tag", "value"])
    _section("inputs", [[context, name, str(entry.get("digest"))[:12], entry.get("source_type"),
                         entry.get("source") or "", entry.get("num_rows")]
                        for context, named in sorted(found.inputs.items()) for name, entry in sorted(named.items())],
             ["context", "dataset", "digest", "type", "source", "rows"])
    _section("artifacts", [[p, e.get("kind"), e.get("size"), str(e.get("sha256", ""))[:12]]
                           for p, e in sorted(found.artifacts.items())], ["artifact", "kind", "size", "sha256"])


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 60) -> str:
    """One line of block characters for ``values`` (at most ``width``, evenly sampled); NaN is a space."""
    import math

    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return " " * len(values)
    low, high = min(finite), max(finite)
    span = (high / 2 - low / 2) or 1.0  # halves: 1e308 - (-1e308) would overflow to inf

    def level(v: float) -> int:
        return max(0, min(len(SPARKS) - 1, int((v / 2 - low / 2) / span * len(SPARKS))))

    return "".join(SPARKS[level(v)] if math.isfinite(v) else " " for v in values)


def _show_series(run, key: str, as_json: bool, as_csv: bool) -> None:
    """``runs show RUN --metric KEY``: the points, as a table with a sparkline, CSV or JSON."""
    points = [point for point in run.history or [] if point.key == key]
    if not points:
        known = ", ".join(sorted({point.key for point in run.history or []})) or "none"
        raise BadInputError(f"run {run.id[:8]} has no metric {key!r} (it has: {known})")
    if as_json:
        echo_json([{"step": p.step, "value": run_value(p.value), "timestamp": p.timestamp} for p in points])
        return
    rows = [[p.step, p.value, p.timestamp] for p in points]
    if as_csv:
        echo_table(["step", "value", "timestamp"], rows, as_csv=True)
        return
    from gitml.cli.output import printable

    click.echo(printable(f"{key}  {len(points)} points  {sparkline([p.value for p in points])}"))
    echo_table(["step", "value", "timestamp"], rows)


def run_value(value: float) -> float | str:
    """A metric value for JSON: NaN and infinities as the strings ``nan``, ``inf``, ``-inf``."""
    import math

    return value if math.isfinite(value) else str(value)


def _metric_rows(run) -> list[list]:
    series: dict[str, list[float]] = {}
    for point in run.history or []:
        series.setdefault(point.key, []).append(point.value)
    rows = []
    for key, value in sorted(run.metrics.items()):
        values = series.get(key, [value])
        numbers = [v for v in values if v == v] or [float("nan")]  # NaN points have no order: left out
        rows.append([key, value, run.metric_info.get(key, {}).get("step"), len(values), min(numbers), max(numbers)])
    return rows


def _section(title: str, rows: list, headers: list[str]) -> None:
    if rows:
        click.echo("")
        echo_table(headers, rows)


@runs_group.command("delete")
@click.argument("run")
def delete_cmd(run: str) -> None:
    """Remove a run from the runs ref (a new commit; history keeps it)."""
    from gitml.cli.context import workspace
    from gitml.tracking.query import delete_run

    with workspace() as ws:
        click.echo(delete_run(run, repo=ws))


@runs_group.command("tag")
@click.argument("run")
@click.argument("tags", nargs=-1, metavar="KEY=VALUE...")
@click.option("-d", "--delete", "delete", multiple=True, metavar="KEY", help="Remove this tag (repeatable).")
def tag_cmd(run: str, tags: tuple[str, ...], delete: tuple[str, ...]) -> None:
    """Set (or with -d remove) tags of a finished run: one commit per tag, touching that run only."""
    from gitml.cli.context import workspace
    from gitml.tracking import edit

    pairs = []
    for item in tags:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadInputError(f"tags are KEY=VALUE, not {item!r}")
        pairs.append((key, value))
    if not pairs and not delete:
        raise BadInputError("nothing to do: give KEY=VALUE tags or -d KEY")
    delete = tuple(dict.fromkeys(delete))  # -d a -d a removes it once
    both = sorted({key for key, _ in pairs} & set(delete))
    if both:
        raise BadInputError(f"tag {both[0]!r} is both set and removed: choose one")
    from gitml.core.ids import check_key

    for key in [key for key, _ in pairs] + list(delete):  # every key checked before the first commit
        check_key(key, "tag key")
    with workspace() as ws:
        from gitml.tracking.query import get_run

        tags = get_run(run, repo=ws).tags  # a run that does not exist fails before any edit
        missing = [key for key in delete if key not in tags and key not in dict(pairs)]
        if missing:
            raise BadInputError(f"run {run} has no tag {missing[0]!r}")
        for key, value in pairs:
            edited = edit.set_tag(run, key, value, repo=ws)
        for key in delete:
            edited = edit.delete_tag(run, key, repo=ws)
    click.echo(edited.id)


@runs_group.command("rename")
@click.argument("run")
@click.argument("name")
def rename_cmd(run: str, name: str) -> None:
    """Give a finished run a new name (one commit)."""
    from gitml.cli.context import workspace
    from gitml.tracking import edit

    with workspace() as ws:
        click.echo(edit.rename_run(run, name, repo=ws).id)


@runs_group.command("describe")
@click.argument("run")
@click.argument("text")
def describe_cmd(run: str, text: str) -> None:
    """Set a run's description ("" removes it; one commit)."""
    from gitml.cli.context import workspace
    from gitml.tracking import edit

    with workspace() as ws:
        click.echo(edit.set_description(run, text, repo=ws).id)


@runs_group.command("history")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Write JSON (one object per commit).")
def history_cmd(run: str, as_json: bool) -> None:
    """What changed in a run, commit by commit, oldest first (from git log of the runs ref)."""
    import json

    from gitml.cli.context import workspace
    from gitml.cli.output import printable
    from gitml.tracking import edit

    with workspace() as ws:
        history = edit.run_history(run, repo=ws)
    if as_json:
        click.echo(json.dumps(history, indent=2, default=str))
        return
    for entry in history:
        click.echo(f"{entry['commit'][:10]}  {entry['time']}  {printable(entry['message'])}")
        for change in entry["changes"]:
            name = change["field"] + (f".{change['key']}" if change["key"] is not None else "")
            click.echo(printable(f"    {name}: {_shown(change['old'])} -> {_shown(change['new'])}"))


def _shown(value: object) -> str:
    return "(none)" if value is None else repr(value) if isinstance(value, str) else str(value)


@click.group("index")
def index_group() -> None:
    """Maintain the local query index (a cache of refs/gitml/runs)."""


@index_group.command("rebuild")
def rebuild_cmd() -> None:
    """Rebuild the index from the runs ref and print the number of runs."""
    from gitml.cli.context import workspace
    from gitml.tracking.query import rebuild_index

    with workspace() as ws:
        click.echo(rebuild_index(repo=ws))


@index_group.command("maps")
def maps_cmd() -> None:
    """Add the runs ref's lookup maps when it has none, so fresh clones answer at once."""
    from gitml.cli.context import workspace
    from gitml.tracking.query import write_lookup_maps

    with workspace() as ws:
        entered = write_lookup_maps(repo=ws)
    if entered is None:
        click.echo("the runs ref already has its lookup maps (or no runs): nothing written")
    else:
        click.echo(f"lookup maps written for {entered} runs; `gitml push` shares them")
