"""One artifact remote as an object store: ``<url>/sha256/ab/cdef…`` on any fsspec filesystem.

Backends are fsspec's; the optional ones (s3fs, gcsfs, adlfs, paramiko) are imported by fsspec
only when a URL needs them, and a missing one gives an install hint. Object stores (S3, GCS,
Azure, memory) make a single PUT visible atomically; everywhere else an upload goes to a
temporary name beside its target and is renamed into place, so a killed upload never leaves a
partial object under an object's name. A folder is written with plain system calls (no
``stat`` before writing), and on a local disk small objects go one after the other
(:meth:`ObjectStore.put_many`): the kernel copies the bytes, and Python threads would only
contend for the interpreter lock; a network mount (NFS, SMB) keeps threads, whose calls wait
on the server together.

Besides objects, a remote holds deletion notes, ``<url>/deletions/<name>``: before gitml deletes
objects from a remote (``gc``, ``verify --delete-bad``) it writes one, listing them, so that every
repository's record of what that remote holds (:mod:`gitml.artifacts.record`) learns of it.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from gitml.core.errors import RemoteError
from gitml.core.ids import check_digest, is_digest
from gitml.core.remotes import Remote, remote_secrets
from gitml.core.urls import mask_text, mask_url

ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
          "sftp": "sftp", "ssh": "sftp"}
NOTES = "deletions"  # the folder of deletion notes, beside sha256/
SMALL_OBJECT = 8 << 20  # bytes: objects up to this size go up many at a time on async backends
ASYNC_JOBS = 64  # concurrent requests for small objects on async backends (S3, GCS, Azure)
LIST_THRESHOLD = 64  # past this many objects to check, listing their shard folders beats per-object calls
FULL_LISTING_THRESHOLD = 2000  # past this many, one recursive listing beats per-shard listings
THREAD_JOBS = 8  # uploads at once by default on other backends (SFTP, network mounts; big objects to a local disk)
SMALL_LOCAL_OBJECT = 1 << 20  # bytes: objects up to this size go to a folder on a local disk one after the other
COPY_BLOCK = 1 << 30  # bytes per sendfile call on a local folder (the kernel copies in its own steps)
# sendfile refusing these file kinds (some FUSE mounts, old kernels): fall back to read and write
NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTSOCK, errno.EXDEV}
# Filesystems on a disk (or in memory) of this machine, as Linux names them in its mount table:
# a folder on one of them is written one object after the other. Anything else, or a system
# without /proc/self/mountinfo, keeps THREAD_JOBS threads (network round trips overlap).
LOCAL_DISK_TYPES = {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "bcachefs", "jfs", "reiserfs",
                    "tmpfs", "ramfs", "overlay"}

log = logging.getLogger(__name__)


class ObjectStore:
    """Content-addressed objects on one remote: ``<url>/sha256/ab/cdef…``.

    Every method raises :class:`RemoteError` when the backend fails (``OSError`` or the base
    error of the backend's SDK); anything else a backend raises is a bug and is not caught.

    Args:
        remote: the remote; its URL and options open the fsspec filesystem (nothing is contacted
            yet, except by backends that connect when opened, such as SFTP).

    Raises:
        RemoteError: the backend's package is missing (with an install hint), the URL or an
            option is refused by the backend, or a connecting backend cannot connect.
    """

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.fs, self.root = _open(remote)
        protocol = self.fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        self.atomic_put = bool(protocols & ATOMIC_PUT)
        self._made_dirs: set[str] = set()
        # Exactly fsspec's own local filesystem: a subclass may redefine its calls, so it keeps them.
        from fsspec.implementations.local import LocalFileSystem

        self.local = type(self.fs) is LocalFileSystem
        self._tmp_token = uuid.uuid4().hex[:12]  # temporary names: <object>.tmp-<token>-<n>
        self._tmp_serial = itertools.count()

    def path(self, digest: str) -> str:
        """Return the object's path on the remote.

        Raises:
            BadInputError: ``digest`` is not 64 lowercase hex (checked again here: it becomes a path).
        """
        check_digest(digest)
        return f"{self.root}/sha256/{digest[:2]}/{digest[2:]}"

    def _fail(self, action: str, exc: BaseException) -> RemoteError:
        return RemoteError(f"artifact remote {_shown(self.remote)}: {action} failed: {_detail(self.remote, exc)}")

    def existing(self, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` the remote holds, in as few round trips as the count warrants.

        Up to :data:`LIST_THRESHOLD` objects, parallel existence checks; up to
        :data:`FULL_LISTING_THRESHOLD`, a listing of each shard folder involved; beyond, one
        recursive listing.

        Raises:
            RemoteError: the remote cannot be reached or refuses the listing.
        """
        wanted = set(digests)
        if not wanted:
            return set()
        self.fs.invalidate_cache()  # a listing cached by this process's filesystem may be stale
        try:
            with ThreadPoolExecutor(16) as pool:
                if len(wanted) <= LIST_THRESHOLD:
                    found = pool.map(lambda d: (d, self.fs.exists(self.path(d))), sorted(wanted))
                    return {d for d, ok in found if ok}
                if len(wanted) > FULL_LISTING_THRESHOLD:
                    # So many that nearly every shard is involved: one paged listing of all
                    # objects costs fewer round trips than 256 shard listings.
                    return wanted & self.all_objects()
                # Many objects: list only the shard folders they fall in, in parallel.
                listed = pool.map(self._list_shard, sorted({d[:2] for d in wanted}))
                return wanted & set().union(*listed)
        except backend_errors() as exc:  # a bug (TypeError, KeyError...) surfaces as an internal error
            raise self._fail("checking objects", exc) from exc

    def _list_shard(self, shard: str) -> set[str]:
        try:
            names = self.fs.ls(f"{self.root}/sha256/{shard}", detail=False)
        except FileNotFoundError:
            return set()
        found = {shard + n.rstrip("/").rsplit("/", 1)[-1] for n in names}
        return {d for d in found if is_digest(d)}

    def all_objects(self) -> set[str]:
        """Every object digest on the remote (one recursive listing; other names are ignored).

        Raises:
            RemoteError: the remote cannot be reached or refuses the listing.
        """
        base = f"{self.root}/sha256"
        self.fs.invalidate_cache()
        try:
            if not self.fs.exists(base):
                return set()
            names = self._find_all(base, detail=False)
        except backend_errors() as exc:
            raise self._fail("listing objects", exc) from exc
        found = set()
        for name in names:
            parts = name.rstrip("/").split("/")
            if len(parts) >= 2 and len(parts[-2]) == 2 and is_digest(parts[-2] + parts[-1]):
                found.add(parts[-2] + parts[-1])
        return found

    def all_objects_with_times(self) -> dict[str, float | None]:
        """``{digest: modification time (POSIX seconds) or None when the backend gives none}``.

        One recursive listing with details; gc uses the times for its grace period.

        Raises:
            RemoteError: the remote cannot be reached or refuses the listing.
        """
        base = f"{self.root}/sha256"
        self.fs.invalidate_cache()
        try:
            if not self.fs.exists(base):
                return {}
            listing = self._find_all(base, detail=True)
        except backend_errors() as exc:
            raise self._fail("listing objects", exc) from exc
        found: dict[str, float | None] = {}
        for name, info in listing.items():
            parts = name.rstrip("/").split("/")
            if len(parts) >= 2 and len(parts[-2]) == 2 and is_digest(parts[-2] + parts[-1]):
                found[parts[-2] + parts[-1]] = _mtime(info)
        return found

    def _find_all(self, base: str, detail: bool):
        """``fs.find(base)``, as 16 listings at once where the backend lists by key prefix (S3).

        An object store lists one page of keys per request, one page after the other; split by
        the first hex digit of the shard folders, the pages of the 16 parts are fetched
        concurrently on the backend's event loop.
        """
        find = getattr(self.fs, "_find", None)
        if not (getattr(self.fs, "async_impl", False) and find is not None and _takes_prefix(find)):
            return self.fs.find(base, detail=detail)
        import asyncio

        from fsspec.asyn import sync

        async def run():
            return await asyncio.gather(*(find(base, prefix=c, detail=detail) for c in "0123456789abcdef"))

        parts = sync(self.fs.loop, run)
        if detail:
            return {name: info for part in parts for name, info in part.items()}
        return [name for part in parts for name in part]

    def put(self, local: str, digest: str) -> None:
        """Upload the file ``local`` as object ``digest`` (the caller vouches for its hash).

        Where the backend's single PUT is not atomic, the bytes go to a temporary name beside the
        object and are renamed into place, so a killed upload never leaves a partial object.

        Raises:
            RemoteError: the upload failed; no object of that name was made by it.
        """
        target = self.path(digest)
        try:
            if self.local:
                self._put_local(local, target)
                return
            if self.atomic_put:
                self.fs.put_file(local, target)
                return
            parent = target.rsplit("/", 1)[0]
            if parent not in self._made_dirs:  # one makedirs per shard folder, not per object
                self.fs.makedirs(parent, exist_ok=True)
                self._made_dirs.add(parent)
            tmp = f"{target}.tmp-{uuid.uuid4().hex[:12]}"
            try:
                self.fs.put_file(local, tmp)
                self.fs.mv(tmp, target)
            except BaseException:
                try:
                    self.fs.rm_file(tmp)
                except backend_errors():  # best effort: the temp name is never an object
                    pass
                raise
        except backend_errors() as exc:
            raise self._fail(f"uploading {digest[:12]}", exc) from exc

    def _put_local(self, local: str, target: str) -> None:
        """Copy ``local`` to ``target`` in a folder on this machine: to a new temporary name, then renamed.

        Seven system calls for a small object (open both, two ``sendfile``, close both,
        ``rename``), no ``stat``: the temporary file is created with ``O_EXCL`` (never someone
        else's), and its shard folder is made only when creating it says the folder is missing.
        """
        src = os.open(local, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            tmp, out = self._new_temporary(target)
            try:
                try:
                    _copy_fd(src, out)
                finally:
                    os.close(out)
                os.replace(tmp, target)  # atomic: the object appears whole, or not at all
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:  # best effort: the temporary name is never an object
                    pass
                raise
        finally:
            os.close(src)

    def _new_temporary(self, target: str) -> tuple[str, int]:
        """Create ``<target>.tmp-<token>-<n>``, exclusively, making its folder if missing; return it open."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        for attempt in range(3):
            tmp = f"{target}.tmp-{self._tmp_token}-{next(self._tmp_serial)}"
            try:
                return tmp, os.open(tmp, flags, 0o666)
            except FileNotFoundError:
                if attempt == 2:
                    raise
                os.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True)  # a new shard folder (or a new remote)
            except FileExistsError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def put_many(self, files: list[tuple[str, str, int]], jobs: int | None = None,
                 done: Callable[[str], None] | None = None) -> None:
        """Upload many files, each as :meth:`put` would, concurrently; every one is attempted.

        On backends with an asynchronous API and an atomic PUT (S3, GCS, Azure), the uploads are
        coroutines on the backend's own event loop: up to ``jobs`` (default
        :data:`ASYNC_JOBS`) objects of at most :data:`SMALL_OBJECT` bytes at a time, then the
        bigger ones ``min(jobs, 8)`` at a time (each of those is a multipart upload with its own
        parallel parts). Elsewhere ``jobs`` threads (default :data:`THREAD_JOBS`) each call
        :meth:`put`; but by default, to a folder on a local disk (:data:`LOCAL_DISK_TYPES`),
        objects of at most :data:`SMALL_LOCAL_OBJECT` bytes go one after the other (each costs
        a few system calls, which threads would only serialise on the interpreter lock).

        Args:
            files: ``(local path, digest, size)`` for each object; the caller vouches for the hashes.
            jobs: how many uploads at once.
            done: called with each digest once its object is on the remote (possibly from another
                thread), so a caller can count progress and keep what was uploaded even when
                another upload fails.

        Raises:
            RemoteError: at least one upload failed (the first failure is named), after all the
                others were attempted; no object of a failed upload's name was made by it.
        """
        if not files:
            return
        if self.atomic_put and getattr(self.fs, "async_impl", False) and hasattr(self.fs, "_put_file"):
            small = [f for f in files if f[2] <= SMALL_OBJECT]
            large = [f for f in files if f[2] > SMALL_OBJECT]
            failures = self._put_async(small, jobs or ASYNC_JOBS, done)
            failures += self._put_async(large, min(jobs or 8, 8), done)
        else:
            failures = []

            def one(item: tuple[str, str, int]) -> None:
                try:
                    self.put(item[0], item[1])
                except RemoteError as exc:
                    failures.append(exc)
                    return
                if done:
                    done(item[1])

            if jobs is None and self.local and _mount_type(self.root) in LOCAL_DISK_TYPES:
                # Small objects cost system calls, which threads would only serialise on the
                # interpreter lock; big ones cost the kernel's copying, which threads overlap.
                for item in files:
                    if item[2] <= SMALL_LOCAL_OBJECT:
                        one(item)
                files = [item for item in files if item[2] > SMALL_LOCAL_OBJECT]
            if files:
                with ThreadPoolExecutor(max(1, min(jobs or THREAD_JOBS, len(files)))) as pool:
                    list(pool.map(one, files))
        if failures:
            raise failures[0]

    def _put_async(self, files: list[tuple[str, str, int]], jobs: int,
                   done: Callable[[str], None] | None) -> list[RemoteError]:
        """Upload ``files`` as coroutines on the filesystem's loop, ``jobs`` at a time; return the failures."""
        import asyncio

        from fsspec.asyn import sync

        errors = backend_errors()
        failures: list[RemoteError] = []

        async def run() -> None:
            gate = asyncio.Semaphore(max(1, jobs))

            async def one(local: str, digest: str) -> None:
                async with gate:
                    try:
                        await self.fs._put_file(local, self.path(digest))
                    except errors as exc:
                        failures.append(self._fail(f"uploading {digest[:12]}", exc))
                        return
                if done:
                    done(digest)

            await asyncio.gather(*(one(local, digest) for local, digest, _ in files))

        if files:
            sync(self.fs.loop, run)
        return failures

    def deletion_notes(self) -> list[str]:
        """The names of the deletion notes on the remote (``<url>/deletions/<name>``), sorted.

        Raises:
            RemoteError: the remote cannot be reached or refuses the listing.
        """
        self.fs.invalidate_cache()
        try:
            names = self.fs.ls(f"{self.root}/{NOTES}", detail=False)
        except FileNotFoundError:
            return []
        except backend_errors() as exc:
            raise self._fail("checking objects", exc) from exc  # the first thing a push asks
        return sorted(n.rstrip("/").rsplit("/", 1)[-1] for n in names if _is_note(n.rstrip("/").rsplit("/", 1)[-1]))

    def read_note(self, name: str) -> set[str]:
        """The digests a deletion note lists (lines that are not digests are ignored).

        Raises:
            RemoteError: the note cannot be read (a note deleted since it was listed reads as empty).
        """
        if not _is_note(name):
            return set()
        try:
            data = self.fs.cat_file(f"{self.root}/{NOTES}/{name}")
        except FileNotFoundError:
            return set()
        except backend_errors() as exc:
            raise self._fail(f"reading deletion note {name}", exc) from exc
        return {line for line in data.decode("ascii", "replace").split() if is_digest(line)}

    def _write_note(self, digests: list[str]) -> str:
        """Write a deletion note listing ``digests``; return its name (``<UTC time>-<12 hex>``)."""
        name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:12]}"
        target = f"{self.root}/{NOTES}/{name}"
        data = "".join(d + "\n" for d in digests).encode()
        if self.atomic_put:
            self.fs.pipe_file(target, data)
            return name
        self.fs.makedirs(f"{self.root}/{NOTES}", exist_ok=True)
        tmp = f"{self.root}/{NOTES}/.tmp-{uuid.uuid4().hex[:12]}"  # not a note's name: never read as one
        self.fs.pipe_file(tmp, data)
        self.fs.mv(tmp, target)
        return name

    def get(self, digest: str, local: str) -> None:
        """Download object ``digest`` to the file ``local`` (unverified: the caller hashes it).

        Raises:
            RemoteError: the remote does not have the object, or cannot be reached.
        """
        try:
            self.fs.get_file(self.path(digest), local)
        except FileNotFoundError:
            raise RemoteError(f"object {digest} is not on artifact remote {self.remote.name!r}",
                              hint="push it from a machine that has it: gitml artifacts push") from None
        except backend_errors() as exc:
            raise self._fail(f"downloading {digest[:12]}", exc) from exc

    def delete(self, digests: Iterable[str]) -> None:
        """Delete objects from the remote, in one call to the backend, after noting them.

        A deletion note listing them is written first (:meth:`deletion_notes`): a repository that
        recorded them as pushed drops them from its record on its next push, and uploads them
        again if it needs them.

        Raises:
            RemoteError: the backend refused or failed (when the note cannot be written, nothing
                is deleted).
        """
        digests = sorted(set(digests))
        paths = [self.path(d) for d in digests]
        if not paths:
            return
        try:
            self._write_note(digests)
            self.fs.rm(paths)
        except backend_errors() as exc:
            raise self._fail("deleting objects", exc) from exc


