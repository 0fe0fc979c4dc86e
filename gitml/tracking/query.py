"""Reading runs back: by id, by search, and deleting them."""

from __future__ import annotations

from typing import Any

from gitml.core import active, index, runsref
from gitml.core.errors import RunNotFoundError
from gitml.core.filter import compile_filter, compile_order_by
from gitml.core.formats import Metric, Run, parse_history, parse_run
from gitml.core.gitrepo import GitRepo, RepoLike, open_repo
from gitml.core.ids import check_run_prefix


def resolve_run_id(id_or_prefix: str, repo: RepoLike = None) -> str:
    """The full id of the one run on the runs ref whose id starts with ``id_or_prefix``.

    Raises:
        RunNotFoundError: no run, or more than one, matches.
    """
    prefix = check_run_prefix(id_or_prefix)
    with open_repo(repo) as git:
        if len(prefix) == 32:
            if runsref.run_entry(git, git.ref(runsref.RUNS_REF), prefix):
                return prefix
            raise RunNotFoundError(f"no run {prefix} on {runsref.RUNS_REF}")
        conn = index.open_index(git)
        try:
            matches = index.ids_with_prefix(conn, prefix)
        finally:
            conn.close()
    if not matches:
        raise RunNotFoundError(f"no run matches {id_or_prefix!r}", hint="see `gitml runs list`")
    if len(matches) > 1:
        raise RunNotFoundError(
            f"run prefix {id_or_prefix!r} is ambiguous ({', '.join(matches)}{', ...' if len(matches) > 2 else ''})",
            hint="give more characters",
        )
    return matches[0]


def get_run(id_or_prefix: str, repo: RepoLike = None) -> Run:
    """Read one run from the runs ref, with its metric history and patch.

    Raises:
        RunNotFoundError: unknown or ambiguous id.
        CorruptRunError: the run's files cannot be read as docs/formats.md says.
    """
    with open_repo(repo) as git:
        run_id = resolve_run_id(id_or_prefix, git)
        entry = runsref.run_entry(git, git.ref(runsref.RUNS_REF), run_id)
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
    repo: RepoLike = None,
) -> list[Run]:
    """Find finished runs with MLflow's filter syntax, through the local query index.

    Args:
        filter: e.g. ``"metrics.accuracy > 0.9 and params.model = 'rf'"``.
        order_by: e.g. ``"metrics.accuracy DESC"`` or a list of such keys; default newest first.
        experiment: one experiment name or a list of them.
        limit: at most this many runs.
        repo: a path inside the repository.

    Returns:
        Runs without history or patch text (:func:`get_run` has those).
    """
    where, params = compile_filter(filter or "")
    order, order_params = compile_order_by(order_by)
    clauses = [f"({where})"]
    if experiment:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        clauses.append(f"r.experiment IN ({','.join('?' * len(names))})")
        params = [*params, *names]
    sql = f"SELECT r.doc FROM runs r WHERE {' AND '.join(clauses)} ORDER BY {order}"  # noqa: S608
    params = [*params, *order_params]
    if limit is not None and limit > 0:
        sql += " LIMIT ?"
        params.append(int(limit))
    with open_repo(repo) as git:
        conn = index.open_index(git)
        try:
            runs = index.iter_docs(conn, sql, params)
        finally:
            conn.close()
        for run in runs:
            _mark_missing_source(git, run)
        return runs


def corrupt_runs(repo: RepoLike = None) -> list[tuple[str, str]]:
    """``(run id, problem)`` for every run on the ref whose files cannot be read."""
    with open_repo(repo) as git:
        conn = index.open_index(git)
        try:
            return index.corrupt_runs(conn)
        finally:
            conn.close()


def count_runs(repo: RepoLike = None) -> int:
    with open_repo(repo) as git:
        conn = index.open_index(git)
        try:
            return conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        finally:
            conn.close()


def delete_run(id_or_prefix: str, repo: RepoLike = None) -> str:
    """Remove a run from the runs ref with a new commit (history keeps it); return its id.

    Works whatever state the run's files are in: nothing of them is read. A malformed entry
    that is not a run (``runs/ab``, ``runs/ab/<name>``, as ``gitml runs list`` reports it) is
    removed by giving that path.

    Raises:
        RunNotFoundError: no run (or malformed entry) matches.
    """
    with open_repo(repo) as git:
        if id_or_prefix.startswith("runs/"):
            key = _bad_entry_key(git, id_or_prefix)
            runsref.commit_runs(git, {key: None}, f"delete malformed entry {runsref.display_key(key)}")
            return runsref.display_key(key)
        run_id = resolve_run_id(id_or_prefix, git)
        runsref.commit_runs(git, {run_id: None}, f"delete run {run_id}")
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


def list_active_runs(repo: RepoLike = None) -> list[dict[str, Any]]:
    """Runs in progress in this repository (``alive``: False when the writer is gone)."""
    with open_repo(repo) as git:
        return active.list_active(git.gitml_dir)


def rebuild_index(repo: RepoLike = None) -> int:
    """Rebuild the query index from the runs ref; return the number of runs indexed."""
    with open_repo(repo) as git:
        return index.rebuild(git)

