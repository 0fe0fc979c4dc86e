"""Reading runs back: by id, by search, and deleting them.

Every function opens one :class:`~gitml.core.workspace.Workspace` (or uses the one given) and
asks its index; none of them speaks SQL (that is :mod:`gitml.core.index`'s).
"""

from __future__ import annotations

from typing import Any

from gitml.core import active, index, runsref
from gitml.core.errors import BadInputError, RunNotFoundError
from gitml.core.experiments import ID_RE as EXPERIMENT_ID_RE
from gitml.core.experiments import check_experiment_id
from gitml.core.filter import compile_query
from gitml.core.formats import Metric, Run, parse_history, parse_run
from gitml.core.gitrepo import GitRepo
from gitml.core.workspace import WorkspaceLike, open_workspace


def resolve_run_id(id_or_prefix: str, repo: WorkspaceLike = None) -> str:
    """The full id of the one run on the runs ref whose id starts with ``id_or_prefix``.

    Args:
        id_or_prefix: a run id, or a unique prefix of at least 4 hex characters.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The run's full 32-character id.

    Raises:
        BadInputError: the text is not a hex run id or prefix.
        RunNotFoundError: no run, or more than one, matches.
    """
    with open_workspace(repo) as ws:
        return ws.resolve_run(id_or_prefix)


def get_run(id_or_prefix: str, repo: WorkspaceLike = None) -> Run:
    """Read one run from the runs ref, with its metric history and patch.

    Args:
        id_or_prefix: a run id or unique prefix.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The run; ``source["commit_missing"]`` is True when its source commit is no longer in the
        repository.

    Raises:
        RunNotFoundError: unknown or ambiguous id.
        CorruptRunError: the run's files cannot be read as docs/formats.md says.
    """
    with open_workspace(repo) as ws:
        run_id = ws.resolve_run(id_or_prefix)
        git = ws.repo
        entry = runsref.run_entry(git, ws.runs_tip, run_id)
        if entry is None:
            raise RunNotFoundError(f"no run {run_id} on {runsref.RUNS_REF}")
        tree = entry[1] if entry[0] == runsref.TREE_MODE else runsref.BadEntry(
            entry[1], f"run {run_id}: a file where the run folder should be")
        files = runsref.read_run_files(git, tree, run_id=run_id)
        run = parse_run(run_id, files)
        if "history.tsv" in files:
            run.history, run.full_history = parse_history(run_id, files["history.tsv"])
        else:
            run.history = [
                _point(key, value, run.metric_info.get(key, {})) for key, value in run.metrics.items()
            ]
        _mark_missing_source(git, run)
        return run


def get_metric_history(run_id: str, key: str, repo: WorkspaceLike = None) -> list[Metric]:
    """Every logged point of one metric of a run, in logging order (MLflow's ``get_metric_history``).

    Args:
        run_id: a run id or unique prefix.
        key: the metric's key.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        :class:`~gitml.core.formats.Metric` points (``key``, ``value``, ``step``, ``timestamp``
        as ISO 8601 UTC); empty when the run never logged ``key``. A run whose history was
        downsampled when committed gives the kept points (its ``full_history`` names the rest).

    Raises:
        RunNotFoundError: no such run.
        BadInputError: ``key`` is not a valid metric key (not text, empty …).
        CorruptRunError: the run's files cannot be read.
    """
    from gitml.core.ids import check_key

    check_key(key, "metric key")
    return [point for point in get_run(run_id, repo=repo).history or [] if point.key == key]


def _point(key: str, value: float, info: dict[str, Any]) -> Metric:
    return Metric(key, value, int(info.get("step", 0)), str(info.get("timestamp", "")))


def _mark_missing_source(git: GitRepo, run: Run) -> None:
    """Flag a run whose source commit is gone (rebased away, say): it still shows, marked."""
    commit = run.source.get("commit")
    if commit and not git.has_object(commit):
        run.source["commit_missing"] = True


