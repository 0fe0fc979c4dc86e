"""Keeping the content stores honest: ``verify`` re-hashes, ``gc`` deletes what no run reaches.

Both take ``repo=``: a :class:`~gitml.core.workspace.Workspace`, an open repository or a path,
opened once per call, and return the digests they found; the CLI prints them.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from gitml.artifacts.backend import ObjectStore
from gitml.artifacts.transfer import _fetcher, _refused_message
from gitml.core import runsref, store
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import parse_run
from gitml.core.workspace import ObjectRef, Workspace, WorkspaceLike, open_workspace

DEFAULT_GRACE = 3600.0  # seconds: the local cache keeps unreferenced objects younger than this
DEFAULT_REMOTE_GRACE = 14 * 86400.0  # a remote's objects may belong to runs not yet pushed


class VerifyReport(list):
    """The digests whose bytes are wrong (a sorted list), plus what was checked.

    Attributes:
        checked: how many objects were re-hashed.
        where: ``"the local cache"`` or ``"remote 'NAME'"``.
    """

    def __init__(self, bad: Iterable[str] = (), checked: int = 0, where: str = "the local cache") -> None:
        super().__init__(bad)
        self.checked = checked
        self.where = where


class GcReport(list):
    """The digests deleted (or that would be, on a dry run), sorted, plus what was kept.

    Attributes:
        kept: how many objects stay in the store.
        young: how many of those no run reaches but are younger than the grace period.
        where: ``"the local cache"`` or ``"remote 'NAME'"``.
        dry_run: nothing was deleted.
    """

    def __init__(self, doomed: Iterable[str] = (), kept: int = 0, young: int = 0, where: str = "the local cache",
                 dry_run: bool = False) -> None:
        super().__init__(doomed)
        self.kept = kept
        self.young = young
        self.where = where
        self.dry_run = dry_run


def verify(remote: str | None = None, check_remote: bool = False, delete_bad: bool = False,
           repo: WorkspaceLike = None) -> VerifyReport:
    """Re-hash every object of the local cache, or of the remote; return those whose bytes are wrong.

    Args:
        remote: artifact remote name (default: the default remote); with ``check_remote``.
        check_remote: verify the remote's objects (each is downloaded to a temporary file)
            instead of the local cache's.
        delete_bad: delete the corrupted objects, so that a push (remote) or a fetch (local
            cache) can put a good copy in their place.
        repo: a Workspace, an open repository or a path.

    Returns:
        A :class:`VerifyReport`: the digests whose bytes do not hash to their name, sorted, with
        how many objects were checked and where.

    Raises:
        BadInputError: with ``check_remote``, no such remote or no default one.
        RemoteError: the remote cannot be reached.
    """
    with open_workspace(repo) as ws:
        if not check_remote:
            cache = ws.cache
            every = list(store.iter_objects(cache))
            bad = [d for d in every if store.hash_file(store.object_path(cache, d)) != d]
            if delete_bad:
                for digest in bad:
                    store.object_path(cache, digest).unlink(missing_ok=True)
            return VerifyReport(bad, len(every))
        source = ObjectStore(ws.remote(remote))
        bad = []
        every = sorted(source.all_objects())
        for digest in every:
            with tempfile.TemporaryDirectory(dir=ws.gitml_dir) as tmp:
                local = os.path.join(tmp, "obj")
                source.get(digest, local)
                if store.hash_file(local) != digest:
                    bad.append(digest)
        if delete_bad:
            source.delete(bad)
        return VerifyReport(bad, len(every), f"remote {source.remote.name!r}")


def gc(remote: str | None = None, on_remote: bool = False, dry_run: bool = False,
       keep_history: bool = False, grace: float | None = None, repo: WorkspaceLike = None) -> GcReport:
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
        repo: a Workspace, an open repository or a path.

    Returns:
        A :class:`GcReport`: the digests removed (or that would be, with ``dry_run``), sorted,
        with how many objects stay and how many of those only the grace period keeps.

    Raises:
        GitmlError: a run cannot be read, so what it references is unknown: nothing is deleted.
        BadInputError: ``grace`` is negative or not a number; with ``on_remote``, no such remote
            or no default one.
        RemoteError: the remote cannot be reached.
    """
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, (int, float))
                              or grace < 0 or grace != grace):
        raise BadInputError(f"grace must be a number of seconds >= 0, got {grace!r}")
    with open_workspace(repo) as ws:
        target = ObjectStore(ws.remote(remote)) if on_remote else None
        keep = _keep_set(ws, keep_history, target)
        if target is not None:
            limit = time.time() - (DEFAULT_REMOTE_GRACE if grace is None else grace)
            listed = target.all_objects_with_times()
            doomed = sorted(d for d, when in listed.items()
                            if d not in keep and when is not None and when < limit)
            if not dry_run:
                target.delete(doomed)
            young = sum(1 for d in listed if d not in keep) - len(doomed)
            return GcReport(doomed, len(listed) - len(doomed), young, f"remote {target.remote.name!r}", dry_run)
        limit = time.time() - (DEFAULT_GRACE if grace is None else grace)
        doomed, candidates, total = _collect_cache(ws.cache, keep, limit, dry_run)
        return GcReport(doomed, total - len(doomed), candidates - len(doomed), dry_run=dry_run)


