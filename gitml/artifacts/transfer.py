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
from gitml.artifacts.record import RemoteRecord
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
    """A list of :class:`ObjectStatus`, plus ``refused``: ``{run id: problem}`` for unreadable runs.

    ``remote`` is the name of the remote the objects were looked up on.
    """

    def __init__(self, items: Iterable[ObjectStatus] = (), refused: dict[str, str] | None = None,
                 remote: str = "") -> None:
        super().__init__(items)
        self.refused = dict(refused or {})
        self.remote = remote


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


def fetch_to_cache(run_ids: Iterable[str], remote: str | None = None, repo: WorkspaceLike = None) -> None:
    """Bring every object the runs reference into the local cache; the work tree is not touched.

    Objects already cached are not fetched again; directory manifests are fetched first, then
    the files they list. Each object's hash is checked before it gets its name.

    Args:
        run_ids: run ids or unique prefixes.
        remote: the artifact remote to fetch from (default: the default one).
        repo: a Workspace, an open repository or a path.

    Raises:
        GitmlError: an object is missing and no artifact remote is configured; a corrupted
            object on the remote; a run or manifest that cannot be read.
        RemoteError: the remote cannot be reached.
    """
    run_ids = list(run_ids)
    with open_workspace(repo) as ws:
        source = _optional_remote(ws, remote)
        for _ in range(2):  # manifests, then the files they list
            found = ws.referenced_objects(run_ids)
            if found.refused:
                raise GitmlError(_refused_message(found.refused))
            _fetch_objects(ws, source, found.refs, None)


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


def push(run_ids: Iterable[str] | None = None, remote: str | None = None, jobs: int | None = None,
         progress: Progress | None = None, repo: WorkspaceLike = None, *, recheck: bool = False) -> TransferResult:
    """Upload the objects the runs reference that the remote lacks.

    Idempotent: objects this repository already saw on the remote, or uploaded there, are
    skipped after one listing of the remote's deletion notes (:mod:`gitml.artifacts.record`);
    the remote is asked about the others with batched listings. An interrupted push resumes
    where it stopped.

    Args:
        run_ids: run ids or unique prefixes (default: every run on the runs ref).
        remote: artifact remote name (default: the default remote).
        jobs: uploads at once (default: 64 small objects at once on S3, GCS and Azure; 8
            elsewhere, but objects up to 1 MiB one after the other to a folder on a local disk;
            see :meth:`ObjectStore.put_many`).
        progress: told what will move and each object moved.
        repo: a Workspace, an open repository or a path.
        recheck: ask the remote about every object, trusting no record (finds objects deleted
            from the remote by something other than gitml); what it finds is recorded.

    Returns:
        A :class:`TransferResult`. Objects missing from the local cache and unreadable runs are
        reported in it, not raised: the rest is pushed.

    Raises:
        BadInputError: no such remote, or no default one.
        RunNotFoundError: a run id does not resolve.
        RemoteError: the remote cannot be reached or refuses an upload (the objects uploaded
            before are recorded, so the next push does not upload them again).
    """
    with open_workspace(repo) as ws:
        target = ObjectStore(ws.remote(remote))
        found = ws.referenced_objects(run_ids)
        record = RemoteRecord(ws.gitml_dir, target)
        have = _on_remote(record, {r.digest for r in found.refs}, recheck)
        result = TransferResult(target.remote.name, skipped=len({r.digest for r in found.refs} & have),
                                refused=found.refused)
        cache = ws.cache
        todo: dict[str, ObjectRef] = {}
        files: list[tuple[str, str, int]] = []  # (cached copy, digest, size): what put_many takes
        for ref in found.refs:
            if ref.digest in have or ref.digest in todo:
                continue
            local = store.object_file(cache, ref.digest)
            if os.path.exists(local):
                todo[ref.digest] = ref
                files.append((local, ref.digest, ref.size))
            else:
                result.missing_locally.append(ref)
        if progress:
            progress.start(len(todo), sum(r.size for r in todo.values()))
        uploaded: set[str] = set()

        def done(digest: str) -> None:
            uploaded.add(digest)
            if progress:
                progress.advance(todo[digest].size)

        try:
            target.put_many(files, jobs, done)
        finally:
            record.learn(uploaded)
        result.transferred = [r for d, r in todo.items() if d in uploaded]
        return result


def _on_remote(record: RemoteRecord, wanted: set[str], recheck: bool) -> set[str]:
    """Which of ``wanted`` are on the remote: the record's word, the remote's for the rest.

    The deletion notes are listed first (``record.refresh``), so a deletion that happens while
    the remote is being asked is noted for the next push. What the remote answered is recorded.
    """
    known = record.refresh() & wanted
    ask = wanted if recheck else wanted - known
    found = record.store.existing(ask)
    record.learn(found, ask - found)
    return found if recheck else known | found


