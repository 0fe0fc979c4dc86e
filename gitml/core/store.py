"""The local content-addressed cache: ``<git-common-dir>/gitml/cache/sha256/ab/cdef…``.

Objects are named by the sha256 of their bytes and never change once stored. A directory
artifact is stored as its files plus a canonical JSON manifest (relative path, sha256, size,
mode per file), itself stored by hash. Files are written under a temporary name in the cache and
renamed into place, so a killed process never leaves a partial object behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, GitmlError
from gitml.core.ids import check_artifact_path, check_digest, check_disjoint_paths, is_digest

CHUNK = 1 << 20
GC_LOCK = "gc.lock"
MAX_MANIFEST_BYTES = 64 << 20  # a directory of ~300,000 files


def cache_dir(gitml_dir: Path) -> Path:
    """The local content store of a repository, shared by every worktree of it.

    Args:
        gitml_dir: the repository's gitml folder, ``<git-common-dir>/gitml``.

    Returns:
        ``<gitml_dir>/cache`` (it may not exist yet).
    """
    return Path(gitml_dir) / "cache"


@contextlib.contextmanager
def gc_guard(cache: Path, exclusive: bool = False) -> Iterator[None]:
    """Hold the cache's gc lock: shared while storing an object, exclusive while gc deletes.

    A writer checks-and-freshens (or renames in) an object under the shared lock, and gc
    re-checks an object's age and deletes it under the exclusive one, so gc never deletes an
    object in the instant a writer decided to reuse it. An ``flock`` is released by the kernel
    when its holder dies, so a killed process never leaves this lock behind. Where ``fcntl``
    does not exist (Windows) the guard does nothing and gc relies on its grace period alone.

    Args:
        cache: the content store's folder (created when missing).
        exclusive: take the lock exclusively (gc) rather than shared (a writer).

    Yields:
        Nothing; the lock is held for the block.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    cache.mkdir(parents=True, exist_ok=True)
    fd = os.open(cache / GC_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def object_path(cache: Path, digest: str) -> Path:
    """Where object ``digest`` lives in the cache.

    Args:
        cache: the content store's folder.
        digest: the object's sha256, hex.

    Returns:
        ``<cache>/sha256/<digest[:2]>/<digest[2:]>`` (it may not exist).

    Raises:
        BadInputError: ``digest`` is not 64 lowercase hex (it must never become a path).
    """
    check_digest(digest)
    return cache / "sha256" / digest[:2] / digest[2:]


def object_file(cache: str | os.PathLike, digest: str) -> str:
    """:func:`object_path` as a string, built without pathlib: for loops over thousands of objects.

    Raises:
        BadInputError: ``digest`` is not 64 lowercase hex (it must never become a path).
    """
    check_digest(digest)
    return f"{os.fspath(cache)}/sha256/{digest[:2]}/{digest[2:]}"


def iter_objects(cache: Path):
    """Every object digest in the local cache (names that are not digests are ignored).

    Args:
        cache: the content store's folder.

    Yields:
        sha256 digests (hex), in sorted order.
    """
    root = cache / "sha256"
    for shard in sorted(root.iterdir()) if root.is_dir() else []:
        if len(shard.name) == 2:
            for item in sorted(shard.iterdir()):
                if is_digest(shard.name + item.name):
                    yield shard.name + item.name


def freshen(path: Path) -> bool:
    """Mark an existing object as just used (its mtime), as git freshens a re-written object.

    ``gc`` spares objects younger than its grace period, so an object that a new run reuses
    cannot be collected between the moment the run stores it and the moment it is committed.

    Args:
        path: the object's file in the cache.

    Returns:
        True when the object is there (freshened, or on a cache shared read-only); False when
        it does not exist (any more).
    """
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False
    except PermissionError:  # a cache shared read-only: the object is there, just not ours
        return path.exists()


def hash_file(path: str | os.PathLike) -> str:
    """sha256 of a file, streamed in chunks of :data:`CHUNK` bytes.

    Args:
        path: the file.

    Returns:
        The digest, 64 lowercase hex.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def put_bytes(cache: Path, data: bytes) -> str:
    """Store bytes in the cache (written to a temporary name, then renamed in; read-only).

    Args:
        cache: the content store's folder.
        data: the object's bytes.

    Returns:
        Their sha256, hex: the object's name.

    Raises:
        OSError: the cache cannot be written.
    """
    digest = hashlib.sha256(data).hexdigest()
    target = object_path(cache, digest)
    with gc_guard(cache):
        if not freshen(target):
            _write_atomic(target, lambda handle: handle.write(data))
    return digest


def put_file(cache: Path, path: str | os.PathLike) -> tuple[str, int]:
    """Copy one file into the cache, hashing while copying (one read of the file).

    Args:
        cache: the content store's folder.
        path: the file to store.

    Returns:
        ``(sha256 hex, size in bytes)``.

    Raises:
        OSError: the file cannot be read or the cache written; no partial object is left.
    """
    tmp_dir = cache / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        target = object_path(cache, digest.hexdigest())
        with gc_guard(cache):
            if freshen(target):
                os.unlink(tmp)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return digest.hexdigest(), size


def put_path(cache: Path, path: str | os.PathLike) -> dict[str, Any]:
    """Store a file or a directory; return its ``artifacts.yaml`` entry.

    A directory is stored as each of its files plus a canonical JSON manifest (``{"files":
    [{"mode", "path", "sha256", "size"}]}``), itself stored by hash. Empty directories are
    kept: a directory with no file at all is a manifest with no files, and the empty folders
    inside one are listed under ``"dirs"`` (only the innermost ones: their parents follow), a
    key present only when there is one, so a directory without empty folders has the manifest
    it always had.

    Args:
        cache: the content store's folder.
        path: a file or a directory.

    Returns:
        ``{"kind": "file", "sha256", "size"}`` for a file; ``{"kind": "dir", "sha256" (the
        manifest's), "size" (bytes of all files), "files" (their count)}`` for a directory.

    Raises:
        BadInputError: ``path`` does not exist, or a file or folder in the directory has a name
            an artifact path cannot hold (checked before anything is stored).
        OSError: a file cannot be read or the cache written.
    """
    source = Path(path)
    if source.is_file():
        digest, size = put_file(cache, source)
        return {"kind": "file", "sha256": digest, "size": size}
    if source.is_dir():
        found, empty = _walk(source)
        files = []
        for file in found:
            digest, size = put_file(cache, file)
            mode = 0o755 if file.stat().st_mode & stat.S_IXUSR else 0o644
            rel = file.relative_to(source).as_posix()
            files.append({"mode": mode, "path": rel, "sha256": digest, "size": size})
        manifest = json.dumps({"files": files, **({"dirs": empty} if empty else {})},
                              sort_keys=True, separators=(",", ":")).encode()
        return {
            "kind": "dir",
            "sha256": put_bytes(cache, manifest),
            "size": sum(f["size"] for f in files),
            "files": len(files),
        }
    raise BadInputError(f"artifact path does not exist: {path}")


def _walk(source: Path) -> tuple[list[Path], list[str]]:
    """The files under ``source`` and its innermost empty folders (relative), names all checked."""
    found: list[Path] = []
    folders: list[str] = []
    for item in sorted(source.rglob("*")):
        if item.is_file():
            found.append(item)
        elif item.is_dir():
            folders.append(item.relative_to(source).as_posix())
        else:
            continue  # a socket, a fifo, a dangling link: not an artifact's content
        rel = item.relative_to(source).as_posix()
        try:
            safe = check_artifact_path(rel) == rel
        except BadInputError:
            safe = False
        if not safe:  # refuse before storing anything
            raise BadInputError(f"cannot record {str(item)!r}: its name has a control character, a "
                                "backslash or a '.'/'..' segment", hint="rename it, or leave it out")
    holding: set[str] = set()  # folders with a file or a folder inside
    for rel in [f.relative_to(source).as_posix() for f in found] + folders:
        parent = posixpath.dirname(rel)
        while parent and parent not in holding:
            holding.add(parent)
            parent = posixpath.dirname(parent)
    return found, [rel for rel in folders if rel not in holding]


def _write_atomic(target: Path, write) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def manifest_files(data: bytes, where: str) -> list[dict[str, Any]]:
    """The file list of a directory manifest, refusing paths that would leave the directory.

    Every entry must have a safe relative ``path``, a 64-hex ``sha256``, a non-negative
    integer ``size`` and an integer ``mode``; a manifest is at most :data:`MAX_MANIFEST_BYTES`.
    Its empty folders (``"dirs"``) are checked too: see :func:`manifest_entries`.

    Args:
        data: the manifest's bytes.
        where: what the manifest belongs to, for errors (``"run 1a2b3c4d model"``).

    Returns:
        The entries: ``{"path", "sha256", "size", "mode"}`` mappings as stored.

    Raises:
        GitmlError: the manifest is malformed or names an unsafe path or digest.
    """
    return manifest_entries(data, where)[0]


def manifest_entries(data: bytes, where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The files and the empty folders of a directory manifest, all checked.

    ``"dirs"`` (absent in a manifest without empty folders) lists the innermost empty folders:
    each a safe relative path, listed once, holding no file and no other listed folder.

    Args:
        data: the manifest's bytes.
        where: what the manifest belongs to, for errors (``"run 1a2b3c4d model"``).

    Returns:
        ``(files, dirs)``: the file entries as :func:`manifest_files` returns them, and the
        empty folders' relative paths.

    Raises:
        GitmlError: the manifest is malformed or names an unsafe path or digest.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise GitmlError(f"directory manifest of {where} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document = json.loads(data)
        files, dirs = document["files"], document.get("dirs", [])
        if not isinstance(files, list):
            raise TypeError("'files' is not a list")
        if not isinstance(dirs, list):
            raise TypeError("'dirs' is not a list")
        seen = set()
        for entry in files:
            rel = entry["path"]
            if not isinstance(rel, str) or check_artifact_path(rel) != rel or rel in seen:
                raise BadInputError(f"unsafe path {str(rel)[:80]!r}")
            seen.add(rel)
            check_digest(entry["sha256"], f"file {rel!r}")
            for key in ("size", "mode"):
                value = entry.get(key, 0)
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise BadInputError(f"bad {key} for {rel!r}")
        for rel in dirs:
            if not isinstance(rel, str) or check_artifact_path(rel) != rel or rel in seen:
                raise BadInputError(f"unsafe folder {str(rel)[:80]!r}")
            seen.add(rel)
        check_disjoint_paths(list(seen), "paths")
        return files, list(dirs)
    except BadInputError as exc:
        raise GitmlError(f"directory manifest of {where} is unsafe: {exc.message}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise GitmlError(f"directory manifest of {where} is malformed: {exc}") from None


def human_size(n: int) -> str:
    """A byte count as people read it: ``512 B``, ``10.0 KiB``, ``1.5 GiB`` (powers of 1,024)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