def search_runs(
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    experiment: str | list[str] | None = None,
    limit: int | None = None,
    repo: WorkspaceLike = None,
    *,
    max_results: int | None = None,
    experiment_ids: str | list[str] | None = None,
) -> list[Run]:
    """Find finished runs with MLflow's filter syntax, through the local query index.

    Each run found costs its index row only: its params, metrics, tags and source are decoded
    from the row on first use, so a search that matches thousands of runs and reads a few of
    them (or only their ids and times) pays for what it reads.

    Args:
        filter: e.g. ``"metrics.accuracy > 0.9 and params.model = 'rf'"`` (see docs/tracking.md).
        order_by: e.g. ``"metrics.accuracy DESC"`` or a list of such keys; default newest first.
        experiment: one experiment name or a list of them (an experiment's 32-hex id stands for
            its name).
        limit: at most this many runs (None or 0: all).
        repo: a Workspace, an open repository or a path inside one (default: the current directory).
        max_results: MLflow's name for ``limit``; give one or the other (or both equal).
        experiment_ids: experiment ids (or one), as MLflow's ``search_runs`` takes them; their
            runs are searched, with those of ``experiment`` when both are given.

    Returns:
        Runs without history or patch text (:func:`get_run` has those).

    Raises:
        BadInputError: a bad filter, sort key, experiment or limit, or ``limit`` and
            ``max_results`` that differ (nothing is read then).
        ExperimentNotFoundError: an id in ``experiment_ids`` is no experiment's.
    """
    given = [experiment] if isinstance(experiment, str) else experiment
    if isinstance(given, list) and any(isinstance(n, str) and EXPERIMENT_ID_RE.match(n) for n in given):
        from gitml.core.errors import ExperimentNotFoundError
        from gitml.tracking.experiments import get_experiment

        with open_workspace(repo) as ws:  # an experiment id (as `experiments list` shows it) stands for its name
            names = []
            for value in given:
                if isinstance(value, str) and EXPERIMENT_ID_RE.match(value):
                    try:
                        value = get_experiment(value, repo=ws).name
                    except ExperimentNotFoundError:
                        pass
                names.append(value)
        experiment = names
    if experiment_ids is not None:
        from gitml.tracking.experiments import get_experiment

        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        with open_workspace(repo) as ws:
            names = [get_experiment(check_experiment_id(i), repo=ws).name for i in ids]
        given = [experiment] if isinstance(experiment, str) else list(experiment or [])
        experiment = [*given, *names]
        if not experiment:
            return []  # MLflow: no experiment, no runs
    if max_results is not None:
        try:
            compile_query(limit=max_results)
        except BadInputError as exc:
            raise BadInputError(exc.message.replace("bad limit", "bad max_results", 1), hint=exc.hint) from None
        if limit is not None and limit != max_results:
            raise BadInputError(f"limit={limit!r} and max_results={max_results!r} differ: give one of them")
        limit = max_results
    query = compile_query(filter, order_by, experiment, limit)
    with open_workspace(repo) as ws:
        return ws.index.search(query)


def search_warnings(
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    repo: WorkspaceLike = None,
) -> list[str]:
    """What a search's filter and sort keys name that no run has, as warnings to show.

    A mistyped key (``metrics.acc`` where runs log ``accuracy``) is not an error, since a key
    may simply not be logged yet, but it matches nothing: this says so, with the nearest key.

    Args:
        filter: as for :func:`search_runs`.
        order_by: as for :func:`search_runs`.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        One message per metric, param or tag no run has, e.g.
        ``no run has metric 'acc' (did you mean 'accuracy'?)``; empty when there is none, or
        when the repository has no run yet.

    Raises:
        BadInputError: a bad filter or sort key (nothing is read then).
    """
    query = compile_query(filter, order_by)
    with open_workspace(repo) as ws:
        return ws.index.unknown_keys(query)


