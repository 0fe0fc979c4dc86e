"""Turning a run into a commit on the runs ref.

Two ways in: an active run (the Python API's ``start_run`` … ``end_run``) is folded from its
log and committed; ``commit_run`` builds a complete run in one step from values and files, for
training scripts that never import gitml.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import re
import shlex
import stat
import sys
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml import __version__
from gitml.core import active, index, runsref, store, yamlfmt
from gitml.core.config import load_config
from gitml.core.errors import BadInputError, GitmlError, RunNotFoundError
from gitml.core.formats import (
    FINAL_STATUSES,
    HISTORY_BOUND,
    Metric,
    Run,
    downsample,
    history_tsv,
    iso_time,
    metric_value,
    param_value,
    run_files,
)
from gitml.core.gitrepo import GitRepo
from gitml.core.ids import check_artifact_path, check_key, check_name, new_run_id, new_run_name
from gitml.core.urls import mask_text
from gitml.core.workspace import WorkspaceLike, open_workspace
from gitml.tracking.provenance import capture_source


def check_status(status: str) -> str:
    """The final status ``status`` names, upper-cased.

    Raises:
        BadInputError: not one of FINISHED, FAILED, KILLED (in any case).
    """
    value = str(status).upper()
    if value not in FINAL_STATUSES:
        raise BadInputError(f"unknown status {status!r}", hint=f"use one of {', '.join(FINAL_STATUSES)}")
    return value


def user_name(repo: GitRepo) -> str | None:
    """The user's git identity name (``user.name``), or None when git has none."""
    return repo.config_value("user", "name")


def _command_line() -> str:
    """This process's command line, with an absolute program path shortened to its name."""
    program, *args = list(sys.argv) or [""]
    if program.endswith("__main__.py"):
        return " ".join(["python -m", Path(program).parent.name, shlex.join(args)]).strip()
    if os.path.isabs(program):
        program = os.path.basename(program)
    return shlex.join([program, *args])


def new_meta(
    repo: GitRepo,
    name: str | None,
    experiment: str | None,
    require_clean: bool,
    command: str | None = None,
    description: str | None = None,
    user: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The fixed part of a new run (id, name, provenance …) and its uncommitted patch.

    ``user`` overrides the git identity's name (an ``mlflow.user`` tag given at creation).
    """
    if experiment is None:
        from gitml.tracking.experiments import default_experiment

        experiment = default_experiment(repo)
    config_experiment = None if experiment is not None else load_config(repo.root).experiment
    source, patch = capture_source(repo, require_clean=require_clean)
    meta = {
        "id": new_run_id(),
        "name": check_name(name, "run name") if name is not None else new_run_name(),
        "experiment": check_name(experiment if experiment is not None else config_experiment, "experiment"),
        "start_time": iso_time(time.time()),
        "user": user if user is not None else user_name(repo),
        "source": source,
        "command": mask_text(command if command is not None else _command_line()),  # URLs' secrets
        "description": description,
    }
    return meta, patch


RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"


def creation_tags(name: str | None, tags: Mapping[str, Any] | None) -> tuple[str | None, Any, str | None]:
    """Apply MLflow's rules for the system tags given when a run is created.

    A run's ``mlflow.runName`` tag is its name: given with an explicit name, the name wins; given
    alone, it names the run. An ``mlflow.user`` tag given at creation is the run's user (MLflow's
    ``user_id``); set later it is only a tag, as in MLflow.

    Args:
        name: the name asked for, or None.
        tags: the tags given at creation.

    Returns:
        ``(name, tags without mlflow.runName, user or None)``.
    """
    if not isinstance(tags, Mapping):
        return name, tags, None  # refused where tags are checked
    tags = dict(tags)
    tag_name = tags.pop(RUN_NAME_TAG, None)
    if name is None and tag_name is not None:
        name = str(tag_name)
    user = tags.get(USER_TAG)
    return name, tags, None if user is None else str(user)


def _recency(point: Metric) -> tuple[int, str, float]:
    return point.step, point.timestamp, 0.0 if math.isnan(point.value) else point.value


def assemble(meta: Mapping[str, Any], log: active.RunLog, status: str, patch: str | None) -> tuple[Run, list[Metric]]:
    """A finished :class:`Run` from an active run's meta and log, plus its metric points."""
    latest: dict[str, Metric] = {}
    for point in log.metrics:
        # MLflow's latest value: the highest step, then the latest timestamp, then the highest
        # value (a NaN counting as 0, as in MLflow's database stores); of points equal in all
        # three, the first logged.
        current = latest.get(point.key)
        if current is None or _recency(point) > _recency(current):
            latest[point.key] = point
    end = iso_time(time.time())
    tags = dict(log.tags)
    name = meta["name"]
    if RUN_NAME_TAG in tags:
        # Set during the run, mlflow.runName renames it, as in MLflow. A name gitml cannot take
        # stays a tag, which searches still read as the run's name.
        try:
            name = check_name(tags[RUN_NAME_TAG], "run name")
            del tags[RUN_NAME_TAG]
        except BadInputError:
            pass
    run = Run(
        id=meta["id"],
        name=name,
        experiment=meta["experiment"],
        status=status,
        start_time=meta["start_time"],
        end_time=end,
        updated=end,
        user=meta.get("user"),
        source=meta.get("source") or {},
        command=meta.get("command"),
        entry_point=meta.get("entry_point"),
        description=meta.get("description"),
        gitml_version=__version__,
        project=meta.get("project"),
        params=dict(log.params),
        metrics={k: m.value for k, m in latest.items()},
        metric_info={k: {"step": m.step, "timestamp": m.timestamp} for k, m in latest.items()},
        tags=tags,
        artifacts=dict(log.artifacts),
        inputs={context: dict(datasets) for context, datasets in log.inputs.items()},
        patch=patch,
    )
    return run, log.metrics


