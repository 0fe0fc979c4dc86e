"""Moving artifacts between the local cache and a remote, and keeping both honest.

Every function takes an optional ``repo`` path and returns data; the CLI renders it. Progress is
reported through an optional :class:`Progress` the caller passes in (the library never prints).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gitml.artifacts.backend import ObjectStore, RemoteError
from gitml.core import runsref, store
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import RUN_FILES, parse_run
from gitml.core.gitrepo import GitRepo, RepoLike, open_repo
from gitml.core.ids import check_artifact_path, check_disjoint_paths
from gitml.core.remotes import get_remote, list_remotes
from gitml.core.workspace import ObjectRef, Workspace, open_workspace


class Progress(Protocol):
    """What a caller may pass to follow a transfer (the CLI passes tqdm bars)."""

    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...


@dataclass
class TransferResult:
    """What a push did: objects uploaded, already there, missing locally, and runs refused.

    ``refused`` maps a run id to why its objects were not pushed (an unreadable record or an
    unsafe directory manifest); the other runs' objects are pushed all the same.
    """

    remote: str
    transferred: list[ObjectRef] = field(default_factory=list)
    skipped: int = 0
    missing_locally: list[ObjectRef] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.transferred)


DEFAULT_GRACE = 3600.0  # seconds: the local cache keeps unreferenced objects younger than this
DEFAULT_REMOTE_GRACE = 14 * 86400.0  # a remote's objects may belong to runs not yet pushed


# -- what runs reference ----------------------------------------------------------------------


def _fetcher(git: GitRepo, remote: ObjectStore | None):
    """What brings a missing directory manifest into the cache: ``remote``, when there is one."""
    if remote is None:
        return None
    return lambda refs: _fetch_objects(git, remote, refs, None, jobs=1)


def _manifest(git: GitRepo, digest: str, where: str, remote: ObjectStore | None) -> list[dict]:
    return Workspace(git).manifest(digest, where, _fetcher(git, remote))


def referenced_objects(run_ids: Iterable[str] | None = None, repo: RepoLike = None) -> list[ObjectRef]:
    """Every object the runs (default: all on the ref) reference, one entry per object.

    Raises:
        GitmlError: a run or one of its directory manifests cannot be read (named in the message).
    """
    with open_repo(repo) as git:
        refs, refused = _referenced(git, run_ids, strict=False)
        if refused:
            raise GitmlError(_refused_message(refused))
        return refs


def _refused_message(refused: dict[str, str]) -> str:
    first = next(iter(refused.items()))
    more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
    return f"run {first[0]} cannot be used: {first[1]}{more}"


def _referenced(
    git: GitRepo, run_ids: Iterable[str] | None = None, remote: ObjectStore | None = None,
    strict: bool = True, tip: str | None = None,
) -> tuple[list[ObjectRef], dict[str, str]]:
    """Every object the runs reference, and ``{run id: problem}`` for runs that cannot be read
    (see :meth:`gitml.core.workspace.Workspace.referenced_objects`)."""
    with open_workspace(git) as ws:
        found = ws.referenced_objects(run_ids, tip, _fetcher(git, remote), strict)
    return found.refs, found.refused


# -- push / status ----------------------------------------------------------------------------


def push(run_ids: Iterable[str] | None = None, remote: str | None = None, jobs: int = 8,
         progress: Progress | None = None, repo: RepoLike = None) -> TransferResult:
    """Upload the objects of ``run_ids`` (default: every run) that the remote lacks.

    Idempotent: existing objects are found with batched listings and skipped; an interrupted
    push resumes where it stopped. Objects missing from the local cache are reported, not fatal.
    """
    with open_repo(repo) as git:
        target = ObjectStore(get_remote(git, remote))
        refs, refused = _referenced(git, run_ids, strict=False)
        have = target.existing(r.digest for r in refs)
        result = TransferResult(target.remote.name, skipped=len({r.digest for r in refs} & have),
                                refused=refused)
        todo = []
        for ref in refs:
            if ref.digest in have:
                continue
            if store.object_path(store.cache_dir(git.gitml_dir), ref.digest).exists():
                todo.append(ref)
            else:
                result.missing_locally.append(ref)
        if progress:
            progress.start(len(todo), sum(r.size for r in todo))

        def upload(ref: ObjectRef) -> ObjectRef:
            target.put(str(store.object_path(store.cache_dir(git.gitml_dir), ref.digest)), ref.digest)
            if progress:
                progress.advance(ref.size)
            return ref

        with ThreadPoolExecutor(max(1, jobs)) as pool:
            result.transferred = list(pool.map(upload, todo))
        return result


@dataclass
class ObjectStatus:
    ref: ObjectRef
    local: bool
    remote: bool


class StatusReport(list):
    """A list of :class:`ObjectStatus`, plus ``refused``: ``{run id: problem}`` for unreadable runs."""

    def __init__(self, items: Iterable[ObjectStatus] = (), refused: dict[str, str] | None = None) -> None:
        super().__init__(items)
        self.refused = dict(refused or {})


def status(run_ids: Iterable[str] | None = None, remote: str | None = None,
           repo: RepoLike = None) -> StatusReport:
    """Each referenced object, with whether the local cache and the remote have it.

    Runs that cannot be read are left out and named in the result's ``refused``.
    """
    with open_repo(repo) as git:
        target = ObjectStore(get_remote(git, remote))
        refs, refused = _referenced(git, run_ids, strict=False)
        have = target.existing(r.digest for r in refs)
        return StatusReport((ObjectStatus(r, store.object_path(store.cache_dir(git.gitml_dir), r.digest).exists(),
                                          r.digest in have) for r in refs), refused)


# -- fetching ---------------------------------------------------------------------------------


def _fetch_objects(git: GitRepo, source: ObjectStore | None, refs: list[ObjectRef],
                   progress: Progress | None, jobs: int = 8) -> None:
    """Bring objects into the local cache, verifying each one's hash before it gets its name."""
    cache = store.cache_dir(git.gitml_dir)
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


