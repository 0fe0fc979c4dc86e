"""A run's artifacts as files, for the MLflow side of interop (export, the tracking-store plugin).

Also the folder where MLflow's client writes a ``gitml:`` run's artifacts while it is in
progress (:func:`staged_folder`) and how they become the run's artifacts (:func:`record_staged`),
which both the plugin (when the run ends) and ``gitml commit-run --resume`` (after a crash) do.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from gitml.core import store

STAGED_DIR = ("mlflow", "artifacts")  # under <common dir>/gitml: <run id>/<what MLflow wrote>


def staged_folder(gitml_dir: Path, run_id: str) -> Path:
    """Where MLflow's local artifact repository writes the artifacts of the ``gitml:`` run ``run_id``."""
    return gitml_dir.joinpath(*STAGED_DIR, run_id)


def record_staged(gitml_dir: Path, handle: Any) -> int:
    """Store what MLflow's client wrote for a run in progress and record it as the run's artifacts.

    Each top-level file or folder becomes one artifact (a folder, such as a logged model's
    ``model/``, one directory artifact), as ``gitml import mlflow`` maps a run's artifacts, so
    ``gitml registry register --path model`` takes it. Symbolic links are left out. Recording
    the same folder again records the same entries (the last entry of a path wins).

    Args:
        gitml_dir: the repository's ``<common dir>/gitml``.
        handle: the run's :class:`gitml.core.active.ActiveRun`.

    Returns:
        How many artifacts were recorded.

    Raises:
        GitmlError: the disk is full, read-only or forbidden.
    """
    folder = staged_folder(gitml_dir, handle.id)
    if not folder.is_dir():
        return 0
    cache = store.cache_dir(gitml_dir)
    count = 0
    for path in sorted(folder.iterdir()):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            continue
        handle.artifact(path.name, store.put_path(cache, str(path)))
        count += 1
    return count


def artifact_files(run, cache: Path) -> tuple[list[tuple[str, Path, int]], list[str]]:
    """Every file of a run's artifacts, directories expanded through their manifests.

    Args:
        run: a :class:`gitml.core.formats.Run`.
        cache: the local content store.

    Returns:
        ``(found, missing)``: ``(logical path, object file, size)`` for each file whose bytes
        are in ``cache``, and the logical paths of the files (or directories) whose bytes are not.

    Raises:
        GitmlError: a directory's manifest is malformed or names an unsafe path.
    """
    found: list[tuple[str, Path, int]] = []
    missing: list[str] = []
    for logical, entry in sorted(run.artifacts.items()):
        kind = entry.get("kind")
        if kind == "file":
            _add(found, missing, cache, logical, entry)
        elif kind == "dir":
            manifest = store.object_path(cache, entry["sha256"])
            if not manifest.is_file():
                missing.append(logical)
                continue
            for item in store.manifest_files(manifest.read_bytes(), f"run {run.id[:8]} {logical}"):
                _add(found, missing, cache, f"{logical}/{item['path']}", item)
    return found, missing


def _add(found: list, missing: list, cache: Path, logical: str, entry: dict[str, Any]) -> None:
    path = store.object_path(cache, entry["sha256"])
    if path.is_file():
        found.append((logical, path, int(entry.get("size", 0))))
    else:
        missing.append(logical)


def lay_out(files: list[tuple[str, Path, int]], folder: Path, link: bool = False) -> None:
    """Put the files under ``folder`` at their logical paths.

    ``link``: hard links where the disk allows, for a folder only read and then removed; a
    folder another program may write into gets copies, so that no write reaches the store.
    """
    for logical, source, _ in files:
        target = folder.joinpath(*logical.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                os.link(source, target)
                continue
            except OSError:
                pass
        shutil.copyfile(source, target)
