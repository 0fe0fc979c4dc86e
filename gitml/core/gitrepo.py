"""The one module that speaks dulwich.

Everything above this layer sees :class:`GitRepo` methods taking and returning hex ids (``str``)
and plain Python data. Entry points elsewhere accept a path or an open :class:`GitRepo`
(:func:`open_repo`) and close only what they opened.
"""

from __future__ import annotations

import binascii
import bisect
import contextlib
import hashlib
import os
import re
import subprocess
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from dulwich.errors import NotGitRepository
from dulwich.file import FileLocked
from dulwich.objects import ZERO_SHA, Blob, Commit, ShaFile, Tag, Tree, parse_tree
from dulwich.repo import Repo, get_user_identity

from gitml.core import packfile
from gitml.core.errors import BadInputError, NotARepositoryError, RemoteError, StaleLockError
from gitml.core.fsync import FsyncPlan, fsync_plan
from gitml.core.gitcli import check_result, git_failure, run_git

TREE_MODE = 0o040000
BLOB_MODE = 0o100644
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# A ref update holds its lock for milliseconds; one older than this was left by a dead process.
STALE_LOCK_SECONDS = 10.0

RepoLike = Union[str, os.PathLike, "GitRepo", None]

#: Packs past which a write rolls the small ones up with ``git repack --geometric=2`` (git's own
#: ``gc.autoPackLimit`` when set; 0 turns it off, as in git).
PACK_LIMIT_DEFAULT = 50
_HEX40 = re.compile(r"[0-9a-f]{40}")
_LOOSE_NAME = re.compile(r"[0-9a-f]{38}")  # a loose object's file name in its fan-out folder
#: Objects in one write past which they go to one pack even when loose objects are not flushed.
LOOSE_BATCH_MAX = 64
# The parsed git config stack, shared by every GitRepo of this process while the files it was
# read from are unchanged (same inode, size and mtime: git and dulwich replace a config file by
# renaming a new one over it, which always changes the inode).
_config_cache: dict[tuple, object] = {}
# Folders known to exist (objects/pack, refs/gitml): one mkdir per process, not one per write.
_known_folders: set[str] = set()
#: Bytes of tree objects a process keeps parsed (see :class:`_TreeCache`).
TREE_CACHE_BYTES = 32 * 1024 * 1024