def _optional_remote(git: GitRepo, remote: str | None) -> ObjectStore | None:
    """The remote to fetch from, opened only if something is missing from the cache.

    None when no remote is configured; otherwise a lazy handle, so that several remotes without
    a default (or an unreachable one) only matter when the cache cannot answer.
    """
    if remote is None and not list_remotes(git):
        return None
    return _LazyStore(git, remote)


class _LazyStore:
    def __init__(self, git: GitRepo, remote: str | None) -> None:
        self._args = (git, remote)
        self._store: ObjectStore | None = None

    def __getattr__(self, name: str):
        if self._store is None:
            self._store = ObjectStore(get_remote(*self._args))
        return getattr(self._store, name)


def _select(git: GitRepo, run_id: str, path: str, remote: ObjectStore | None) -> list[ObjectRef]:
    """The files of a run at or under logical ``path`` ("" for all), directories expanded."""
    tree = runsref.run_tree(git, git.ref(runsref.RUNS_REF), run_id)
    artifacts = parse_run(run_id, runsref.read_run_files(git, tree, RUN_FILES)).artifacts
    path = check_artifact_path(path) if path else ""

    def under(logical: str) -> bool:
        return not path or logical == path or logical.startswith(path + "/")

    out: list[ObjectRef] = []
    for name, entry in sorted(artifacts.items()):
        if entry.get("kind") != "dir":
            if under(name):
                out.append(ObjectRef(entry["sha256"], int(entry.get("size") or 0), run_id, name))
        elif under(name) or path.startswith(name + "/"):  # read a manifest only when it matters
            for item in _manifest(git, entry["sha256"], f"run {run_id[:8]} {name}", remote):
                ref = ObjectRef(item["sha256"], int(item["size"]), run_id, f"{name}/{item['path']}",
                                0o755 if int(item.get("mode", 0o644)) & 0o100 else 0o644)
                if under(ref.path):
                    out.append(ref)
    if not out:
        known = ", ".join(sorted(artifacts)) or "none"
        raise BadInputError(f"run {run_id[:8]} has no artifact {path!r} (it has: {known})")
    return out


def pull(run: str, paths: Iterable[str] = (), out: str | os.PathLike = ".", remote: str | None = None,
         jobs: int = 8, progress: Progress | None = None, repo: RepoLike = None) -> list[Path]:
    """Fetch a run's artifacts (or only ``paths``) into ``out``/<logical path>; return the files."""
    from gitml.tracking.query import resolve_run_id

    with open_repo(repo) as git:
        run_id = resolve_run_id(run, git)
        source = _optional_remote(git, remote)
        refs = [ref for p in (list(paths) or [""]) for ref in _select(git, run_id, p, source)]
        targets = _targets(Path(out), [ref.path for ref in refs])  # all checked before any write
        _fetch_objects(git, source, refs, progress, jobs)
        return [_place(git, ref, target) for ref, target in zip(refs, targets, strict=True)]


