"""A run's artifacts as files, for the MLflow side of interop (export, the tracking-store plugin)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from gitml.core import store


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
