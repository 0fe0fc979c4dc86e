"""Moving artifacts between the local cache and a remote: push, status, pull, download, ls.

Every public function takes ``repo=``: a :class:`~gitml.core.workspace.Workspace`, an open
repository or a path (default: the current directory). It opens one Workspace for the call and
hands that to its helpers, so the repository, its config and its remotes are read once. Results
are data (dataclasses, lists of paths); the CLI renders them. Progress is reported through an
optional :class:`Progress` the caller passes in: the library never prints.

Keeping the stores honest (``verify``, ``gc``) lives in :mod:`gitml.artifacts.maintenance`.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gitml.artifacts.backend import ObjectStore, RemoteError
from gitml.core import runsref, store
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import RUN_FILES, parse_run
from gitml.core.ids import check_artifact_path, check_disjoint_paths
from gitml.core.workspace import Fetcher, ObjectRef, Workspace, WorkspaceLike, open_workspace


class Progress(Protocol):
    """What a caller may pass to follow a transfer (the CLI passes tqdm bars)."""

    def start(self, files: int, total_bytes: int) -> None:
        """Called once, before the first byte moves, with what is about to move."""

    def advance(self, nbytes: int) -> None:
        """Called after each object moved, with its size in bytes (possibly from several threads)."""


@dataclass
class TransferResult:
    """What a push did.

    Attributes:
        remote: the artifact remote's name.
        transferred: the objects uploaded.
        skipped: how many referenced objects the remote already had.
        missing_locally: objects in neither the local cache nor the remote (logged on a machine
            that never pushed them): reported, not fatal.
        refused: ``{run id: problem}`` for runs whose objects were not pushed (an unreadable
            record or an unsafe directory manifest); the other runs' objects are pushed all the same.
    """

    remote: str
    transferred: list[ObjectRef] = field(default_factory=list)
    skipped: int = 0
    missing_locally: list[ObjectRef] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        """The total size of the objects uploaded, in bytes."""
        return sum(o.size for o in self.transferred)


@dataclass
class ObjectStatus:
    """Where one referenced object is.

    Attributes:
        ref: the object, and the first run and path found referencing it.
        local: whether the local cache has it.
        remote: whether the remote has it.
    """

    ref: ObjectRef
    local: bool
    remote: bool


class StatusReport(list):
    """A list of :class:`ObjectStatus`, plus ``refused``: ``{run id: problem}`` for unreadable runs."""

    def __init__(self, items: Iterable[ObjectStatus] = (), refused: dict[str, str] | None = None) -> None:
        super().__init__(items)
        self.refused = dict(refused or {})


# -- what runs reference ----------------------------------------------------------------------


def referenced_objects(run_ids: Iterable[str] | None = None, repo: WorkspaceLike = None) -> list[ObjectRef]:
    """Every object the runs reference, one entry per object, without contacting any remote.

    Args:
        run_ids: run ids or unique prefixes (default: every run on the runs ref).
        repo: a Workspace, an open repository or a path.

    Returns:
        One :class:`ObjectRef` per object: files, directory manifests and the files they list,
        full metric histories. A manifest missing from the local cache is listed, its files not.

    Raises:
        GitmlError: a run or one of its directory manifests cannot be read (named in the message).
        RunNotFoundError: a run id does not resolve.
    """
    with open_workspace(repo) as ws:
        found = ws.referenced_objects(run_ids)
    if found.refused:
        raise GitmlError(_refused_message(found.refused))
    return found.refs


def _refused_message(refused: dict[str, str]) -> str:
    """``run <id> cannot be used: <problem> (and N more)`` for ``{run id: problem}``."""
    first = next(iter(refused.items()))
    more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
    return f"run {first[0]} cannot be used: {first[1]}{more}"


def _fetcher(ws: Workspace, remote: ObjectStore | None) -> Fetcher | None:
    """Bring a missing directory manifest into the cache from ``remote``, when there is one."""
    if remote is None:
        return None
    return lambda refs: _fetch_objects(ws, remote, refs, None, jobs=1)


# -- push / status ----------------------------------------------------------------------------


def push(run_ids: Iterable[str] | None = None, remote: str | None = None, jobs: int = 8,
         progress: Progress | None = None, repo: WorkspaceLike = None) -> TransferResult:
    """Upload the objects the runs reference that the remote lacks.

    Idempotent: what the remote has is found with batched listings and skipped, so an
    interrupted push resumes where it stopped.

    Args:
        run_ids: run ids or unique prefixes (default: every run on the runs ref).
        remote: artifact remote name (default: the default remote).
        jobs: parallel uploads.
        progress: told what will move and each object moved.
        repo: a Workspace, an open repository or a path.

    Returns:
        A :class:`TransferResult`. Objects missing from the local cache and unreadable runs are
        reported in it, not raised: the rest is pushed.

    Raises:
        BadInputError: no such remote, or no default one.
        RunNotFoundError: a run id does not resolve.
        RemoteError: the remote cannot be reached or refuses an upload.
    """
    with open_workspace(repo) as ws:
        target = ObjectStore(ws.remote(remote))
        found = ws.referenced_objects(run_ids)
        have = target.existing(r.digest for r in found.refs)
        result = TransferResult(target.remote.name, skipped=len({r.digest for r in found.refs} & have),
                                refused=found.refused)
        todo = []
        for ref in found.refs:
            if ref.digest in have:
                continue
            if store.object_path(ws.cache, ref.digest).exists():
                todo.append(ref)
            else:
                result.missing_locally.append(ref)
        if progress:
            progress.start(len(todo), sum(r.size for r in todo))

        def upload(ref: ObjectRef) -> ObjectRef:
            target.put(str(store.object_path(ws.cache, ref.digest)), ref.digest)
            if progress:
                progress.advance(ref.size)
            return ref

        with ThreadPoolExecutor(max(1, jobs)) as pool:
            result.transferred = list(pool.map(upload, todo))
        return result


def status(run_ids: Iterable[str] | None = None, remote: str | None = None,
           repo: WorkspaceLike = None) -> StatusReport:
    """Each referenced object, with whether the local cache and the remote have it.

    Args:
        run_ids: run ids or unique prefixes (default: every run on the runs ref).
        remote: artifact remote name (default: the default remote).
        repo: a Workspace, an open repository or a path.

    Returns:
        A :class:`StatusReport`: one :class:`ObjectStatus` per object (an object several runs
        share appears once); runs that cannot be read are left out and named in ``refused``.

    Raises:
        BadInputError: no such remote, or no default one.
        RunNotFoundError: a run id does not resolve.
        RemoteError: the remote cannot be reached.
    """
    with open_workspace(repo) as ws:
        target = ObjectStore(ws.remote(remote))
        found = ws.referenced_objects(run_ids)
        have = target.existing(r.digest for r in found.refs)
        return StatusReport((ObjectStatus(r, store.object_path(ws.cache, r.digest).exists(), r.digest in have)
                             for r in found.refs), found.refused)


# -- fetching ---------------------------------------------------------------------------------


def pull(run: str, paths: Iterable[str] = (), out: str | os.PathLike = ".", remote: str | None = None,
         jobs: int = 8, progress: Progress | None = None, repo: WorkspaceLike = None) -> list[Path]:
    """Fetch a run's artifacts, or only those at or under ``paths``, into ``out/<logical path>``.

    Objects already in the local cache are not downloaded again; every downloaded one is
    verified against its hash before it is used. Every destination is checked before anything
    is written.

    Args:
        run: a run id or unique prefix.
        paths: logical paths: a file, a directory artifact, a file in one, or a folder (default: all).
        out: the directory to write into (relative to the process's current directory).
        remote: artifact remote name (default: the default one, opened only if the cache lacks something).
        jobs: parallel downloads.
        progress: told what will move and each object moved.
        repo: a Workspace, an open repository or a path.

    Returns:
        The files written, in the order of the run's logical paths.

    Raises:
        BadInputError: the run has no such artifact; no such remote, or several and no default.
        RunNotFoundError: the run id does not resolve.
        GitmlError: an object is corrupted on the remote, or in no store; a directory manifest is
            unsafe; a file cannot be written.
        RemoteError: the remote cannot be reached.
    """
    with open_workspace(repo) as ws:
        run_id = ws.resolve_run(run)
        source = _optional_remote(ws, remote)
        refs = [ref for p in (list(paths) or [""]) for ref in _select(ws, run_id, p, source)]
        targets = _targets(Path(out), [ref.path for ref in refs])  # all checked before any write
        _fetch_objects(ws, source, refs, progress, jobs)
        return [_place(ws, ref, target) for ref, target in zip(refs, targets, strict=True)]


def download(uri: str, dest: str | os.PathLike, remote: str | None = None,
             progress: Progress | None = None, repo: WorkspaceLike = None) -> list[Path]:
    """Fetch what an artifact URI names (one file or a folder) without the rest of the run.

    A single file goes to ``dest`` (or into it, when ``dest`` is a directory); several files go
    under ``dest`` with their paths relative to the one asked for.

    Args:
        uri: ``runs:/<run>[/<path>]``, or a registered version: ``models:/<model>@<stage>``,
            ``models:/<model>@latest``, ``models:/<model>/vX.Y.Z``.
        dest: destination file or directory (relative to the process's current directory).
        remote: artifact remote name (default: the default one, opened only if the cache lacks something).
        progress: told what will move and each object moved.
        repo: a Workspace, an open repository or a path.

    Returns:
        The files written.

    Raises:
        BadInputError: another scheme; a bad run id or path; an unknown model, version or stage;
            the run has no such artifact; no such remote, or several and no default.
        RunNotFoundError: the run is not on the runs ref.
        GitmlError: the version records no run artifact; an object is corrupted on the remote,
            or in no store; a directory manifest is unsafe; a file cannot be written.
        RemoteError: the remote cannot be reached.
    """
    with open_workspace(repo) as ws:
        where = ws.resolve_uri(uri)
        source = _optional_remote(ws, remote)
        refs = _select(ws, where.run_id, where.path, source)
        dest = Path(dest)
        if len(refs) == 1 and refs[0].path == where.path:
            target = _inside(dest, posixpath.basename(where.path)) if dest.is_dir() else dest
            _fetch_objects(ws, source, refs, progress)
            return [_place(ws, refs[0], target)]
        targets = _targets(dest, [posixpath.relpath(ref.path, where.path or ".") for ref in refs])
        _fetch_objects(ws, source, refs, progress)
        return [_place(ws, ref, target) for ref, target in zip(refs, targets, strict=True)]


def ls(run: str, repo: WorkspaceLike = None) -> list[ObjectRef]:
    """A run's artifact files, directories expanded (manifests from the cache, else the default remote).

    Args:
        run: a run id or unique prefix.
        repo: a Workspace, an open repository or a path.

    Returns:
        One :class:`ObjectRef` per file, sorted by logical path.

    Raises:
        RunNotFoundError: the run id does not resolve.
        BadInputError: the run has no artifact; a manifest is needed and there are several
            remotes and no default.
        GitmlError: a directory manifest is in no store, or unsafe.
        RemoteError: the remote cannot be reached.
    """
    with open_workspace(repo) as ws:
        return _select(ws, ws.resolve_run(run), "", _optional_remote(ws, None))


def _fetch_objects(ws: Workspace, source: ObjectStore | None, refs: list[ObjectRef],
                   progress: Progress | None, jobs: int = 8) -> None:
    """Bring objects into the local cache, verifying each one's hash before it gets its name."""
    cache = ws.cache
    todo = [r for r in {r.digest: r for r in refs}.values() if not store.object_path(cache, r.digest).exists()]
    if todo and source is None:
        raise GitmlError(f"{_describe(todo[0])} is not in the local cache "
                         "and no artifact remote is configured", hint="gitml remote add NAME URL")
    if progress:
        progress.start(len(todo), sum(r.size for r in todo))
    (cache / "tmp").mkdir(parents=True, exist_ok=True)

    def fetch(ref: ObjectRef) -> None:
        fd, tmp = tempfile.mkstemp(dir=cache / "tmp")
        os.close(fd)
        try:
            source.get(ref.digest, tmp)
            actual = store.hash_file(tmp)
            if actual != ref.digest:
                raise GitmlError(f"corrupted object on remote {source.remote.name!r}: {_describe(ref)} "
                                 f"should be {ref.digest[:12]} but its bytes hash to "
                                 f"{actual[:12]}; nothing was written",
                                 hint="gitml artifacts verify --remote --delete-bad, then push from a "
                                      "machine with a good copy")
            target = store.object_path(cache, ref.digest)
            with store.gc_guard(cache):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if progress:
            progress.advance(ref.size)

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(fetch, todo))


def _describe(ref: ObjectRef) -> str:
    """``model.pkl of run 1a2b3c4d`` — or just the path when the object belongs to no one run."""
    return f"{ref.path} of run {ref.run_id[:8]}" if ref.run_id else ref.path


def _optional_remote(ws: Workspace, remote: str | None) -> ObjectStore | None:
    """Return the remote to fetch from, opened only if something is missing from the cache.

    None when no remote is configured; otherwise a lazy handle, so that several remotes without
    a default (or an unreachable one) only matter when the cache cannot answer.
    """
    if remote is None and not ws.remotes():
        return None
    return _LazyStore(ws, remote)


class _LazyStore:
    def __init__(self, ws: Workspace, remote: str | None) -> None:
        self._ws = ws
        self._name = remote
        self._store: ObjectStore | None = None

    def __getattr__(self, name: str):
        if self._store is None:
            self._store = ObjectStore(self._ws.remote(self._name))
        return getattr(self._store, name)


def _select(ws: Workspace, run_id: str, path: str, remote: ObjectStore | None) -> list[ObjectRef]:
    """List the files of a run at or under logical ``path`` ("" for all), directories expanded."""
    tree = runsref.run_tree(ws.repo, ws.runs_tip, run_id)
    artifacts = parse_run(run_id, runsref.read_run_files(ws.repo, tree, RUN_FILES)).artifacts
    path = check_artifact_path(path) if path else ""
    fetch = _fetcher(ws, remote)

    def under(logical: str) -> bool:
        return not path or logical == path or logical.startswith(path + "/")

    out: list[ObjectRef] = []
    for name, entry in sorted(artifacts.items()):
        if entry.get("kind") != "dir":
            if under(name):
                out.append(ObjectRef(entry["sha256"], int(entry.get("size") or 0), run_id, name))
        elif under(name) or path.startswith(name + "/"):  # read a manifest only when it matters
            for item in ws.manifest(entry["sha256"], f"run {run_id[:8]} {name}", fetch):
                ref = ObjectRef(item["sha256"], int(item["size"]), run_id, f"{name}/{item['path']}",
                                0o755 if int(item.get("mode", 0o644)) & 0o100 else 0o644)
                if under(ref.path):
                    out.append(ref)
    if not out:
        known = ", ".join(sorted(artifacts)) or "none"
        raise BadInputError(f"run {run_id[:8]} has no artifact {path!r} (it has: {known})")
    return out


def _inside(base: Path, rel: str) -> Path:
    """Return ``base / rel``, asserting that it stays inside ``base``.

    Run records are validated when read; this is the second check, where a path is made.
    """
    if check_artifact_path(rel) != rel.strip("/"):
        raise GitmlError(f"refusing to write {rel!r}: it would leave {str(base)!r}")
    return base / rel


def _targets(base: Path, rels: list[str]) -> list[Path]:
    """Return where each file goes under ``base``, all checked before anything is written.

    Each must stay inside ``base``, and no file may be another's folder.
    """
    targets = [_inside(base, rel) for rel in rels]
    try:
        check_disjoint_paths([rel.strip("/") for rel in rels], f"cannot write into {str(base)!r}")
    except BadInputError as exc:
        raise GitmlError(exc.message) from None
    return targets


def _place(ws: Workspace, ref: ObjectRef, dest: Path) -> Path:
    """Copy a cached object to ``dest`` through a temporary file: never a half-written file.

    Raises:
        GitmlError: the file cannot be written (no space, no permission, a folder in the way).
    """
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".gitml-")
        os.close(fd)
        shutil.copyfile(store.object_path(ws.cache, ref.digest), tmp)
        os.chmod(tmp, ref.mode)
        os.replace(tmp, dest)
    except OSError as exc:
        raise GitmlError(f"cannot write {str(dest)!r}: {exc.strerror or exc}") from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return dest


__all__ = ["ObjectRef", "ObjectStatus", "Progress", "RemoteError", "StatusReport", "TransferResult",
           "download", "ls", "pull", "push", "referenced_objects", "status"]