def download(uri: str, dest: str | os.PathLike, remote: str | None = None,
             progress: Progress | None = None, repo: RepoLike = None) -> list[Path]:
    """Fetch ``runs:/<run>/<path>`` (one file or a directory) to ``dest``, without the rest of the run.

    A single file goes to ``dest`` (or into it, when ``dest`` is a directory); a directory's
    files go under ``dest`` with their paths relative to the one asked for.
    """
    from gitml.tracking.query import resolve_run_id

    if uri.startswith("models:/"):
        from gitml.registry.ops import resolve_model_uri

        uri = resolve_model_uri(uri, repo=repo)
    if not uri.startswith("runs:/"):
        raise BadInputError(f"unsupported artifact URI {uri!r}",
                            hint="use runs:/<run-id>/<path> or models:/<model>@<stage>")
    run, _, path = uri[len("runs:/"):].lstrip("/").partition("/")
    path = path.strip("/")
    with open_repo(repo) as git:
        run_id = resolve_run_id(run, git)
        source = _optional_remote(git, remote)
        refs = _select(git, run_id, path, source)
        dest = Path(dest)
        if len(refs) == 1 and refs[0].path == path:
            target = _inside(dest, posixpath.basename(path)) if dest.is_dir() else dest
            _fetch_objects(git, source, refs, progress)
            return [_place(git, refs[0], target)]
        targets = _targets(dest, [posixpath.relpath(ref.path, path or ".") for ref in refs])
        _fetch_objects(git, source, refs, progress)
        return [_place(git, ref, target) for ref, target in zip(refs, targets, strict=True)]


def _inside(base: Path, rel: str) -> Path:
    """``base / rel``, asserting that it stays inside ``base`` (run records are validated when
    read; this is the second check at the point where a path is made)."""
    if check_artifact_path(rel) != rel.strip("/"):
        raise GitmlError(f"refusing to write {rel!r}: it would leave {str(base)!r}")
    return base / rel


def _targets(base: Path, rels: list[str]) -> list[Path]:
    """Where each file goes under ``base``, all checked (inside it, no file that is another's
    folder) before anything is written."""
    targets = [_inside(base, rel) for rel in rels]
    try:
        check_disjoint_paths([rel.strip("/") for rel in rels], f"cannot write into {str(base)!r}")
    except BadInputError as exc:
        raise GitmlError(exc.message) from None
    return targets


def _place(git: GitRepo, ref: ObjectRef, dest: Path) -> Path:
    """Copy a cached object to ``dest`` through a temporary file: never a half-written file.

    Raises:
        GitmlError: the file cannot be written (no space, no permission, a folder in the way).
    """
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".gitml-")
        os.close(fd)
        shutil.copyfile(store.object_path(store.cache_dir(git.gitml_dir), ref.digest), tmp)
        os.chmod(tmp, ref.mode)
        os.replace(tmp, dest)
    except OSError as exc:
        raise GitmlError(f"cannot write {str(dest)!r}: {exc.strerror or exc}") from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return dest


# -- listing, verifying, collecting garbage ---------------------------------------------------


def ls(run: str, repo: RepoLike = None) -> list[ObjectRef]:
    """A run's artifacts, directories expanded to their files (from the local cache or remote)."""
    from gitml.tracking.query import resolve_run_id

    with open_repo(repo) as git:
        run_id = resolve_run_id(run, git)
        source = _optional_remote(git, None)
        return _select(git, run_id, "", source)


def verify(remote: str | None = None, check_remote: bool = False, delete_bad: bool = False,
           repo: RepoLike = None) -> list[str]:
    """Re-hash every object (local cache, or the remote's with ``check_remote``); return the bad ones.

    ``delete_bad`` removes them, so that a later push uploads a good copy in their place.
    """
    with open_repo(repo) as git:
        cache = store.cache_dir(git.gitml_dir)
        bad = []
        if not check_remote:
            for digest in store.iter_objects(cache):
                if store.hash_file(store.object_path(cache, digest)) != digest:
                    bad.append(digest)
            if delete_bad:
                for digest in bad:
                    store.object_path(cache, digest).unlink(missing_ok=True)
            return bad
        source = ObjectStore(get_remote(git, remote))
        for digest in sorted(source.all_objects()):
            with tempfile.TemporaryDirectory(dir=git.gitml_dir) as tmp:
                local = os.path.join(tmp, "obj")
                source.get(digest, local)
                if store.hash_file(local) != digest:
                    bad.append(digest)
        if delete_bad:
            source.delete(bad)
        return bad