def write_run(repo: GitRepo, run: Run, points: list[Metric]) -> str:
    """Commit one run's directory onto the runs ref (compare-and-swap, retried).

    Returns:
        The new tip of the runs ref.

    Raises:
        ConcurrencyError: the ref kept moving past the retry bound.
    """
    return write_runs(repo, [(run, points)], f"run {run.id}: {run.name}")


def write_runs(repo: GitRepo, runs: Iterable[tuple[Run, list[Metric]] | tuple[Run, list[Metric], dict]],
               message: str, batch: bool = True) -> str:
    """Commit finished runs in one commit, and bring an up-to-date query index along.

    Args:
        repo: the open repository.
        runs: ``(run, its metric points)`` pairs, or ``(run, points, files)`` triples whose
            ``files`` are :func:`run_tree_files` of that run, made already (an import that
            compared them with the ref's copy first).
        message: the commit message.
        batch: collect the objects and write them together just before the ref moves (see
            :meth:`GitRepo.flush`: loose or one pack, as git's fsync settings make cheaper).

    Returns:
        The new tip of the runs ref.

    Raises:
        ConcurrencyError: the ref kept moving past the retry bound.
    """
    written: list[Run] = []
    changes: dict[str, str] = {}
    with repo.batch() if batch else contextlib.nullcontext():
        for run, points, *made in runs:
            files = made[0] if made else run_tree_files(run, points, store.cache_dir(repo.gitml_dir))
            changes[run.id] = runsref.write_run_tree(repo, files)
            written.append(run)  # what parse_run reads back from its files (tests hold it to that)
        # the lookup maps' keys of each new tree, so they need not be read back
        hints = {changes[run.id]: (run.source.get("commit"), run.start_time) for run in written}
        tip = runsref.commit_runs(repo, changes, message, hints=hints)
    parents = repo.read_commit(tip)[1]
    index.record_written(repo, parents[0] if parents else None, tip, written)
    return tip


def run_tree_files(run: Run, points: list[Metric], cache: Path | None) -> dict[str, bytes]:
    """The files of a run's folder on the runs ref: :func:`run_files` plus ``history.tsv``.

    Args:
        run: the run.
        points: every metric point, in logging order.
        cache: the content store the full history goes to when ``history.tsv`` is over its
            bound (docs/formats.md); None only hashes it (a dry run).

    Returns:
        ``{file name: bytes}``.

    Raises:
        BadInputError: a file would be over the bound every reader enforces.
    """
    files = run_files(run)
    counts: dict[str, int] = {}
    for point in points:
        counts[point.key] = counts.get(point.key, 0) + 1
    if any(n > 1 for n in counts.values()):
        text = history_tsv(points)
        if len(text.encode()) > HISTORY_BOUND:
            data = text.encode()
            full = store.put_bytes(cache, data) if cache is not None else hashlib.sha256(data).hexdigest()
            note = f"# full history: sha256:{full} ({len(points)} points)\n"
            text = note + history_tsv(downsample(points, HISTORY_BOUND - len(note)))
        files["history.tsv"] = text.encode()
    return files