def _collect_cache(cache: Path, keep: set[str], limit: float, dry_run: bool) -> tuple[list[str], int, int]:
    """Delete the cache's objects not in ``keep`` and last stored before ``limit``.

    Returns:
        ``(deleted digests, how many were not in keep, how many objects there were)``.
    """
    if not dry_run:
        _remove_stale_temporaries(cache, limit)
    every = list(store.iter_objects(cache))
    candidates = [d for d in every if d not in keep]
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
    return doomed, len(candidates), len(every)


def _remove_stale_temporaries(cache: Path, limit: float) -> None:
    """Delete temporary files older than ``limit`` that killed writers left in the cache."""
    folders = [cache / "tmp", *(p for p in (cache / "sha256").glob("??") if p.is_dir())]
    for folder in folders:
        if not folder.is_dir():
            continue  # no file was ever stored here (a run of empty folders stores manifests only)
        for item in folder.glob(".tmp-*") if folder.name != "tmp" else folder.iterdir():
            try:
                if item.is_file() and item.stat().st_mtime < limit:
                    item.unlink()
            except OSError:
                continue


def _keep_set(ws: Workspace, keep_history: bool, remote: ObjectStore | None) -> set[str]:
    """Return what gc must keep.

    Runs in progress are read before the refs: a run that finishes in between is then seen in
    one place or the other, never in neither. On a ``remote``, the files of a directory
    artifact are on the line: its manifest is fetched from there when the cache lacks it, and
    one found nowhere stops gc, since which files it lists is unknown.
    """
    keep = ws.active_objects()
    ours = ws.runs_tip
    fetched = [t for t in ws.repo.refs_under("refs/gitml/remotes/").values() if t != ours]
    unknown: list[str] = []
    fetch = _manifest_fetcher(ws, remote, unknown) if remote is not None else None
    for tip in dict.fromkeys(t for t in [ours, *fetched] if t):
        found = ws.referenced_objects(tip=tip, fetch=fetch)
        if unknown:  # a fetched copy's run as much as ours: its files are on this remote
            raise GitmlError(f"not collecting garbage on {remote.remote.name!r}: {unknown[0]}, so which "
                             "files it lists is unknown", hint="push that run's artifacts from a machine "
                                                              "that has them, then gc again")
        # A fetched copy's unreadable runs were never merged (pull refuses them): a stranger's
        # bad run must not stop this repository's gc. Our own ref's must.
        if found.refused and tip == ours:
            raise GitmlError(f"not collecting garbage: {_refused_message(found.refused)}; what it "
                             "references is unknown",
                             hint="fix or delete that run (gitml runs delete ID), then gc again")
        keep.update(r.digest for r in found.refs)
    if keep_history:
        keep |= _history_objects(ws)
    return keep


def _manifest_fetcher(ws: Workspace, remote: ObjectStore, unknown: list[str]):
    """Fetch missing manifests from ``remote``, noting in ``unknown`` each one that fails."""
    fetch = _fetcher(ws, remote)

    def fetch_or_note(refs: list[ObjectRef]) -> None:
        try:
            fetch(refs)
        except GitmlError as exc:
            unknown.append(f"the {refs[0].path} cannot be read ({exc.message})")
            raise

    return fetch_or_note


def _history_objects(ws: Workspace) -> set[str]:
    """Return the objects referenced by any run in any commit of the runs ref's history."""
    found: set[str] = set()
    tip = ws.runs_tip
    seen_trees: set[str] = set()
    for commit in ws.repo.rev_list(tip) if tip else []:
        for run_id, tree in runsref.iter_run_trees(ws.repo, commit):
            if tree in seen_trees:
                continue
            seen_trees.add(tree)
            try:
                run = parse_run(run_id, runsref.read_run_files(ws.repo, tree))
            except GitmlError:
                continue
            for entry in run.artifacts.values():
                found.add(entry["sha256"])
                if entry["kind"] == "dir":
                    path = store.object_path(ws.cache, entry["sha256"])
                    if path.exists():
                        found.update(i["sha256"] for i in store.manifest_files(path.read_bytes(), run_id))
    return found


__all__ = ["DEFAULT_GRACE", "DEFAULT_REMOTE_GRACE", "GcReport", "VerifyReport", "gc", "verify"]
