"""Turning what a user names (a revision or a run) into the run that stands for it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gitml.core import index
from gitml.core.errors import BadInputError, CorruptRunError, GitmlError, RunNotFoundError
from gitml.core.formats import Run
from gitml.core.gitrepo import GitRepo
from gitml.core.ids import RUN_PREFIX_RE

DEFAULT_MAX_DEPTH = 100


class NoRunError(GitmlError):
    """A side of a diff has no run in reach (exit 1)."""


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


def _finished_runs_at(conn, commits: list[str], experiment: str | None) -> dict[str, list[Run]]:
    """The finished runs of the nearest commit (in ``commits`` order) that has any."""
    extra, extra_params = (" AND experiment = ?", [experiment]) if experiment else ("", [])
    having: set[str] = set()
    for start in range(0, len(commits), 500):
        chunk = commits[start : start + 500]
        sql = (f"SELECT DISTINCT source_commit FROM runs WHERE status = 'FINISHED' AND source_commit IN "  # noqa: S608
               f"({','.join('?' * len(chunk))}){extra}")
        having.update(row[0] for row in conn.execute(sql, [*chunk, *extra_params]))
    nearest = next((c for c in commits if c in having), None)
    if nearest is None:
        return {}
    sql = f"SELECT doc FROM runs WHERE status = 'FINISHED' AND source_commit = ?{extra}"  # noqa: S608
    return {nearest: index.iter_docs(conn, sql, [nearest, *extra_params])}


def _rev_commit(git: GitRepo, spec: str) -> str | None:
    return git.rev_parse(spec)


def resolve_side(git: GitRepo, conn, spec: str, experiment: str | None = None,
                 selection: Selection = Selection(), max_depth: int = DEFAULT_MAX_DEPTH,
                 goals: dict | None = None, commit: str | None = None) -> Side:
    """Find the run for ``spec``: ``run:<id>``, ``rev:<revision>``, or either (a revision wins).

    Raises:
        NoRunError: the revision has no finished run within ``max_depth`` first-parent steps.
        BadInputError: ``spec`` is neither a revision nor a run.
    """
    goals = goals or {}
    forced, _, rest = spec.partition(":") if spec.startswith(("run:", "rev:")) else ("", "", spec)
    if not rest:
        raise BadInputError(f"empty revision or run in {spec!r}")
    if commit is None and forced != "run":
        commit = _rev_commit(git, rest)
    if commit is None:
        if forced == "rev" or not RUN_PREFIX_RE.match(rest.lower()):
            raise BadInputError(f"{spec!r} is neither a git revision nor a run id")
        return _run_side(git, conn, spec, rest)
    history = git.rev_list(commit, max_count=max_depth + 1, first_parent=True)
    runs = _finished_runs_at(conn, history, experiment)
    for distance, candidate in enumerate(history):
        if candidate in runs:
            chosen = _pick(runs[candidate], selection, goals, f" for {spec!r} at {candidate[:7]}")
            side = Side(spec, chosen, "rev", commit, candidate, distance, len(runs[candidate]))
            if distance:
                side.notes.append(f"{spec}: no run at {commit[:7]}; used {candidate[:7]}, "
                                  f"{distance} first-parent commit(s) back")
            return side
    where = f" in experiment {experiment!r}" if experiment else ""
    raise NoRunError(f"no finished run{where} for {spec!r} ({commit[:7]}) or its {max_depth} "
                     "first-parent ancestors", hint="commit a run there, or raise --max-depth")


def _run_side(git: GitRepo, conn, spec: str, prefix: str) -> Side:
    matches = index.ids_with_prefix(conn, prefix.lower())
    if len(matches) != 1:
        what = "no run" if not matches else "more than one run"
        raise RunNotFoundError(f"{what} matches {spec!r}")
    row = conn.execute("SELECT doc FROM runs WHERE id = ?", (matches[0],)).fetchone()
    if row is None:  # listed only among the runs that cannot be read
        problem = conn.execute("SELECT message FROM corrupt WHERE run_id = ?", (matches[0],)).fetchone()
        raise CorruptRunError(matches[0], problem[0] if problem else "cannot be read")
    return Side(spec, index.run_from_doc(row[0]), "run")