# The base error classes of the SDKs under fsspec's optional backends. fsspec's contract is
# OSError, but some failures (no credentials, an endpoint that does not answer) reach us as the
# SDK's own error; they are the remote's failure, not a bug of gitml's.
SDK_ERRORS = (("botocore.exceptions", "BotoCoreError"), ("aiohttp", "ClientError"),
              ("google.auth.exceptions", "GoogleAuthError"), ("azure.core.exceptions", "AzureError"),
              ("paramiko", "SSHException"))


def backend_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the remote failed", for an ``except`` clause.

    ``OSError``, and the base errors of the backend SDKs that are loaded (looked up in
    ``sys.modules``: nothing is imported for this). Anything else a backend raises (TypeError,
    KeyError, ...) is a bug and surfaces as an internal error.
    """
    import sys

    found: list[type[BaseException]] = [OSError]
    for module, name in SDK_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _copy_fd(src: int, out: int) -> None:
    """Copy the whole of open file ``src`` into ``out``: by ``sendfile`` where the kernel can, else read and write."""
    offset = 0
    if hasattr(os, "sendfile"):
        try:
            while sent := os.sendfile(out, src, offset, COPY_BLOCK):
                offset += sent
            return
        except OSError as exc:
            if offset or exc.errno not in NO_SENDFILE:
                raise
    with open(src, "rb", closefd=False) as reader, open(out, "wb", closefd=False) as writer:
        shutil.copyfileobj(reader, writer)


def _mount_type(path: str) -> str | None:
    """The type of the filesystem ``path`` is on (``ext4``, ``nfs4``, ``fuse.sshfs``…), or None if unknown.

    Read from Linux's ``/proc/self/mountinfo``: the mount point that is the longest prefix of
    ``path`` (symbolic links resolved; ``path`` need not exist yet). None where there is no such
    file (macOS, Windows) or it cannot be read.
    """
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
            table = handle.read()
    except OSError:
        return None
    where = os.path.realpath(path)
    best, found = -1, None
    for line in table.splitlines():
        fields = line.split(" ")
        if len(fields) < 8 or "-" not in fields[6:]:
            continue
        point = _unescape_mount(fields[4])
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # the last of stacked mounts is the one on top
            best, found = len(point), fields[fields.index("-", 6) + 1]
    return found


def _unescape_mount(text: str) -> str:
    r"""A mount point as the kernel writes it in mountinfo (``\040`` for a space) made a path again."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _takes_prefix(find) -> bool:
    """Whether a backend's ``_find`` takes ``prefix=`` (s3fs's lists ``<path>/<prefix>*`` by key prefix)."""
    import inspect

    try:
        return "prefix" in inspect.signature(find).parameters
    except (TypeError, ValueError):
        return False


