"""Where a run's code came from: commit, branch, remote, and the uncommitted patch."""

from __future__ import annotations

import os
import re
import time

from gitml.core.errors import DirtyWorktreeError
from gitml.core.gitrepo import EMPTY_TREE, GitRepo
from gitml.core.urls import strip_url

NO_COMMIT_NOTE = "repository has no commit yet"


def strip_credentials(url: str) -> str:
    """``url`` without credentials, as a run records it (:func:`gitml.core.urls.strip_url`).

    Gone: the user info (``https://TOKEN@host``, ``https://user:pw@host``), or only the password
    for ssh-like URLs (``ssh://git:pw@host`` -> ``ssh://git@host``; ``git@github.com:org/repo``
    stays as is), and query or fragment parameters named like secrets (``access_token``,
    ``sig``, ``X-Amz-Signature`` …).
    """
    return strip_url(url)


def _status(repo: GitRepo) -> tuple[dict[str, str], list[str], list[str]]:
    """Parse ``git status --porcelain=v2 --branch``: header fields, changed and untracked paths."""
    out = repo.status_porcelain()
    header: dict[str, str] = {}
    changed: list[str] = []
    untracked: list[str] = []
    records = out.split(b"\0")
    i = 0
    while i < len(records):
        record = records[i].decode("utf-8", "surrogateescape")
        i += 1
        if record.startswith("# "):
            key, _, value = record[2:].partition(" ")
            header[key] = value
        elif record.startswith("? "):
            untracked.append(record[2:])
        elif record[:2] in ("1 ", "u "):
            changed.append(record.split(" ", 8 if record[0] == "1" else 10)[-1])
        elif record.startswith("2 "):
            changed.append(record.split(" ", 9)[-1])
            i += 1  # a rename record is followed by its original path
    return header, changed, untracked


def _remote_url(repo: GitRepo, upstream: str | None) -> str | None:
    remotes = repo.remotes()
    if not remotes:
        return None
    name = None
    if upstream:
        name = next((r for r in remotes if upstream.startswith(r + "/")), None)
    name = name or ("origin" if "origin" in remotes else sorted(remotes)[0])
    return strip_credentials(remotes[name])


class _CleanTreeCache:
    """Remembers, per process, that a work tree was clean, and proves it still is by ``lstat``.

    A sweep starts hundreds of runs from one process; asking ``git status`` each time costs a
    process spawn per run. After a clean status we keep a snapshot taken *before* that status
    ran: HEAD, the index, ``.git/config`` and every tracked file's stat. While the snapshot
    still matches, the tree is still clean. Any doubt means a miss, and git decides again:
    a tracked file touched within :data:`RACY_SECONDS` of the snapshot (coarse mtimes could
    hide a second edit), a repository with submodules, or more than :data:`MAX_FILES` tracked
    files. The index and config need no such care: git replaces them by rename, so any write
    gives them a new inode.
    """

    MAX_FILES = 2000
    RACY_SECONDS = 2.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple, dict]] = {}

    def _snapshot(self, repo: GitRepo, paths: list[str]) -> tuple | None:
        head = repo.head()
        stats = []
        newest = 0.0
        for rel in [".git-index", ".git-config", *paths]:
            full = _special(repo, rel)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                stats.append(None)
                continue
            stats.append((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode))
            if not rel.startswith(".git-"):  # index and config are replaced by rename: new inode
                newest = max(newest, st.st_mtime, st.st_ctime)
        if time.time() - newest < self.RACY_SECONDS:
            return None
        return (head, tuple(paths), tuple(stats))

    def lookup(self, repo: GitRepo) -> dict | None:
        entry = self._entries.get(str(repo.root))
        if entry is None:
            return None
        snapshot, source = entry
        if self._snapshot(repo, list(snapshot[1])) != snapshot:
            self._entries.pop(str(repo.root), None)  # threads (a sweep's trials) may both find it stale
            return None
        return dict(source)

    def begin(self, repo: GitRepo) -> tuple | None:
        """Snapshot before asking git; None when this repository is not worth caching."""
        paths = repo.tracked_files()
        if len(paths) > self.MAX_FILES or ".gitmodules" in paths:
            return None
        return self._snapshot(repo, paths)

    def store(self, repo: GitRepo, snapshot: tuple | None, source: dict) -> None:
        if snapshot is not None:
            self._entries[str(repo.root)] = (snapshot, dict(source))


def _special(repo: GitRepo, rel: str) -> str:
    if rel == ".git-index":
        return str(repo.git_dir / "index")
    if rel == ".git-config":
        return str(repo.common_dir / "config")
    return str(repo.root / rel)


_clean_trees = _CleanTreeCache()


def capture_source(repo: GitRepo, require_clean: bool = False) -> tuple[dict, str | None]:
    """Return the run's ``source`` mapping and the patch of uncommitted changes (or None).

    A work tree is dirty when tracked files differ from HEAD; untracked files alone (models,
    metrics files a training script just wrote) do not make it dirty, but are listed in the
    patch when there is one. A tree already seen clean by this process is re-checked with
    ``lstat`` calls instead of a new ``git status`` (see :class:`_CleanTreeCache`).

    Raises:
        DirtyWorktreeError: ``require_clean`` and the work tree has uncommitted changes.
    """
    cached = _clean_trees.lookup(repo)
    if cached is not None:
        return cached, None
    snapshot = _clean_trees.begin(repo) if repo.head()[0] else None
    source, patch = _capture(repo, require_clean)
    if patch is None and source["commit"]:
        _clean_trees.store(repo, snapshot, source)
    return source, patch


def _capture(repo: GitRepo, require_clean: bool) -> tuple[dict, str | None]:
    header, changed, untracked = _status(repo)
    oid = header.get("branch.oid", "(initial)")
    commit = "" if oid == "(initial)" else oid
    head = header.get("branch.head")
    branch = None if head in (None, "(detached)") else head
    dirty = bool(changed)
    if dirty and require_clean:
        shown = ", ".join(changed[:3]) + (" ..." if len(changed) > 3 else "")
        raise DirtyWorktreeError(
            f"work tree has uncommitted changes: {shown}",
            hint="commit them first, or drop --require-clean to record a patch",
        )
    source = {
        "commit": commit,
        "branch": branch,
        "dirty": dirty,
        "remote": _remote_url(repo, header.get("branch.upstream")),
    }
    if not commit:
        source["note"] = NO_COMMIT_NOTE
    patch = None
    if dirty:
        base = commit or EMPTY_TREE
        diff = repo.diff_binary(base)
        listing = "".join(f"#   {_quote(path)}\n" for path in untracked)
        if listing:
            listing = "# gitml: untracked files, not in this patch:\n" + listing
        patch = listing + diff.decode("utf-8", "surrogateescape")
    return source, patch


def _quote(path: str) -> str:
    return path if re.match(r"^[\w./@+-]+$", path) else repr(path)
