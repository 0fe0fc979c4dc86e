"""Runs in progress: ``<git-common-dir>/gitml/active/<run-id>``, one append-only file each.

The file's first line is the run's meta (a JSON object: id, name, experiment, start time,
provenance, writing process), written together with the work tree's uncommitted patch (a
``["d", patch]`` record) in the one write that creates the file. Every later call appends one
JSON array per line (``["p", key, value]``, ``["m", key, value, step, time]``, ``["t", …]``,
``["a", …]``, ``["r", …]``; ``["x", status]`` when committing the run failed), flushed to the
kernel as it is written. A run costs one file created and one removed; a crash loses at most a
half-written last line, which reading skips.

Runs started by gitml before this layout are folders of the same name (``meta.json``,
``patch.diff``, ``log``, ``commit-failed``): they are still listed, resumed and committed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, GitmlError, RunNotFoundError
from gitml.core.formats import Metric, iso_time

ACTIVE_DIR = "active"
#: In a run of the older folder layout, the file written when committing it failed (its text: the
#: status asked for). The run stays, with everything it logged, until ``commit-run --resume``
#: commits it. In the one-file layout the same note is an ``["x", status]`` record.
COMMIT_FAILED = "commit-failed"
_STATUSES = ("FINISHED", "FAILED", "KILLED")
_RUN_NAME = re.compile(r"[0-9a-f]{32}")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)

# errno -> (what happened, what to do): the storage problems a user can fix.
_DISK_PROBLEMS = {
    errno.ENOSPC: ("no space left on device", "free space and retry"),
    getattr(errno, "EDQUOT", -1): ("disk quota exceeded", "free space or raise the quota, and retry"),
    errno.EROFS: ("read-only file system", "remount it read-write or work elsewhere, and retry"),
    errno.EACCES: ("permission denied", "fix the permissions and retry"),
    errno.EPERM: ("operation not permitted", "fix the permissions and retry"),
}


def disk_error(exc: OSError, path: str | os.PathLike) -> GitmlError | None:
    """A one-line :class:`GitmlError` (exit code 1) for a full, read-only or forbidden disk.

    Args:
        exc: the error a write raised.
        path: what was being written, named when ``exc`` carries no file name of its own (a
            failing ``write()`` on an open file does not).

    Returns:
        The error to raise, or None when ``exc`` is another kind of ``OSError``.
    """
    problem = _DISK_PROBLEMS.get(exc.errno)
    if problem is None:
        return None
    return GitmlError(f"{problem[0]} while writing {exc.filename or path}: {problem[1]}")


@dataclass
class RunLog:
    """Everything an active run logged, folded from its log lines."""

    params: dict[str, Any]
    metrics: list[Metric]
    tags: dict[str, str]
    artifacts: dict[str, dict[str, Any]]
    registrations: list[tuple[str, str]] = field(default_factory=list)  # (model, artifact path)
    inputs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # context -> name -> dataset


class ActiveRun:
    """Writer of one run in progress (see the module docstring for the layout).

    Open one with :meth:`create` or :meth:`reopen`; the constructor opens, for appending, the
    log of a run that already exists (its file, or the ``log`` in an older run's folder).

    Args:
        path: the run's path, ``<git-common-dir>/gitml/active/<run-id>``.
        meta: the run's meta; ``meta["id"]`` is its run id.
        handle: the run's file, already open for appending (as :meth:`create` leaves it).

    Raises:
        GitmlError: the log cannot be opened on a full, read-only or forbidden disk.
        OSError: the log cannot be opened for another reason.
    """

    def __init__(self, path: Path, meta: dict[str, Any], handle=None) -> None:
        self.path = path
        self.meta = meta
        self.id: str = meta["id"]
        if handle is None:
            try:
                handle = open(_log_file(path), "a", encoding="utf-8", buffering=1)
            except OSError as exc:
                raise disk_error(exc, _log_file(path)) or exc from None
        self._log = handle
        self._steps: dict[str, int] = {}
        self.params_so_far: dict[str, Any] = {}  # what the log held when reopened
        self._write_lock = threading.Lock()  # one whole line at a time: threads log too (system metrics)

    @classmethod
    def create(cls, gitml_dir: Path, meta: dict[str, Any], patch: str | None) -> ActiveRun:
        """Start a run's file; on a full (or read-only) disk, leave nothing behind.

        The meta line and the patch are written in one write to a file created for the purpose
        (it must not exist yet); the file stays open for the log.

        Args:
            gitml_dir: ``<git-common-dir>/gitml``.
            meta: the run's meta (``id``, ``name``, ``experiment``, ``start_time``,
                ``source`` …); the writing process's ``pid`` and ``host`` are added.
            patch: the work tree's uncommitted changes (``git diff --binary``), or None when clean.

        Returns:
            The writer, its file open for appending.

        Raises:
            GitmlError: the disk is full, read-only or forbidden (nothing is left behind).
            OSError: a run with this id is in progress already, or another write failed.
        """
        path = gitml_dir / ACTIVE_DIR / meta["id"]
        meta = {**meta, "pid": os.getpid(), "host": socket.gethostname()}
        head = json.dumps(meta, sort_keys=True) + "\n"
        if patch is not None:
            head += json.dumps(["d", patch]) + "\n"  # undecodable bytes travel as \\udcXX escapes
        try:
            try:
                fd = os.open(path, _CREATE, 0o644)
            except FileNotFoundError:  # the first run in this repository
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, _CREATE, 0o644)
        except OSError as exc:
            raise disk_error(exc, path) or exc from None
        try:
            data = head.encode("utf-8", "surrogatepass")
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, "short write", str(path))
            return cls(path, meta, open(fd, "a", encoding="utf-8", buffering=1))
        except BaseException as exc:
            os.close(fd)
            remove(path)  # nothing was logged yet: no data is lost
            if isinstance(exc, OSError):
                raise disk_error(exc, path) or exc from None
            raise

    def _write(self, record: list) -> None:
        line = json.dumps(record) + "\n"
        try:
            with self._write_lock:
                self._log.write(line)
        except OSError as exc:
            raise disk_error(exc, self.path) or exc from None

    @classmethod
    def reopen(cls, gitml_dir: Path, run_id: str) -> ActiveRun:
        """Open a run in progress again to log more; default metric steps continue where it stopped.

        Args:
            gitml_dir: ``<git-common-dir>/gitml``.
            run_id: the full id of a run in progress.

        Returns:
            The writer, its log open for appending.

        Raises:
            RunNotFoundError: no run in progress has that id.
            BadInputError: its meta cannot be read.
        """
        path = gitml_dir / ACTIVE_DIR / run_id
        saved = load(path)
        run = cls(path, saved.meta)
        run.params_so_far = dict(saved.log.params)
        if saved.torn:  # a killed writer's half line: end it, so the next record stands alone
            run._log.write("\n")
        for point in saved.log.metrics:  # default steps continue where the run stopped
            run._steps[point.key] = max(run._steps.get(point.key, -1), point.step)
        return run

    # Each writer appends one line; `buffering=1` flushes it to the kernel immediately, which is
    # what survives a killed process.
    def param(self, key: str, value: Any) -> None:
        """Append one parameter (a later value of the same key wins).

        Args:
            key: the parameter's key, already validated.
            value: a JSON-ready scalar (see :func:`gitml.core.formats.param_value`).

        Raises:
            GitmlError: the disk is full, read-only or forbidden.
        """
        self._write(["p", key, value])

    def metric(self, key: str, value: float, step: int | None, stamp: float | None = None) -> None:
        """Append one metric point.

        Args:
            key: the metric's key, already validated.
            value: the value (NaN and infinities allowed).
            step: the step; None means one more than this key's last step (0 for the first).
            stamp: when it was measured, POSIX seconds (default: now); kept to milliseconds.

        Raises:
            GitmlError: the disk is full, read-only or forbidden.
        """
        if step is None:
            step = self._steps.get(key, -1) + 1
        self._steps[key] = step
        stamp = time.time() if stamp is None else stamp
        self._write(["m", key, value, step, round(stamp, 3)])

    def tag(self, key: str, value: str) -> None:
        """Append one tag (a later value of the same key wins).

        Args:
            key: the tag's key, already validated.
            value: its text.

        Raises:
            GitmlError: the disk is full, read-only or forbidden.
        """
        self._write(["t", key, value])

    def artifact(self, path: str, entry: dict[str, Any]) -> None:
        """Append one artifact, already in the local content store.

        Args:
            path: its logical path in the run (``models/model.pkl``).
            entry: its ``artifacts.yaml`` entry (``kind``, ``sha256``, ``size``, and ``files``
                for a directory), as :func:`gitml.core.store.put_path` returns it.

        Raises:
            GitmlError: the disk is full, read-only or forbidden.
        """
        self._write(["a", path, entry])

    def input(self, context: str, name: str, dataset: dict[str, Any]) -> None:
        """Append a dataset the run read (the last one logged under a context and name wins).

        Args:
            context: what it was used for (``training``, ``evaluation``), already validated.
            name: the dataset's name, already validated.
            dataset: its ``inputs.yaml`` fields (``digest``, ``source_type``, ``source``,
                ``schema``, ``num_rows``, ``num_elements``).

        Raises:
            GitmlError: the disk is full, read-only or forbidden.
        """
        self._write(["i", context, name, dataset])

    def register(self, model: str, path: str) -> None:
        """Ask for ``path`` to be registered as a version of ``model`` once the run finishes.

        Args:
            model: the registry model name, already validated.
            path: the logical path of an artifact this run logged.

        Raises:
            GitmlError: the disk is full, read-only or forbidden.
        """
        self._write(["r", model, path])

    def close(self) -> None:
        """Close the log.

        Every line was flushed when written, so a failing close loses nothing that a failed
        write did not already report; its error is ignored.
        """
        try:
            self._log.close()
        except OSError:
            pass


@dataclass
class SavedRun:
    """A run in progress as read back: its meta, what it logged, its patch, a failed commit.

    ``failed`` is None, or the status a failed commit asked for (``""`` when unreadable);
    ``torn`` says the log ends in a half-written line (a killed writer).
    """

    meta: dict[str, Any]
    log: RunLog
    patch: str | None
    failed: str | None
    torn: bool = False


def load(path: Path) -> SavedRun:
    """Read a run in progress in one go, in either layout.

    Args:
        path: the run's path under ``<git-common-dir>/gitml/active/``.

    Returns:
        Its meta, log, patch and failed-commit note.

    Raises:
        RunNotFoundError: nothing is there: no such run in progress.
        BadInputError: its meta is not readable JSON.
    """
    if os.path.isdir(path):
        lines = _read_lines(path / "log")
        return SavedRun(_folder_meta(path), _fold(lines), _folder_patch(path), _folder_failed(path),
                        bool(lines) and not lines[-1].endswith("\n"))
    lines = _read_lines(path, missing_ok=False)
    meta = _meta_line(path, lines[0] if lines else "")
    patch, failed = None, None
    for line in lines[1:]:
        if line.startswith('["d", '):
            with contextlib.suppress(ValueError, IndexError):
                patch = json.loads(line)[1]
        elif line.startswith('["x", '):
            try:
                failed = json.loads(line)[1]
            except (ValueError, IndexError):
                failed = ""
            failed = failed if failed in _STATUSES else ""
    return SavedRun(meta, _fold(lines[1:]), patch, failed, not lines[-1].endswith("\n"))


def load_more(path: Path, saved: SavedRun | None = None, offset: int = 0) -> tuple[SavedRun, int]:
    """Read a run in progress incrementally: what its file gained since ``offset``, folded onto ``saved``.

    A reader that follows a live run (``gitml ui``'s live page) reads each appended line once,
    not the whole log on every look: a run of 200,000 logged points is 20 MB.

    Args:
        path: the run's path under ``<git-common-dir>/gitml/active/`` (an older run's folder is
            read whole every time).
        saved: what an earlier call returned for this path, or None to read from the start.
        offset: the byte offset an earlier call returned (0 with ``saved`` None).

    Returns:
        ``(run, offset)``: the run as read so far (``saved`` itself, extended, when given) and
        the offset to pass next time. A half-written last line is left for the next call.

    Raises:
        RunNotFoundError: the file is gone (the run was committed or removed).
        BadInputError: its meta is not readable JSON.
    """
    if os.path.isdir(path):
        return load(path), 0
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        raise RunNotFoundError(f"no run in progress with id {path.name}") from None
    except OSError as exc:
        raise BadInputError(f"run {path.name}: unreadable: {exc}") from None
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", "surrogateescape").splitlines(keepends=True)
    if saved is None:
        meta = _meta_line(path, lines[0] if lines else "")
        lines = lines[1:]
        saved = SavedRun(meta, RunLog({}, [], {}, {}), None, None)
    for line in lines:
        if line.startswith('["d", '):
            with contextlib.suppress(ValueError, IndexError):
                saved.patch = json.loads(line)[1]
        elif line.startswith('["x", '):
            try:
                failed = json.loads(line)[1]
            except (ValueError, IndexError):
                failed = ""
            saved.failed = failed if failed in _STATUSES else ""
    more, log = _fold(lines), saved.log
    log.params.update(more.params)
    log.metrics.extend(more.metrics)
    log.tags.update(more.tags)
    log.artifacts.update(more.artifacts)
    log.registrations.extend(more.registrations)
    for context, datasets in more.inputs.items():
        log.inputs.setdefault(context, {}).update(datasets)
    saved.torn = end < len(data)
    return saved, offset + end


def _failed_note(path: Path) -> str | None:
    """The status a failed commit asked for ('' when unreadable), read off the file's end; None if none failed.

    The note is the last line a run's file gets, so the end of a long log is enough.
    """
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 4096))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        if line.startswith('["x", '):
            try:
                failed = json.loads(line)[1]
            except (ValueError, IndexError):
                return ""
            return failed if failed in _STATUSES else ""
    return None


def _read_lines(file: Path, missing_ok: bool = True) -> list[str]:
    try:
        with open(file, encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
            return handle.readlines()
    except FileNotFoundError:
        if missing_ok:
            return []
        raise RunNotFoundError(f"no run in progress with id {file.name}") from None
    except OSError as exc:
        raise BadInputError(f"run {file.name}: unreadable: {exc}") from None


def _meta_line(path: Path, line: str) -> dict[str, Any]:
    try:
        meta = json.loads(line)
    except ValueError as exc:
        raise BadInputError(f"run {path.name}: unreadable meta line: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("id"), str):
        raise BadInputError(f"run {path.name}: its first line is not a run's meta")
    return meta


def read_meta(directory: Path) -> dict[str, Any]:
    """Read a run in progress's meta (the file's first line, or an older run's ``meta.json``).

    Args:
        directory: the run's path under ``<git-common-dir>/gitml/active/``.

    Returns:
        The mapping written at start (``id``, ``name``, ``experiment``, ``start_time``,
        ``source``, ``pid``, ``host`` …).

    Raises:
        RunNotFoundError: nothing is there: no such run in progress.
        BadInputError: the meta is not readable JSON.
    """
    if os.path.isdir(directory):
        return _folder_meta(directory)
    try:
        with open(directory, encoding="utf-8", errors="surrogateescape") as handle:
            line = handle.readline()
    except FileNotFoundError:
        raise RunNotFoundError(f"no run in progress with id {directory.name}") from None
    except OSError as exc:
        raise BadInputError(f"run {directory.name}: unreadable: {exc}") from None
    return _meta_line(directory, line)


def _folder_meta(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunNotFoundError(f"no run in progress with id {directory.name}") from None
    except (ValueError, OSError) as exc:
        raise BadInputError(f"run {directory.name}: unreadable meta.json: {exc}") from None


def read_log(directory: Path) -> RunLog:
    """Fold a run's log; an unparseable line (a crash mid-write) is skipped.

    Args:
        directory: the run's path under ``<git-common-dir>/gitml/active/``.

    Returns:
        What the run logged: the last value of each param and tag, every metric point in
        logging order, each artifact's entry and the registrations asked for. A missing log
        reads as an empty one.
    """
    if os.path.isdir(directory):
        return _fold(_read_lines(directory / "log"))
    return _fold(_read_lines(directory)[1:])


def _fold(lines: list[str]) -> RunLog:
    params: dict[str, Any] = {}
    metrics: list[Metric] = []
    tags: dict[str, str] = {}
    artifacts: dict[str, dict[str, Any]] = {}
    registrations: list[tuple[str, str]] = []
    inputs: dict[str, dict[str, dict[str, Any]]] = {}
    for line in lines:
        try:  # a line that is not a record of its kind (a torn write, a hand edit) is skipped, whatever is wrong
            record = json.loads(line)
            kind = record[0]
            if kind == "p":
                params[record[1]] = record[2]
            elif kind == "m":
                metrics.append(Metric(record[1], float(record[2]), int(record[3]), iso_time(record[4])))
            elif kind == "t":
                tags[record[1]] = record[2]
            elif kind == "a":
                artifacts[record[1]] = record[2]
            elif kind == "r":
                registrations.append((record[1], record[2]))
            elif kind == "i":
                inputs.setdefault(record[1], {})[record[2]] = record[3]
        except (ValueError, IndexError, KeyError, TypeError, AttributeError, OverflowError, OSError):
            continue
    return RunLog(params, metrics, tags, artifacts, registrations, inputs)


def read_patch(directory: Path) -> str | None:
    """The uncommitted changes recorded when the run started.

    Args:
        directory: the run's path under ``<git-common-dir>/gitml/active/``.

    Returns:
        The patch text (undecodable bytes kept as surrogate escapes), or None when the work
        tree was clean.
    """
    if os.path.isdir(directory):
        return _folder_patch(directory)
    try:
        return load(directory).patch
    except (RunNotFoundError, BadInputError):
        return None


def _folder_patch(directory: Path) -> str | None:
    try:
        return (directory / "patch.diff").read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None


def list_active(gitml_dir: Path) -> list[dict[str, Any]]:
    """Meta of every run in progress, with ``alive`` telling whether its process still runs.

    A run whose commit failed (a full disk, say) has ``alive`` False whatever its process does,
    since that process will not write to it again, and ``commit_failed`` True, with
    ``requested_status`` the status it was to be committed with.

    Args:
        gitml_dir: ``<git-common-dir>/gitml``.

    Returns:
        One meta mapping per run, in run id order, with ``alive`` (True, False, or None
        when it runs on another host), ``commit_failed`` and ``requested_status`` (None, or
        ``FINISHED``/``FAILED``/``KILLED``; ``""`` when unreadable) added. Runs whose meta
        cannot be read are left out, and so are names that are no run id (a stray file).
    """
    root = gitml_dir / ACTIVE_DIR
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not _RUN_NAME.fullmatch(path.name):
            continue
        try:
            if path.is_dir():
                meta, failed = _folder_meta(path), _folder_failed(path)
            else:  # the first line and the last few: a long run's whole log is not read
                meta, failed = read_meta(path), _failed_note(path)
        except (BadInputError, RunNotFoundError):
            continue
        meta["alive"] = False if failed is not None else _alive(meta)
        meta["commit_failed"] = failed is not None
        meta["requested_status"] = failed or None
        found.append(meta)
    return found


def mark_commit_failed(directory: Path, status: str) -> None:
    """Note in a run in progress that committing it failed.

    Best effort on a full disk: a line that small usually lands even then, and a failure to
    write it is ignored.

    Args:
        directory: the run's path under ``<git-common-dir>/gitml/active/``.
        status: the status it was to be committed with (``FINISHED``, ``FAILED`` or ``KILLED``).
    """
    try:
        if os.path.isdir(directory):
            (directory / COMMIT_FAILED).write_text(status, encoding="utf-8")
            return
        with open(directory, "rb") as handle:  # end a torn last line first
            size = handle.seek(0, os.SEEK_END)
            torn = False
            if size:
                handle.seek(size - 1)
                torn = handle.read(1) != b"\n"
        with open(directory, "a", encoding="utf-8") as handle:
            handle.write(("\n" if torn else "") + json.dumps(["x", status]) + "\n")
    except OSError:
        pass


def _folder_failed(directory: Path) -> str | None:
    """The status a failed commit asked for ('' when unreadable), or None if none failed."""
    try:
        with open(directory / COMMIT_FAILED, encoding="utf-8", errors="replace") as handle:
            text = handle.read(16).strip()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    return text if text in _STATUSES else ""


def _alive(meta: dict[str, Any]) -> bool | None:
    """Whether the writing process lives; None when it ran on another host."""
    if meta.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(meta["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError, TypeError, OverflowError):
        return True
    return True


def remove(directory: Path) -> None:
    """Delete a run in progress (its file, or an older run's folder); errors are ignored.

    Args:
        directory: the run's path under ``<git-common-dir>/gitml/active/``.
    """
    try:
        mode = os.lstat(directory).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(directory, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(directory)


def _log_file(path: Path) -> Path:
    """Where a run's log lines go: its own file, or the ``log`` in an older run's folder."""
    return path / "log" if os.path.isdir(path) else path