def corrupt_runs(repo: WorkspaceLike = None) -> list[tuple[str, str]]:
    """Entries on the runs ref that cannot be read.

    Args:
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        ``(run id or entry, problem)`` pairs, by id.
    """
    with open_workspace(repo) as ws:
        return ws.index.corrupt_runs()


def count_runs(repo: WorkspaceLike = None) -> int:
    """How many readable runs the runs ref holds.

    Args:
        repo: a Workspace, an open repository or a path inside one (default: the current directory).
    """
    with open_workspace(repo) as ws:
        return ws.index.count()


def delete_run(id_or_prefix: str, repo: WorkspaceLike = None) -> str:
    """Remove a run from the runs ref with a new commit (history keeps it).

    Works whatever state the run's files are in: nothing of them is read. A malformed entry
    that is not a run (``runs/ab``, ``runs/ab/<name>``, as ``gitml runs list`` reports it) is
    removed by giving that path.

    Args:
        id_or_prefix: a run id or unique prefix, or a malformed entry's path.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The id (or entry) removed.

    Raises:
        RunNotFoundError: no run (or malformed entry) matches.
        ConcurrencyError: the runs ref kept moving past the retry bound.
    """
    with open_workspace(repo) as ws:
        if id_or_prefix.startswith("runs/"):
            key = _bad_entry_key(ws.repo, id_or_prefix)
            runsref.commit_runs(ws.repo, {key: None}, f"delete malformed entry {runsref.display_key(key)}")
            return runsref.display_key(key)
        run_id = ws.resolve_run(id_or_prefix)
        tip = runsref.commit_runs(ws.repo, {run_id: None}, f"delete run {run_id}")
        parents = ws.repo.read_commit(tip)[1]
        index.record_written(ws.repo, parents[0] if parents else None, tip, [], removed=[run_id])
        return run_id


def _bad_entry_key(git: GitRepo, shown: str) -> str:
    """The key of the malformed entry shown as ``shown`` on the runs ref."""
    bad: dict[str, str] = {}
    list(runsref.iter_run_trees(git, git.ref(runsref.RUNS_REF), bad))
    for key in bad:
        if runsref.display_key(key) == shown and key.startswith("runs/"):
            return key
    raise RunNotFoundError(f"no malformed entry {shown!r} on {runsref.RUNS_REF}",
                           hint="give a run id, or an entry exactly as `gitml runs list` reports it")


def list_active_runs(repo: WorkspaceLike = None) -> list[dict[str, Any]]:
    """Runs in progress in this repository.

    Args:
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        One mapping per run, in id order (see :func:`gitml.core.active.list_active`): its
        meta (id, name, experiment, start_time, host, pid …) with ``alive`` (True, False when
        its process is gone, None when it runs on another host) and ``commit_failed``.
    """
    with open_workspace(repo) as ws:
        return active.list_active(ws.gitml_dir)


def rebuild_index(repo: WorkspaceLike = None) -> int:
    """Throw the query index away and rebuild it from the runs ref.

    Args:
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The number of readable runs indexed.
    """
    with open_workspace(repo) as ws:
        return ws.index.rebuild()


def write_lookup_maps(repo: WorkspaceLike = None) -> int | None:
    """Add the lookup maps to a runs ref that has none (written before them, or by plain git).

    One commit on ``refs/gitml/runs`` that changes no run; from then on every write keeps the
    maps, and a fresh clone answers ``gitml diff`` and ``gitml runs list`` without rebuilding
    the query index (docs/formats.md, "Lookup maps"). Push it to share it.

    Args:
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The number of runs entered, or None when the maps were already there (or there are
        no runs): nothing was written.

    Raises:
        ConcurrencyError: other writers kept the ref busy.
    """
    from gitml.core import runsref

    with open_workspace(repo) as ws:
        return runsref.write_maps(ws.repo)
