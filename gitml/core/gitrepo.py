"""The one module that speaks dulwich.

Everything above this layer sees :class:`GitRepo` methods taking and returning hex ids (``str``)
and plain Python data. Entry points elsewhere accept a path or an open :class:`GitRepo`
(:func:`open_repo`) and close only what they opened.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Union

from dulwich.errors import NotGitRepository
from dulwich.file import FileLocked
from dulwich.objects import ZERO_SHA, Blob, Commit, Tag, Tree
from dulwich.repo import Repo, get_user_identity

from gitml.core.errors import (
    BadInputError,
    GitmlError,
    InternalError,
    NotARepositoryError,
    RemoteError,
    StaleLockError,
)

TREE_MODE = 0o040000
BLOB_MODE = 0o100644
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# A ref update holds its lock for milliseconds; one older than this was left by a dead process.
STALE_LOCK_SECONDS = 10.0

RepoLike = Union[str, os.PathLike, "GitRepo", None]


class GitRepo:
    """An open git repository with a work tree, as gitml uses it.

    Args:
        path: any path inside the repository (default: the current directory).
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
        self.common_dir = Path(self._repo.commondir())
        self.git_dir = Path(self._repo.controldir())
        self.gitml_dir = self.common_dir / "gitml"
        self._config = None
        self._repo_config = None
        self._pending: dict | None = None

    def _config_stack(self):
        if self._config is None:  # parsed once per open repository, not per commit
            self._config = self._repo.get_config_stack()
        return self._config

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
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
        """Return ``{full ref name: sha}`` for every ref under ``prefix`` (e.g. ``refs/tags/``)."""
        keys = self._repo.refs.as_dict(prefix.rstrip("/").encode())
        return {prefix.rstrip("/") + "/" + k.decode(): v.decode() for k, v in keys.items()}

    def set_ref_if_equals(self, name: str, expected: str | None, new: str) -> bool:
        """Compare-and-swap a ref: ``expected=None`` means the ref must not exist yet.

        Returns False on a lost race or while another writer holds the ref's lock.
        """
        old = ZERO_SHA if expected is None else expected.encode()
        try:
            return self._repo.refs.set_if_equals(name.encode(), old, new.encode())
        except FileLocked as exc:
            return _busy(exc)

    def tags(self) -> dict[str, str]:
        """``{tag name: sha of the ref}`` for every tag (loose and packed), without reading objects.

        Read straight from ``packed-refs`` and ``refs/tags/``: dulwich's ref container validates
        and follows every ref one by one, which costs ~0.4 s at a few thousand tags.
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
        """An annotated tag's target, tagger, time (POSIX) and message; a lightweight one's target only."""
        obj = self._repo.object_store[sha.encode()]
        if isinstance(obj, Tag):
            _, target = obj.object
            return {"target": target.decode(), "tagger": obj.tagger.decode("utf-8", "replace"),
                    "time": obj.tag_time, "message": obj.message.decode("utf-8", "replace"), "annotated": True}
        return {"target": sha, "tagger": None, "time": getattr(obj, "commit_time", None), "message": "",
                "annotated": False}

    def create_tag(self, name: str, target: str, message: str, when: float | None = None) -> str | None:
        """Create an annotated tag only if no tag of that name exists; return its sha, or None if taken."""
        tag = Tag()
        tag.name = name.encode()
        tag.object = (Commit, target.encode())
        tag.tagger = get_user_identity(self._config_stack(), kind="COMMITTER")
        stamp = int(when if when is not None else time.time())
        tag.tag_time = stamp
        tag.tag_timezone = _local_utc_offset(stamp)
        tag.message = message.encode()
        self._repo.object_store.add_object(tag)
        try:
            created = self._repo.refs.add_if_new(b"refs/tags/" + name.encode(), tag.id)
        except FileLocked as exc:
            return _busy(exc) or None
        return tag.id.decode() if created else None

    def add_ref_if_new(self, name: str, sha: str) -> bool:
        """Create a ref only if it does not exist yet (False when taken or locked)."""
        try:
            return self._repo.refs.add_if_new(name.encode(), sha.encode())
        except FileLocked as exc:
            return _busy(exc)

    def head(self) -> tuple[str | None, str | None]:
        """Return ``(commit sha or None, branch name or None)`` for HEAD."""
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
        return sha.encode() in self._repo.object_store

    def _add(self, obj) -> None:
        if self._pending is not None:
            self._pending[obj.id] = obj  # keyed: a pack must not hold an object twice
        else:
            self._repo.object_store.add_object(obj)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Collect the objects written inside the block and store them as one pack.

        For bulk writes (imports, benchmarks): one pack instead of many loose files. Call
        :meth:`flush` before pointing a ref at anything written in the block.
        """
        self._pending = {}
        try:
            yield
            self.flush()
        finally:
            self._pending = None

    def flush(self) -> None:
        """Write the objects collected by :meth:`batch` so far."""
        if self._pending:
            self._repo.object_store.add_objects([(obj, None) for obj in self._pending.values()])
            self._pending = {}

    def write_blob(self, data: bytes) -> str:
        blob = Blob.from_string(data)
        self._add(blob)
        return blob.id.decode()

    def write_tree(self, entries: dict[str, tuple[int, str]]) -> str:
        """Write a tree from ``{name: (mode, sha)}`` and return its sha."""
        tree = Tree()
        for name, (mode, sha) in entries.items():
            tree.add(name.encode("utf-8", "surrogateescape"), mode, sha.encode())
        self._add(tree)
        return tree.id.decode()

    def read_tree(self, sha: str) -> dict[str, tuple[int, str]]:
        tree = self._repo.object_store[sha.encode()]
        if not isinstance(tree, Tree):
            raise BadInputError(f"object {sha} is not a tree")
        # Names from a remote may be any bytes: keep them round-trippable rather than crash.
        return {e.path.decode("utf-8", "surrogateescape"): (e.mode, e.sha.decode()) for e in tree.iteritems()}

    def read_blob(self, sha: str) -> bytes:
        return self._repo.object_store[sha.encode()].as_raw_string()

    def read_commit(self, sha: str) -> tuple[str, list[str], str]:
        """Return ``(tree sha, parent shas, message)`` of a commit."""
        commit = self._repo.object_store[sha.encode()]
        if not isinstance(commit, Commit):
            raise BadInputError(f"object {sha} is not a commit")
        return (
            commit.tree.decode(),
            [p.decode() for p in commit.parents],
            commit.message.decode("utf-8", "replace"),
        )

    def write_commit(
        self, tree: str, parents: list[str], message: str, when: float | None = None
    ) -> str:
        """Write a commit authored and committed by the user's git identity."""
        config = self._config_stack()
        commit = Commit()
        commit.tree = tree.encode()
        commit.parents = [p.encode() for p in parents]
        commit.author = get_user_identity(config, kind="AUTHOR")
        commit.committer = get_user_identity(config, kind="COMMITTER")
        stamp = int(when if when is not None else time.time())
        commit.author_time = commit.commit_time = stamp
        offset = _local_utc_offset(stamp)
        commit.author_timezone = commit.commit_timezone = offset
        commit.encoding = b"UTF-8"
        commit.message = message.encode()
        self._add(commit)
        return commit.id.decode()

    def config_value(self, section: str, name: str, subsection: str | None = None) -> str | None:
        """Read one value from the git config stack (repository, user, system)."""
        key = (section.encode(), subsection.encode()) if subsection else (section.encode(),)
        try:
            return self._config_stack().get(key, name.encode()).decode()
        except KeyError:
            return None

    def config_sections(self, section: str) -> dict[str, dict[str, list[str]]]:
        """``{subsection ("" for none): {key: [values]}}`` of one section of the repository config."""
        out = self.git("config", "--local", "-z", "--get-regexp", rf"^{section}\.", check=False)
        found: dict[str, dict[str, list[str]]] = {}
        for record in out.decode("utf-8", "surrogateescape").split("\0"):
            if not record:
                continue
            name, _, value = record.partition("\n")
            middle, _, key = name[len(section) + 1 :].rpartition(".")
            found.setdefault(middle, {}).setdefault(key, []).append(value)
        return found

    def remotes(self) -> dict[str, str]:
        """Return ``{remote name: url}`` from the repository's config."""
        if self._repo_config is None:
            self._repo_config = self._repo.get_config()
        config = self._repo_config
        found = {}
        for section in config.sections():
            if len(section) == 2 and section[0] == b"remote":
                with contextlib.suppress(KeyError):
                    found[section[1].decode()] = config.get(section, b"url").decode()
        return found

    # -- the git CLI, for what dulwich does slowly or not at all ----------------------------------
    def git(self, *args: str, check: bool = True, input: bytes | None = None) -> bytes:
        """Run the git CLI in the work tree and return its stdout.

        With ``check`` (the default) a failure raises the error of its kind (see
        :func:`git_failure`); with ``check=False`` the caller judges the output itself.

        Raises:
            BadInputError: git refused a revision or argument (unknown revision, bad object name).
            RemoteError: a fetch, push or ls-remote failed.
            InternalError: git was killed by a signal, or rejected its command line (exit 129).
            GitmlError: any other failure (a lock held, a full disk, a corrupt object).
        """
        proc = self._spawn(args, input)
        if check and proc.returncode != 0:
            raise git_failure(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
        return proc.stdout

    def git_result(self, *args: str, input: bytes | None = None) -> tuple[int, str]:
        """Run the git CLI and return ``(exit code, stdout and stderr as text)`` without judging
        the code: for callers that read git's messages (a push's per-ref status, a yes/no answer
        such as ``merge-base --is-ancestor``).

        Raises:
            InternalError: git was killed by a signal (a negative exit code is no answer).
        """
        proc = self._spawn(args, input)
        if proc.returncode < 0:
            raise git_failure(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
        out = proc.stdout.decode("utf-8", "replace").strip(), proc.stderr.decode("utf-8", "replace").strip()
        return proc.returncode, "\n".join(filter(None, out))

    def _spawn(self, args: tuple[str, ...], input: bytes | None) -> subprocess.CompletedProcess:
        """The one place gitml starts git (the pre-push hook's dulwich-free fast path aside)."""
        try:
            return subprocess.run(
                ["git", *args],
                cwd=self.root,
                input=input,
                capture_output=True,
                check=False,
                close_fds=False,  # lets CPython use vfork: about half the cost of a default spawn
            )
        except FileNotFoundError:
            raise GitmlError("the git command was not found", hint="install git and put it on PATH") from None

    def cat_blobs(self, shas: list[str]) -> dict[str, bytes]:
        """Read many blobs in one ``git cat-file --batch`` call (bulk reads: far faster than dulwich)."""
        if not shas:
            return {}
        out = self.git("cat-file", "--batch", input="\n".join(shas).encode() + b"\n")
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
        it is inflated. Missing objects are left out.
        """
        if not shas:
            return {}
        out = self.git("cat-file", "--batch-check=%(objectname) %(objectsize)",
                       input="\n".join(shas).encode() + b"\n")
        sizes: dict[str, int] = {}
        for line in out.decode("ascii", "replace").splitlines():
            sha, _, size = line.partition(" ")
            if size.isdigit():
                sizes[sha] = int(size)
        return sizes

    def loose_object_estimate(self) -> int:
        """Estimate the loose object count the way ``git gc --auto`` does (one of 256 dirs)."""
        try:
            return len(os.listdir(self.common_dir / "objects" / "17")) * 256
        except FileNotFoundError:
            return 0


# git subcommands that talk to a remote: their failure is the remote's (or the network's).
REMOTE_COMMANDS = {"fetch", "push", "ls-remote", "clone", "pull"}
# What git says (exit code 128) when a revision, object name or path argument it was given
# does not resolve: the input was bad, nothing failed.
BAD_INPUT_MESSAGES = re.compile(
    r"unknown revision|bad revision|ambiguous argument|not a valid object name|invalid object name"
    r"|needed a single revision|not a valid (?:commit|tag|tree|ref)|invalid reference|invalid refspec"
    r"|not a valid ref name|is not a valid branch name|bad revision range|invalid key|invalid section name",
    re.IGNORECASE,
)
GIT_USAGE_EXIT = 129  # git's own usage error: gitml built a command line this git does not accept


def git_failure(args: tuple[str, ...] | list[str], code: int, stderr: str) -> GitmlError:
    """The error for a git command that exited with ``code`` and said ``stderr``, by kind.

    A signal, or git rejecting its command line (exit 129), is an :class:`InternalError` (exit
    3): gitml asked for something git could not do. A command that talks to a remote failing is a
    :class:`RemoteError` (1). A revision or argument git cannot resolve is a
    :class:`BadInputError` (2). Anything else is a plain :class:`GitmlError` (1): the operation
    failed (a held lock, a full disk, a corrupt object), as git's last error line says.
    """
    from gitml.core.urls import mask_text

    command = _subcommand(args)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("fatal:", "error:"))]
    said = mask_text((errors or lines or [f"exit code {code}"])[-1])
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return InternalError(f"git {command} was killed by {name}")
    if command in REMOTE_COMMANDS:
        return RemoteError(f"git {command} failed: {said}")
    if any(BAD_INPUT_MESSAGES.search(line) for line in errors or lines):
        return BadInputError(f"git {command} failed: {said}")
    if code == GIT_USAGE_EXIT:
        return InternalError(f"git {command} rejected its arguments: {said}", hint="please report it, with the output of `git --version`")
    return GitmlError(f"git {command} failed: {said}")


def _subcommand(args: tuple[str, ...] | list[str]) -> str:
    """The git subcommand in ``args``, past global options such as ``-c key=value``."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-c", "-C", "--git-dir", "--work-tree"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return args[0] if args else "?"


def _busy(exc: FileLocked) -> bool:
    """False (the caller retries) while a lock is fresh; raise once it is plainly stale.

    Git's lock files record no owner, so age is the signal: a live writer holds a ref lock for
    milliseconds, so a lock older than :data:`STALE_LOCK_SECONDS` was left by a killed process.
    It is never removed automatically — two processes doing so could remove each other's live
    lock — but named, with how to remove it.

    Raises:
        StaleLockError: the lock file is older than :data:`STALE_LOCK_SECONDS`.
    """
    path = os.fsdecode(exc.lockfilename)
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return False
    if age > STALE_LOCK_SECONDS:
        raise StaleLockError(path, age)
    return False


def _local_utc_offset(stamp: int) -> int:
    local = time.localtime(stamp)
    return local.tm_gmtoff or 0


@contextlib.contextmanager
def open_repo(repo: RepoLike = None) -> Iterator[GitRepo]:
    """Yield an open :class:`GitRepo` for a path (closing it after) or an already open one."""
    if isinstance(repo, GitRepo):
        yield repo
        return
    opened = GitRepo(repo)
    try:
        yield opened
    finally:
        opened.close()