def _is_note(name: str) -> bool:
    """Whether a name in ``deletions/`` is a note's: ``YYYYMMDDTHHMMSSZ-<12 hex>``."""
    stamp, _, tail = name.partition("-")
    return (len(stamp) == 16 and stamp[8] == "T" and stamp[15] == "Z" and (stamp[:8] + stamp[9:15]).isdigit()
            and len(tail) == 12 and all(c in "0123456789abcdef" for c in tail))


def _mtime(info: dict) -> float | None:
    """A listing entry's modification time in POSIX seconds, from whichever field the backend fills."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created", "modified"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if hasattr(value, "timestamp"):
            return value.timestamp()
        if isinstance(value, str):
            from datetime import datetime

            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _open(remote: Remote):
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(remote.url, **remote.options)
    except ImportError as exc:
        protocol = remote.url.split("://", 1)[0] if "://" in remote.url else "file"
        extra = EXTRAS.get(protocol)
        hint = f"pip install 'gitml[{extra}]'" if extra else f"install the fsspec backend for {protocol!r}"
        raise RemoteError(f"artifact remote {remote.name!r} needs a package that is missing: "
                          f"{_detail(remote, exc)}", hint=hint) from None
    except (ValueError, TypeError) as exc:  # a bad URL or option for that backend
        raise RemoteError(f"artifact remote {_shown(remote)}: {_detail(remote, exc)}") from None
    except backend_errors() as exc:  # backends that connect when opened (sftp)
        raise RemoteError(f"artifact remote {_shown(remote)}: {_detail(remote, exc)}") from None
    return fs, root.rstrip("/")


def _shown(remote: Remote) -> str:
    return f"{remote.name!r} ({mask_url(remote.url)})"


def _detail(remote: Remote, exc: BaseException) -> str:
    """A backend's message on one line, the remote's secrets masked.

    Backends quote URLs, paths (s3fs takes ``KEY:SECRET@bucket`` of ``s3://KEY:SECRET@bucket``
    for a bucket name) and options.
    """
    text = mask_text(str(exc) or type(exc).__name__, remote_secrets(remote))
    return " ".join(line.strip() for line in text.splitlines() if line.strip())  # one stderr line