@dataclass
class FinishedRun:
    """A run just committed, and the models it asked to be registered as when it finished.

    ``registrations`` is ``[(model, artifact path)]``, from ``log_artifact(..., register_as=...)``;
    empty unless the run is FINISHED. Registering them is :mod:`gitml.api`'s step: it crosses
    into the registry.
    """

    run: Run
    registrations: list[tuple[str, str]] = field(default_factory=list)


def finish_active(repo: GitRepo, run_id: str, status: str, project: dict | None = None) -> FinishedRun:
    """Commit a run in progress with ``status`` and remove its active directory.

    When the commit fails, the directory stays with everything logged, marked as failed (see
    :func:`gitml.core.active.list_active`), for ``commit_run(resume=...)`` to commit later.

    Args:
        repo: the open repository.
        run_id: the full id of a run in progress.
        status: ``FINISHED``, ``FAILED`` or ``KILLED``.
        project: fields to add to the run's ``project`` block (``gitml run``'s exit code and
            duration, known only now).

    Returns:
        The committed run and the registrations it asked for (when FINISHED).

    Raises:
        RunNotFoundError: no run in progress has this id.
        BadInputError: an unknown status, or the run's meta cannot be read.
        GitmlError: a full, read-only or forbidden disk, in one line with a hint to resume.
    """
    directory = repo.gitml_dir / active.ACTIVE_DIR / run_id
    saved = active.load(directory)  # one read of the run's file (or an older run's folder)
    log = saved.log
    meta = saved.meta
    if project:
        meta = {**meta, "project": {**(meta.get("project") or {}), **project}}
    run, points = assemble(meta, log, check_status(status), saved.patch)
    try:
        write_run(repo, run, points)
    except Exception as exc:
        active.mark_commit_failed(directory, run.status)
        error = active.disk_error(exc, repo.common_dir) if isinstance(exc, OSError) else None
        if error is None:
            raise
        # Let go of the frames now: a half-written git object file they hold is closed here
        # (a destructor that fails on the full disk), not at some later garbage collection.
        traceback.clear_frames(exc.__traceback__)
        error.hint = f"the run is kept: gitml commit-run --resume {run.id} --status {run.status}"
        raise error from None
    active.remove(directory)
    return FinishedRun(run, list(log.registrations) if run.status == "FINISHED" else [])


def resolve_active(repo: GitRepo, prefix: str) -> str:
    """The id of the one run in progress whose id starts with ``prefix``.

    Raises:
        RunNotFoundError: no run in progress matches, or several.
    """
    matches = [m["id"] for m in active.list_active(repo.gitml_dir) if m["id"].startswith(prefix)]
    if len(matches) != 1:
        what = "no run in progress" if not matches else f"{len(matches)} runs in progress"
        raise RunNotFoundError(f"{what} matches {prefix!r}", hint="see `gitml runs list --active`")
    return matches[0]


# -- files users already have: params.yaml, metrics.json -----------------------------------------

#: Largest params or metrics file read, in bytes: such files hold numbers, not data sets.
MAX_VALUES_FILE_BYTES = 16 * 1024 * 1024
#: Deepest nesting of mappings and lists in a params or metrics file.
MAX_VALUES_DEPTH = 64
_QUOTED_PART = re.compile(r"'[^']*'|\"[^\"]*\"")
_PLAIN_KEY = re.compile(r"[\w .@+/-]{1,40}")
_PUNCTUATION = re.compile(r"['\"](?:[^\w\s]{1,3}|<[a-z ]+>)['\"]")