class GitRepo:
    """An open git repository with a work tree, as gitml uses it.

    Attributes ``root`` (the work tree's top), ``common_dir`` (``git rev-parse
    --git-common-dir``, shared by linked worktrees), ``git_dir`` and ``gitml_dir``
    (``<common dir>/gitml``) are absolute paths. Close it (or use it as a context manager):
    an unclosed dulwich repository writes warnings to stderr at exit.

    Args:
        path: any path inside the repository (default: the current directory).

    Raises:
        NotARepositoryError: ``path`` does not exist, is not inside a git repository, or is
            inside a bare one.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        start = os.fspath(path) if path is not None else os.getcwd()
        if not os.path.exists(start):
            raise NotARepositoryError(f"not a git repository: {start} does not exist")
        try:
            self._repo = Repo.discover(start)
        except NotGitRepository:
            raise NotARepositoryError(
                f"not a git repository: {os.path.abspath(start)}",
                hint="run gitml inside a git work tree, or `git init` first",
            ) from None
        if self._repo.bare:
            self._repo.close()
            raise NotARepositoryError(
                f"bare repository: {self._repo.path}",
                hint="gitml needs a work tree; run it in a clone",
            )
        self.root = Path(self._repo.path)
        self.common_dir = Path(self._repo.commondir()).resolve()  # a worktree's is ".git/worktrees/x/../.."
        self.git_dir = Path(self._repo.controldir())
        self.gitml_dir = self.common_dir / "gitml"
        self._cache_name = _store_name(self.common_dir)  # whose objects this process keeps (_TreeCache)
        self._config = None
        self._identities: dict[str, bytes] = {}
        self._repo_config = None
        self._pending: dict | None = None
        self._recent: dict = {}  # the objects of the last pack written: read back without a lookup
        self._fsync: FsyncPlan | None = None
        self._wrote_pack = False

    def _config_stack(self):
        if self._config is None:  # parsed once per process while the files are unchanged
            key = self._config_key()
            cached = _config_cache.get(key)
            if cached is None:
                cached = (self._repo.get_config_stack(), {})
                _config_cache.clear()  # one repository at a time is the common case: keep one
                _config_cache[key] = cached
            self._config, self._identities = cached
        return self._config

    def _identity(self, kind: str) -> bytes:
        """The user's git identity as author or committer, worked out once per config stack."""
        stack = self._config_stack()
        if kind not in self._identities:
            self._identities[kind] = get_user_identity(stack, kind=kind)
        return self._identities[kind]

    def _config_key(self) -> tuple:
        """What the config stack depends on: the environment and each file's identity."""
        home = os.environ.get("HOME", "")
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        files = [str(self.common_dir / "config"), os.path.join(home, ".gitconfig"),
                 os.path.join(xdg, "git", "config"), "/etc/gitconfig"]
        signature = []
        for file in files:
            try:
                st = os.stat(file)
                signature.append((file, st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                signature.append((file, None))
        env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("GIT_")))
        return (str(self.git_dir), env, tuple(signature))

    def fsync_plan(self) -> FsyncPlan:
        """What a write flushes to disk, from git's ``core.fsync`` settings (see :mod:`gitml.core.fsync`).

        Returns:
            The plan, read once per open repository.
        """
        if self._fsync is None:
            self._fsync = fsync_plan(self.config_value("core", "fsync"),
                                     self.config_value("core", "fsyncObjectFiles"),
                                     self.config_value("core", "fsyncMethod"))
            # dulwich writes the loose objects (outside a batch): it flushes them on this switch
            self._repo.object_store.fsync_object_files = self._fsync.loose
        return self._fsync

    # -- lifecycle -------------------------------------------------------------------------------
    def forget_settings(self) -> None:
        """Read git's settings again when next needed (an open repository kept for a later write)."""
        self._config = None
        self._fsync = None

    def close(self) -> None:
        """Close the repository's files (pack files, the object store)."""
        self._repo.close()

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- refs ------------------------------------------------------------------------------------
    def ref(self, name: str) -> str | None:
        """Return the hex sha a ref points at, or None when it does not exist.

        gitml's own refs are plain (never symbolic) and live in the common dir: read the loose
        file, else find the line in ``packed-refs``. Parsing and validating every packed ref
        through dulwich costs ~80 ms in a repository with thousands of tags.

        Args:
            name: a full ref name (``refs/gitml/runs``), or a name outside ``refs/`` such as
                ``HEAD``, which is followed through dulwich.

        Returns:
            The sha (40 hex) the ref points at, or None.
        """
        if not name.startswith("refs/"):
            try:
                return self._repo.refs[name.encode()].decode()
            except KeyError:
                return None
        try:
            with open(self.common_dir / name, encoding="utf-8", errors="replace") as handle:
                sha = handle.read(41).strip()
            if len(sha) == 40:
                return sha
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        suffix = " " + name + "\n"
        try:
            with open(self.common_dir / "packed-refs", encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if line.endswith(suffix):
                        return line[:40]
        except FileNotFoundError:
            pass
        return None

    def refs_under(self, prefix: str) -> dict[str, str]:
        """Return ``{full ref name: sha}`` for every ref under ``prefix``.

        Args:
            prefix: a ref folder, with or without the trailing slash (``refs/tags/``).

        Returns:
            ``{full ref name: sha hex}`` of every ref below it.
        """
        keys = self._repo.refs.as_dict(prefix.rstrip("/").encode())
        return {prefix.rstrip("/") + "/" + k.decode(): v.decode() for k, v in keys.items()}

    def set_ref_if_equals(self, name: str, expected: str | None, new: str) -> bool:
        """Compare-and-swap a ref (see :mod:`gitml.core.cas` for the loop around it).

        Objects collected by :meth:`batch` are written first: no ref ever names an object that
        is not on disk. gitml's own refs (plain, under ``refs/``) are swapped the way git swaps
        them: ``<ref>.lock`` created exclusively, the value compared while holding it, the new
        value written and renamed over the ref. The new value is flushed to disk only when git's
        ``core.fsync`` asks for ``reference`` (it does not by default), and always after the
        objects (see :meth:`fsync_plan`).

        Args:
            name: the full ref name.
            expected: the sha the ref must point at now; None means it must not exist yet.
            new: the sha to point it at.

        Returns:
            True when the ref was moved; False on a lost race or while another writer holds
            the ref's lock.

        Raises:
            StaleLockError: the ref's lock file was left by a dead process.
        """
        self.flush()
        if not name.startswith("refs/"):
            old = ZERO_SHA if expected is None else expected.encode()
            try:
                return self._repo.refs.set_if_equals(name.encode(), old, new.encode())
            except FileLocked as exc:
                return _busy(exc)
        moved = self._swap_ref(name, expected, new)
        if moved:
            self._after_write()
        return moved

    def _swap_ref(self, name: str, expected: str | None, new: str) -> bool:
        path = os.path.join(self.common_dir, name)
        lock = path + ".lock"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            try:
                fd = os.open(lock, flags, 0o644)
            except FileNotFoundError:  # the ref's folder is new: make it, then try once more
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(lock, flags, 0o644)
        except FileExistsError:  # another writer holds the lock (it may have just made the folder)
            return _busy(lock)
        try:
            if self.ref(name) != expected:  # read again while holding the lock
                os.close(fd)
                os.unlink(lock)
                return False
            os.write(fd, new.encode() + b"\n")
            if self.fsync_plan().reference:
                os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(lock, path)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(lock)
            raise
        return True

    def tags(self) -> dict[str, str]:
        """``{tag name: sha of the ref}`` for every tag (loose and packed), without reading objects.

        Read straight from ``packed-refs`` and ``refs/tags/``: dulwich's ref container validates
        and follows every ref one by one, which costs ~0.4 s at a few thousand tags.

        Returns:
            ``{tag name without refs/tags/: sha hex}``; a loose tag wins over a packed one, and
            the sha is the tag object's for an annotated tag, the commit's for a lightweight one.
        """
        found: dict[str, str] = {}
        try:
            with open(self.common_dir / "packed-refs", encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if line[:1] in ("#", "^"):
                        continue
                    sha, _, name = line.rstrip("\n").partition(" ")
                    if name.startswith("refs/tags/"):
                        found[name[10:]] = sha
        except FileNotFoundError:
            pass
        root = self.common_dir / "refs" / "tags"
        for folder, _, files in os.walk(root):
            for file in files:
                path = os.path.join(folder, file)
                try:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        sha = handle.read(41).strip()
                except OSError:
                    continue
                if len(sha) == 40 and not file.endswith(".lock"):  # loose refs win over packed ones
                    found[os.path.relpath(path, root).replace(os.sep, "/")] = sha
        return found

    def read_tag(self, sha: str) -> dict:
        """An annotated tag's target, tagger, time and message; a lightweight one's target only.

        Args:
            sha: what the tag's ref points at (see :meth:`tags`).

        Returns:
            ``{"target": commit sha, "tagger": "Name <email>" or None, "time": POSIX seconds
            or None, "message": text, "annotated": bool}``. For a lightweight tag the tagger is
            None, the message empty and the time the commit's.

        Raises:
            KeyError: the object is not in the repository.
        """
        obj = self._repo.object_store[sha.encode()]
        if isinstance(obj, Tag):
            _, target = obj.object
            return {"target": target.decode(), "tagger": obj.tagger.decode("utf-8", "replace"),
                    "time": obj.tag_time, "message": obj.message.decode("utf-8", "replace"), "annotated": True}
        return {"target": sha, "tagger": None, "time": getattr(obj, "commit_time", None), "message": "",
                "annotated": False}

    def create_tag(self, name: str, target: str, message: str, when: float | None = None) -> str | None:
        """Create an annotated tag only if no tag of that name exists.

        The tagger is the user's git identity (``user.name``/``user.email``, git's environment
        variables).

        Args:
            name: the tag name, without ``refs/tags/``.
            target: the sha of the commit it tags.
            message: the tag message.
            when: the tag time, POSIX seconds (default: now).

        Returns:
            The new tag object's sha, or None when the name is taken (or its lock is held).

        Raises:
            StaleLockError: the tag's lock file was left by a dead process.
        """
        tag = Tag()
        tag.name = name.encode()
        tag.object = (Commit, target.encode())
        tag.tagger = self._identity("COMMITTER")
        stamp = int(when if when is not None else time.time())
        tag.tag_time = stamp
        tag.tag_timezone = _local_utc_offset(stamp)
        tag.message = message.encode()
        self._store(tag)  # another writer may be storing this very tag (same name, target, second)
        created = self.add_ref_if_absent("refs/tags/" + name, tag.id.decode())
        return tag.id.decode() if created else None

    def add_ref_if_new(self, name: str, sha: str) -> bool:
        """Create a ref only if it does not exist yet.

        Args:
            name: the full ref name.
            sha: what it should point at.

        Returns:
            True when created; False when the ref exists or its lock is held.

        Raises:
            StaleLockError: the ref's lock file was left by a dead process.
        """
        try:
            return self._repo.refs.add_if_new(name.encode(), sha.encode())
        except FileLocked as exc:
            return _busy(exc)

    def head(self) -> tuple[str | None, str | None]:
        """Where HEAD is.

        Returns:
            ``(commit sha or None, branch name or None)``: the sha is None on a branch with no
            commit yet, the branch None when HEAD is detached.
        """
        try:
            chain, sha = self._repo.refs.follow(b"HEAD")
        except KeyError:
            return None, None
        branch = None
        if len(chain) > 1 and chain[-1].startswith(b"refs/heads/"):
            branch = chain[-1][len(b"refs/heads/") :].decode()
        return (sha.decode() if sha else None), branch

    # -- objects ---------------------------------------------------------------------------------
    def has_object(self, sha: str) -> bool:
        """Whether the object store holds ``sha`` (a hex object id).

        Args:
            sha: the object id, hex.

        Returns:
            True when the object is there, loose or packed (or collected by :meth:`batch`).
        """
        key = sha.encode()
        return (self._pending is not None and key in self._pending) or key in self._recent \
            or key in self._repo.object_store

    def _object(self, sha: str):
        """The parsed object ``sha``: collected, just written, loose, or from a pack.

        Loose first: what a write reads is the runs ref's tip, written loose by the write
        before; dulwich would open every pack's index before looking at loose files.
        """
        key = sha.encode()
        if self._pending and key in self._pending:
            return self._pending[key]
        found = self._recent.get(key)
        if found is not None:
            return found
        if _HEX40.fullmatch(sha):
            try:
                return ShaFile.from_path(os.path.join(self.common_dir, "objects", sha[:2], sha[2:]))
            except (FileNotFoundError, NotADirectoryError):
                pass
        return self._repo.object_store[key]

    def _add(self, obj) -> None:
        if self._pending is not None:
            self._pending[obj.id] = obj  # keyed: a pack must not hold an object twice
        else:
            if isinstance(obj, _RawTree):  # dulwich stores what it parsed
                obj = Tree.from_raw_string(Tree.type_num, obj.as_raw_string(), sha=obj.id)
            self._store(obj)

    def _store(self, obj) -> None:
        """Write one loose object, waiting (bounded) for another process writing the same one.

        Objects are named by their content, so two processes often write the same one at once
        (the same params.yaml, the same tag in the same second); dulwich then finds the other's
        lock file. The other writer is storing exactly these bytes: wait until its object is in
        place instead of failing.

        Raises:
            StaleLockError: the object's lock file was left by a dead process.
        """
        from gitml.core.cas import attempts

        self.fsync_plan()  # sets dulwich's flush switch from git's settings
        for _ in attempts(f"write object {obj.id.decode()}", limit=200, cap=0.05):
            try:
                self._repo.object_store.add_object(obj)
                return
            except FileLocked as exc:
                _busy(exc)
                if obj.id in self._repo.object_store:
                    return

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Collect the objects written inside the block and store them together, as one pack.

        A run's ten-odd objects then cost two files (``.pack`` and ``.idx``) instead of ten.
        :meth:`set_ref_if_equals` (and any git command run meanwhile) writes what was collected
        first, so no ref ever names an unwritten object; :meth:`flush` writes it earlier.

        Yields:
            Nothing; the objects are stored when the block ends without an error.
        """
        outer = self._pending
        if outer is None:
            self._pending = {}
        try:
            yield
            self.flush()
        finally:
            if outer is None:
                self._pending = None

    def flush(self) -> None:
        """Write the objects collected by :meth:`batch` so far, loose or as one pack.

        Whichever flushes less while keeping git's ``core.fsync`` promise (measured in
        bench/bench_tracking.py, "writing a run's objects"): loose files when git would not
        flush loose objects (its default), one pack when it would (``committed``, ``objects``,
        ``all`` …: one pack costs two flushes where ten loose objects cost ten) and for big
        batches (imports), as ``git fast-import`` does.
        """
        if not self._pending:
            return
        objects = self._pending
        self._pending = {}
        plan = self.fsync_plan()
        if plan.loose or len(objects) > LOOSE_BATCH_MAX:
            self._write_pack(objects, plan)
        else:
            for key, obj in objects.items():
                self._write_loose(key.decode(), obj, plan)
            if plan.loose:
                for folder in {key[:2] for key in objects}:
                    packfile.flush_folder(os.path.join(self.common_dir, "objects", folder.decode()))
        self._recent = objects
        for key, obj in objects.items():  # written: the next commit reads its tip from here
            if isinstance(obj, _RawTree):
                _cache.put(self._cache_name, key.decode(), obj.form, 4 * len(obj.form.raw) + 200)
            elif isinstance(obj, Commit):
                fields = _commit_fields(obj)
                _cache.put(self._cache_name, key.decode(), fields, 300 + len(fields[2]))

    def _write_pack(self, objects: dict, plan: FsyncPlan) -> None:
        """Write ``objects`` as one pack: the ``.pack``, then its ``.idx`` (what makes it seen)."""
        pack, index, checksum = packfile.build_pack(
            (binascii.unhexlify(key), obj.type_num, obj.as_raw_string()) for key, obj in objects.items())
        folder = os.path.join(self.common_dir, "objects", "pack")
        if folder not in _known_folders:
            os.makedirs(folder, exist_ok=True)
            _known_folders.add(folder)
        name = "pack-" + checksum.hex()
        packfile.write_file(folder, name + ".pack", pack, plan.pack)
        packfile.write_file(folder, name + ".idx", index, plan.pack_index)
        if plan.pack:
            packfile.flush_folder(folder)
        self._wrote_pack = True

    def _write_loose(self, sha: str, obj, plan: FsyncPlan) -> None:
        """Write one loose object: a temporary file in its fan-out folder, renamed onto its name.

        A blob that is there already is only given a fresh modification time, as git does:
        git's prune looks at it, and an object about to be named by a ref must not look old.
        Trees and commits are not looked for: a run's commit makes new ones (they name a new run
        id, tree or time), and one that happens to exist is replaced by the same bytes, which
        freshens it too. The fan-out folder is created only when writing into it fails for want
        of it.
        """
        path = os.path.join(self.common_dir, "objects", sha[:2], sha[2:])
        if obj.type_num == Blob.type_num:  # the same tags, params or empty file recur across runs
            try:
                os.utime(path)
                return
            except OSError:
                pass
        raw = obj.as_raw_string()  # compressed in one call (dulwich compresses entry by entry)
        data = _deflate(obj.type_name + b" %d\0" % len(raw) + raw)
        packfile.write_file(os.path.dirname(path), sha[2:], data, plan.loose, make_folder=True)

    def _after_write(self) -> None:
        """Keep the pack count bounded once a ref names a new pack (see :func:`_maybe_roll_up`)."""
        if self._wrote_pack:
            self._wrote_pack = False
            _maybe_roll_up(self)

    def pack_count(self) -> int:
        """How many packs (``.idx`` files) ``objects/pack`` holds.

        Returns:
            The number of pack indexes; 0 when there is no pack folder.
        """
        try:
            return sum(1 for name in os.listdir(os.path.join(self.common_dir, "objects", "pack"))
                       if name.endswith(".idx"))
        except FileNotFoundError:
            return 0

    def write_blob(self, data: bytes) -> str:
        """Store ``data`` as a blob.

        Args:
            data: the file's bytes.

        Returns:
            The blob's sha.
        """
        blob = Blob.from_string(data)
        self._add(blob)
        return blob.id.decode()

    def write_tree(self, entries: dict[str, tuple[int, str]]) -> str:
        """Write a tree object.

        Args:
            entries: ``{name: (mode, sha)}``: :data:`BLOB_MODE` for a file, :data:`TREE_MODE`
                for a folder; names may hold surrogate escapes for bytes that are not UTF-8.

        Returns:
            The tree's sha.
        """
        # Serialized here rather than through dulwich's Tree.add: at 100,000 runs a write makes
        # trees of several hundred entries, and dulwich builds them one Python call per entry.
        items = []
        for name, (mode, sha) in entries.items():
            raw_name = name.encode("utf-8", "surrogateescape")
            items.append((raw_name + b"/" if mode == TREE_MODE else raw_name, raw_name, mode, sha))
        items.sort()  # git's order: a folder sorts as if its name ended in "/"
        raw = b"".join(b"%o %s\0%s" % (mode, raw_name, binascii.unhexlify(sha))
                       for _, raw_name, mode, sha in items)
        sha = hashlib.sha1(b"tree %d\0" % len(raw) + raw).hexdigest()
        self._add(_RawTree(sha.encode(), _TreeForm(raw)))
        return sha

    def edit_tree(self, sha: str | None, edits: dict[str, tuple[int, str] | None]) -> str | None:
        """Write the tree ``sha`` with a few entries set or removed.

        Costs a few binary searches and one join of the entries' bytes, not a Python step per
        entry: what a run's commit does to the big trees of a ref with many runs.

        Args:
            sha: the tree to start from, or None (an empty tree).
            edits: ``{name: (mode, sha)}`` to set an entry (replacing one of that name, file or
                folder), ``{name: None}`` to remove it.

        Returns:
            The new tree's sha (``sha`` itself when nothing changed), or None when it has no
            entries left.

        Raises:
            BadInputError: ``sha`` is not a tree.
            KeyError: ``sha`` is not in the repository.
        """
        form = self._tree_form(sha) if sha else _TreeForm(b"", [], [])
        new = form.edited(edits)
        if not new.raw:
            return None
        if sha and new.raw == form.raw:
            return sha
        new_sha = hashlib.sha1(b"tree %d\0" % len(new.raw) + new.raw).hexdigest()
        self._add(_RawTree(new_sha.encode(), new))
        return new_sha

    def tree_entries(self, sha: str, names: Iterable[str]) -> dict[str, tuple[int, str]]:
        """The entries named ``names`` of tree ``sha`` (those it has), without reading the rest.

        Args:
            sha: the tree's sha.
            names: entry names.

        Returns:
            ``{name: (mode, sha)}`` for the names found.

        Raises:
            BadInputError: the object is not a tree.
            KeyError: the object is not in the repository.
        """
        return self._tree_form(sha).lookup(names)

    def _tree_form(self, sha: str) -> _TreeForm:
        """Tree ``sha``'s form: collected by :meth:`batch`, kept by this process, or read and kept.

        Raises:
            BadInputError: the object is not a tree.
            KeyError: the object is not in the repository.
        """
        pending = (self._pending or {}).get(sha.encode())
        if isinstance(pending, _RawTree):
            return pending.form
        form = _cache.get(self._cache_name, sha)
        if isinstance(form, _TreeForm):
            return form
        type_num, raw = self._raw(sha)
        if type_num != Tree.type_num:
            raise BadInputError(f"object {sha} is not a tree")
        form = _TreeForm(raw)
        if pending is None:  # on disk: safe to keep (a collected object is kept once written)
            _cache.put(self._cache_name, sha, form, 4 * len(raw) + 200)
        return form

    def read_tree(self, sha: str) -> dict[str, tuple[int, str]]:
        """Read a tree object.

        Args:
            sha: the tree's sha.

        Returns:
            ``{name: (mode, sha)}``; bytes of a name that are not UTF-8 become surrogate escapes.

        Raises:
            BadInputError: the object is not a tree.
            KeyError: the object is not in the repository.
        """
        return dict(self._tree_form(sha).entries())

    def _raw(self, sha: str) -> tuple[int, bytes]:
        """``(type number, content)`` of object ``sha``, without building a dulwich object.

        Raises:
            KeyError: the object is not in the repository.
        """
        key = sha.encode()
        obj = (self._pending or {}).get(key) or self._recent.get(key)
        if obj is not None:
            return obj.type_num, obj.as_raw_string()
        if _HEX40.fullmatch(sha):
            try:
                with open(os.path.join(self.common_dir, "objects", sha[:2], sha[2:]), "rb") as handle:
                    data = zlib.decompress(handle.read())
            except (FileNotFoundError, NotADirectoryError):
                pass
            else:
                header, _, content = data.partition(b"\0")
                kind = header.split(b" ", 1)[0]
                return {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}.get(kind, 0), content
        return self._repo.object_store.get_raw(key)

    def read_blob(self, sha: str) -> bytes:
        """Read an object's raw content (a blob's bytes).

        Args:
            sha: the blob's sha.

        Returns:
            The bytes.

        Raises:
            KeyError: the object is not in the repository.
        """
        return self._object(sha).as_raw_string()

    def read_commit(self, sha: str) -> tuple[str, list[str], str]:
        """Read a commit object.

        Args:
            sha: the commit's sha.

        Returns:
            ``(tree sha, parent shas in order, message)``.

        Raises:
            BadInputError: the object is not a commit.
            KeyError: the object is not in the repository.
        """
        kept = _cache.get(self._cache_name, sha)
        if isinstance(kept, tuple):
            return kept[0], list(kept[1]), kept[2]
        commit = self._object(sha)
        if not isinstance(commit, Commit):
            raise BadInputError(f"object {sha} is not a commit")
        fields = _commit_fields(commit)
        if not (self._pending and commit.id in self._pending):
            _cache.put(self._cache_name, sha, fields, 300 + len(fields[2]))
        return fields[0], list(fields[1]), fields[2]

    def commit_details(self, sha: str) -> dict[str, Any]:
        """Who made a commit and when: ``{author, time, message}`` (``time`` POSIX seconds, the author's).

        Raises:
            BadInputError: the object is not a commit.
            KeyError: the object is not in the repository.
        """
        commit = self._object(sha)
        if not isinstance(commit, Commit):
            raise BadInputError(f"object {sha} is not a commit")
        return {"author": commit.author.decode("utf-8", "replace"), "time": commit.author_time,
                "message": commit.message.decode("utf-8", "replace")}

    def write_commit(
        self, tree: str, parents: list[str], message: str, when: float | None = None
    ) -> str:
        """Write a commit authored and committed by the user's git identity.

        Args:
            tree: the sha of its root tree.
            parents: the shas of its parents (empty for a root commit).
            message: the commit message.
            when: the author and commit time, POSIX seconds (default: now), in the local
                time zone.

        Returns:
            The commit's sha. No ref moves: see :meth:`set_ref_if_equals`.
        """
        commit = Commit()
        commit.tree = tree.encode()
        commit.parents = [p.encode() for p in parents]
        commit.author = self._identity("AUTHOR")
        commit.committer = self._identity("COMMITTER")
        stamp = int(when if when is not None else time.time())
        commit.author_time = commit.commit_time = stamp
        offset = _local_utc_offset(stamp)
        commit.author_timezone = commit.commit_timezone = offset
        commit.encoding = b"UTF-8"
        commit.message = message.encode()
        self._add(commit)
        return commit.id.decode()

    def config_value(self, section: str, name: str, subsection: str | None = None) -> str | None:
        """Read one value from the git config stack (repository, user, system).

        Args:
            section: the section (``user``).
            name: the key (``email``).
            subsection: the subsection, as in ``[branch "main"]`` (default: none).

        Returns:
            The value, or None when it is not set.
        """
        key = (section.encode(), subsection.encode()) if subsection else (section.encode(),)
        try:
            return self._config_stack().get(key, name.encode()).decode()
        except KeyError:
            return None

    def config_sections(self, section: str) -> dict[str, dict[str, list[str]]]:
        """Every key of one section of the repository's own config (not the user's).

        Args:
            section: the section (``gitml``).

        Returns:
            ``{subsection ("" for none): {key as git lower-cases it: [values in order]}}``.
        """
        out = self._git("config", "--local", "-z", "--get-regexp", rf"^{section}\.", check=False)
        found: dict[str, dict[str, list[str]]] = {}
        for record in out.decode("utf-8", "surrogateescape").split("\0"):
            if not record:
                continue
            name, _, value = record.partition("\n")
            middle, _, key = name[len(section) + 1 :].rpartition(".")
            found.setdefault(middle, {}).setdefault(key, []).append(value)
        return found

    def remotes(self) -> dict[str, str]:
        """The repository's git remotes.

        Returns:
            ``{remote name: url}`` of every ``[remote "…"]`` section that has a URL.
        """
        if self._repo_config is None:
            self._repo_config = self._repo.get_config()
        config = self._repo_config
        found = {}
        for section in config.sections():
            if len(section) == 2 and section[0] == b"remote":
                with contextlib.suppress(KeyError):
                    found[section[1].decode()] = config.get(section, b"url").decode()
        return found

    def default_remote(self) -> str:
        """The git remote to sync with when none is named.

        Returns:
            The current branch's remote (``branch.<name>.remote``), else ``origin``, else the
            only remote.

        Raises:
            BadInputError: no git remote, or several and none of those rules picks one.
        """
        remotes = self.remotes()
        _, branch = self.head()
        if branch:
            configured = self.config_value("branch", "remote", branch)
            if configured in remotes:
                return configured
        if "origin" in remotes:
            return "origin"
        if len(remotes) == 1:
            return next(iter(remotes))
        raise BadInputError("no git remote to sync with" if not remotes else "several git remotes: name one",
                            hint="gitml push REMOTE")

    # -- the git CLI, for what dulwich does slowly or not at all ----------------------------------
    def _git(self, *args: str, check: bool = True, input: bytes | None = None) -> bytes:
        """Run the git CLI in the work tree and return its stdout (for ``gitml.core`` only).

        With ``check`` (the default) a failure raises the error of its kind (see
        :func:`git_failure`); with ``check=False`` the caller judges the output itself, except
        that git killed by a signal always raises: that is no answer to any question.

        Raises:
            BadInputError: git refused a revision or argument (unknown revision, bad object name).
            RemoteError: a fetch, push or ls-remote failed.
            InternalError: git was killed by a signal (even with ``check=False``), or rejected its
                command line (exit 129).
            GitmlError: any other failure (a lock held, a full disk, a corrupt object).
        """
        proc = self._spawn(args, input)
        if check or proc.returncode < 0:  # a signal is no answer, even to a yes/no question
            return check_result(args, proc)
        return proc.stdout

    def _git_result(self, *args: str, input: bytes | None = None) -> tuple[int, str]:
        """Run the git CLI and return ``(exit code, stdout and stderr as text)`` without judging it.

        For callers that read git's messages: a push's per-ref status, a yes/no answer such as
        ``merge-base --is-ancestor``.

        Raises:
            InternalError: git was killed by a signal (a negative exit code is no answer).
        """
        proc = self._spawn(args, input)
        if proc.returncode < 0:
            raise git_failure(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
        out = proc.stdout.decode("utf-8", "replace").strip(), proc.stderr.decode("utf-8", "replace").strip()
        return proc.returncode, "\n".join(filter(None, out))

    def _spawn(self, args: tuple[str, ...], input: bytes | None) -> subprocess.CompletedProcess:
        self.flush()  # git sees every object written so far
        return run_git(args, self.root, input)

    # -- typed plumbing: what services ask git, never a command line ------------------------------
    def rev_parse(self, spec: str) -> str | None:
        """The commit a revision names.

        Args:
            spec: any revision git takes (``HEAD``, a branch, a tag, ``main~2``, a sha prefix);
                never read as an option (``--end-of-options``).

        Returns:
            The commit's sha (a tag is peeled to its commit), or None when ``spec`` names no
            commit, or names a range (``a..b``, ``^a``: git prints several lines for those) or
            holds a NUL or a line break (which no revision does).
        """
        if not spec or any(c in spec for c in "\0\n\r"):
            return None
        out = self._git("rev-parse", "-q", "--verify", "--end-of-options", f"{spec}^{{commit}}", check=False)
        lines = out.decode().split()
        return lines[0] if len(lines) == 1 and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", lines[0]) else None

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two commits.

        Args:
            a: a commit sha or revision.
            b: another.

        Returns:
            The merge base's sha, or None when they share no history (or one does not resolve).
        """
        out = self._git("merge-base", "--end-of-options", a, b, check=False).decode().split()
        return out[0] if out else None

    def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether commit ``older`` is ``newer`` or one of its ancestors.

        Args:
            older: a commit sha or revision.
            newer: another.

        Returns:
            True when it is; False when not, or when either does not resolve.

        Raises:
            InternalError: git was killed by a signal.
        """
        return self._git_result("merge-base", "--is-ancestor", "--end-of-options", older, newer)[0] == 0

    def rev_list(self, tip: str, *, max_count: int | None = None, first_parent: bool = False,
                 exclude: tuple[str, ...] = (), exclude_remote: str | None = None) -> list[str]:
        """Commits reachable from ``tip``, newest first.

        Args:
            tip: a commit sha or revision.
            max_count: at most this many commits.
            first_parent: follow only first parents (a branch's own line, not what it merged).
            exclude: commits whose history is left out.
            exclude_remote: leave out what any remote-tracking ref of this remote reaches.

        Returns:
            Commit shas, newest first (git's default order).

        Raises:
            BadInputError: ``tip`` or an excluded commit does not resolve.
        """
        args = ["rev-list"]
        if max_count is not None:
            args.append(f"--max-count={int(max_count)}")
        if first_parent:
            args.append("--first-parent")
        args += [tip, *(f"^{sha}" for sha in exclude)]
        if exclude_remote is not None:
            args += ["--not", f"--remotes={exclude_remote}"]
        return self._git(*args).decode().split()

    def diff_stat(self, a: str, b: str) -> str:
        """``git diff --stat`` between two commits.

        Args:
            a: the old commit (sha or revision).
            b: the new one.

        Returns:
            git's text, or ``""`` when it cannot be made.
        """
        return self._git("diff", "--stat", "--end-of-options", a, b, check=False).decode("utf-8", "replace")

    def diff_binary(self, base: str) -> bytes:
        """The work tree's changes to tracked files against ``base``, as ``git apply`` takes them.

        Args:
            base: a commit sha or revision (``HEAD``).

        Returns:
            ``git diff --binary`` output, bytes (empty when nothing changed).

        Raises:
            BadInputError: ``base`` does not resolve.
            GitmlError: git failed otherwise.
        """
        return self._git("diff", "--binary", "--no-color", "--no-ext-diff", base)

    def status_porcelain(self) -> bytes:
        """The work tree's status, for provenance.

        Returns:
            ``git status --porcelain=v2 --branch -z --untracked-files=all`` output, bytes.

        Raises:
            GitmlError: git failed.
        """
        return self._git("status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")

    def tracked_files(self) -> list[str]:
        """Every path in the index (``git ls-files``).

        Returns:
            Work-tree relative paths, ``/``-separated; bytes that are not UTF-8 as surrogate
            escapes.

        Raises:
            GitmlError: git failed.
        """
        return [p.decode("utf-8", "surrogateescape") for p in self._git("ls-files", "-z").split(b"\0") if p]

    def symbolic_ref(self, name: str) -> str | None:
        """The ref a symbolic ref points at.

        Args:
            name: the symbolic ref (``refs/remotes/origin/HEAD``).

        Returns:
            The full name of its target (``refs/remotes/origin/main``), or None when ``name`` is
            not a symbolic ref.
        """
        return self._git("symbolic-ref", "-q", name, check=False).decode().strip() or None

    def git_path(self, name: str) -> Path:
        """Where git keeps ``name``, as ``git rev-parse --git-path`` says.

        Args:
            name: a path inside the git directory (``hooks`` honours ``core.hooksPath``).

        Returns:
            The absolute, resolved path (it may not exist).

        Raises:
            GitmlError: git failed.
        """
        return (self.root / self._git("rev-parse", "--git-path", name).decode().strip()).resolve()

    def config_get_all(self, key: str) -> list[str]:
        """Every value of a multi-valued key in the repository's own config.

        Args:
            key: the full key (``remote.origin.fetch``).

        Returns:
            Its values in order (empty when it is not set).
        """
        out = self._git("config", "--local", "-z", "--get-all", key, check=False)
        return [v.decode("utf-8", "surrogateescape") for v in out.split(b"\0") if v]

    def config_set(self, key: str, value: str, add: bool = False) -> None:
        """Set (or with ``add``, append) a key in the repository's own config.

        Args:
            key: the full key (``gitml.defaultRemote``).
            value: its value.
            add: add another value to a multi-valued key instead of replacing it.

        Raises:
            BadInputError: git refused the key as invalid.
            GitmlError: git could not write the config (a held lock, say).
        """
        self._git("config", "--local", *(["--add"] if add else []), key, value)
        self._config = self._repo_config = self._fsync = None  # re-read on the next question

    def config_unset(self, key: str) -> None:
        """Remove every value of a key from the repository's own config (nothing when not set).

        Args:
            key: the full key.
        """
        self._git("config", "--local", "--unset-all", key, check=False)
        self._config = self._repo_config = None

    def config_remove_section(self, section: str) -> None:
        """Remove a whole section from the repository's own config, if it is there.

        Args:
            section: the section with its subsection, dotted (``gitml.remote.scratch``).
        """
        self._git("config", "--local", "--remove-section", section, check=False)
        self._config = self._repo_config = None

    def ls_remote_tags(self, remote: str) -> dict[str, str]:
        """A git remote's tags, without fetching anything (``git ls-remote --tags --refs``).

        Args:
            remote: a git remote name or URL.

        Returns:
            ``{tag name without refs/tags/: sha the remote's ref points at}``.

        Raises:
            RemoteError: the remote cannot be reached or refused.
        """
        code, out = self._git_result("ls-remote", "--tags", "--refs", remote)
        if code != 0:
            raise RemoteError(f"git ls-remote {remote} failed: {remote_error(out, code)}")
        found = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name.startswith("refs/tags/"):
                found[name[len("refs/tags/"):]] = sha
        return found

    def remote_has_ref(self, remote: str, ref: str, timeout: float = 10.0) -> bool | None:
        """Whether git remote ``remote`` has ``ref``, asked with ``git ls-remote`` (the network).

        A side question, never a prompt: credentials are not asked for and the answer is given
        up after ``timeout`` seconds.

        Args:
            remote: a configured git remote's name.
            ref: a full ref name (``refs/gitml/runs``).
            timeout: seconds to wait for the remote.

        Returns:
            True or False; None when the remote could not be asked (offline, no access, slow).
        """
        try:
            proc = run_git(["ls-remote", "--refs", remote, ref], self.root, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode < 0:
            raise git_failure(("ls-remote",), proc.returncode, proc.stderr.decode("utf-8", "replace"))
        if proc.returncode != 0:
            return None
        return any(line.split("\t")[-1] == ref for line in proc.stdout.decode("utf-8", "replace").splitlines())

    def fetch(self, remote: str, refspecs: list[str]) -> None:
        """Fetch ``refspecs`` from a git remote (no tags besides those named, no FETCH_HEAD).

        Args:
            remote: a git remote name or URL.
            refspecs: git refspecs (``refs/gitml/runs*:refs/gitml/remotes/origin/runs*``); a
                refspec without ``+`` is never forced.

        Raises:
            RemoteError: the fetch failed; the message is git's last error line, credentials masked.
        """
        code, out = self._git_result("fetch", "--no-tags", "--no-write-fetch-head", remote, *refspecs)
        if code != 0:
            raise RemoteError(f"git fetch {remote} failed: {remote_error(out, code)}")

    def push(self, remote: str, refspecs: list[str]) -> PushOutcome:
        """Push ``refspecs`` (never forced) and say how it went, ref by ref.

        Args:
            remote: a git remote name or URL.
            refspecs: git refspecs (``refs/gitml/runs:refs/gitml/runs``).

        Returns:
            A :class:`PushOutcome`: ``ok``, the refs the remote refused because they moved there
            (``moved``: fetch, merge and push again), and git's error line for anything else.
        """
        code, out = self._git_result("push", "--porcelain", remote, *refspecs)
        if code == 0:
            return PushOutcome(True)
        moved = []
        for line in out.splitlines():
            if line.startswith("!") and any(reason in line for reason in MOVED_REASONS):
                moved.append(line.split("\t")[1].split(":")[-1] if "\t" in line else line)
        return PushOutcome(False, moved, remote_error(out, code))

    def move_ref(self, name: str, new: str | None, forward_only: bool = False) -> bool:
        """Point ``name`` at ``new`` (None deletes it) through the compare-and-swap loop.

        For refs gitml alone writes (remote-tracking runs refs): never an unconditional update,
        so a concurrent writer's value is read and replaced knowingly, not clobbered blind.

        Args:
            name: the full ref name.
            new: the sha to point it at, or None to delete it.
            forward_only: move only if the ref is absent or ``new`` descends from its commit; a
                ref another process already moved past ``new`` (a fetch that landed first)
                stays where it is.

        Returns:
            True when the ref now points at ``new``; False when ``forward_only`` left it.

        Raises:
            ConcurrencyError: the ref kept moving (or stayed locked) for every attempt.
            StaleLockError: its lock file was left by a dead process.
        """
        from gitml.core.cas import attempts

        for _ in attempts(f"update {name}"):
            old = self.ref(name)
            if old == new:
                return True
            if forward_only and old is not None and (new is None or not self.is_ancestor(old, new)):
                return False
            if new is None:
                if self._delete_ref_if_equals(name, old):
                    return True
            elif self.set_ref_if_equals(name, old, new):
                return True
        raise AssertionError("unreachable: attempts() raises when it runs out")

    def _delete_ref_if_equals(self, name: str, expected: str | None) -> bool:
        try:
            return self._repo.refs.remove_if_equals(name.encode(), expected.encode() if expected else None)
        except FileLocked as exc:
            return _busy(exc)

    def gc_auto(self) -> None:
        """``git gc --auto`` in the foreground: packs loose objects once git thinks it is time.

        Its failure is ignored: packing is housekeeping, never part of the operation.
        """
        self._git("-c", "gc.autoDetach=false", "gc", "--auto", "--quiet", check=False)

    def ls_tree_sized(self, tip: str, path: str) -> bytes:
        """Every blob under ``path`` at ``tip``, with mode and size.

        Args:
            tip: a commit (or tree) sha.
            path: a path from the root (``runs``).

        Returns:
            ``git ls-tree -r -l -z --full-tree`` output: NUL-terminated records
            ``<mode> SP <type> SP <sha> SP <size> TAB <path>``.

        Raises:
            BadInputError: ``tip`` does not resolve.
            GitmlError: git failed otherwise.
        """
        return self._git("ls-tree", "-r", "-l", "-z", "--full-tree", tip, "--", path)

    # -- creating a repository (the demo, tests) -------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike, branch: str = "main") -> GitRepo:
        """Create a new repository with a work tree at ``path`` and open it.

        Args:
            path: the folder; created (with its parents) when missing.
            branch: the name of the initial branch.

        Returns:
            The open repository; the caller closes it.

        Raises:
            GitmlError: ``git init`` failed, or git is not installed.
        """
        Path(path).mkdir(parents=True, exist_ok=True)
        check_result(("init",), run_git(["init", "-q", "-b", branch], path))
        return cls(path)

    def add_all(self) -> None:
        """Stage every change in the work tree (``git add -A``).

        Raises:
            GitmlError: git failed.
        """
        self._git("add", "-A")

    def commit_staged(self, message: str) -> str:
        """Commit what is staged with the git CLI (so the user's hooks and identity apply).

        Where no identity is configured, commits as ``gitml demo <demo@gitml.invalid>``.

        Args:
            message: the commit message.

        Returns:
            The new commit's sha (HEAD's).

        Raises:
            GitmlError: git failed (nothing staged, a hook refused).
        """
        identity = []
        if self.config_value("user", "email") is None:
            identity = ["-c", "user.name=gitml demo", "-c", "user.email=demo@gitml.invalid"]
        self._git(*identity, "commit", "-q", "-m", message)
        return self.head()[0]

    def checkout(self, branch: str, create: bool = False) -> None:
        """Switch the work tree to ``branch`` (``git checkout``).

        Args:
            branch: the branch name.
            create: create it at HEAD first (``-b``).

        Raises:
            BadInputError: no such branch.
            GitmlError: git failed otherwise (local changes in the way, the branch exists).
        """
        self._git("checkout", "-q", *(["-b"] if create else []), branch)

    def cat_blobs(self, shas: list[str]) -> dict[str, bytes]:
        """Read many blobs in one ``git cat-file --batch`` call (bulk reads: far faster than dulwich).

        Args:
            shas: blob shas.

        Returns:
            ``{sha: bytes}``.

        Raises:
            KeyError: an object is missing (its sha is the key).
            GitmlError: git failed.
        """
        if not shas:
            return {}
        out = self._git("cat-file", "--batch", input="\n".join(shas).encode() + b"\n")
        blobs: dict[str, bytes] = {}
        pos = 0
        while pos < len(out):
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) != 3:  # "<sha> missing"
                raise KeyError(header[0].decode())
            size = int(header[2])
            blobs[header[0].decode()] = out[end + 1 : end + 1 + size]
            pos = end + 2 + size
        return blobs

    def object_sizes(self, shas: list[str]) -> dict[str, int]:
        """``{sha: size in bytes}`` of objects, from one ``git cat-file --batch-check`` call.

        Reads only object headers: the size of a blob a stranger pushed is known before a byte of
        it is inflated.

        Args:
            shas: object shas.

        Returns:
            ``{sha: size in bytes}``; missing objects are left out.

        Raises:
            GitmlError: git failed.
        """
        if not shas:
            return {}
        out = self._git("cat-file", "--batch-check=%(objectname) %(objectsize)",
                       input="\n".join(shas).encode() + b"\n")
        sizes: dict[str, int] = {}
        for line in out.decode("ascii", "replace").splitlines():
            sha, _, size = line.partition(" ")
            if size.isdigit():
                sizes[sha] = int(size)
        return sizes

    def loose_object_estimate(self) -> int:
        """Estimate the loose object count the way ``git gc --auto`` does (one of 256 dirs).

        Only names of objects count, as in git: a ``tmp_obj_*`` file left by a killed writer
        does not.

        Returns:
            The number of loose objects in ``objects/17`` times 256.
        """
        try:
            names = os.listdir(self.common_dir / "objects" / "17")
        except FileNotFoundError:
            return 0
        return sum(1 for name in names if _LOOSE_NAME.fullmatch(name)) * 256

    # -- registry reads and writes that never parse all of packed-refs ----------------------------
    def refs_with_prefix(self, prefix: str) -> dict[str, str]:
        """``{full ref name: sha}`` of every ref whose name starts with ``prefix``, loose or packed.

        For reading one model's registry tags (``refs/tags/churn@``) among thousands: the
        ``packed-refs`` file is searched as bytes for the prefix, and of the loose refs only the
        directory entries that start with it are opened. Refs below such an entry count
        (``refs/tags/churn@x/y``); a loose ref wins over a packed one, lock files are skipped.

        Args:
            prefix: the start of full ref names (``refs/tags/churn@``,
                ``refs/gitml/registry-claims/churn/``).

        Returns:
            ``{full ref name: sha hex}``, in no particular order.
        """
        found: dict[str, str] = {}
        try:
            with open(self.common_dir / "packed-refs", "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            data = b""
        needle = b" " + prefix.encode()
        pos = data.find(needle)
        while pos >= 0:
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            if data[start:start + 1] not in (b"#", b"^"):  # a ref line: "<sha> <name>"
                found[data[pos + 1:end].decode("utf-8", "replace")] = data[start:pos].decode("ascii", "replace")
            pos = data.find(needle, end)
        folder, _, leaf = prefix.rpartition("/")
        base = self.common_dir / folder
        try:
            entries = [entry for entry in os.scandir(base) if entry.name.startswith(leaf)]
        except OSError:  # no such folder, a file in its place, a name too long for the file system
            entries = []
        for entry in entries:
            paths = [entry.path] if not entry.is_dir() else [
                os.path.join(top, file) for top, _, files in os.walk(entry.path) for file in files]
            for path in paths:
                try:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        sha = handle.read(41).strip()
                except OSError:
                    continue
                if len(sha) == 40 and not path.endswith(".lock"):
                    found[folder + "/" + os.path.relpath(path, base).replace(os.sep, "/")] = sha
        return found

    def read_tags(self, shas: list[str]) -> dict[str, dict]:
        """Read many tag objects at once: :meth:`read_tag` for each, in one ``git cat-file --batch``.

        Args:
            shas: what the tags' refs point at (see :meth:`tags`).

        Returns:
            ``{sha: what read_tag returns}``; objects missing or malformed are left out.
        """
        from dulwich.objects import ShaFile, object_class

        from gitml.core.errors import GitmlError

        if len(shas) < 16:  # a git process costs more than a few dulwich reads
            return self._read_tags_one_by_one(shas)
        try:
            out = self._git("cat-file", "--batch", input="\n".join(shas).encode() + b"\n")
        except GitmlError:  # a corrupt object stops git's batch: read them one by one
            return self._read_tags_one_by_one(shas)
        found: dict[str, dict] = {}
        pos = 0
        while pos < len(out):
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) != 3:  # "<sha> missing"
                pos = end + 1
                continue
            size = int(header[2])
            raw = out[end + 1:end + 1 + size]
            pos = end + 2 + size
            try:
                obj = ShaFile.from_raw_string(object_class(header[1]).type_num, raw, header[0])
                found[header[0].decode()] = self._tag_fields(obj, header[0].decode())
            except Exception:  # noqa: BLE001 - a malformed object is left out, whatever dulwich raises
                continue
        return found

    def read_all_tags(self, patterns: tuple[str, ...] = ("refs/tags",)) -> dict[str, dict]:
        """:meth:`read_tags` of every tag under ``refs/tags``, from one ``git for-each-ref``.

        git parses the tag objects itself: at thousands of tags about twice as fast as
        :meth:`read_tags`, which parses each one here. For reading a registry with no cache.

        Args:
            patterns: only the tags these for-each-ref patterns match (``refs/tags/**/*@v*``:
                version tags, nested model names included).

        Returns:
            ``{sha: what read_tag returns}``; ``{}`` when git cannot read some tag (a missing
            or corrupt object): read those with :meth:`read_tags`, which leaves them out.
        """
        from gitml.core.errors import GitmlError

        try:
            out = self._git("for-each-ref", "--format=" + _TAG_FORMAT, *patterns)
        except GitmlError:
            return {}
        parts = out.split(b"\0")
        if len(parts) % 8 != 1:  # 8 fields a tag, then the last newline: a NUL in a message shifts them
            return {}
        found: dict[str, dict] = {}
        for pos in range(0, len(parts) - 1, 8):
            sha, kind, target, tagger, tagged, committed, message, signature = parts[pos:pos + 8]
            sha = sha.lstrip(b"\n").decode("ascii", "replace")
            if len(sha) != 40 or kind not in (b"tag", b"commit", b"tree", b"blob"):
                return {}
            if kind == b"tag":
                if signature and message.endswith(signature):  # as dulwich, which keeps it apart
                    message = message[:-len(signature)]
                found[sha] = {"target": target.decode("ascii", "replace"), "tagger": tagger.decode("utf-8", "replace"),
                              "time": int(tagged) if tagged else None, "message": message.decode("utf-8", "replace"),
                              "annotated": True}
            else:
                found[sha] = {"target": sha, "tagger": None, "time": int(committed) if committed else None,
                              "message": "", "annotated": False}
        return found

    def _read_tags_one_by_one(self, shas: list[str]) -> dict[str, dict]:
        found = {}
        for sha in shas:
            try:
                found[sha] = self._tag_fields(self._repo.object_store[sha.encode()], sha)
            except Exception:  # noqa: BLE001 - missing or malformed: left out, whatever dulwich raises
                continue
        return found

    @staticmethod
    def _tag_fields(obj, sha: str) -> dict:
        """What :meth:`read_tag` returns, from the parsed object (a tag, or a lightweight tag's commit)."""
        if isinstance(obj, Tag):
            _, target = obj.object
            return {"target": target.decode(), "tagger": obj.tagger.decode("utf-8", "replace"),
                    "time": obj.tag_time, "message": obj.message.decode("utf-8", "replace"), "annotated": True}
        return {"target": sha, "tagger": None, "time": getattr(obj, "commit_time", None), "message": "",
                "annotated": False}

    def add_ref_if_absent(self, name: str, sha: str) -> bool:
        """:meth:`add_ref_if_new` without parsing every packed ref (~0.1 s at thousands of tags).

        The same contract: the ref is created under its lock file only if neither a loose nor
        a packed ref of that name exists; ``packed-refs`` is searched as bytes for the one name.

        Args:
            name: the full ref name.
            sha: what it should point at.

        Returns:
            True when created; False when the ref exists or its lock is held.

        Raises:
            StaleLockError: the ref's lock file was left by a dead process.
            BadInputError: ``name`` is not a valid ref name.
        """
        from dulwich.file import GitFile
        from dulwich.refs import check_ref_format

        if not check_ref_format(name.encode()):
            raise BadInputError(f"invalid ref name {name!r}")
        path = self.common_dir / name
        if os.path.lexists(path) or self._packed_ref_exists(name):
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with GitFile(path, "wb") as handle:
                if os.path.exists(path) or self._packed_ref_exists(name):
                    handle.abort()
                    return False
                handle.write(sha.encode() + b"\n")
        except FileLocked:  # another writer holds it: add_ref_if_new judges a held lock (stale or not)
            return self.add_ref_if_new(name, sha)
        return True

    def _packed_ref_exists(self, name: str) -> bool:
        try:
            with open(self.common_dir / "packed-refs", "rb") as handle:
                return (b" " + name.encode() + b"\n") in handle.read()
        except FileNotFoundError:
            return False

    def tags_containing(self, part: str) -> dict[str, str]:
        """:meth:`tags`, only the tags whose names contain ``part`` (``@v``: version tags).

        ``packed-refs`` is searched as bytes for ``part`` and only the loose refs whose names
        contain it are opened, so the other tags cost next to nothing.

        Args:
            part: text the tag name (without ``refs/tags/``) must contain.

        Returns:
            ``{tag name without refs/tags/: sha hex}``; a loose tag wins over a packed one.
        """
        found: dict[str, str] = {}
        try:
            with open(self.common_dir / "packed-refs", "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            data = b""
        needle = part.encode()
        pos = data.find(needle)
        while pos >= 0:
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            sha, _, name = data[start:end].partition(b" ")
            if data[start:start + 1] not in (b"#", b"^") and name.startswith(b"refs/tags/") and needle in name[10:]:
                found[name[10:].decode("utf-8", "replace")] = sha.decode("ascii", "replace")
            pos = data.find(needle, end)
        root = self.common_dir / "refs" / "tags"
        for folder, _, files in os.walk(root):
            for file in files:
                path = os.path.join(folder, file)
                name = os.path.relpath(path, root).replace(os.sep, "/")
                if part not in name or file.endswith(".lock"):
                    continue
                try:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        sha = handle.read(41).strip()
                except OSError:
                    continue
                if len(sha) == 40:
                    found[name] = sha
        return found


# One tag as read_all_tags asks git for-each-ref to print it: fields ended by NUL, which no tag
# message holds, so a message cannot break a record.
_TAG_FORMAT = "%00".join(("%(objectname)", "%(objecttype)", "%(*objectname)", "%(taggername) %(taggeremail)",
                          "%(taggerdate:unix)", "%(committerdate:unix)", "%(contents)", "%(contents:signature)")) + "%00"


class _TreeForm:
    """A tree object's content, with its entries sorted as git sorts them, for edits by name.

    ``keys`` are the entry names as git orders them (a folder's name followed by ``/``) and
    ``chunks`` the entries' bytes (mode, space, name, a zero byte, the 20-byte id), in the same order, so an
    edit is a few binary searches and a join of byte strings: no per-entry Python work, however
    many entries the tree has (a shard of ``runs/`` holds hundreds at 100,000 runs). Both are
    worked out from ``raw`` when first needed.
    """

    __slots__ = ("raw", "_keys", "_chunks", "_entries")

    def __init__(self, raw: bytes, keys: list[bytes] | None = None, chunks: list[bytes] | None = None) -> None:
        self.raw = raw
        self._keys, self._chunks = keys, chunks
        self._entries: dict[str, tuple[int, str]] | None = None

    def parts(self) -> tuple[list[bytes], list[bytes]]:
        """``(keys, chunks)``, split out of ``raw`` once.

        Raises:
            BadInputError: ``raw`` is not a well-formed tree.
        """
        if self._keys is None:
            self._keys, self._chunks = _split_tree(self.raw)
        return self._keys, self._chunks

    def entries(self) -> dict[str, tuple[int, str]]:
        """``{name: (mode, sha)}``, as :meth:`GitRepo.read_tree` returns it (a shared dict: copy it)."""
        if self._entries is None:
            # Names from a remote may be any bytes: keep them round-trippable rather than crash.
            self._entries = {name.decode("utf-8", "surrogateescape"): (mode, hexsha.decode())
                             for name, mode, hexsha in parse_tree(self.raw, 20)}
        return self._entries

    def lookup(self, names: Iterable[str]) -> dict[str, tuple[int, str]]:
        """The entries among ``names`` that the tree has, as ``{name: (mode, sha)}``."""
        keys, chunks = self.parts()
        found = {}
        for name in names:
            raw_name = name.encode("utf-8", "surrogateescape")
            at = _find(keys, raw_name)
            if at >= 0:
                chunk = chunks[at]
                found[name] = (int(chunk[:chunk.index(b" ")], 8), chunk[-20:].hex())
        return found

    def edited(self, edits: dict[str, tuple[int, str] | None]) -> _TreeForm:
        """A new form with ``edits`` applied: ``{name: (mode, sha)}`` sets an entry, None removes it."""
        keys, chunks = self.parts()
        if len(edits) > 32:  # many at once (a map written whole): one sort, not an insert each
            return self._rebuilt(edits)
        keys, chunks = list(keys), list(chunks)
        for name, entry in edits.items():
            raw_name = name.encode("utf-8", "surrogateescape")
            at = _find(keys, raw_name)
            if at >= 0:
                del keys[at], chunks[at]
            if entry is not None:
                mode, sha = entry
                key = raw_name + b"/" if mode == TREE_MODE else raw_name
                at = bisect.bisect_left(keys, key)
                keys.insert(at, key)
                chunks.insert(at, b"%o %s\0%s" % (mode, raw_name, binascii.unhexlify(sha)))
        return _TreeForm(b"".join(chunks), keys, chunks)


    def _rebuilt(self, edits: dict[str, tuple[int, str] | None]) -> _TreeForm:
        """:meth:`edited` for many edits: the entries merged by name and sorted once."""
        keys, chunks = self.parts()
        merged = dict(zip(keys, chunks, strict=True))
        for name, entry in edits.items():
            raw_name = name.encode("utf-8", "surrogateescape")
            merged.pop(raw_name, None)
            merged.pop(raw_name + b"/", None)
            if entry is not None:
                mode, sha = entry
                key = raw_name + b"/" if mode == TREE_MODE else raw_name
                merged[key] = b"%o %s\0%s" % (mode, raw_name, binascii.unhexlify(sha))
        keys = sorted(merged)
        chunks = [merged[key] for key in keys]
        return _TreeForm(b"".join(chunks), keys, chunks)


def _find(keys: list[bytes], raw_name: bytes) -> int:
    """Where the entry named ``raw_name`` (a file's or a folder's) sits in sorted ``keys``; -1: absent."""
    for key in (raw_name, raw_name + b"/"):
        at = bisect.bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            return at
    return -1


# One tree entry: mode, space, name, a zero byte, the 20-byte object id.
_TREE_ENTRY = re.compile(rb"(([0-7]+) ([^\x00]*)\x00.{20})", re.DOTALL)


def _split_tree(raw: bytes) -> tuple[list[bytes], list[bytes]]:
    """A tree's ``(keys, chunks)`` (see :class:`_TreeForm`), sorted as git sorts them.

    Split by one regular expression (in C): a shard of a big ref has hundreds of entries.

    Raises:
        BadInputError: ``raw`` is not a well-formed tree.
    """
    found = _TREE_ENTRY.findall(raw)
    chunks = [whole for whole, _, _ in found]
    if sum(map(len, chunks)) != len(raw):
        raise BadInputError("malformed tree object")
    keys = [name + b"/" if mode in (b"40000", b"040000") else name for _, mode, name in found]
    if keys != sorted(keys):  # written out of git's order by some other tool: edit a sorted copy
        pairs = sorted(zip(keys, chunks, strict=True))
        keys, chunks = [k for k, _ in pairs], [c for _, c in pairs]
    return keys, chunks


class _TreeCache:
    """Trees (and commits) a process has written or read, by repository and object id.

    Objects are named by their content, so what is kept never goes stale: a writer's next
    commit finds its tip's trees here (it wrote them) instead of reading and parsing them
    again. Kept per repository so that an object another repository lacks is still missing
    there. Least recently used first out, past :data:`TREE_CACHE_BYTES`.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[tuple[str, str], tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, repo: str, sha: str):
        with self._lock:
            item = self._items.get((repo, sha))
            if item is None:
                return None
            self._items.move_to_end((repo, sha))
            return item[0]

    def put(self, repo: str, sha: str, value: object, size: int) -> None:
        with self._lock:
            old = self._items.pop((repo, sha), None)
            if old is not None:
                self.used -= old[1]
            self._items[(repo, sha)] = (value, size)
            self.used += size
            while self.used > self.budget and self._items:
                self.used -= self._items.popitem(last=False)[1][1]


_cache = _TreeCache(TREE_CACHE_BYTES)


class _RawTree:
    """A tree serialized by :meth:`GitRepo.write_tree` or :meth:`GitRepo.edit_tree`, with its form."""

    type_num = Tree.type_num
    type_name = Tree.type_name

    def __init__(self, sha: bytes, form: _TreeForm) -> None:
        self.id = sha
        self.form = form

    def as_raw_string(self) -> bytes:
        return self.form.raw


# What git's porcelain push says of a ref refused because the remote's copy moved (or another
# pusher held its lock): the caller fetches, merges and pushes again.
MOVED_REASONS = ("fetch first", "non-fast-forward", "lock", "failed to update ref")


@dataclass
class PushOutcome:
    """How a :meth:`GitRepo.push` went.

    ``ok`` is True when every ref was pushed; ``moved`` lists the remote refs refused because
    they moved there (fetch, merge and push again); ``error`` is git's error line otherwise.
    """

    ok: bool
    moved: list[str] = field(default_factory=list)
    error: str = ""


def remote_error(message: str, code: int) -> str:
    """The line that says why a fetch or push failed, its URLs masked.

    git drops ``user:pw@`` from what it prints but keeps ``?access_token=``, so every URL is
    masked here. When gitml's pre-push hook blocked a push, its first reason (and how many more)
    replaces git's summary.

    Args:
        message: git's stdout and stderr, as :meth:`GitRepo._git_result` returns them.
        code: git's exit code, said when git printed nothing.

    Returns:
        One line of text.
    """
    from gitml.core.urls import mask_text

    lines = [line for line in message.splitlines()
             if line.startswith(("error", "fatal", "!", "gitml:")) and "failed to push some refs" not in line]
    reasons = [line for line in lines if line.startswith("gitml: pre-push: ") and "push blocked" not in line
               and "warning:" not in line]
    if reasons and any("push blocked" in line for line in lines):
        more = f" (and {len(reasons) - 1} more: git push shows them all)" if len(reasons) > 1 else ""
        return mask_text(f"the pre-push hook blocked it: {reasons[0][len('gitml: pre-push: '):]}{more}")
    refused = [_refused_ref(line) for line in lines if line.startswith("!")]
    if refused:  # porcelain push lines: "!\t<src>:<dst>\t[rejected] (reason)", one per ref
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        return mask_text(refused[0] + more)
    return mask_text((lines or message.splitlines() or [str(code)])[-1])


def _refused_ref(line: str) -> str:
    """``refs/tags/churn@v0.0.3 rejected (already exists)`` from a porcelain push line."""
    parts = line.split("\t")
    if len(parts) < 3:
        return line
    target = parts[1].rpartition(":")[2]
    return f"{target} {parts[2].strip('[]').replace('] (', ' (')}"


def _busy(lock: FileLocked | str) -> bool:
    """False (the caller retries) while a lock is fresh; raise once it is plainly stale.

    Git's lock files record no owner, so age is the signal: a live writer holds a ref lock for
    milliseconds, so a lock older than :data:`STALE_LOCK_SECONDS` was left by a killed process.
    It is never removed automatically — two processes doing so could remove each other's live
    lock — but named, with how to remove it.

    Raises:
        StaleLockError: the lock file is older than :data:`STALE_LOCK_SECONDS`.
    """
    path = lock if isinstance(lock, str) else os.fsdecode(lock.lockfilename)
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return False
    if age > STALE_LOCK_SECONDS:
        raise StaleLockError(path, age)
    return False


def _maybe_roll_up(repo: GitRepo) -> None:
    """Roll small packs up with git's ``git repack -d --geometric=2`` once they pass the limit.

    Each batch of objects lands as its own small pack; without this the pack count would grow
    by one per run. The limit is git's ``gc.autoPackLimit`` (default 50 here too); 0, or
    ``gc.auto=0``, turns it off as it turns off git's own automatic packing. git's repack is
    safe with concurrent readers and writers (it only deletes the packs it rolled up, after the
    new one is in place); gitml writers take turns through an advisory lock on
    ``<common dir>/gitml/repack.lock`` (released by the kernel if the process dies), and a
    writer that finds it taken leaves the work to the one holding it. A failure is ignored:
    packing is housekeeping, never part of the write.
    """
    limit = _int_setting(repo.config_value("gc", "autoPackLimit"), PACK_LIMIT_DEFAULT)
    if limit <= 0 or _int_setting(repo.config_value("gc", "auto"), 1) <= 0:
        return
    if repo.pack_count() <= limit:
        return
    try:
        import fcntl
    except ImportError:  # no advisory locks here (Windows): git's repack is safe to run anyway
        fcntl = None
    repo.gitml_dir.mkdir(parents=True, exist_ok=True)
    with open(repo.gitml_dir / "repack.lock", "a") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # another writer is rolling the packs up right now
        if repo.pack_count() > limit:  # it may have just finished
            repo._git("repack", "-d", "-q", "--geometric=2", check=False)


def _int_setting(value: str | None, default: int) -> int:
    """A git integer setting (``k``/``m``/``g`` suffixes allowed); ``default`` when unset or bad."""
    if value is None:
        return default
    text = value.strip().lower()
    scale = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(text[-1:], 1)
    try:
        return int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        return default


def _store_name(common_dir: Path) -> str:
    """The object store's path and identity: a repository made again at the same path is another."""
    try:
        st = os.stat(common_dir / "objects")
        return f"{common_dir}:{st.st_dev}:{st.st_ino}"
    except OSError:
        return str(common_dir)


def _deflate(data: bytes) -> bytes:
    """``data`` as a zlib stream at level 1 (git's ``core.looseCompression`` default).

    The window is no larger than the data needs: zlib sets up (and clears) its full 32 KiB window
    and tables for every stream otherwise, which is most of the cost of a run's small objects.
    Any window size is a valid stream for git's reader.
    """
    bits = min(15, max(9, (len(data) - 1).bit_length()))
    stream = zlib.compressobj(1, zlib.DEFLATED, bits)
    return stream.compress(data) + stream.flush()


def _commit_fields(commit: Commit) -> tuple[str, tuple[str, ...], str]:
    """``(tree, parents, message)`` of a dulwich commit, as hex ids and text."""
    return (commit.tree.decode(), tuple(p.decode() for p in commit.parents),
            commit.message.decode("utf-8", "replace"))


def _local_utc_offset(stamp: int) -> int:
    """The local time zone's offset from UTC at ``stamp``, in seconds (git's commit time zone)."""
    local = time.localtime(stamp)
    return local.tm_gmtoff or 0


@contextlib.contextmanager
def open_repo(repo: RepoLike = None) -> Iterator[GitRepo]:
    """Yield an open :class:`GitRepo`; whoever opened it closes it.

    Args:
        repo: a path inside a repository (opened here, closed after), an open :class:`GitRepo`
            or a :class:`~gitml.core.workspace.Workspace` (its repository; both kept open), or
            None for the current directory.

    Yields:
        The open repository.

    Raises:
        NotARepositoryError: a path that is not inside a git work tree.
    """
    if isinstance(repo, GitRepo):
        yield repo
        return
    if isinstance(getattr(repo, "repo", None), GitRepo):  # a Workspace (imported lazily: it imports us)
        yield repo.repo
        return
    opened = GitRepo(repo)
    try:
        yield opened
    finally:
        opened.close()
