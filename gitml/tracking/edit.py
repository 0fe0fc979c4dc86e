"""Changing a run after it finished: tags, name, description, one more metric point; its history.

MLflow lets a user tag, rename, describe or add a metric to a finished run
(``MlflowClient().set_tag(run_id, ...)``); here each change is one commit on the runs ref that
rewrites only that run's folder (only the files the change touches, and ``run.yaml``, whose
``updated`` time is what the merge of two diverged refs compares). Edits of different runs
never conflict; two edits of the same run both land (see :func:`gitml.core.runsref.edit_run`).
``git log`` of the run's folder is its history, which :func:`run_history` reads back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gitml.core import index, runsref
from gitml.core.errors import BadInputError
from gitml.core.formats import (
    HISTORY_BOUND,
    Metric,
    Run,
    check_step,
    check_timestamp_ms,
    history_tsv,
    iso_time,
    metric_value,
    parse_history,
    parse_run,
    run_files,
)
from gitml.core.gitcli import check_result, run_git
from gitml.core.ids import check_key, check_name
from gitml.core.workspace import WorkspaceLike, open_workspace

RUN_NAME_TAG = "mlflow.runName"  # MLflow keeps the name in this tag too; a rename updates it


def _edit(run: str, repo: WorkspaceLike, what: str, change: Callable[[Run, dict[str, bytes]], set[str]]) -> Run:
    """Apply ``change`` to the run's record (it returns the files it touched) in one commit."""
    with open_workspace(repo) as ws:
        run_id = ws.resolve_run(run)

        def edit(files: dict[str, bytes]) -> dict[str, bytes]:
            original = dict(files)
            record = parse_run(run_id, files)
            touched = change(record, files) | {"run.yaml"}
            written = {**files, **run_files(record)}
            if all(written.get(name) == original.get(name) for name in touched):
                return original  # nothing changes (the value it has already): no commit
            record.updated = iso_time(time.time())
            written = run_files(record)
            return {**files, **{name: written[name] for name in touched if name in written}}

        parent, tip, files = runsref.edit_run(ws.repo, run_id, edit, f"edit run {run_id}: {what}")
        edited = parse_run(run_id, files)
        if tip != parent:
            index.record_written(ws.repo, parent, tip, [edited])
        return edited


def set_tag(run: str, key: str, value: Any, repo: WorkspaceLike = None) -> Run:
    """Set a tag of a run that finished (MLflow's ``MlflowClient.set_tag``).

    Args:
        run: a run id or unique prefix.
        key: the tag's key; ``mlflow.runName`` renames the run, as in MLflow.
        value: stored as ``str(value)``.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The run as now recorded.

    Raises:
        RunNotFoundError: no such run on the runs ref.
        BadInputError: a bad key (nothing is written).
        ConcurrencyError: the runs ref kept moving past the retry bound.
    """
    key, text = check_key(key, "tag key"), str(value)
    if key == RUN_NAME_TAG:
        return rename_run(run, text, repo=repo)

    def change(record: Run, files: dict[str, bytes]) -> set[str]:
        record.tags[key] = text
        return {"tags.yaml"}

    return _edit(run, repo, f"set tag {key}", change)


def delete_tag(run: str, key: str, repo: WorkspaceLike = None) -> Run:
    """Remove a tag of a run (MLflow's ``MlflowClient.delete_tag``).

    Raises:
        RunNotFoundError: no such run.
        BadInputError: the run has no such tag (nothing is written).
    """
    key = check_key(key, "tag key")

    def change(record: Run, files: dict[str, bytes]) -> set[str]:
        if key not in record.tags:
            raise BadInputError(f"run {record.id[:8]} has no tag {key!r}")
        del record.tags[key]
        return {"tags.yaml"}

    return _edit(run, repo, f"delete tag {key}", change)


def rename_run(run: str, name: str, repo: WorkspaceLike = None) -> Run:
    """Give a run a new name (its ``mlflow.runName`` tag follows, when it has one).

    Raises:
        RunNotFoundError: no such run.
        BadInputError: a blank name, or one with control characters or too long.
    """
    name = check_name(name, "run name")

    def change(record: Run, files: dict[str, bytes]) -> set[str]:
        record.name = name
        if RUN_NAME_TAG in record.tags:
            record.tags[RUN_NAME_TAG] = name
            return {"tags.yaml"}
        return set()

    return _edit(run, repo, f"rename to {name}", change)


def set_description(run: str, description: str | None, repo: WorkspaceLike = None) -> Run:
    """Set (or, with None or ``""``, remove) a run's description, the free text in ``run.yaml``.

    Raises:
        RunNotFoundError: no such run.
        BadInputError: not text.
    """
    if description is not None and not isinstance(description, str):
        raise BadInputError(f"a description is text, not {type(description).__name__}")

    def change(record: Run, files: dict[str, bytes]) -> set[str]:
        record.description = description or None
        return set()

    return _edit(run, repo, "describe", change)