def status(run_ids: Iterable[str] | None = None, remote: str | None = None,
           repo: WorkspaceLike = None) -> StatusReport:
    """Each referenced object, with whether the local cache and the remote have it.

    The remote is asked about every object (no record is trusted); what it answers is recorded
    for the next push (:mod:`gitml.artifacts.record`).

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
        have = _on_remote(RemoteRecord(ws.gitml_dir, target), {r.digest for r in found.refs}, recheck=True)
        return StatusReport((ObjectStatus(r, store.object_path(ws.cache, r.digest).exists(), r.digest in have)
                             for r in found.refs), found.refused, target.remote.name)


# -- fetching ---------------------------------------------------------------------------------


def pull(run: str, paths: Iterable[str] = (), out: str | os.PathLike = ".", remote: str | None = None,
         jobs: int = 8, progress: Progress | None = None, repo: WorkspaceLike = None, *,
         force: bool = False) -> list[Path]:
    """Fetch a run's artifacts, or only those at or under ``paths``, into ``out/<logical path>``.

    Objects already in the local cache are not downloaded again; every downloaded one is
    verified against its hash before it is used. Every destination is checked before anything
    is written: an existing file with other bytes is refused unless ``force``, one with the
    same bytes is fine. Empty folders recorded in the run are made.

    Args:
        run: a run id or unique prefix.
        paths: logical paths: a file, a directory artifact, a file in one, or a folder (default: all).
        out: the directory to write into (relative to the process's current directory).
        remote: artifact remote name (default: the default one, opened only if the cache lacks something).
        jobs: parallel downloads.
        progress: told what will move and each object moved.
        repo: a Workspace, an open repository or a path.
        force: overwrite existing files whose bytes differ.

    Returns:
        The files written (and empty folders made), in the order of the run's logical paths.

    Raises:
        BadInputError: the run has no such artifact; no such remote, or several and no default;
            an existing file differs and ``force`` is not set (nothing is written).
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
        _check_overwrite(refs, targets, force)
        _fetch_objects(ws, source, [ref for ref in refs if not _is_folder(ref)], progress, jobs)
        return [_place(ws, ref, target) for ref, target in zip(refs, targets, strict=True)]


def download(uri: str, dest: str | os.PathLike | None = None, remote: str | None = None,
             progress: Progress | None = None, repo: WorkspaceLike = None, *, force: bool = False,
             into: str | os.PathLike = ".") -> list[Path]:
    """Fetch what an artifact URI names (one file or a folder) without the rest of the run.

    Without ``dest``, what the URI names is written into ``into`` (the current directory)
    under its base name, as :func:`pull` writes: ``runs:/<run>/model`` becomes ``./model/…``,
    ``runs:/<run>`` the run's logical paths. With ``dest``, a single file goes to ``dest`` (or
    into it, when ``dest`` is a directory); several files go under ``dest`` with their paths
    relative to the one asked for. An existing file with other bytes is refused unless
    ``force``; one with the same bytes is fine. Empty folders recorded in the run are made.

    Args:
        uri: ``runs:/<run>[/<path>]``, or a registered version: ``models:/<model>@<stage>``,
            ``models:/<model>@latest``, ``models:/<model>/vX.Y.Z``.
        dest: destination file or directory (relative to the process's current directory);
            default: ``into`` / the base name.
        remote: artifact remote name (default: the default one, opened only if the cache lacks something).
        progress: told what will move and each object moved.
        repo: a Workspace, an open repository or a path.
        force: overwrite existing files whose bytes differ.
        into: the directory a missing ``dest`` means (the CLI passes ``-C``'s).

    Returns:
        The files written (and empty folders made).

    Raises:
        BadInputError: another scheme; a bad run id or path; an unknown model, version or stage;
            the run has no such artifact; no such remote, or several and no default; an
            existing file differs and ``force`` is not set (nothing is written).
        RunNotFoundError: the run is not on the runs ref.
        GitmlError: the version records no run artifact; an object is corrupted on the remote,
            or in no store; a directory manifest is unsafe; a file cannot be written.
        RemoteError: the remote cannot be reached.
    """
    with open_workspace(repo) as ws:
        where = ws.resolve_uri(uri)
        source = _optional_remote(ws, remote)
        refs = _select(ws, where.run_id, where.path, source)
        if dest is None:
            name = posixpath.basename(where.path)
            dest = Path(into) / name if name else Path(into)
        else:
            dest = Path(dest)
        if len(refs) == 1 and refs[0].path == where.path:  # one file
            targets = [_inside(dest, posixpath.basename(where.path)) if dest.is_dir() else dest]
        else:
            rels = [posixpath.relpath(ref.path, where.path or ".") for ref in refs]
            _targets(dest, [rel for rel in rels if rel != "."])  # all checked before any write
            targets = [dest if rel == "." else _inside(dest, rel) for rel in rels]  # "." : the folder asked for
        _check_overwrite(refs, targets, force)
        _fetch_objects(ws, source, [ref for ref in refs if not _is_folder(ref)], progress)
        return [_place(ws, ref, target) for ref, target in zip(refs, targets, strict=True)]


def ls(run: str, repo: WorkspaceLike = None) -> list[ObjectRef]:
    """A run's artifact files, directories expanded (manifests from the cache, else the default remote).

    Args:
        run: a run id or unique prefix.
        repo: a Workspace, an open repository or a path.

    Returns:
        One :class:`ObjectRef` per file, in the order of the run's logical paths, each
        directory's files in its manifest's order; then one per empty folder of that directory
        (a directory artifact with no file is one): its ``path`` ends with ``/``, its ``digest``
        is the directory's manifest's, its ``size`` is 0.

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
    a default (or an unreachable one) only matter when the cache cannot answer. A remote named
    but not configured is refused at once, cache or not: it is a typo, not a fallback.

    Raises:
        BadInputError: ``remote`` names no configured remote.
    """
    if remote is not None:
        ws.remote(remote)  # the configuration only: nothing is opened or contacted
    elif not ws.remotes():
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
    """List the files of a run at or under logical ``path`` ("" for all), directories expanded.

    An empty folder (a directory artifact with no file, or an empty folder its manifest lists)
    is an entry too, after the files of its directory: its path ends with ``/``, its digest is
    its directory's manifest's, its size 0.
    """
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
            where = f"run {run_id[:8]} {name}"
            files = ws.manifest(entry["sha256"], where, fetch)  # fetched into the cache if missing
            _, empty = store.manifest_entries(store.object_path(ws.cache, entry["sha256"]).read_bytes(), where)
            found = [ObjectRef(item["sha256"], int(item["size"]), run_id, f"{name}/{item['path']}",
                               0o755 if int(item.get("mode", 0o644)) & 0o100 else 0o644) for item in files]
            folders = [f"{name}/{rel}" for rel in empty] if files or empty else [name]
            found += [ObjectRef(entry["sha256"], 0, run_id, folder + "/", 0o755) for folder in folders]
            out += [ref for ref in found if under(ref.path.rstrip("/"))]
    if not out and path:  # a path that names nothing; all of a run without artifacts is an empty list
        known = ", ".join(sorted(artifacts)) or "none"
        raise BadInputError(f"run {run_id[:8]} has no artifact {path!r} (it has: {known})")
    return out


def _is_folder(ref: ObjectRef) -> bool:
    """Whether a selected entry is an empty folder to make (its path ends with ``/``)."""
    return ref.path.endswith("/")


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


def _check_overwrite(refs: list[ObjectRef], targets: list[Path], force: bool) -> None:
    """Refuse, before anything is written, to replace an existing file whose bytes differ.

    Raises:
        BadInputError: naming the first such file (and how many more); the hint says ``--force``.
    """
    if force:
        return
    differing = []
    for ref, target in zip(refs, targets, strict=True):
        if _is_folder(ref) or not target.is_file():
            continue  # nothing there, or a folder in the way (the write fails and says so)
        try:
            same = store.hash_file(target) == ref.digest
        except OSError:
            same = False
        if not same:
            differing.append((ref, target))
    if differing:
        ref, target = differing[0]
        more = f" (and {len(differing) - 1} more)" if len(differing) > 1 else ""
        raise BadInputError(f"refusing to overwrite {str(target)!r}: it differs from {_describe(ref)}"
                            f"{more}; nothing was written",
                            hint="pass --force (force=True) to overwrite, or choose another destination")


def _place(ws: Workspace, ref: ObjectRef, dest: Path) -> Path:
    """Copy a cached object to ``dest`` through a temporary file: never a half-written file.

    An empty folder (:func:`_is_folder`) is made instead.

    Raises:
        GitmlError: the file cannot be written (no space, no permission, a folder in the way).
    """
    tmp = None
    try:
        if _is_folder(ref):
            dest.mkdir(parents=True, exist_ok=True)
            return dest
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
