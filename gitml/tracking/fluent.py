"""The MLflow-style logging API: ``start_run``, ``log_metric``, ``end_run`` and friends.

Runs started here are a stack per process (the innermost is the active one). Logging only
appends a line to the run's log; the run reaches the runs ref when it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from gitml.artifacts import store
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import metric_value, param_value
from gitml.core.gitrepo import GitRepo, RepoLike
from gitml.core.ids import check_artifact_path, check_key
from gitml.tracking import active
from gitml.tracking.commit import cache_dir, check_status, finish_active, new_meta


class ActiveRunHandle:
    """What ``start_run`` returns: the run's id, name and experiment; a context manager.

    Leaving the ``with`` block commits the run as FINISHED, or as FAILED when an exception
    escapes (the exception is re-raised). ``KeyboardInterrupt`` commits it as KILLED.
    """

    def __init__(self, git: GitRepo, owns_git: bool, log: active.ActiveRun) -> None:
        # The repository stays open for the run's life: one open per run, not one per call.
        self._git = git
        self._owns_git = owns_git
        self._log = log
        self.id: str = log.id
        self.name: str = log.meta["name"]
        self.experiment: str = log.meta["experiment"]
        self.start_time: str = log.meta["start_time"]
        self.source: dict = log.meta["source"]
        self._keys: set[tuple[str, str]] = set()
        self.ended = False

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} name={self.name!r} experiment={self.experiment!r}>"

    def __enter__(self) -> ActiveRunHandle:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.ended:
            return
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        _end(self, status)

    def _key(self, key: str, kind: str) -> str:
        # Validating a key once per run keeps log_metric in a tight loop at a few microseconds.
        if (kind, key) not in self._keys:
            check_key(key, kind)
            self._keys.add((kind, key))
        return key


_lock = threading.RLock()
_stack: list[ActiveRunHandle] = []


def start_run(
    name: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    require_clean: bool = False,
    repo: RepoLike = None,
) -> ActiveRunHandle:
    """Start a run and make it the active one; use it as a context manager.

    Args:
        name: display name (default: a generated ``adjective-animal-N``).
        experiment: experiment name (default: ``gitml.yaml``'s ``experiment`` or ``default``).
        tags: initial tags.
        description: free text stored in ``run.yaml``.
        require_clean: refuse to start when tracked files have uncommitted changes.
        repo: a path inside the git repository (default: the current directory).
    """
    owns_git = not isinstance(repo, GitRepo)
    git = GitRepo(repo) if owns_git else repo
    try:
        meta, patch = new_meta(git, name, experiment, require_clean, description=description)
        handle = ActiveRunHandle(git, owns_git, active.ActiveRun.create(git.gitml_dir, meta, patch))
    except BaseException:
        if owns_git:
            git.close()
        raise
    with _lock:
        _stack.append(handle)
    if tags:
        set_tags(tags)
    return handle


def active_run() -> ActiveRunHandle | None:
    """The innermost run started in this process and not ended yet, or None."""
    with _lock:
        return _stack[-1] if _stack else None


def _current() -> ActiveRunHandle:
    run = active_run()
    if run is None:
        raise GitmlError("no active run", hint="call gitml.start_run() first")
    return run


def _end(handle: ActiveRunHandle, status: str) -> None:
    status = check_status(status)
    with _lock:
        if handle in _stack:
            _stack.remove(handle)
    handle.ended = True
    handle._log.close()
    try:
        # On failure (a full disk, say) the run stays in progress, marked, with all it logged:
        # the error says how to commit it with `gitml commit-run --resume`.
        finish_active(handle._git, handle.id, status)
    finally:
        if handle._owns_git:
            handle._git.close()


def end_run(status: str = "FINISHED") -> None:
    """Commit the active run with ``status`` (FINISHED, FAILED or KILLED); no-op without one."""
    run = active_run()
    if run is not None:
        _end(run, status)


def log_param(key: str, value: Any) -> None:
    """Log one parameter of the active run (the last value logged for a key wins)."""
    run = _current()
    run._log.param(run._key(key, "param key"), param_value(key, value))


def log_params(params: Mapping[str, Any]) -> None:
    for key, value in params.items():
        log_param(key, value)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log one metric point; ``step`` defaults to one more than the key's previous step."""
    run = _current()
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise BadInputError(f"step must be an integer, got {step!r}")
    run._log.metric(run._key(key, "metric key"), metric_value(key, value), step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    for key, value in metrics.items():
        log_metric(key, value, step)


def set_tag(key: str, value: Any) -> None:
    run = _current()
    run._log.tag(run._key(key, "tag key"), str(value))


def set_tags(tags: Mapping[str, Any]) -> None:
    for key, value in tags.items():
        set_tag(key, value)


def log_artifact(local_path: str, artifact_path: str | None = None,
                 register_as: str | None = None) -> dict[str, Any]:
    """Hash a file or directory into the local content store and record it on the active run.

    As in MLflow, ``artifact_path`` is the folder inside the run's artifacts to put it in:
    ``log_artifact("out/model.pkl", "models")`` records ``models/model.pkl``.

    ``register_as="churn"`` registers it as the next version of model ``churn`` when the run
    finishes (FINISHED only: a failed run registers nothing).

    Returns the ``artifacts.yaml`` entry (kind, sha256, size).
    """
    import os

    run = _current()
    if register_as is not None:
        from gitml.core.tags import check_model

        check_model(register_as)
    name = os.path.basename(os.path.abspath(local_path))
    logical = check_artifact_path(f"{artifact_path}/{name}" if artifact_path else name)
    if not os.path.exists(local_path):
        raise BadInputError(f"artifact path does not exist: {local_path}")
    if not (os.path.isfile(local_path) or os.path.isdir(local_path)):
        raise BadInputError(f"artifact is neither a regular file nor a directory: {local_path}")
    try:
        entry = store.put_path(cache_dir(run._git), local_path)
    except OSError as exc:
        raise active.disk_error(exc, cache_dir(run._git)) or exc from None
    run._log.artifact(logical, entry)
    if register_as is not None:
        run._log.register(register_as, logical)
    return entry


def log_artifacts(local_dir: str, artifact_path: str | None = None) -> dict[str, dict[str, Any]]:
    """Log every file and directory inside ``local_dir`` (as MLflow does), under ``artifact_path``.

    Returns ``{logical path: artifacts.yaml entry}``.
    """
    import os

    if not os.path.isdir(local_dir):
        raise BadInputError(f"not a directory: {local_dir}")
    logged = {}
    for name in sorted(os.listdir(local_dir)):
        entry = log_artifact(os.path.join(local_dir, name), artifact_path)
        logged[f"{artifact_path}/{name}" if artifact_path else name] = entry
    return logged
