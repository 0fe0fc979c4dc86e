"""What to flush to disk, and in which order, as git's own ``core.fsync`` settings say.

git names the parts of a repository it can harden (``loose-object``, ``pack``,
``pack-metadata``, ``reference`` …) and lets the user pick them with ``core.fsync``, starting
from a platform default, adding names, removing ``-names`` and resetting with ``none``
(``git help config``). gitml reads the same settings so that a run costs what a ``git commit``
costs and is exactly as durable: by default packs and their indexes are flushed and references
are not; with ``core.fsync=committed`` (or ``all``, or ``reference``) the ref is flushed too,
always after the objects it names.

:func:`fsync_plan` is pure (settings in, a :class:`FsyncPlan` out), so the decisions are tested
without watching system calls.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPONENTS = ("loose-object", "pack", "pack-metadata", "commit-graph", "index", "reference")
AGGREGATES = {
    "objects": {"loose-object", "pack"},
    "derived-metadata": {"pack-metadata", "commit-graph"},
    # git's source (cache.h, since 2.36) makes `committed` objects + reference; its manual page
    # still says "objects". The source is what git does, so gitml follows it.
    "committed": {"loose-object", "pack", "reference"},
    "added": {"loose-object", "pack", "reference", "index"},
    "all": set(COMPONENTS),
}
#: git's platform default: ``objects,derived-metadata`` without ``loose-object``.
DEFAULT = frozenset({"pack", "pack-metadata", "commit-graph"})
METHODS = ("fsync", "writeout-only", "batch")


@dataclass(frozen=True)
class FsyncPlan:
    """What a write flushes, in order: objects (and their folder), then the ref.

    ``loose`` and ``pack`` flush object files written loose or as a pack, ``pack_index`` a
    pack's ``.idx``, ``folders`` the object folder after a new file was renamed into it (so the
    name survives a crash too), ``reference`` the ref's new value before it is renamed into
    place. ``method`` is git's ``core.fsyncMethod``; gitml flushes with ``fsync()`` for every
    method (``writeout-only`` and ``batch`` have no portable equivalent; ``fsync`` is never
    weaker).
    """

    loose: bool
    pack: bool
    pack_index: bool
    reference: bool
    method: str = "fsync"

    @property
    def folders(self) -> bool:
        """Flush the folder a flushed object file was renamed into (its name is data too)."""
        return self.loose or self.pack

    def steps(self, packed: bool) -> list[str]:
        """The flushes of one write, in the order they happen.

        Args:
            packed: the objects are written as one pack (else as loose files).

        Returns:
            Names from ``object-files``, ``pack-index``, ``object-folder``, ``ref``; the ref's
            flush always comes last, after everything it names.
        """
        out = []
        if packed:
            out += ["object-files"] if self.pack else []
            out += ["pack-index"] if self.pack_index else []
        elif self.loose:
            out.append("object-files")
        if self.pack if packed else self.loose:
            out.append("object-folder")
        if self.reference:
            out.append("ref")
        return out


def components(core_fsync: str | None, fsync_object_files: bool | None = None) -> frozenset[str]:
    """The set of components git hardens, from ``core.fsync`` and the older ``core.fsyncObjectFiles``.

    As git reads them: the set starts from :data:`DEFAULT`; each comma-separated name adds a
    component or an aggregate, ``-name`` removes it, ``none`` empties the set and ``""`` (the
    empty value) goes back to the default. Unknown names are ignored, as git ignores them (with a
    warning). ``core.fsyncObjectFiles=true`` adds ``loose-object`` when ``core.fsync`` is unset.

    Args:
        core_fsync: the value of ``core.fsync`` (None when unset).
        fsync_object_files: ``core.fsyncObjectFiles`` as a boolean (None when unset).

    Returns:
        The component names (see :data:`COMPONENTS`).
    """
    found = set(DEFAULT)
    if core_fsync is None:
        if fsync_object_files:
            found.add("loose-object")
        return frozenset(found)
    for raw in core_fsync.split(","):
        name = raw.strip().lower()
        if not name:
            if not core_fsync.strip():
                found = set(DEFAULT)
            continue
        if name == "none":
            found = set()
            continue
        remove = name.startswith("-")
        name = name.lstrip("-")
        named = AGGREGATES.get(name, {name} if name in COMPONENTS else set())
        if remove:
            found -= named
        else:
            found |= named
    return frozenset(found)


def fsync_plan(core_fsync: str | None, fsync_object_files: str | None = None,
               method: str | None = None) -> FsyncPlan:
    """The flushes a gitml write makes under these git settings.

    Args:
        core_fsync: ``core.fsync`` as written in git's config, or None when unset.
        fsync_object_files: ``core.fsyncObjectFiles`` as written (``true``, ``yes``, ``1`` …),
            or None when unset.
        method: ``core.fsyncMethod``, or None (git's default, ``fsync``).

    Returns:
        The plan; see :class:`FsyncPlan`.
    """
    legacy = None if fsync_object_files is None else _git_bool(fsync_object_files)
    parts = components(core_fsync, legacy)
    chosen = (method or "fsync").strip().lower()
    return FsyncPlan(loose="loose-object" in parts, pack="pack" in parts, pack_index="pack-metadata" in parts,
                     reference="reference" in parts, method=chosen if chosen in METHODS else "fsync")


def _git_bool(text: str) -> bool:
    """A git boolean: ``true``/``yes``/``on``/non-zero numbers (and a bare key) are true."""
    value = text.strip().lower()
    if value in ("", "true", "yes", "on"):
        return True
    if value in ("false", "no", "off"):
        return False
    try:
        return int(value) != 0
    except ValueError:
        return False
