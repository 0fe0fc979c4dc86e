"""Param and metric differences between two sides (``diff``) or N runs (``compare``).

Both open one :class:`~gitml.core.workspace.Workspace` (or use the one given) and read runs
through its index; the diff service imports only :mod:`gitml.core`.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any

from gitml.core.config import Goal, load_config_at
from gitml.core.errors import BadInputError
from gitml.core.formats import Run
from gitml.core.workspace import Workspace, WorkspaceLike, open_workspace
from gitml.diff.sides import DEFAULT_MAX_DEPTH, Selection, Side, resolve_side

MISSING = None


@dataclass
class Row:
    """One param or metric across the sides. ``status``: same, changed, added or removed.

    ``verdict`` is ``improvement``, ``regression`` or None (no goal declared, not numeric,
    or unchanged); a regression within the goal's tolerance is ``within-tolerance``. A metric
    with a goal that becomes NaN, or is removed, is a ``regression``.
    """

    kind: str  # "param" or "metric"
    key: str
    values: list[Any]
    status: str
    change: float | None = None
    change_pct: float | None = None
    verdict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data: NaN and infinities as the strings ``"nan"``, ``"inf"``."""

        def clean(value):
            if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
                return str(value)
            return value

        return {"kind": self.kind, "key": self.key, "values": [clean(v) for v in self.values],
                "status": self.status, "change": clean(self.change), "change_pct": clean(self.change_pct),
                "verdict": self.verdict}


@dataclass
class DiffResult:
    """What ``gitml.diff`` returns; the CLI renders it as a table, Markdown, JSON or CSV."""

    sides: list[Side]
    rows: list[Row]
    same_commit: bool = False
    notes: list[str] = field(default_factory=list)
    code_stat: str | None = None

    @property
    def regressions(self) -> list[Row]:
        """The rows whose verdict is ``regression``: what ``--fail-on-regression`` fails on."""
        return [r for r in self.rows if r.verdict == "regression"]

    def to_dict(self) -> dict[str, Any]:
        """The result as ``gitml diff --json`` prints it (docs/diff.md, "JSON")."""
        return {
            "sides": [_side_dict(s) for s in self.sides],
            "same_commit": self.same_commit,
            "notes": self.notes,
            "rows": [r.to_dict() for r in self.rows],
            "regressions": [r.key for r in self.regressions],
            "code_stat": self.code_stat,
        }


def _side_dict(side: Side) -> dict[str, Any]:
    return {"spec": side.spec, "kind": side.kind, "commit": side.commit, "used_commit": side.used_commit,
            "distance": side.distance, "run_id": side.run.id, "run_name": side.run.name,
            "experiment": side.run.experiment, "dirty": bool(side.run.source.get("dirty")),
            "source_commit": side.run.source.get("commit")}


