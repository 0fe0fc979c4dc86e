"""Moving artifacts between the local cache and a remote, and keeping both honest.

Every function takes an optional ``repo`` path and returns data; the CLI renders it. Progress is
reported through an optional :class:`Progress` the caller passes in (the library never prints).
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gitml.artifacts import store
from gitml.artifacts.backend import ObjectStore, RemoteError
from gitml.core import runsref
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import RUN_FILES, parse_history, parse_run
from gitml.core.gitrepo import GitRepo, RepoLike, open_repo
from gitml.core.ids import check_artifact_path
from gitml.core.remotes import get_remote, list_remotes


class Progress(Protocol):
    """What a caller may pass to follow a transfer (the CLI passes tqdm bars)."""

    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...


@dataclass
class ObjectRef:
    """One stored object and where it is used: run, logical path, size."""

    digest: str
    size: int
    run_id: str
    path: str
    mode: int = 0o644


@dataclass
class TransferResult:
    remote: str
    transferred: list[ObjectRef] = field(default_factory=list)
    skipped: int = 0
    missing_locally: list[ObjectRef] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.transferred)


def cache_dir(git: GitRepo) -> Path:
    return git.gitml_dir / "cache"


# -- what runs reference ----------------------------------------------------------------------


def _runs(git: GitRepo, run_ids: Iterable[str] | None) -> dict[str, dict[str, bytes]]:
    tip = git.ref(runsref.RUNS_REF)
    if tip is None:
        return {}
    from gitml.tracking.query import resolve_run_id

    wanted = None if run_ids is None else {resolve_run_id(r, git) for r in run_ids}
    if wanted is not None and len(wanted) <= 32:
        trees = {r: runsref.run_tree(git, tip, r) for r in wanted}
        return {r: runsref.read_run_files(git, t) for r, t in trees.items() if t}
    names = (*RUN_FILES, "history.tsv")
    return runsref.bulk_read_runs(git, tip, wanted, names)


def manifest_files(data: bytes, where: str) -> list[dict[str, Any]]:
    """The file list of a directory manifest, refusing paths that would leave the directory."""
    try:
        files = json.loads(data)["files"]
        for entry in files:
            rel = entry["path"]
            if not isinstance(rel, str) or check_artifact_path(rel) != rel:
                raise BadInputError(f"unsafe path {rel!r}")
            if not (isinstance(entry["sha256"], str) and len(entry["sha256"]) == 64):
                raise BadInputError(f"bad sha256 for {rel!r}")
        return files
    except BadInputError as exc:
        raise GitmlError(f"directory manifest of {where} is unsafe: {exc.message}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise GitmlError(f"directory manifest of {where} is malformed: {exc}") from None


def _manifest(git: GitRepo, digest: str, where: str, remote: ObjectStore | None) -> list[dict]:
    path = store.object_path(cache_dir(git), digest)
    if not path.exists():
        if remote is None:
            raise GitmlError(f"manifest of {where} ({digest[:12]}) is not in the local cache")
        _fetch_objects(git, remote, [ObjectRef(digest, 0, "", where)], None, jobs=1)
    return manifest_files(path.read_bytes(), where)


def referenced_objects(run_ids: Iterable[str] | None = None, repo: RepoLike = None) -> list[ObjectRef]:
    """Every object the runs (default: all on the ref) reference, one entry per object."""
    with open_repo(repo) as git:
        return _referenced(git, run_ids)


def _referenced(
    git: GitRepo, run_ids: Iterable[str] | None = None, remote: ObjectStore | None = None
) -> list[ObjectRef]:
    """Every object the runs reference: files, directory manifests and their files, full histories."""
    refs: dict[str, ObjectRef] = {}
    for run_id, files in _runs(git, run_ids).items():
        run = parse_run(run_id, files)
        for path, entry in run.artifacts.items():
            digest, size = entry.get("sha256"), int(entry.get("size") or 0)
            if entry.get("kind") == "dir":
                refs.setdefault(digest, ObjectRef(digest, 0, run_id, path + "/ (manifest)"))
                if remote is None and not store.object_path(cache_dir(git), digest).exists():
                    continue  # its files are unknown here; the manifest itself shows as missing
                for item in _manifest(git, digest, f"run {run_id[:8]} {path}", remote):
                    refs.setdefault(item["sha256"], ObjectRef(item["sha256"], item["size"], run_id,
                                                              f"{path}/{item['path']}"))
            else:
                refs.setdefault(digest, ObjectRef(digest, size, run_id, path))
        if "history.tsv" in files:
            _, full = parse_history(run_id, files["history.tsv"])
            if full:
                refs.setdefault(full, ObjectRef(full, 0, run_id, "history.tsv (full)"))
    for ref in refs.values():
        if not ref.size:
            local = store.object_path(cache_dir(git), ref.digest)
            ref.size = local.stat().st_size if local.exists() else 0
    return list(refs.values())


# -- push / status ----------------------------------------------------------------------------


def push(run_ids: Iterable[str] | None = None, remote: str | None = None, jobs: int = 8,
         progress: Progress | None = None, repo: RepoLike = None) -> TransferResult:
    """Upload the objects of ``run_ids`` (default: every run) that the remote lacks.

    Idempotent: existing objects are found with batched listings and skipped; an interrupted
    push resumes where it stopped. Objects missing from the local cache are reported, not fatal.
    """
    with open_repo(repo) as git:
        target = ObjectStore(get_remote(git, remote))
        refs = _referenced(git, run_ids)
        have = target.existing(r.digest for r in refs)
        result = TransferResult(target.remote.name, skipped=len({r.digest for r in refs} & have))
        todo = []
        for ref in refs:
            if ref.digest in have:
                continue
            if store.object_path(cache_dir(git), ref.digest).exists():
                todo.append(ref)
            else:
                result.missing_locally.append(ref)
        if progress:
            progress.start(len(todo), sum(r.size for r in todo))

        def upload(ref: ObjectRef) -> ObjectRef:
            target.put(str(store.object_path(cache_dir(git), ref.digest)), ref.digest)
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


def status(run_ids: Iterable[str] | None = None, remote: str | None = None,
           repo: RepoLike = None) -> list[ObjectStatus]:
    """Each referenced object, with whether the local cache and the remote have it."""
    with open_repo(repo) as git:
        target = ObjectStore(get_remote(git, remote))
        refs = _referenced(git, run_ids)
        have = target.existing(r.digest for r in refs)
        return [ObjectStatus(r, store.object_path(cache_dir(git), r.digest).exists(), r.digest in have)
                for r in refs]


# -- fetching ---------------------------------------------------------------------------------


def _fetch_objects(git: GitRepo, source: ObjectStore | None, refs: list[ObjectRef],
                   progress: Progress | None, jobs: int = 8) -> None:
    """Bring objects into the local cache, verifying each one's hash before it gets its name."""
    cache = cache_dir(git)
    todo = [r for r in {r.digest: r for r in refs}.values() if not store.object_path(cache, r.digest).exists()]
    if todo and source is None:
        raise GitmlError(f"{todo[0].path} of run {todo[0].run_id[:8]} is not in the local cache "
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
                raise GitmlError(f"corrupted object on remote {source.remote.name!r}: {ref.path} of run "
                                 f"{ref.run_id[:8]} should be {ref.digest[:12]} but its bytes hash to "
                                 f"{actual[:12]}; nothing was written",
                                 hint="gitml artifacts verify --remote --delete-bad, then push from a "
                                      "machine with a good copy")
            target = store.object_path(cache, ref.digest)
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
        _fetch_objects(git, source, refs, progress, jobs)
        return [_place(git, ref, Path(out) / ref.path) for ref in refs]


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
        _fetch_objects(git, source, refs, progress)
        dest = Path(dest)
        if len(refs) == 1 and refs[0].path == path:
            target = dest / posixpath.basename(path) if dest.is_dir() else dest
            return [_place(git, refs[0], target)]
        return [_place(git, ref, dest / posixpath.relpath(ref.path, path or ".")) for ref in refs]


def _place(git: GitRepo, ref: ObjectRef, dest: Path) -> Path:
    """Copy a cached object to ``dest`` through a temporary file: never a half-written file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        shutil.copyfile(store.object_path(cache_dir(git), ref.digest), tmp)
        os.chmod(tmp, ref.mode)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
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
        cache = cache_dir(git)
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
       keep_history: bool = False, repo: RepoLike = None) -> list[str]:
    """Delete objects no run on the ref (or in its history, with ``keep_history``) reaches.

    Returns the digests removed (or that would be, with ``dry_run``).
    """
    with open_repo(repo) as git:
        keep = {r.digest for r in _referenced(git)} | _active_objects(git)
        if keep_history:
            keep |= _history_objects(git)
        if on_remote:
            target = ObjectStore(get_remote(git, remote))
            doomed = sorted(target.all_objects() - keep)
            if not dry_run:
                target.delete(doomed)
            return doomed
        cache = cache_dir(git)
        doomed = sorted(set(store.iter_objects(cache)) - keep)
        if not dry_run:
            for digest in doomed:
                store.object_path(cache, digest).unlink(missing_ok=True)
        return doomed


def _active_objects(git: GitRepo) -> set[str]:
    """Objects logged by runs still in progress (or killed and resumable): never collected."""
    from gitml.tracking import active

    found: set[str] = set()
    for meta in active.list_active(git.gitml_dir):
        for entry in active.read_log(git.gitml_dir / active.ACTIVE_DIR / meta["id"]).artifacts.values():
            found.add(entry.get("sha256"))
            manifest = store.object_path(cache_dir(git), entry.get("sha256", ""))
            if entry.get("kind") == "dir" and manifest.exists():
                found.update(i["sha256"] for i in manifest_files(manifest.read_bytes(), meta["id"]))
    return found


def _history_objects(git: GitRepo) -> set[str]:
    """Objects referenced by any run in any commit of the runs ref's history."""
    found: set[str] = set()
    tip = git.ref(runsref.RUNS_REF)
    seen_trees: set[str] = set()
    for commit in git.git("rev-list", tip).decode().split() if tip else []:
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
                found.add(entry.get("sha256"))
                if entry.get("kind") == "dir":
                    path = store.object_path(cache_dir(git), entry["sha256"])
                    if path.exists():
                        found.update(i["sha256"] for i in manifest_files(path.read_bytes(), run_id))
    return found


__all__ = ["ObjectRef", "Progress", "RemoteError", "TransferResult", "download", "gc", "ls", "pull",
           "push", "referenced_objects", "status", "verify"]
