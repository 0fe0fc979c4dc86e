"""gitml's flows that cross services, and the MLflow-style logging API they end in.

- The fluent tracking API (``start_run``, ``log_metric``, ``log_artifact``, ``end_run`` …):
  runs started here are a stack per process (the innermost is the active one); logging only
  appends a line to the run's log, and the run reaches the runs ref when it ends. A run that
  logged ``log_artifact(..., register_as="churn")`` and ends FINISHED registers that artifact
  as the next version of ``churn``: the one place tracking hands over to the registry.
- :func:`commit_run` (``gitml commit-run``), which does the same for a resumed run.
- :func:`init` (``gitml init``) and :func:`demo` (``gitml demo``), which use every service.

Layering (DESIGN.md §6): the CLI calls this module or one service; this module calls services;
services call ``gitml.core``; nothing imports upward (``.ci/run`` checks it).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitml.core import active, store
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import Run, check_step, check_timestamp_ms, metric_value, param_value
from gitml.core.gitrepo import GitRepo
from gitml.core.ids import check_artifact_path, check_key, check_run_id
from gitml.core.workspace import Workspace, WorkspaceLike, open_workspace
from gitml.tracking.commit import (
    RUN_NAME_TAG,
    FinishedRun,
    check_status,
    creation_tags,
    finish_active,
    new_meta,
    record_run,
)


class ActiveRunHandle:
    """What ``start_run`` returns: the run's id, name and experiment; a context manager.

    Leaving the ``with`` block commits the run as FINISHED, or as FAILED when an exception
    escapes (the exception is re-raised). ``KeyboardInterrupt`` commits it as KILLED. Once it
    has ended, ``registrations`` holds the :class:`gitml.registry.Registration` of each
    ``log_artifact(..., register_as=...)``, with its ``warnings`` (a dirty tree, bytes equal to
    a registered version's).

    Args:
        git: the repository the run belongs to, open for the run's life.
        owns_git: whether ``start_run`` opened ``git`` (ending the run then gives it back to
            the repositories kept for the next run, see :class:`_IdleRepos`).
        log: the writer of the run's folder in progress.
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
        self._files: dict[str, str] = {}  # artifact path -> sha256 of what log_* wrote (log_table appends)
        self._paths: set[str] = set()  # every artifact path logged, and the folders above them:
        self._folders: set[str] = set()  # a path may not be both a file and another's folder
        self._tables: list[dict[str, str]] = []  # the mlflow.loggedArtifacts tag's list
        self._monitor: Any = None  # the system metrics thread, when log_system_metrics
        self._joined = False  # a run `gitml run` opened: it commits it, not this process
        self._given: dict[str, Any] = {}  # its parameters, which the script may not log otherwise
        self.ended = False
        self.registrations: list = []

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

    def _claim(self, logical: str) -> None:
        """Refuse an artifact path that would be another's folder, or under another (``d``, ``d/f``).

        No file system holds both, and the run could not be read back (nor pushed): refused
        here, when it is logged, as one line. Logging the same path again replaces it.
        """
        parts = logical.split("/")
        above = ["/".join(parts[:i]) for i in range(1, len(parts))]
        clash = next((p for p in above if p in self._paths), None)
        if clash is None and logical in self._folders:
            clash = next(p for p in sorted(self._paths) if p.startswith(logical + "/"))
        if clash is not None:
            raise BadInputError(f"artifact path {logical!r} clashes with {clash!r}, already logged in this run: "
                                "one would be the folder of the other", hint="log it under another path")
        self._paths.add(logical)
        self._folders.update(above)

    def _key(self, key: str, kind: str) -> str:
        # Validating a key once per run keeps log_metric in a tight loop at a few microseconds.
        if (kind, key) not in self._keys:
            check_key(key, kind)
            self._keys.add((kind, key))
        return key


PARENT_TAG = "mlflow.parentRunId"  # MLflow's tag for a nested run's parent
_lock = threading.RLock()
_stack: list[ActiveRunHandle] = []


class _IdleRepos:
    """Repositories opened by ``start_run(repo=<path>)`` whose runs have ended, kept for the next.

    A sweep starts hundreds of runs on one path from one process; opening the repository anew
    for each costs about a millisecond (dulwich reads the config and each pack's index again).
    A run takes the idle repository of its path, or opens one, and gives it back when it ends;
    two runs at once on one path (threads, nested runs) each have their own, since a
    :class:`GitRepo` collects a write's objects in its own batch. A repository is reused only
    while its git folder is the same one (a repository removed and made again at the same path
    is opened afresh) and by the process that opened it (a forked child opens its own), and it
    reads git's settings again (see :meth:`GitRepo.forget_settings`).
    At most :attr:`LIMIT` are kept; the rest, and all at exit, are closed.
    """

    LIMIT = 4

    def __init__(self) -> None:
        self._idle: dict[str, tuple[tuple[int, int, int] | None, GitRepo]] = {}
        self._paths: dict[int, str] = {}  # id of a repository handed out -> its path's key
        self._guard = threading.Lock()
        self._hooked = False

    def take(self, path: Any) -> GitRepo:
        key = os.path.realpath(os.fspath(path) if path is not None else os.getcwd())
        with self._guard:
            held = self._idle.pop(key, None)
        if held is not None:
            identity, git = held
            if identity is not None and _folder_identity(git) == identity:
                git.forget_settings()
            else:
                git.close()
                held = None
        if held is None:
            git = GitRepo(path)
        with self._guard:
            self._paths[id(git)] = key
        return git

    def give_back(self, git: GitRepo) -> None:
        with self._guard:
            key = self._paths.pop(id(git), None)
        identity = _folder_identity(git)
        if key is None or identity is None:
            git.close()
            return
        with self._guard:
            displaced = [self._idle.pop(key, (None, None))[1]]
            self._idle[key] = (identity, git)
            while len(self._idle) > self.LIMIT:
                displaced.append(self._idle.pop(next(iter(self._idle)))[1])
            if not self._hooked:
                import atexit

                atexit.register(self.close_all)
                self._hooked = True
        for other in displaced:
            if other is not None:
                other.close()

    def close_all(self) -> None:
        with self._guard:
            idle, self._idle = self._idle, {}
        for _identity, git in idle.values():
            git.close()


def _folder_identity(git: GitRepo) -> tuple[int, int, int] | None:
    """The git folder's identity, and this process's: a forked child opens its own repository."""
    try:
        st = os.stat(git.git_dir)
    except OSError:
        return None
    return st.st_dev, st.st_ino, os.getpid()


_idle_repos = _IdleRepos()


def start_run(
    name: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    require_clean: bool = False,
    repo: WorkspaceLike = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRunHandle:
    """Start a run and make it the active one; use it as a context manager.

    Args:
        name: display name (default: a generated ``adjective-animal-N``).
        experiment: experiment name (default: ``gitml.yaml``'s ``experiment`` or ``default``).
        tags: initial tags; as in MLflow, an ``mlflow.runName`` tag names the run when ``name``
            is not given, and an ``mlflow.user`` tag is the run's user.
        description: free text stored in ``run.yaml``.
        require_clean: refuse to start when tracked files have uncommitted changes.
        repo: a Workspace, an open repository or a path inside one (default: the current
            directory); a path is opened for the run's life and closed when it ends.
        nested: make this run a child of the active run: its tag ``mlflow.parentRunId`` is
            the active run's id, as MLflow records it (with no active run, nothing is added).
        parent_run_id: the parent's run id, given outright (a full 32-hex id; it wins over
            ``nested``), as MLflow's ``start_run(parent_run_id=...)``: a run on the runs ref or
            one in progress in this repository (any process), else ``RunNotFoundError``.
        log_system_metrics: sample CPU, memory, disk, network (and NVIDIA GPUs) in a background
            thread as ``system/...`` metrics (MLflow's names; see
            :mod:`gitml.tracking.sysmetrics`); needs psutil. None: on when the environment
            variable ``GITML_ENABLE_SYSTEM_METRICS_LOGGING`` (or MLflow's
            ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``) is ``true``.

    Returns:
        The run's handle: its ``id``, ``name``, ``experiment``, ``start_time`` and ``source``;
        leaving its ``with`` block ends the run (see :class:`ActiveRunHandle`).

    Raises:
        BadInputError: a bad name, experiment or tag, or gitml.yaml is invalid; under ``gitml
            run``, an experiment other than the run's.
        RunNotFoundError: ``parent_run_id`` names no run of this repository.
        DirtyWorktreeError: ``require_clean`` and tracked files have uncommitted changes.
        NotARepositoryError: ``repo`` is not inside a git work tree.
        GitmlError: the run's folder cannot be written (a full or read-only disk).
    """
    if log_system_metrics is None:
        log_system_metrics = any(os.environ.get(name, "").lower() == "true" for name in SYSTEM_METRICS_ENV)
    monitor = _system_monitor() if log_system_metrics else None  # refused before any run exists
    if parent_run_id is not None:
        parent = check_run_id(parent_run_id)
    elif nested and (current := active_run()) is not None:
        parent = current.id
    else:
        parent = None
    if parent is not None:
        tags = {**(tags or {}), PARENT_TAG: parent}
    if isinstance(repo, Workspace):
        repo = repo.repo
    joined = os.environ.get(JOIN_ENV)
    if joined and parent is None and active_run() is None:
        handle = _join(joined, repo, tags, monitor)
        if experiment is not None and experiment != handle.experiment:
            _end(handle, "FINISHED")  # a joined run: this closes this process's part only
            raise BadInputError(f"this process logs into the run `gitml run` opened, of experiment "
                                f"{handle.experiment!r}, not {experiment!r}",
                                hint="leave experiment out, or give it to gitml run --experiment")
        return handle
    owns_git = not isinstance(repo, GitRepo)
    git = _idle_repos.take(repo) if owns_git else repo
    try:
        if parent_run_id is not None and not _known_run(git, parent):
            from gitml.core.errors import RunNotFoundError

            raise RunNotFoundError(f"no run {parent} to be the parent (parent_run_id)",
                                   hint="give the id of a finished run or of one in progress")
        name, tags, user = creation_tags(name, tags)
        meta, patch = new_meta(git, name, experiment, require_clean, description=description, user=user)
        handle = ActiveRunHandle(git, owns_git, active.ActiveRun.create(git.gitml_dir, meta, patch))
    except BaseException:
        if owns_git:
            _idle_repos.give_back(git)
        raise
    return _activate(handle, tags, monitor)


def _activate(handle: ActiveRunHandle, tags: Mapping[str, str] | None, monitor) -> ActiveRunHandle:
    """Make ``handle`` the active run, then set its first tags and start its monitor."""
    with _lock:
        _stack.append(handle)
    if tags:
        set_tags(tags)
    if monitor is not None:
        monitor.start(handle)
    return handle


JOIN_ENV = "GITML_RUN_ID"  # set by `gitml run` for the command it starts
JOIN_REPO_ENV = "GITML_TRACKING_REPO"


def _join(run_id: str, repo: WorkspaceLike, tags: Mapping[str, str] | None, monitor) -> ActiveRunHandle:
    """The run ``gitml run`` opened for this process (``GITML_RUN_ID``), joined to log into it.

    Ending it only closes this process's part: ``gitml run`` commits it when the command exits.
    """
    where = os.environ.get(JOIN_REPO_ENV) or (repo if repo is not None and not isinstance(repo, GitRepo) else None)
    git = repo if isinstance(repo, GitRepo) else _idle_repos.take(where)
    try:
        log = active.ActiveRun.reopen(git.gitml_dir, check_run_id(run_id))
    except BaseException:
        if not isinstance(repo, GitRepo):
            _idle_repos.give_back(git)
        raise
    handle = ActiveRunHandle(git, not isinstance(repo, GitRepo), log)
    handle._joined = True
    handle._given = log.params_so_far  # the parameters `gitml run` passed: the record reproduce reruns
    return _activate(handle, tags, monitor)


def _known_run(git: GitRepo, run_id: str) -> bool:
    """Whether ``run_id`` is a run of this repository: active here, in progress, or on the runs ref."""
    from gitml.core import runsref

    with _lock:
        if any(handle.id == run_id for handle in _stack):
            return True
    if (git.gitml_dir / active.ACTIVE_DIR / run_id).exists():
        return True
    return runsref.run_entry(git, git.ref(runsref.RUNS_REF), run_id) is not None


SYSTEM_METRICS_ENV = ("GITML_ENABLE_SYSTEM_METRICS_LOGGING", "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING")


class _RunMonitor:
    """A system metrics monitor made before its run exists, started once the run does."""

    def __init__(self) -> None:
        from gitml.tracking.sysmetrics import SystemMetricsMonitor, sampling_interval

        self.handle: ActiveRunHandle | None = None
        self.monitor = SystemMetricsMonitor(self.record, interval=sampling_interval())

    def record(self, points: dict[str, float], step: int) -> None:
        for key, value in points.items():
            self.handle._log.metric(self.handle._key(key, "metric key"), value, step)

    def start(self, handle: ActiveRunHandle) -> None:
        self.handle = handle
        handle._monitor = self.monitor
        self.monitor.start()


def _system_monitor() -> _RunMonitor:
    """The monitor ``log_system_metrics`` asks for (psutil and the interval checked now)."""
    return _RunMonitor()


def active_run() -> ActiveRunHandle | None:
    """The innermost run started in this process and not ended yet.

    Returns:
        Its handle, or None when no run is active.
    """
    with _lock:
        return _stack[-1] if _stack else None


def _current() -> ActiveRunHandle:
    run = active_run()
    if run is None and os.environ.get(JOIN_ENV):
        return start_run()  # under `gitml run`: log into its run, as MLflow does under `mlflow run`
    if run is None:
        raise GitmlError("no active run", hint="call gitml.start_run() first")
    return run


def _end(handle: ActiveRunHandle, status: str) -> None:
    status = check_status(status)
    with _lock:
        if handle in _stack:
            _stack.remove(handle)
    handle.ended = True
    if handle._monitor is not None:
        handle._monitor.stop()
    handle._log.close()
    if handle._joined:  # `gitml run` commits it when its command exits
        if handle._owns_git:
            _idle_repos.give_back(handle._git)
        return
    try:
        # On failure (a full disk, say) the run stays in progress, marked, with all it logged:
        # the error says how to commit it with `gitml commit-run --resume`.
        handle.registrations = register_finished(handle._git, finish_active(handle._git, handle.id, status))
    finally:
        if handle._owns_git:
            _idle_repos.give_back(handle._git)  # kept open for the next run on the same path


def end_run(status: str = "FINISHED") -> None:
    """Commit the active run with ``status``; do nothing without one.

    A FINISHED run also registers what it logged with ``register_as=``.

    Args:
        status: ``FINISHED``, ``FAILED`` or ``KILLED`` (any case).

    Raises:
        BadInputError: an unknown status.
        GitmlError: the commit failed (a full disk, say); the run stays in progress, to be
            committed with ``gitml commit-run --resume``.
    """
    run = active_run()
    if run is not None:
        _end(run, status)


def log_param(key: str, value: Any) -> None:
    """Log one parameter of the active run (the last value logged for a key wins).

    In a run ``gitml run`` opened, a parameter it passed keeps its value, as ``gitml reproduce``
    will pass it again: logging another value is refused, as MLflow refuses changing a param.

    Args:
        key: the parameter's key (free text as in MLflow: see
            :func:`gitml.core.ids.check_key`).
        value: a scalar; anything else (a list, a dict …) is stored as its ``str``, as MLflow
            stores it (see :func:`gitml.core.formats.param_value`).

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: a bad key, a value over 6000 characters, or another value for a param
            ``gitml run`` passed.
    """
    run = _current()
    value = param_value(key, value)
    if key in run._given and not _same_param(run._given[key], value):
        raise BadInputError(f"param {key!r} was given to `gitml run` as {run._given[key]!r}; the script logs "
                            f"{value!r}", hint="a project run's params are what `gitml reproduce` passes again: "
                                               "log the value under another key")
    run._log.param(run._key(key, "param key"), value)


def _same_param(given: Any, value: Any) -> bool:
    """Whether a script's value is the one ``gitml run`` passed.

    Equal, as text, or as numbers (``-P lr=0.50`` and ``float(sys.argv[2])`` are one value).
    """
    if given == value or str(given) == str(value):
        return True
    try:
        return float(given) == float(value)
    except (TypeError, ValueError):
        return False


def log_params(params: Mapping[str, Any]) -> None:
    """Log several parameters of the active run (see :func:`log_param`).

    Args:
        params: ``{key: value}``.

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: a bad key or value; the params before it are logged.
    """
    for key, value in params.items():
        log_param(key, value)


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None,
               run_id: str | None = None) -> None:
    """Log one metric point of the active run, or of the finished run ``run_id``.

    A run's value of a metric (what searches compare and ``runs list`` shows) is MLflow's
    latest: the point with the highest step, then the latest timestamp, then the highest value.

    Args:
        key: the metric's key.
        value: any real number; NaN and infinities are kept.
        step: an integer step, within 64 bits (default: one more than the key's previous
            step, 0 first); numpy integers are taken too.
        timestamp: when it was measured, in milliseconds since 1970-01-01 UTC, as MLflow's
            ``timestamp`` (default: now).
        run_id: a run that has finished (id or prefix): the point is added to it in one commit
            on the runs ref, as MLflow's ``MlflowClient().log_metric(run_id, ...)`` does (see
            :func:`gitml.tracking.edit.log_metric`; its step defaults to 0).

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: a bad key, a value that is not a number, or a step or timestamp that is
            not an int (a timestamp must lie between 1970 and the year 9999).
        RunNotFoundError: ``run_id`` names no run on the runs ref.
    """
    if run_id is not None and not _is_active(run_id):
        from gitml.tracking import edit

        edit.log_metric(run_id, key, value, step, timestamp, repo=_edit_repo())
        return
    run = _current()
    step = None if step is None else check_step(step)
    stamp = None if timestamp is None else check_timestamp_ms(timestamp) / 1000
    run._log.metric(run._key(key, "metric key"), metric_value(key, value), step, stamp)


def _is_active(run_id: str) -> bool:
    """Whether ``run_id`` (an id or prefix, any case) names a run active in this process.

    Raises:
        BadInputError: ``run_id`` is not text.
    """
    if not isinstance(run_id, str):
        raise BadInputError(f"run_id must be a run id (text), not {type(run_id).__name__}: {run_id!r}")
    prefix = run_id.strip().lower()
    with _lock:
        return any(handle.id.startswith(prefix) for handle in _stack) if len(prefix) >= 4 else False


def _edit_repo() -> Any:
    """Where a finished run named by ``run_id=`` is edited: the active run's repository, else here."""
    run = active_run()
    return run._git if run is not None else None


def log_metrics(metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None) -> None:
    """Log several metric points of the active run (see :func:`log_metric`).

    Args:
        metrics: ``{key: value}``.
        step: the step of every point (default: each key's next step).
        timestamp: the time of every point, milliseconds since 1970 (default: now).

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: a bad key, value, step or timestamp; the metrics before it are logged.
    """
    for key, value in metrics.items():
        log_metric(key, value, step, timestamp)


def set_tag(key: str, value: Any, run_id: str | None = None) -> None:
    """Set one tag of the active run (the last value set for a key wins), or of a finished run.

    Args:
        key: the tag's key.
        value: stored as ``str(value)``.
        run_id: a run that has finished (id or prefix): the tag is set on it in one commit on
            the runs ref, as MLflow's ``MlflowClient().set_tag(run_id, ...)`` does (see
            :func:`gitml.tracking.edit.set_tag`).

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: a bad key.
        RunNotFoundError: ``run_id`` names no run on the runs ref.
    """
    if run_id is not None and not _is_active(run_id):
        from gitml.tracking import edit

        edit.set_tag(run_id, key, value, repo=_edit_repo())
        return
    run = _current()
    if key == RUN_NAME_TAG:  # it renames the run: a name gitml cannot take is refused now, not kept as a tag
        from gitml.core.ids import check_name

        check_name(str(value), "run name")
    run._log.tag(run._key(key, "tag key"), str(value))


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags of the active run (see :func:`set_tag`).

    Args:
        tags: ``{key: value}``.

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: a bad key; the tags before it are set.
    """
    for key, value in tags.items():
        set_tag(key, value)


def log_artifact(local_path: str, artifact_path: str | None = None,
                 register_as: str | None = None) -> dict[str, Any]:
    """Hash a file or directory into the local content store and record it on the active run.

    As in MLflow, ``artifact_path`` is the folder inside the run's artifacts to put it in:
    ``log_artifact("out/model.pkl", "models")`` records ``models/model.pkl``.

    Args:
        local_path: a file or a directory.
        artifact_path: the folder inside the run's artifacts (default: the top).
        register_as: a model name: registers the artifact as that model's next version when
            the run finishes (FINISHED only: a failed run registers nothing).

    Returns:
        Its ``artifacts.yaml`` entry: ``kind`` (``file`` or ``dir``), ``sha256`` (hex; a
        directory's manifest's), ``size`` in bytes, and ``files`` (count) for a directory.

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: ``local_path`` does not exist or is neither a file nor a directory, a
            bad artifact path or model name, or a file name an artifact path cannot hold.
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
    run._claim(logical)
    try:
        entry = store.put_path(store.cache_dir(run._git.gitml_dir), local_path)
    except OSError as exc:
        raise active.disk_error(exc, store.cache_dir(run._git.gitml_dir)) or exc from None
    run._log.artifact(logical, entry)
    if entry["kind"] == "file":
        run._files[logical] = entry["sha256"]
    if register_as is not None:
        run._log.register(register_as, logical)
    return entry


def log_artifacts(local_dir: str, artifact_path: str | None = None) -> dict[str, dict[str, Any]]:
    """Log every file and directory inside ``local_dir`` (as MLflow does), under ``artifact_path``.

    Args:
        local_dir: the directory whose entries are logged, each as its own artifact.
        artifact_path: the folder inside the run's artifacts (default: the top).

    Returns:
        ``{logical path: artifacts.yaml entry}`` (see :func:`log_artifact`).

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: ``local_dir`` is not a directory, or an entry cannot be logged.
    """
    import os

    if not os.path.isdir(local_dir):
        raise BadInputError(f"not a directory: {local_dir}")
    logged = {}
    for name in sorted(os.listdir(local_dir)):
        entry = log_artifact(os.path.join(local_dir, name), artifact_path)
        logged[f"{artifact_path}/{name}" if artifact_path else name] = entry
    return logged


def _log_bytes(run: ActiveRunHandle, logical: str, data: bytes) -> dict[str, Any]:
    """Store ``data`` in the content store and record it as the run's file ``logical``."""
    run._claim(logical)
    cache = store.cache_dir(run._git.gitml_dir)
    try:
        digest = store.put_bytes(cache, data)
    except OSError as exc:
        raise active.disk_error(exc, cache) or exc from None
    entry = {"kind": "file", "sha256": digest, "size": len(data)}
    run._log.artifact(logical, entry)
    run._files[logical] = digest
    return entry


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> dict[str, Any]:
    """Log a dict as a JSON or YAML file of the active run (MLflow's ``log_dict``).

    Args:
        dictionary: what to write (JSON's or YAML's types: no objects, no NaN in JSON).
        artifact_file: the file's path in the run; ``.json``, ``.yaml`` or ``.yml`` says the format.

    Returns:
        Its ``artifacts.yaml`` entry (``kind``, ``sha256``, ``size``), as :func:`log_artifact`.

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: a bad path, another extension, a value the format cannot hold
            (nothing is logged).
    """
    from gitml.tracking.objects import dict_bytes

    run = _current()
    logical = check_artifact_path(artifact_file)
    return _log_bytes(run, logical, dict_bytes(dictionary, logical))


def log_text(text: str, artifact_file: str) -> dict[str, Any]:
    """Log a string as a UTF-8 text file of the active run (MLflow's ``log_text``).

    Args:
        text: the file's content.
        artifact_file: the file's path in the run (``notes.md``, ``out/log.txt``).

    Returns:
        Its ``artifacts.yaml`` entry, as :func:`log_artifact`.

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: not a string, or a bad path (nothing is logged).
    """
    from gitml.tracking.objects import text_bytes

    run = _current()
    return _log_bytes(run, check_artifact_path(artifact_file), text_bytes(text))


def log_figure(figure: Any, artifact_file: str) -> dict[str, Any]:
    """Log a matplotlib or plotly figure as an image or HTML file of the active run.

    MLflow's ``log_figure``: a matplotlib ``Figure`` in any format its canvas writes (``.png``,
    ``.svg``, ``.pdf``); a plotly figure as a self-contained ``.html`` (or a static image when
    kaleido is installed).

    Args:
        figure: the figure (its library is imported only because it was given).
        artifact_file: the file's path in the run; the extension says the format.

    Returns:
        Its ``artifacts.yaml`` entry, as :func:`log_artifact`.

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: another kind of object, a format the library cannot write, a bad path.
    """
    from gitml.tracking.objects import figure_bytes

    run = _current()
    logical = check_artifact_path(artifact_file)
    return _log_bytes(run, logical, figure_bytes(figure, logical))


IMAGE_KEY = re.compile(r"^[A-Za-z0-9_\-./ ]+$")  # MLflow's rule for log_image keys


def log_image(image: Any, artifact_file: str | None = None, *, key: str | None = None, step: int | None = None,
              timestamp: int | None = None) -> dict[str, Any]:
    """Log an image of the active run: one file, or one step of an image series (MLflow's ``log_image``).

    With ``artifact_file``, the image is that file (PNG, JPEG, WebP… by extension). With
    ``key`` (and ``step``), it is one step of the series ``key``, stored as MLflow stores it
    so that MLflow's UI shows the series: ``images/<key>+step+<step>+timestamp+<ms>+<uuid>.png``
    (a ``/`` in the key becomes ``~``) and a 256-pixel WebP preview beside it ending in
    ``+compressed.webp``, and the run gets the tag ``mlflow.loggedImages = True``.
    ``log_image(img, "x.png", step=3)`` is the series ``x``'s step 3.

    Args:
        image: a PIL image, or a numpy array of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
            ``(H, W, 4)``: integers 0–255, or floats 0–1. Needs Pillow.
        artifact_file: the file's path in the run.
        key: the series' name (letters, digits, ``_ - . /`` and spaces).
        step: the step, an integer ≥ 0 (default 0).
        timestamp: milliseconds since the epoch (default now).

    Returns:
        The ``artifacts.yaml`` entry of the image (not of its preview).

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: neither or both of ``artifact_file`` and ``key``; a bad key, step or path;
            not an image (nothing is logged).
    """
    import time
    import uuid

    from gitml.tracking.objects import extension, image_bytes, pil_image, thumbnail_bytes

    run = _current()
    if artifact_file is not None and key is None and step is not None:
        key = artifact_file[: -len(extension(artifact_file)) or None]
        artifact_file = None
    if (artifact_file is None) == (key is None):
        raise BadInputError("log_image takes artifact_file (one file) or key= (a series), not "
                            + ("both" if key is not None else "neither"))
    if artifact_file is not None:
        logical = check_artifact_path(artifact_file)
        return _log_bytes(run, logical, image_bytes(image, logical))
    if not isinstance(key, str) or not IMAGE_KEY.match(key):
        raise BadInputError(f"log_image: key {key!r} may hold only letters, digits, '_', '-', '.', '/' and spaces")
    step = 0 if step is None else step
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise BadInputError(f"log_image: step must be an integer >= 0, not {step!r}")
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    if isinstance(stamp, bool) or not isinstance(stamp, int) or stamp < 0:
        raise BadInputError(f"log_image: timestamp must be milliseconds since the epoch, not {timestamp!r}")
    picture = pil_image(image)
    stem = f"images/{key.replace('/', '~')}+step+{step}+timestamp+{stamp}+{uuid.uuid4()}"
    full, preview = image_bytes(picture, stem + ".png"), thumbnail_bytes(picture)
    entry = _log_bytes(run, check_artifact_path(stem + ".png"), full)
    _log_bytes(run, check_artifact_path(stem + "+compressed.webp"), preview)
    run._log.tag("mlflow.loggedImages", "True")
    return entry


def log_table(data: Any, artifact_file: str) -> dict[str, Any]:
    """Log a table as a JSON or Parquet file of the active run (MLflow's ``log_table``).

    JSON is ``{"columns": [...], "data": [[...], ...]}`` (pandas' ``split`` orient, no index).
    Logged again under the same name in the same run, the new rows are appended to the old;
    the run's tag ``mlflow.loggedArtifacts`` lists the tables (as MLflow's UI reads it).

    Args:
        data: a pandas DataFrame, or a dict of columns (of scalars: one row). Needs pandas
            (and pyarrow for Parquet).
        artifact_file: a ``.json`` or ``.parquet`` path in the run.

    Returns:
        Its ``artifacts.yaml`` entry, as :func:`log_artifact`.

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: another extension, not a table, columns that differ from the rows
            logged before, values the format cannot hold, a bad path (nothing is logged).
    """
    import json

    from gitml.tracking.objects import table_bytes

    run = _current()
    logical = check_artifact_path(artifact_file)
    earlier = run._files.get(logical)
    before = store.object_path(store.cache_dir(run._git.gitml_dir), earlier).read_bytes() if earlier else None
    entry = _log_bytes(run, logical, table_bytes(data, logical, before))
    listed = {"path": logical, "type": "table"}
    if listed not in run._tables:
        run._tables.append(listed)
        run._log.tag("mlflow.loggedArtifacts", json.dumps(run._tables))
    return entry


def log_input(dataset: Any, context: str = "training", *, name: str | None = None,
              source: str | None = None) -> dict[str, Any]:
    """Record a dataset the active run read: its name, source, content digest and schema.

    MLflow's ``log_input``, so that "which data trained this model" has an answer. The dataset is hashed, never copied: a file by its bytes' sha256; a folder by the sha256 of
    its sorted ``path<TAB>sha256`` lines; a pandas DataFrame by pandas' per-row hashes with its
    index, column names and dtypes; a numpy array by its dtype, shape and bytes. A DataFrame's
    schema is MLflow's column spec, an array's its tensor spec. ``runs show`` lists the inputs,
    and ``-f "datasets.digest = '…'"`` (``datasets.name``, ``datasets.context``) finds the runs
    that read a dataset. Logged again under the same context and name, the last one wins.

    Args:
        dataset: a path (file or folder), a pandas DataFrame, a numpy array, or a mapping with at
            least ``digest`` (and ``source_type``, ``source``, ``schema``, ``num_rows``) for a
            dataset described by hand.
        context: what the run used it for (``training``, ``validation``, ``evaluation``).
        name: its name (default: a path's file name, else ``dataset``).
        source: where it came from (default: a path as given, relative to the repository
            when inside it; a URI or table name for the others).

    Returns:
        The dataset's ``inputs.yaml`` fields: ``digest`` (sha256 hex), ``source_type``
        (``path``, ``pandas``, ``numpy``, or the mapping's), ``source``, ``schema`` (JSON text or
        None), ``num_rows``, ``num_elements``.

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: a path that does not exist, another kind of object, a bad name or
            context (nothing is logged).
    """
    from gitml.models.datasets import describe_dataset

    run = _current()
    context = check_key(context, "dataset context")
    found_name, entry = describe_dataset(dataset, source=source, root=run._git.root)
    name = check_key(name if name is not None else found_name, "dataset name")
    from gitml.core.formats import dataset_problem

    problem = dataset_problem(entry)
    if problem:
        raise BadInputError(f"log_input: dataset {name!r} {problem} (source, source_type and schema are text; "
                            "num_rows and num_elements whole numbers)")
    run._log.input(context, name, entry)
    return entry


def register_finished(repo: WorkspaceLike, finished: FinishedRun) -> list:
    """Register what a just-finished run asked to be registered as (``register_as=``).

    Args:
        repo: a Workspace, an open repository or a path inside one.
        finished: the committed run and its registrations; nothing happens unless it FINISHED
            (:func:`gitml.tracking.commit.finish_active` leaves them out otherwise).

    Returns:
        One :func:`gitml.registry.register_model` result per registration, in the order logged.
    """
    if not finished.registrations:
        return []  # the common case: the registry is not even imported
    from gitml.registry.ops import register_model

    return [register_model(model, finished.run.id, path=path, repo=repo)
            for model, path in finished.registrations]


def commit_run(*args: Any, repo: WorkspaceLike = None, **kwargs: Any) -> Run:
    """Commit one complete run in one step and return it (``gitml commit-run``).

    Takes the arguments of :func:`gitml.tracking.commit.record_run`: ``name``, ``experiment``,
    ``params``, ``metrics``, ``params_files``, ``metrics_files``, ``artifacts``, ``tags``,
    ``status``, ``message``, ``command``, ``require_clean``, ``resume``. With no params, metrics
    or files given, reads the files ``gitml.yaml`` names (``params.yaml``, ``metrics.json``).
    ``resume`` commits a run in progress instead, registering what it asked for when FINISHED.

    Args:
        *args: positional arguments of :func:`gitml.tracking.commit.record_run`.
        repo: a Workspace, an open repository or a path inside one.
        **kwargs: keyword arguments of :func:`gitml.tracking.commit.record_run`.

    Returns:
        The committed run; its ``warnings`` (never stored) say what went through but looks
        wrong: no params, metrics or artifacts, or a params file changed after a metrics file.

    Raises:
        BadInputError: a bad value, file, name or status; nothing is written then.
        RunNotFoundError: ``resume`` matches no run in progress, or several.
        GitmlError: the commit failed (a full disk, say); a resumed run stays in progress.
    """
    with open_workspace(repo) as ws:
        if kwargs.get("resume"):
            _record_mlflow_artifacts(ws, kwargs["resume"])
        finished = record_run(*args, repo=ws, **kwargs)
        register_finished(ws, finished)
        return finished.run


def _record_mlflow_artifacts(ws: Workspace, resume: str) -> None:
    """Before a resumed run is committed: what MLflow's client wrote for it (a ``gitml:`` run that crashed)."""
    from gitml.interop.files import record_staged, staged_folder
    from gitml.tracking.commit import resolve_active

    try:
        run_id = resolve_active(ws.repo, resume)
    except GitmlError:
        return  # record_run says why, in its own words
    if not staged_folder(ws.gitml_dir, run_id).is_dir():
        return
    handle = active.ActiveRun.reopen(ws.gitml_dir, run_id)
    try:
        record_staged(ws.gitml_dir, handle)
    finally:
        handle.close()


def fetch_refspec(remote: str) -> str:
    """The non-forced refspec that lets plain ``git fetch`` bring a remote's runs ref.

    A pattern, not the exact ref: git refuses a fetch whose exact source ref is missing, and a
    fresh remote has no runs yet. The pattern matches nothing there and ``git fetch`` goes on.

    Args:
        remote: the git remote's name.

    Returns:
        ``refs/gitml/runs*:refs/gitml/remotes/<remote>/runs*`` (git's refspec syntax).
    """
    from gitml.core.runsref import RUNS_REF, tracking_ref

    return f"{RUNS_REF}*:{tracking_ref(remote)}*"


def init(repo: WorkspaceLike = None) -> list[str]:
    """Write a commented ``gitml.yaml`` (if absent) and add fetch refspecs; idempotent.

    The refspecs (:func:`fetch_refspec`) go to every git remote configured now.

    Args:
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        One line per thing done (empty when everything was already in place).
    """
    from gitml.core.config import CONFIG_FILE, TEMPLATE

    done = []
    with open_workspace(repo) as ws:
        git = ws.repo
        config = git.root / CONFIG_FILE
        if not config.exists():
            config.write_text(TEMPLATE, encoding="utf-8")
            done.append(f"wrote {CONFIG_FILE}")
        (git.gitml_dir / active.ACTIVE_DIR).mkdir(parents=True, exist_ok=True)
        for remote in sorted(git.remotes()):
            spec = fetch_refspec(remote)
            if spec not in git.config_get_all(f"remote.{remote}.fetch"):
                # Non-forced on purpose: a diverged remote runs ref must never overwrite ours.
                git.config_set(f"remote.{remote}.fetch", spec, add=True)
                done.append(f"added fetch refspec {spec} to remote {remote}")
    return done


def demo(directory: str | os.PathLike = "gitml-demo") -> tuple[Path, list[Run]]:
    """Create a demo repository, train three times with different params and commit the runs.

    Two runs are committed the way a script that never imports gitml does (``commit-run`` after
    training); one logs from inside the script with the API; a fourth trains longer on branch
    ``more-epochs``, for ``gitml diff main more-epochs``. The models are pushed to an artifact
    remote, a folder ``.storage/`` inside the demo standing in for a bucket, and the best one on
    main is registered as ``toy-classifier`` v0.0.1 and put in stage ``prod``.

    Args:
        directory: where to create it; it must not exist or be empty.

    Returns:
        The repository path and its runs, newest first.

    Raises:
        BadInputError: ``directory`` exists and is not an empty directory; when it holds a demo
            made before, the message says so (``gitml-demo already holds a demo: cd
            gitml-demo``). Nothing is changed: the demo is made once, and ``gitml demo`` again
            tells the user where it is rather than overwriting their experiments.
    """
    import subprocess
    import sys

    from gitml.artifacts.remotes import add_remote
    from gitml.artifacts.transfer import push
    from gitml.registry.ops import assign, register_model
    from gitml.tracking.query import search_runs

    path = Path(directory).resolve()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise _demo_taken(directory, path)
    inside = next((folder for folder in path.parents if _holds_demo(folder)), None)
    if inside is not None:  # `gitml demo` again after the tour's `cd gitml-demo`
        raise BadInputError(f"you are inside the demo {inside}: it is already made",
                            hint="use it here, or run gitml demo from outside it to make another")

    def train(script: str) -> None:
        subprocess.run([sys.executable, script], cwd=path, check=True, capture_output=True)

    def commit(name: str) -> None:
        commit_run(name=name, experiment="demo", artifacts=[path / "model.pkl"],
                   params_files=[path / "params.yaml"], metrics_files=[path / "metrics.json"],
                   command="python train.py", repo=path)

    with GitRepo.init(path, branch="main") as git:
        (path / "train.py").write_text(DEMO_TRAIN_PY, encoding="utf-8")
        (path / "train_with_api.py").write_text(DEMO_API_PY, encoding="utf-8")
        (path / ".gitignore").write_text("metrics.json\nmodel.pkl\n.storage/\n", encoding="utf-8")
        init(git)
        config = path / "gitml.yaml"
        config.write_text(config.read_text().replace("# experiment: default", "experiment: demo") + DEMO_PROJECT)
        for name, lr in (("baseline", 0.01), ("faster-lr", 0.1)):
            (path / "params.yaml").write_text(f"lr: {lr}\nepochs: 5\nseed: 1\n", encoding="utf-8")
            git.add_all()
            git.commit_staged(f"train with lr={lr}")
            train("train.py")
            commit(name)
        train("train_with_api.py")
        # A branch that trains longer, for `gitml diff main more-epochs`.
        git.checkout("more-epochs", create=True)
        (path / "params.yaml").write_text("lr: 0.1\nepochs: 20\nseed: 1\n", encoding="utf-8")
        git.add_all()
        git.commit_staged("train for 20 epochs")
        train("train.py")
        commit("more-epochs")
        git.checkout("main")
        # A folder stands in for the team's bucket: the same commands work with s3://, gs://, ...
        add_remote("storage", str(path / ".storage"), default=True, local=True, repo=git)
        push(repo=git)
        # The best model on main becomes version v0.0.1 of "toy-classifier", promoted to prod:
        # among the best, the one logged as a model (with log_model) when there is one.
        on_main = search_runs("attributes.branch = 'main'", order_by="metrics.accuracy DESC", repo=git)
        top = [run for run in on_main if run.metrics.get("accuracy") == on_main[0].metrics.get("accuracy")]
        best = next((run for run in top if "model" in run.artifacts), top[0])
        version = register_model("toy-classifier", best.id, path="model" if "model" in best.artifacts else None,
                                 repo=git).version
        assign("toy-classifier", version, "prod", repo=git)
        return path, search_runs(repo=git)


def _demo_taken(directory: str | os.PathLike, path: Path) -> BadInputError:
    """The error for a demo directory that is taken: what it holds, and what to do instead."""
    import shlex

    shown = os.fspath(directory)
    other = "gitml demo other-dir"
    if path.is_dir() and _holds_demo(path):
        return BadInputError(f"{shown} already holds a demo: cd {shlex.quote(shown)}",
                             hint=f"or give another directory to make a new one: {other}")
    if path.is_dir():
        return BadInputError(f"{shown} exists and is not empty",
                             hint=f"give a new or empty directory: {other}")
    return BadInputError(f"{shown} exists and is not a directory", hint=f"give a new directory: {other}")


def _holds_demo(path: Path) -> bool:
    """Whether ``path`` is the top of a repository a previous :func:`demo` made (scripts and runs)."""
    from gitml.core.runsref import RUNS_REF

    if not ((path / ".git").exists() and (path / "train.py").is_file() and (path / "train_with_api.py").is_file()):
        return False
    try:
        with GitRepo(path) as git:
            return git.root.resolve() == path and git.ref(RUNS_REF) is not None
    except GitmlError:
        return False


# -- the demo's two scripts and its project ------------------------------------------------------
DEMO_PROJECT = """
# The project: `gitml run -P lr=0.2` trains as a run (docs/projects.md).
project:
  name: toy-classifier
  entry_points:
    main:
      parameters:
        lr: {type: float, default: 0.1}
        epochs: {type: int, default: 5}
        seed: {type: int, default: 1}
      command: "python train.py --log-with-api --log-accuracy --lr {lr} --epochs {epochs} --seed {seed}"
"""

DEMO_TRAIN_PY = '''\
"""A toy training script: reads params.yaml, writes metrics.json and model.pkl."""
import json
import math
import pickle
import random
import sys

import yaml

params = yaml.safe_load(open("params.yaml"))
for name, kind in (("lr", float), ("epochs", int), ("seed", int)):  # --lr 0.2 wins over params.yaml
    if f"--{name}" in sys.argv:
        params[name] = kind(sys.argv[sys.argv.index(f"--{name}") + 1])
rng = random.Random(params["seed"])
data = [(x, 1 if x + rng.gauss(0, 0.3) > 0 else 0) for x in (rng.uniform(-1, 1) for _ in range(400))]
w, b = 0.0, 0.0
for epoch in range(params["epochs"]):
    loss = 0.0
    for x, y in data:
        p = 1 / (1 + math.exp(-(w * x + b)))
        w -= params["lr"] * (p - y) * x
        b -= params["lr"] * (p - y)
        loss -= math.log(max(p if y else 1 - p, 1e-12))
    if "--log-with-api" in sys.argv:
        import gitml
        gitml.log_metric("loss", loss / len(data), step=epoch)
accuracy = sum((w * x + b > 0) == bool(y) for x, y in data) / len(data)
if "--log-accuracy" in sys.argv:
    import gitml
    gitml.log_metric("accuracy", accuracy)
json.dump({"accuracy": accuracy, "loss": loss / len(data)}, open("metrics.json", "w"))
pickle.dump({"w": w, "b": b}, open("model.pkl", "wb"))
'''

DEMO_API_PY = '''\
"""The same training, logged from inside the script with the gitml API, the model as a model."""
import json
import pickle
import runpy
import sys

import gitml
import yaml


class ToyClassifier(gitml.models.PythonModel):
    """Predicts 1 when w * x + b > 0 for the column x."""

    def __init__(self, weights):
        self.w, self.b = weights["w"], weights["b"]

    def predict(self, context, model_input, params=None):
        return (model_input["x"] * self.w + self.b > 0).astype(int).to_numpy()


with gitml.start_run(name="api-run", experiment="demo") as run:
    gitml.log_params(yaml.safe_load(open("params.yaml")))
    sys.argv = ["train.py", "--log-with-api"]
    runpy.run_path("train.py")
    gitml.log_metric("accuracy", json.load(open("metrics.json"))["accuracy"])
    try:  # a model in MLflow's format, ready to load and serve (needs gitml[models])
        import pandas
        model = ToyClassifier(pickle.load(open("model.pkl", "rb")))
        gitml.log_model(model, "model", input_example=pandas.DataFrame({"x": [0.5, -0.7]}))
    except ImportError:
        gitml.log_artifact("model.pkl")
print(run.id)
'''


def log_model(model: Any, name: str, *, registered_model_name: str | None = None, **save_options: Any):
    """Save ``model`` in MLflow's model format and log it as the active run's folder artifact ``name``.

    The folder is written to a temporary place, hashed into the content store as one directory
    artifact (``gitml push`` uploads it) and removed; with ``registered_model_name`` the run
    registers it as that model's next version when it ends FINISHED, as
    ``log_artifact(..., register_as=)`` does.

    Args:
        model: a scikit-learn estimator or pipeline, or a :class:`gitml.models.PythonModel`.
        name: the artifact path of the model folder in the run (``model``, ``models/churn``).
        registered_model_name: register the model as a version of this model.
        **save_options: what :func:`gitml.models.save_model` takes: ``flavor``, ``signature``,
            ``input_example``, ``pip_requirements``, ``extra_pip_requirements``, ``code_paths``,
            ``metadata`` and the flavor's options (``serialization_format``, ``artifacts`` …).

    Returns:
        A :class:`gitml.models.pyfunc.ModelInfo` (``model_uri`` is ``runs:/<run id>/<name>``).

    Raises:
        GitmlError: no active run, or the disk is full.
        BadInputError: a bad name or model name, no flavor saves the model, a bad option.
    """
    import posixpath
    import tempfile

    from gitml.models.pyfunc import ModelInfo, save_model

    run = _current()
    logical = check_artifact_path(name)
    if registered_model_name is not None:
        from gitml.core.tags import check_model

        check_model(registered_model_name)
    parent, base = posixpath.split(logical)

    def fetch(uri: str, dest: Path) -> None:
        from gitml.artifacts.transfer import download

        download(uri, dest=dest, repo=run._git)

    with tempfile.TemporaryDirectory(prefix="gitml-model-") as tmp:
        folder = Path(tmp) / base
        mlmodel = save_model(model, folder, fetch=fetch, **save_options)
        mlmodel.run_id, mlmodel.artifact_path = run.id, logical
        mlmodel.save(folder)
        entry = log_artifact(str(folder), parent or None, register_as=registered_model_name)
    return ModelInfo(run.id, logical, mlmodel, entry["sha256"], registered_model_name)
