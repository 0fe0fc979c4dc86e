"""Runs in progress: ``<git-common-dir>/gitml/active/<run-id>/``.

A run in progress is a directory holding ``meta.json`` (written once, atomically, at start),
``patch.diff`` (when the work tree was dirty) and ``log``: one JSON array per line, appended and
flushed on every call. Nothing else is touched while a run logs, so a call costs a few
microseconds and a crash loses at most a half-written last line, which reading skips.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, GitmlError, RunNotFoundError
from gitml.core.formats import Metric, iso_time

ACTIVE_DIR = "active"
#: Written in a run's directory when committing it failed (its text: the status asked for). The
#: run stays, with everything it logged, until ``commit-run --resume`` commits it.
COMMIT_FAILED = "commit-failed"

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


class ActiveRun:
    """Writer of one run in progress (see the module docstring for the layout).

    Open one with :meth:`create` or :meth:`reopen`; the constructor opens the log of a
    directory that already exists.

    Args:
        directory: the run's folder, ``<git-common-dir>/gitml/active/<run-id>``.
        meta: the run's ``meta.json`` content; ``meta["id"]`` is its run id.

    Raises:
        GitmlError: the log cannot be opened on a full, read-only or forbidden disk.
        OSError: the log cannot be opened for another reason.
    """

    def __init__(self, directory: Path, meta: dict[str, Any]) -> None:
        self.dir = directory
        self.meta = meta
        self.id: str = meta["id"]
        try:
            self._log = open(directory / "log", "a", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise disk_error(exc, directory / "log") or exc from None
        self._steps: dict[str, int] = {}

    @classmethod
    def create(cls, gitml_dir: Path, meta: dict[str, Any], patch: str | None) -> ActiveRun:
        """Start a run's directory; on a full (or read-only) disk, leave nothing behind.

        Args:
            gitml_dir: ``<git-common-dir>/gitml``.
            meta: what ``meta.json`` holds (``id``, ``name``, ``experiment``, ``start_time``,
                ``source`` …); the writing process's ``pid`` and ``host`` are added.
            patch: the work tree's uncommitted changes (``git diff --binary``), or None when clean.

        Returns:
            The writer, its log open for appending.

        Raises:
            GitmlError: the disk is full, read-only or forbidden (nothing is left behind).
            OSError: the folder exists already, or another write failed.
        """
        directory = gitml_dir / ACTIVE_DIR / meta["id"]
        meta = {**meta, "pid": os.getpid(), "host": socket.gethostname()}
        try:
            directory.mkdir(parents=True)
        except OSError as exc:
            raise disk_error(exc, directory) or exc from None
        try:
            if patch is not None:
                (directory / "patch.diff").write_text(patch, encoding="utf-8", errors="surrogateescape")
            tmp = directory / "meta.json.tmp"
            tmp.write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
            os.replace(tmp, directory / "meta.json")
            return cls(directory, meta)
        except BaseException as exc:
            remove(directory)  # nothing was logged yet: no data is lost
            if isinstance(exc, OSError):
                raise disk_error(exc, directory) or exc from None
            raise

    def _write(self, record: list) -> None:
        try:
            self._log.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise disk_error(exc, self.dir / "log") or exc from None

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
            BadInputError: its ``meta.json`` cannot be read.
        """
        directory = gitml_dir / ACTIVE_DIR / run_id
        run = cls(directory, read_meta(directory))
        for point in read_log(directory).metrics:  # default steps continue where the run stopped
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


def read_meta(directory: Path) -> dict[str, Any]:
    """Read a run in progress's ``meta.json``.

    Args:
        directory: the run's folder under ``<git-common-dir>/gitml/active/``.

    Returns:
        The mapping written at start (``id``, ``name``, ``experiment``, ``start_time``,
        ``source``, ``pid``, ``host`` …).

    Raises:
        RunNotFoundError: the folder has no ``meta.json``: no such run in progress.
        BadInputError: ``meta.json`` is not readable JSON.
    """
    try:
        return json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunNotFoundError(f"no run in progress with id {directory.name}") from None
    except (ValueError, OSError) as exc:
        raise BadInputError(f"run {directory.name}: unreadable meta.json: {exc}") from None


def read_log(directory: Path) -> RunLog:
    """Fold a run's log; an unparseable line (a crash mid-write) is skipped.

    Args:
        directory: the run's folder under ``<git-common-dir>/gitml/active/``.

    Returns:
        What the run logged: the last value of each param and tag, every metric point in
        logging order, each artifact's entry and the registrations asked for. A missing log
        reads as an empty one.
    """
    params: dict[str, Any] = {}
    metrics: list[Metric] = []
    tags: dict[str, str] = {}
    artifacts: dict[str, dict[str, Any]] = {}
    registrations: list[tuple[str, str]] = []
    try:
        with open(directory / "log", encoding="utf-8", errors="replace") as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        try:
            record = json.loads(line)
            kind = record[0]
        except (ValueError, IndexError):
            continue
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
    return RunLog(params, metrics, tags, artifacts, registrations)


def read_patch(directory: Path) -> str | None:
    """The uncommitted changes recorded when the run started.

    Args:
        directory: the run's folder under ``<git-common-dir>/gitml/active/``.

    Returns:
        The patch text (undecodable bytes kept as surrogate escapes), or None when the work
        tree was clean.
    """
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
        One ``meta.json`` mapping per run, in run id order, with ``alive`` (True, False, or None
        when it runs on another host), ``commit_failed`` and ``requested_status`` (None, or
        ``FINISHED``/``FAILED``/``KILLED``; ``""`` when unreadable) added. Runs whose
        ``meta.json`` cannot be read are left out.
    """
    root = gitml_dir / ACTIVE_DIR
    found = []
    for directory in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            meta = read_meta(directory)
        except BadInputError:
            continue
        failed = _commit_failed(directory)
        meta["alive"] = False if failed is not None else _alive(meta)
        meta["commit_failed"] = failed is not None
        meta["requested_status"] = failed or None
        found.append(meta)
    return found


def mark_commit_failed(directory: Path, status: str) -> None:
    """Note in a run's directory that committing it failed.

    Best effort on a full disk: a file that small usually lands even then, and a failure to
    write it is ignored.

    Args:
        directory: the run's folder under ``<git-common-dir>/gitml/active/``.
        status: the status it was to be committed with (``FINISHED``, ``FAILED`` or ``KILLED``).
    """
    try:
        (directory / COMMIT_FAILED).write_text(status, encoding="utf-8")
    except OSError:
        pass


def _commit_failed(directory: Path) -> str | None:
    """The status a failed commit asked for ('' when unreadable), or None if none failed."""
    try:
        with open(directory / COMMIT_FAILED, encoding="utf-8", errors="replace") as handle:
            text = handle.read(16).strip()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    return text if text in ("FINISHED", "FAILED", "KILLED") else ""


def _alive(meta: dict[str, Any]) -> bool | None:
    """Whether the writing process lives; None when it ran on another host."""
    if meta.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(meta["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError):
        return True
    return True


def remove(directory: Path) -> None:
    """Delete a run in progress's folder and everything in it; errors are ignored.

    Args:
        directory: the run's folder under ``<git-common-dir>/gitml/active/``.
    """
    shutil.rmtree(directory, ignore_errors=True)