def gc(remote: str | None = None, on_remote: bool = False, dry_run: bool = False,
       keep_history: bool = False, grace: float | None = None, repo: RepoLike = None) -> list[str]:
    """Delete objects that no run reaches and that are older than a grace period.

    Kept: objects of every run on the runs ref and on the remote-tracking runs refs
    (``refs/gitml/remotes/*/runs``), of runs in progress, of the ref's history with
    ``keep_history``, and every object younger than ``grace`` seconds (default
    :data:`DEFAULT_GRACE` for the cache, :data:`DEFAULT_REMOTE_GRACE` for a remote) — as git's
    ``gc.pruneExpire``: a run being committed right now stores its objects before its commit
    lands, so gc must not judge them by a ref read a moment earlier. Writers store objects under
    the shared gc lock and gc deletes under the exclusive one (:func:`store.gc_guard`), so an
    object reused by a new run is freshened before gc can delete it.

    Args:
        remote: artifact remote name (default: the default remote); with ``on_remote``.
        on_remote: collect on the remote instead of the local cache.
        dry_run: only report.
        keep_history: also keep what any earlier commit of the runs ref references.
        grace: seconds; 0 collects every unreferenced object (unsafe while runs are written).

    Returns:
        The digests removed (or that would be, with ``dry_run``), sorted.

    Raises:
        GitmlError: a run cannot be read, so what it references is unknown: nothing is deleted.
        BadInputError: ``grace`` is negative.
    """
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, (int, float))
                              or grace < 0 or grace != grace):
        raise BadInputError(f"grace must be a number of seconds >= 0, got {grace!r}")
    with open_repo(repo) as git:
        keep = _keep_set(git, keep_history)
        if on_remote:
            target = ObjectStore(get_remote(git, remote))
            limit = time.time() - (DEFAULT_REMOTE_GRACE if grace is None else grace)
            listed = target.all_objects_with_times()
            doomed = sorted(d for d, when in listed.items()
                            if d not in keep and when is not None and when < limit)
            if not dry_run:
                target.delete(doomed)
            return doomed
        cache = store.cache_dir(git.gitml_dir)
        limit = time.time() - (DEFAULT_GRACE if grace is None else grace)
        if not dry_run:
            _remove_stale_temporaries(cache, limit)
        candidates = [d for d in store.iter_objects(cache) if d not in keep]
        doomed = []
        with store.gc_guard(cache, exclusive=True):
            for digest in candidates:
                path = store.object_path(cache, digest)
                try:
                    if path.stat().st_mtime >= limit:
                        continue  # stored or reused by a writer moments ago
                    if not dry_run:
                        path.unlink()
                except FileNotFoundError:
                    continue
                doomed.append(digest)
        return doomed


def _remove_stale_temporaries(cache: Path, limit: float) -> None:
    """Delete temporary files older than ``limit`` that killed writers left in the cache."""
    folders = [cache / "tmp", *(p for p in (cache / "sha256").glob("??") if p.is_dir())]
    for folder in folders:
        for item in folder.glob(".tmp-*") if folder.name != "tmp" else folder.iterdir():
            try:
                if item.is_file() and item.stat().st_mtime < limit:
                    item.unlink()
            except OSError:
                continue


def _keep_set(git: GitRepo, keep_history: bool) -> set[str]:
    """What gc must keep. Runs in progress are read before the refs: a run that finishes in
    between is then seen in one place or the other, never in neither."""
    keep = Workspace(git).active_objects()
    ours = git.ref(runsref.RUNS_REF)
    fetched = [t for t in git.refs_under("refs/gitml/remotes/").values() if t != ours]
    for tip in dict.fromkeys(t for t in [ours, *fetched] if t):
        refs, refused = _referenced(git, None, strict=False, tip=tip)
        # A fetched copy's unreadable runs were never merged (pull refuses them): a stranger's
        # bad run must not stop this repository's gc. Our own ref's must.
        if refused and tip == ours:
            raise GitmlError(f"not collecting garbage: {_refused_message(refused)}; what it references "
                             "is unknown", hint="fix or delete that run (gitml runs delete ID), then gc again")
        keep.update(r.digest for r in refs)
    if keep_history:
        keep |= _history_objects(git)
    return keep


def _history_objects(git: GitRepo) -> set[str]:
    """Objects referenced by any run in any commit of the runs ref's history."""
    found: set[str] = set()
    tip = git.ref(runsref.RUNS_REF)
    seen_trees: set[str] = set()
    for commit in git.rev_list(tip) if tip else []:
        for run_id, tree in runsref.iter_run_trees(git, commit):
            if tree in seen_trees:
                continue
            seen_trees.add(tree)
            files = runsref.read_run_files(git, tree)
            try:
                run = parse_run(run_id, files)
            except GitmlError:
                continue
            for entry in run.artifacts.values():
                found.add(entry["sha256"])
                if entry["kind"] == "dir":
                    path = store.object_path(store.cache_dir(git.gitml_dir), entry["sha256"])
                    if path.exists():
                        found.update(i["sha256"] for i in store.manifest_files(path.read_bytes(), run_id))
    return found


__all__ = ["ObjectRef", "Progress", "RemoteError", "TransferResult", "download", "gc", "ls", "pull",
           "push", "referenced_objects", "status", "verify"]