def log_metric(run: str, key: str, value: float, step: int | None = None, timestamp: int | None = None,
               repo: WorkspaceLike = None) -> Run:
    """Add one point to a metric of a finished run (MLflow's ``MlflowClient.log_metric``).

    The point joins the run's ``history.tsv``; ``metrics.yaml`` shows it when it is the latest
    (the greatest step, then the latest time), as MLflow's "latest value" does.

    Args:
        run: a run id or unique prefix.
        key: the metric's key.
        value: a number (NaN and infinities are kept, as when logged live).
        step: the step, an integer within 64 bits (default: 0).
        timestamp: milliseconds since 1970-01-01 UTC, as MLflow's (default: now).
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        The run as now recorded.

    Raises:
        RunNotFoundError: no such run.
        BadInputError: a bad key, value or step; the run's history was sampled when it was
            committed, so a point cannot be added to it (nothing is written).
    """
    key, number = check_key(key, "metric key"), metric_value(key, value)
    step = 0 if step is None else check_step(step)
    stamp = iso_time(time.time() if timestamp is None else check_timestamp_ms(timestamp) / 1000)

    def change(record: Run, files: dict[str, bytes]) -> set[str]:
        if "history.tsv" in files:
            points, full = parse_history(record.id, files["history.tsv"])
            if full is not None:
                raise BadInputError(f"run {record.id[:8]}'s metric history was sampled when it was committed: "
                                    "a point cannot be added to it")
        else:  # only latest values were recorded: they become the history's first points
            points = [Metric(k, v, int(record.metric_info.get(k, {}).get("step", 0)),
                             str(record.metric_info.get(k, {}).get("timestamp", ""))) for k, v in record.metrics.items()]
        points.append(Metric(key, number, step, stamp))
        text = history_tsv(points).encode()
        if len(text) > HISTORY_BOUND:
            raise BadInputError(f"run {record.id[:8]}'s metric history would pass its bound of {HISTORY_BOUND} bytes")
        files["history.tsv"] = text
        info = record.metric_info.get(key)
        if key not in record.metrics or (step, stamp) >= (int((info or {}).get("step", 0)),
                                                          str((info or {}).get("timestamp", ""))):
            record.metrics[key] = number
            record.metric_info[key] = {"step": step, "timestamp": stamp}
        return {"metrics.yaml", "history.tsv"}

    return _edit(run, repo, f"log metric {key}", change)


def run_history(run: str, repo: WorkspaceLike = None) -> list[dict[str, Any]]:
    """What changed in a run, commit by commit, oldest first (``git log`` of its folder).

    Args:
        run: a run id or unique prefix.
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        One dict per commit that wrote the run: ``commit`` (sha), ``time`` (ISO 8601 UTC),
        ``message``, and ``changes``: a list of ``{"field", "key", "old", "new"}`` (``field`` is
        ``name``, ``description``, ``status``, ``params``, ``metrics`` or ``tags``; ``old`` is
        None for what the commit added, ``new`` None for what it removed). The first commit
        lists nothing: it created the run. A commit that removed the run says ``deleted``.

    Raises:
        RunNotFoundError: no such run on the runs ref.
    """
    with open_workspace(repo) as ws:
        git = ws.repo
        run_id = ws.resolve_run(run)
        path = f"runs/{run_id[:2]}/{run_id}"
        proc = run_git(["log", "--reverse", "--format=%H%x00%cI%x00%s", runsref.RUNS_REF, "--", path], cwd=git.git_dir)
        out = check_result(["log"], proc).decode("utf-8", "replace")
        history, before = [], None
        for line in out.splitlines():
            commit, when, message = line.split("\0", 2)
            tree = runsref.run_tree(git, commit, run_id)
            now = parse_run(run_id, runsref.read_run_files(git, tree, run_id=run_id)) if tree else None
            entry = {"commit": commit, "time": when, "message": message,
                     "changes": _changes(before, now) if before is not None and now is not None else []}
            if now is None:
                entry["deleted"] = True
            history.append(entry)
            before = now
        return history


def _changes(old: Run, new: Run) -> list[dict[str, Any]]:
    changes = []
    for field in ("name", "description", "status"):
        if getattr(old, field) != getattr(new, field):
            changes.append({"field": field, "key": None, "old": getattr(old, field), "new": getattr(new, field)})
    for field in ("params", "metrics", "tags"):
        before, after = getattr(old, field), getattr(new, field)
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key) and not (field == "metrics" and _both_nan(before.get(key),
                                                                                             after.get(key))):
                changes.append({"field": field, "key": key, "old": before.get(key), "new": after.get(key)})
    return changes


def _both_nan(a: Any, b: Any) -> bool:
    return isinstance(a, float) and isinstance(b, float) and a != a and b != b
