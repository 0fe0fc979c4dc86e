"""What this repository knows an artifact remote holds, so a push need not ask about every object.

A push asks the remote only about objects it has no record of. The record of one remote,
``<git-common-dir>/gitml/remotes/<key>`` (``key``: a hash of the remote's URL and options,
credentials left out), holds the digests this repository uploaded there or found there, and
the names of the remote's deletion notes already taken into account. It is a cache:

- a digest enters it only after the remote confirmed the object (a listing, an existence check,
  or a finished upload), never before;
- before trusting it, a push lists the remote's deletion notes (``<url>/deletions/``, one
  listing) and drops every digest a new note lists: gitml writes a note before it deletes
  objects from a remote (``gc --remote``, ``verify --delete-bad``), from any clone;
- ``status``, ``verify`` and ``gc`` never trust it, and ``push --recheck`` asks the remote about
  every object (for objects deleted by other tools); what they find is written back.

Writers take an exclusive ``flock`` on ``<record>.lock``; a rewrite goes to a temporary file
renamed into place, so readers (who take no lock) see a whole record or the previous one.
Losing the record costs one full check of the remote on the next push, nothing else; a record
that cannot be written (a read-only repository) is left as it is, and nothing fails for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from gitml.artifacts.backend import ObjectStore
from gitml.core.ids import is_digest
from gitml.core.remotes import Remote, is_secret_option
from gitml.core.urls import mask_url

HEADER = "gitml remote record 1"
FOLDER = "remotes"

log = logging.getLogger(__name__)


def record_path(gitml_dir: Path, remote: Remote) -> Path:
    """Where the record of ``remote`` lives: ``<gitml_dir>/remotes/<32 hex>``.

    The key is the sha256 of the remote's URL (credentials masked) and its options (those named
    like secrets left out), so renaming a remote keeps its record and pointing a name at another
    store starts a new one.

    Args:
        gitml_dir: the repository's gitml folder, ``<git-common-dir>/gitml``.
        remote: the remote.

    Returns:
        The record's path (it may not exist).
    """
    options = {k: v for k, v in sorted(remote.options.items()) if not is_secret_option(k)}
    key = json.dumps([mask_url(remote.url), options], sort_keys=True, default=str)
    return Path(gitml_dir) / FOLDER / hashlib.sha256(key.encode()).hexdigest()[:32]


class RemoteRecord:
    """The record of what one remote holds, for one repository.

    Args:
        gitml_dir: the repository's gitml folder.
        store: the remote, opened (deletion notes are read from it).
    """

    def __init__(self, gitml_dir: Path, store: ObjectStore) -> None:
        self.store = store
        self.path = record_path(gitml_dir, store.remote)
        self._notes_seen: set[str] = set()  # the notes listed by refresh(), before any object was checked

    def read(self) -> tuple[set[str], set[str]]:
        """``(digests, applied note names)`` as stored; an absent or unreadable record is empty."""
        digests: set[str] = set()
        notes: set[str] = set()
        try:
            text = self.path.read_text(encoding="ascii", errors="replace")
        except OSError:
            return digests, notes
        lines = text.split("\n")
        if not lines or lines[0] != HEADER:
            return digests, notes  # another version's or a damaged record: start afresh
        for line in lines[1:]:
            if is_digest(line):
                digests.add(line)
            elif line.startswith("note "):
                notes.add(line[5:])
        return digests, notes  # a torn last line (a killed append) is not a digest: ignored

    def refresh(self) -> set[str]:
        """Take the remote's new deletion notes into account; return the digests it may be trusted for.

        One listing of the notes; each note not seen before is read (none when the record is
        empty: it has nothing to drop) and its digests are dropped from the record. Call it
        before asking the remote about objects: a deletion noted later is caught by the next
        refresh.

        Returns:
            The digests the record holds once the notes are applied.

        Raises:
            RemoteError: the notes cannot be listed or read.
        """
        listed = self.store.deletion_notes()
        self._notes_seen = set(listed)
        digests, applied = self.read()
        new = [name for name in listed if name not in applied]
        if not new:
            return digests
        dropped: set[str] = set()
        if digests:
            for name in new:
                dropped |= self.store.read_note(name)
        try:
            with self._locked():
                digests, applied = self.read()  # again, under the lock: another push may have written
                self._write(digests - dropped, applied | set(new))
        except OSError as exc:  # a cache that cannot be written (a read-only repository) is no error
            log.debug("cannot write %s: %s", self.path, exc)
        return digests - dropped

    def learn(self, present: Iterable[str], absent: Iterable[str] = ()) -> None:
        """Record what the remote was just found (or made) to hold, and what it was found not to.

        Call it after :meth:`refresh`. A deletion note that another process applied to the
        record since then is applied to ``present`` too: the object may have been deleted after
        it was seen.

        Args:
            present: digests the remote confirmed: found by a listing or check, or uploaded.
            absent: digests the remote was asked about and does not hold.

        Raises:
            RemoteError: such a note cannot be read.
        """
        present = set(present)
        absent = set(absent) - present
        if not present and not absent:
            return
        try:
            with self._locked():
                digests, applied = self.read()
                for name in sorted(applied - self._notes_seen):
                    present -= self.store.read_note(name)
                self._notes_seen |= applied
                if absent & digests:
                    self._write((digests - absent) | present, applied)
                elif present - digests:
                    self._append(sorted(present - digests), fresh=not self.path.exists())
        except OSError as exc:  # not recorded: the next push asks the remote again
            log.debug("cannot write %s: %s", self.path, exc)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: the record is a cache, races cost a re-check
            yield
            return
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _append(self, digests: list[str], fresh: bool) -> None:
        if fresh:
            self._write(set(digests), set())
            return
        with open(self.path, "a", encoding="ascii") as handle:
            handle.write("".join(d + "\n" for d in digests))

    def _write(self, digests: set[str], notes: set[str]) -> None:
        lines = [HEADER, *(f"note {n}" for n in sorted(notes)), *sorted(digests)]
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write("\n".join(lines) + "\n")
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


__all__ = ["RemoteRecord", "record_path"]
