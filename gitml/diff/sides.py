"""Turning what a user names (a revision or a run) into the run that stands for it.

Two errors, two meanings (docs/cli.md's exit codes):

- :class:`NoRunError` (exit 1): what was named is fine, but there is nothing to compare — a
  revision with no finished run on it or within ``max_depth`` first-parent ancestors, or no run
  there with the metric ``--select`` asks for. The pre-push gates treat it as "no run here".
- :class:`~gitml.core.errors.RunNotFoundError` (exit 2, bad input): a run id or prefix that
  names no run, or several — the same error as everywhere else a run id is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gitml.core.errors import BadInputError, NoRunError
from gitml.core.formats import Run
from gitml.core.ids import RUN_PREFIX_RE
from gitml.core.workspace import Workspace

DEFAULT_MAX_DEPTH = 100


@dataclass
class Side:
    """One side of a diff: what was asked for, and the run found for it.

    ``commit`` is the commit the revision names; ``used_commit`` the one whose run was taken
    (an ancestor when ``commit`` itself has none); both are None when a run was named directly.
    """

    spec: str
    run: Run
    kind: str  # "rev" or "run"
    commit: str | None = None
    used_commit: str | None = None
    distance: int = 0
    candidates: int = 1
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Selection:
    """How to pick one run among several: latest finished, or best/min/max of a metric."""

    how: str = "latest"  # latest | min | max | best
    key: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Selection:
        """Read ``--select``: ``latest`` (or None), ``best:metrics.NAME``, ``min:…`` or ``max:…``.

        Raises:
            BadInputError: anything else.
        """
        if not text or text == "latest":
            return cls()
        how, _, key = text.partition(":")
        if how not in ("best", "min", "max") or not key.startswith("metrics.") or len(key) <= 8:
            raise BadInputError(f"bad --select {text!r}", hint="use latest, best:metrics.NAME, min:… or max:…")
        return cls(how, key[len("metrics."):])


def _pick(runs: list[Run], selection: Selection, goals: dict, where: str = "") -> Run:
    if selection.how == "latest":
        return max(runs, key=lambda r: (r.end_time or "", r.start_time, r.id))
    how = selection.how
    if how == "best":
        goal = goals.get(selection.key)
        how = goal.direction if goal else "max"
    scored = [r for r in runs if selection.key in r.metrics and not math.isnan(r.metrics[selection.key])]
    if not scored:
        raise NoRunError(f"no run{where} has metric {selection.key!r}", hint="choose another --select")
    sign = 1 if how == "max" else -1
    return max(scored, key=lambda r: (sign * r.metrics[selection.key], r.end_time or ""))


def resolve_side(ws: Workspace, spec: str, experiment: str | None = None,
                 selection: Selection = Selection(), max_depth: int = DEFAULT_MAX_DEPTH,
                 goals: dict | None = None, commit: str | None = None) -> Side:
    """Find the run for ``spec``: ``run:<id>``, ``rev:<revision>``, or either (a revision wins).

    Args:
        ws: the workspace whose index and repository are read.
        spec: what the user named.
        experiment: only runs of this experiment stand for a revision.
        selection: how to choose among several runs of one commit.
        max_depth: how many first-parent ancestors to walk back for a commit with a run.
        goals: metric goals (``best:`` selection reads their directions).
        commit: the commit ``spec`` stands for, when the caller knows it (a pushed sha).

    Returns:
        The side, with notes when a run came from an ancestor.

    Raises:
        NoRunError: the revision has no finished run within ``max_depth`` first-parent steps, or
            no run there has the metric ``selection`` asks for (exit 1).
        RunNotFoundError: ``spec`` is a run id or prefix matching no run, or several (exit 2).
        CorruptRunError: the run named cannot be read.
        BadInputError: ``spec`` is empty, or neither a revision nor a run.
    """
    goals = goals or {}
    forced, _, rest = spec.partition(":") if spec.startswith(("run:", "rev:")) else ("", "", spec)
    if not rest:
        raise BadInputError(f"empty revision or run in {spec!r}")
    if commit is None and forced != "run":
        commit = ws.repo.rev_parse(rest)
    if commit is None:
        if forced == "rev" or not RUN_PREFIX_RE.match(rest.lower()):
            raise BadInputError(f"{spec!r} is neither a git revision nor a run id")
        return _run_side(ws, spec, rest)
    history = ws.repo.rev_list(commit, max_count=max_depth + 1, first_parent=True)
    found = ws.index.nearest_finished_runs(history, experiment)
    if found is not None:
        candidate, runs = found
        distance = history.index(candidate)
        chosen = _pick(runs, selection, goals, f" for {spec!r} at {candidate[:7]}")
        side = Side(spec, chosen, "rev", commit, candidate, distance, len(runs))
        if distance:
            side.notes.append(f"{spec}: no run at {commit[:7]}; used {candidate[:7]}, "
                              f"{distance} first-parent commit(s) back")
        return side
    where = f" in experiment {experiment!r}" if experiment else ""
    raise NoRunError(f"no finished run{where} for {spec!r} ({commit[:7]}) or its {max_depth} "
                     "first-parent ancestors", hint=ws.unpulled_hint(ask_remotes=False) or "commit a run there, or raise --max-depth")


def _run_side(ws: Workspace, spec: str, prefix: str) -> Side:
    # The workspace's answer: the same messages as everywhere, and `gitml pull` when the run
    # is named elsewhere (a registry tag, a fetched runs ref) but not pulled here.
    return Side(spec, ws.index.run(ws.resolve_run(prefix)), "run")