def _equal(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        # Python compares an int and a float exactly, whatever their size: no conversion here.
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    """The value as a float, or None: not a number, or an int beyond a float's range."""
    if not _is_number(value):
        return None
    try:
        return float(value)
    except OverflowError:  # an int past 1.8e308 has no float: its change is not computed
        return None


def _change(old: int | float, new: int | float) -> float | None:
    """``new - old`` as a float; exact for two ints, None when it is beyond a float's range."""
    if isinstance(old, int) and isinstance(new, int):
        try:
            return float(new - old)
        except OverflowError:
            return None
    first, second = _number(old), _number(new)
    return None if first is None or second is None else second - first


def _verdict(goal: Goal | None, old: float, new: float) -> str | None:
    """Improvement, regression or within-tolerance of a metric with a goal going ``old`` -> ``new``.

    NaN is the worst value there is: a number becoming NaN is a regression whatever the goal's
    direction, and NaN becoming a number an improvement, unless that number is the goal's own worst
    infinity (``-inf`` for ``max``), which is still broken: a regression. Infinities otherwise
    compare as numbers, and no finite tolerance covers an infinite move the wrong way.
    """
    if goal is None or (math.isnan(old) and math.isnan(new)) or old == new:
        return None
    worst = -math.inf if goal.direction == "max" else math.inf
    if math.isnan(new):
        return "regression"
    if math.isnan(old):
        return "regression" if new == worst else "improvement"
    change = new - old
    if change > 0 if goal.direction == "max" else change < 0:
        return "improvement"
    if math.isinf(change):
        return "regression"
    allowed = goal.tolerance * abs(old) if goal.relative else goal.tolerance
    slack = 1e-9 * max(abs(old), abs(change), 1.0)  # 0.30 -> 0.32 with tolerance 0.02 is within it
    return "within-tolerance" if abs(change) <= allowed + slack else "regression"


def build_rows(runs: list[Run], goals: dict[str, Goal], kinds: tuple[str, ...] = ("param", "metric"),
               key_pattern: str | None = None, show_all: bool = False) -> list[Row]:
    """Rows for every key of the runs; with two runs, the change from the first to the second.

    Args:
        runs: the runs compared, one column each.
        goals: metric goals by name (``gitml.yaml``'s ``metrics:``), for verdicts.
        kinds: ``"param"`` and/or ``"metric"`` rows.
        key_pattern: only keys matching this glob.
        show_all: keep rows whose values are the same everywhere.

    Returns:
        Params first, then metrics, each by key; a verdict only on a metric with a goal
        compared across exactly two runs.
    """
    rows = []
    for kind in kinds:
        values_of = [(r.params if kind == "param" else r.metrics) for r in runs]
        keys = sorted(set().union(*[v.keys() for v in values_of]))
        for key in keys:
            if key_pattern and not fnmatch.fnmatchcase(key, key_pattern):
                continue
            values = [v.get(key, MISSING) for v in values_of]
            present = [key in v for v in values_of]
            if all(present):
                status = "same" if all(_equal(values[0], v) for v in values[1:]) else "changed"
            elif len(runs) == 2:
                status = "added" if present[1] else "removed"
            else:
                status = "changed"
            if status == "same" and not show_all:
                continue
            row = Row(kind, key, values, status)
            if len(runs) == 2 and status == "removed" and kind == "metric" and key in goals:
                row.verdict = "regression"  # the metric the goal watches is gone: nothing shows it held
            if len(runs) == 2 and status == "changed" and _is_number(values[0]) and _is_number(values[1]):
                row.change = _change(values[0], values[1])
                old, new = _number(values[0]), _number(values[1])
                if row.change is not None and old is not None and new is not None:
                    finite = all(math.isfinite(v) for v in (old, new, row.change))
                    if old and finite:
                        row.change_pct = row.change / abs(old) * 100
                if kind == "metric" and old is not None and new is not None:  # metrics are floats
                    row.verdict = _verdict(goals.get(key), old, new)
            rows.append(row)
    return rows


def _kinds(metrics_only: bool, params_only: bool) -> tuple[str, ...]:
    if metrics_only and params_only:
        raise BadInputError("--metrics-only and --params-only exclude each other")
    return ("metric",) if metrics_only else ("param",) if params_only else ("param", "metric")


def diff(a: str, b: str | None = None, experiment: str | None = None, select: str | None = None,
         max_depth: int = DEFAULT_MAX_DEPTH, show_all: bool = False, metrics_only: bool = False,
         params_only: bool = False, key: str | None = None, code: bool = False,
         repo: WorkspaceLike = None) -> DiffResult:
    """Compare the runs behind two revisions or run ids (``b`` defaults to HEAD).

    ``a`` may be ``X...Y``: Y against the merge base of X and Y, as in git. A revision stands for
    the latest finished run whose source commit it is (or its nearest first-parent ancestor's);
    ``select`` and ``experiment`` choose otherwise. Prefix a side with ``run:`` or ``rev:`` to
    say which it is; unprefixed, a revision wins. Metric goals come from ``gitml.yaml`` as it is
    at side A (the merge base for ``X...Y``), so a branch cannot loosen what it is judged by.

    Args:
        a: side A (a revision, a run id or prefix, or ``X...Y``).
        b: side B (default HEAD; not with ``X...Y``).
        experiment: only runs of this experiment stand for a revision.
        select: ``latest`` (default), ``best:metrics.NAME``, ``min:metrics.NAME`` or ``max:…``.
        max_depth: first-parent commits to walk back from a revision to find a run.
        show_all: keep unchanged rows.
        metrics_only: only metric rows.
        params_only: only param rows.
        key: only keys matching this glob.
        code: add ``git diff --stat`` between the two runs' source commits.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The two sides, the rows that changed (all with ``show_all``) and notes.

    Raises:
        NoRunError: a revision has no run in reach, or none with the ``select`` metric (exit 1).
        RunNotFoundError: a run id or prefix matches no run, or several (exit 2).
        BadInputError: a side is neither a revision nor a run; a bad ``select``,
            ``max_depth`` or ``X...Y``; both metrics_only and params_only.
    """
    if max_depth < 0:
        raise BadInputError("--max-depth must be >= 0")
    selection = Selection.parse(select)
    kinds = _kinds(metrics_only, params_only)
    with open_workspace(repo) as ws:
        specs, base = _specs(ws, a, b)
        goals = _base_goals(ws, specs[0], base)
        sides = [resolve_side(ws, specs[0], experiment, selection, max_depth, goals, base),
                 resolve_side(ws, specs[1], experiment, selection, max_depth, goals)]
        result = DiffResult(sides, build_rows([s.run for s in sides], goals, kinds, key, show_all))
        for side in sides:
            result.notes.extend(side.notes)
            if side.run.source.get("dirty"):
                result.notes.append(f"{side.spec}: run {side.run.id[:8]} was made on a dirty work tree")
            if side.candidates > 1:
                result.notes.append(f"{side.spec}: {side.candidates} runs at {side.used_commit[:7]}; "
                                    f"took {side.run.name} ({selection.how})")
        if experiment is None and sides[0].run.experiment != sides[1].run.experiment:
            result.notes.append(f"the runs are of different experiments ({sides[0].run.experiment!r} and "
                                f"{sides[1].run.experiment!r}): pick one (--experiment) to compare like with like")
        result.same_commit = bool(sides[0].commit) and sides[0].commit == sides[1].commit
        commits = [s.run.source.get("commit") for s in sides]
        if code and all(commits) and commits[0] != commits[1]:
            result.code_stat = ws.repo.diff_stat(commits[0], commits[1])
        return result


def _base_goals(ws: Workspace, spec: str, base: str | None) -> dict:
    """The metric goals of ``gitml.yaml`` as it is at side A (the merge base of ``A...B``).

    A branch cannot loosen the goals it is judged by. The work tree's file counts when side A is
    a run or its commit has no ``gitml.yaml``.
    """
    commit = base
    if commit is None and not spec.startswith("run:"):
        commit = ws.repo.rev_parse(spec.removeprefix("rev:"))
    config = load_config_at(ws.repo, commit) if commit else None
    return (config or ws.config).goals


def _specs(ws: Workspace, a: str, b: str | None) -> tuple[list[str], str | None]:
    if "..." in a:
        if b is not None:
            raise BadInputError("give either A...B or two sides, not both")
        left, _, right = a.partition("...")
        left, right = left or "HEAD", right or "HEAD"
        for side in (left, right):
            if ws.repo.rev_parse(side) is None:
                raise BadInputError(f"{side!r} in {a!r} is not a git revision",
                                    hint="A...B takes two revisions (branches, tags, commits)")
        base = ws.repo.merge_base(left, right)
        if base is None:
            raise BadInputError(f"no merge base between {left!r} and {right!r}")
        return [f"merge-base({left},{right})", right], base
    return [a, b or "HEAD"], None


def compare(runs: list[str], show_all: bool = False, metrics_only: bool = False,
            params_only: bool = False, key: str | None = None, repo: WorkspaceLike = None) -> DiffResult:
    """N runs side by side, one column per run; only differing rows unless ``show_all``.

    Args:
        runs: at least two run ids or prefixes (``run:`` optional).
        show_all: keep unchanged rows.
        metrics_only: only metric rows.
        params_only: only param rows.
        key: only keys matching this glob.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        One side per run and the rows; verdicts only with two runs (goals from the work tree's
        ``gitml.yaml``).

    Raises:
        RunNotFoundError: a run id or prefix matches no run, or several (exit 2).
        CorruptRunError: a run cannot be read.
        BadInputError: fewer than two runs, or both metrics_only and params_only.
    """
    if len(runs) < 2:
        raise BadInputError("compare needs at least two runs")
    kinds = _kinds(metrics_only, params_only)
    with open_workspace(repo) as ws:
        goals = ws.config.goals
        sides = [resolve_side(ws, r if r.startswith("run:") else f"run:{r}") for r in runs]
        return DiffResult(sides, build_rows([s.run for s in sides], goals, kinds, key, show_all))