def _shown(key: object) -> str:
    """A key fit for an error message: a short, plain name as is.

    Anything else (which may be a line of some file that was never a params file) is not repeated.
    """
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return repr(key)
    return "a key (not shown: long or with unusual characters)"


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings with dots (``train: {lr: 0.1}`` -> ``train.lr``), as DVC does.

    An empty mapping stays a value (``opts: {}`` is the param ``opts``, stored as ``{}``).

    Raises:
        BadInputError: two entries flatten to the same name (``train: {lr: …}`` and
            ``train.lr: …``, or keys ``1`` and ``"1"``): one would silently replace the other.
    """
    flat: dict[str, Any] = {}

    def walk(mapping: Mapping[str, Any], base: str) -> None:
        for key, value in mapping.items():
            name = f"{base}{key}"
            if isinstance(value, Mapping) and value:
                walk(value, name + ".")
            elif name in flat:
                raise BadInputError(f"key {_shown(name)} is given twice (nested and dotted, say)")
            else:
                flat[name] = value

    walk(doc, prefix)
    return flat


def _yaml_problem(exc: yamlfmt.YamlProblem) -> str:
    """The problem without the file text PyYAML may quote.

    Quoted parts that are more than a bit of punctuation or a token name (``'<scalar>'``) become
    ``…``; gitml's own wording is kept.
    """
    if exc.ours:
        return exc.problem
    kept = {m.group() for m in _PUNCTUATION.finditer(exc.problem)}
    return _QUOTED_PART.sub(lambda m: m.group() if m.group() in kept else "…", exc.problem)[:160]


def _load_yaml(text: str, where: str) -> Any:
    """The document, checked and read by the one value grammar (YAML 1.2's core schema).

    See :func:`gitml.core.yamlfmt.load_untrusted`: aliases, merge keys, keys given twice, depth
    and syntax are checked first.
    """
    try:
        return yamlfmt.load_untrusted(text, MAX_VALUES_DEPTH, yaml12=True)
    except yamlfmt.YamlProblem as exc:
        at = f" line {exc.line}, column {exc.column}:" if exc.line else ""
        raise BadInputError(f"{where}:{at} invalid YAML: {_yaml_problem(exc)}") from None


def _load_json(text: str, where: str) -> Any:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise BadInputError(f"{where}: key {_shown(key)} is given twice")
            out[key] = value
        return out

    try:
        doc = json.loads(text, object_pairs_hook=unique) if text.strip() else {}
    except json.JSONDecodeError as exc:  # msg is a fixed phrase, never the file's text
        raise BadInputError(f"{where}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise BadInputError(f"{where}: nested more than {MAX_VALUES_DEPTH} levels deep") from None
    if _depth(doc) > MAX_VALUES_DEPTH:
        raise BadInputError(f"{where}: nested more than {MAX_VALUES_DEPTH} levels deep")
    return doc


def _depth(doc: Any) -> int:
    deepest, stack = 0, [(doc, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _read_bounded(path: Path) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_VALUES_FILE_BYTES`.

    Opened without blocking and checked on the open descriptor, so a FIFO, a device such as
    ``/dev/zero`` or a file swapped in after a check is refused, not read forever.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise BadInputError(f"file not found: {path}") from None
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadInputError(f"{path}: not a regular file",
                            hint="give a YAML or JSON file, not a directory, device or pipe")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_VALUES_FILE_BYTES + 1)
        except OSError as exc:
            raise BadInputError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_VALUES_FILE_BYTES:
        raise BadInputError(f"{path}: larger than {MAX_VALUES_FILE_BYTES >> 20} MiB",
                            hint="params and metrics files hold values; log big files as artifacts")
    return data


def read_values_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file of (possibly nested) values, flattened with dots.

    JSON when the name ends in ``.json``, YAML otherwise. The file must be a regular file of at
    most :data:`MAX_VALUES_FILE_BYTES`, UTF-8, a mapping nested at most
    :data:`MAX_VALUES_DEPTH` deep, without YAML anchors/aliases, duplicate keys or two keys that
    flatten to one name. Errors name the file, line and column and the kind of problem; they
    never quote the file's text beyond a short key name.

    Raises:
        BadInputError: any of the above does not hold.
    """
    path = Path(path)
    data = _read_bounded(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BadInputError(f"{path}: line {line}, column {column}: not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        doc = _load_json(text, str(path))
    else:
        doc = _load_yaml(text, str(path))
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise BadInputError(f"{path}: expected a mapping of names to values, found a {_kind(doc)}")
    try:
        return flatten(doc)
    except BadInputError as exc:
        raise BadInputError(f"{path}: {exc.message}") from None


def _kind(value: object) -> str:
    names = {list: "list", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _file_values(path: str | Path, kind: str) -> dict[str, Any]:
    """A params or metrics file's values, each checked, refusals naming the file and key only."""
    out: dict[str, Any] = {}
    for key, value in read_values_file(path).items():
        try:
            check_key(key, f"{kind} key")
        except BadInputError as exc:
            # check_key quotes the key after ": "; a file's key is shown only if short and clean
            raise BadInputError(f"{path}: {exc.message.split(': ')[0]}: {_shown(key)}") from None
        if kind == "metric":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise BadInputError(f"{path}: metric {_shown(key)} must be a number, not a {_kind(value)}")
            out[key] = metric_value(key, value)  # an int past 1.8e308 is ±inf, as "1e999" is
        else:
            try:
                out[key] = param_value(key, value)
            except BadInputError as exc:
                raise BadInputError(f"{path}: {exc.message.replace(repr(key), _shown(key))}") from None
    return out


def _params(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        check_key(str(key), "param key")
        out[str(key)] = param_value(str(key), value)
    return out


def _metrics(values: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        check_key(str(key), "metric key")
        out[str(key)] = metric_value(str(key), value)
    return out


def record_run(
    name: str | None = None,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    params_files: Iterable[str | Path] = (),
    metrics_files: Iterable[str | Path] = (),
    artifacts: Iterable[str | Path] = (),
    tags: Mapping[str, str] | None = None,
    status: str = "FINISHED",
    message: str | None = None,
    command: str | None = None,
    require_clean: bool = False,
    resume: str | None = None,
    repo: WorkspaceLike = None,
) -> FinishedRun:
    """Commit one complete run in one step.

    ``gitml.commit_run`` (:func:`gitml.api.commit_run`) calls this, then registers what a resumed
    run asked for. With no params, metrics or files given, reads the files ``gitml.yaml`` names (by default
    ``params.yaml`` and ``metrics.json`` at the work tree's root, each skipped when absent).
    Everything is validated before anything is written: bad input changes nothing.

    Args:
        name: the run's name (default: a generated one).
        experiment: its experiment (default: ``gitml.yaml``'s, else ``default``).
        params: values given directly; they win over the files' for a shared key.
        metrics: numbers given directly; they win over the files'.
        params_files: YAML or JSON files of params, flattened with dots, in order. Relative
            paths are read from the current directory (the CLI makes them absolute for ``-C``).
        metrics_files: YAML or JSON files of metrics, likewise.
        artifacts: files or directories to store, each logged under its base name.
        tags: string tags; an ``mlflow.runName`` tag names the run when ``name`` is not given, an
            ``mlflow.user`` tag is its user (MLflow's rules for tags given at creation).
        status: ``FINISHED``, ``FAILED`` or ``KILLED``.
        message: a description stored with the run.
        command: the command that produced the run (default: this process's command line).
        require_clean: refuse when tracked files have uncommitted changes.
        resume: commit this run in progress (id or prefix) instead of creating one.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The committed run, and the registrations a resumed run asked for. The run's
        ``warnings`` say what went through but looks wrong: a run with no params, metrics or
        artifacts, or a params file changed after a metrics file read with it.

    Raises:
        BadInputError: a bad value, key, file, artifact path, name or status.
        DirtyWorktreeError: ``require_clean`` and the work tree is dirty.
        RunNotFoundError: ``resume`` matches no run in progress, or several.
        GitmlError: the commit failed (a full disk, say); a resumed run stays in progress.
    """
    params_files, metrics_files = list(params_files), list(metrics_files)
    with open_workspace(repo) as ws:
        git = ws.repo
        if resume is not None and not resume.strip():
            raise BadInputError("empty run id given to resume", hint="see `gitml runs list --active`")
        defaults: list[str] = []  # the files gitml.yaml names, when those are what is read
        if not (params or metrics or params_files or metrics_files or resume):
            config = ws.config
            defaults = [*config.params, *config.metrics]
            params_files = [git.root / p for p in config.params if (git.root / p).is_file()]
            metrics_files = [git.root / m for m in config.metrics if (git.root / m).is_file()]
        # Files in the order given, then values given directly: a later one wins a shared key.
        all_params: dict[str, Any] = {}
        for file in params_files:
            all_params.update(_file_values(file, "param"))
        all_params.update(_params(params or {}))
        all_metrics: dict[str, float] = {}
        for file in metrics_files:
            all_metrics.update(_file_values(file, "metric"))
        all_metrics.update(_metrics(metrics or {}))
        all_tags = {check_key(str(k), "tag key"): str(v) for k, v in (tags or {}).items()}
        paths = _artifact_paths(artifacts)
        warnings = _stale_params(git.root, params_files, metrics_files)
        status = check_status(status)
        if resume is not None:
            run_id = resolve_active(git, resume)
            run_log = active.ActiveRun.reopen(git.gitml_dir, run_id)
        else:
            name, all_tags, user = creation_tags(name, all_tags)
            meta, patch = new_meta(git, name, experiment, require_clean, command, message, user)
            run_log = active.ActiveRun.create(git.gitml_dir, meta, patch)
        try:
            try:
                _log_all(git, run_log, all_params, all_metrics, all_tags, paths)
            finally:
                run_log.close()
            finished = finish_active(git, run_log.id, status)
        except BaseException as exc:
            if resume is not None:
                raise  # the run was there before: it stays, with what it had
            # A new run's values are all in the user's files and options: dropping the half-made
            # run loses nothing, and the same command makes it again once the disk has room.
            active.remove(run_log.path)
            if isinstance(exc, GitmlError) and exc.hint and "--resume" in exc.hint:
                exc.hint = "nothing was recorded"
            raise
        run = finished.run
        if not (run.params or run.metrics or run.artifacts):
            why = ""
            if defaults and not (params_files or metrics_files):
                why = f" (none of the files gitml.yaml names exists: {', '.join(defaults)})"
            warnings.insert(0, f"run {run.id[:8]} records no params, metrics or artifacts{why}")
        run.warnings = warnings
        return finished


def _stale_params(root: Path, params_files: list, metrics_files: list) -> list[str]:
    """A warning per params file changed after a metrics file read with it (edited, not rerun).

    Compared by modification time, read before anything is committed; a file that cannot be
    stat'ed says nothing (reading it has already been refused or will be).
    """
    def mtime(path) -> int | None:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return None

    metrics_times = [(m, t) for m in metrics_files if (t := mtime(m)) is not None]
    out = []
    for params_file in params_files:
        changed = mtime(params_file)
        older = [m for m, t in metrics_times if changed is not None and changed > t]
        if older:
            out.append(f"{_near(root, params_file)} was changed after {_near(root, older[0])} was "
                       "written: its metrics may "
                       "not come from these params (retrain, or touch the metrics file if they do)")
    return out


def _log_all(git, run_log, params, metrics, tags, paths) -> None:
    stamp = time.time()
    for key, value in params.items():
        run_log.param(key, value)
    for key, value in metrics.items():
        run_log.metric(key, value, None, stamp)
    for key, value in tags.items():
        run_log.tag(key, value)
    for name, path in paths.items():
        try:
            entry = store.put_path(store.cache_dir(git.gitml_dir), path)
        except OSError as exc:
            raise active.disk_error(exc, store.cache_dir(git.gitml_dir)) or exc from None
        run_log.artifact(name, entry)


def _artifact_paths(artifacts: Iterable[str | Path]) -> dict[str, Path]:
    """Logical name (the base name) -> path, refusing missing paths and clashing names."""
    paths: dict[str, Path] = {}
    for given in artifacts:
        path = Path(given)
        if not path.exists():
            raise BadInputError(f"artifact path does not exist: {given}")
        if not (path.is_file() or path.is_dir()):
            raise BadInputError(f"artifact is neither a regular file nor a directory: {given}")
        name = check_artifact_path(path.resolve().name)
        if name in paths:
            raise BadInputError(f"two artifacts would both be named {name!r}: {paths[name]} and {given}")
        paths[name] = path
    return paths


def _near(root: Path, path: str | Path) -> str:
    """``path`` relative to the work tree's root when it is inside it, else as given."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return str(path)
