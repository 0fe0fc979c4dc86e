"""Writing a handful of objects as one small git pack (``.pack`` + ``.idx``, version 2).

A run is about ten small objects. Written loose they cost ten files, each with its own temporary
name and rename; written as one pack they cost two files. The format is git's own
(``gitformat-pack``): objects stored whole (no deltas: a run's objects are new content), zlib
compressed, the index sorted by object id. The ``.pack`` is renamed into place before its
``.idx``: git and dulwich only see a pack once its index exists, so a reader never sees half a
pack, and a writer killed between the two renames leaves an unindexed pack that git's ``gc``
removes.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
import zlib
from collections.abc import Iterable

TYPE_NUMBERS = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}


def _entry_header(type_num: int, size: int) -> bytes:
    """The variable-length type and size header before each object's data."""
    byte = (type_num << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def build_pack(objects: Iterable[tuple[bytes, int, bytes]]) -> tuple[bytes, bytes, bytes]:
    """A pack and its index for ``objects``.

    Args:
        objects: ``(binary object id, type number, raw content)`` triples, each id once.

    Returns:
        ``(pack bytes, index bytes, pack checksum)``; the checksum (20 bytes) names the files,
        ``pack-<hex checksum>.pack`` and ``.idx``, as git names its own.
    """
    items = list(objects)
    chunks = [b"PACK", struct.pack(">II", 2, len(items))]
    offset = 12
    entries = []
    for sha, type_num, raw in items:
        body = _entry_header(type_num, len(raw)) + zlib.compress(raw, 1)
        entries.append((sha, zlib.crc32(body) & 0xFFFFFFFF, offset))
        chunks.append(body)
        offset += len(body)
    pack = b"".join(chunks)
    checksum = hashlib.sha1(pack).digest()
    pack += checksum
    return pack, build_index(entries, checksum), checksum


def build_index(entries: list[tuple[bytes, int, int]], checksum: bytes) -> bytes:
    """A version 2 pack index.

    Args:
        entries: ``(binary object id, crc32 of its packed bytes, offset in the pack)``.
        checksum: the pack's trailing checksum.

    Returns:
        The ``.idx`` bytes, its own checksum at the end.
    """
    entries = sorted(entries)
    fanout = [0] * 256
    for sha, _, _ in entries:
        fanout[sha[0]] += 1
    total = 0
    for i in range(256):
        total += fanout[i]
        fanout[i] = total
    parts = [b"\377tOc", struct.pack(">I", 2), struct.pack(">256I", *fanout)]
    parts += [sha for sha, _, _ in entries]
    parts += [struct.pack(">I", crc) for _, crc, _ in entries]
    parts += [struct.pack(">I", off) for _, _, off in entries]  # < 2 GiB: no 64-bit table
    parts.append(checksum)
    index = b"".join(parts)
    return index + hashlib.sha1(index).digest()


_counter = itertools.count()
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def write_file(folder: str, name: str, data: bytes, flush: bool, make_folder: bool = False) -> None:
    """Write ``data`` to ``folder/name`` through a temporary name, never showing half of it.

    The temporary name starts with ``tmp_``, as git's own do: one left by a killed writer is
    removed by ``git gc`` (``git prune``) once old.

    Args:
        folder: the folder (``objects/pack``, ``objects/ab``).
        name: the final file name.
        data: the bytes.
        flush: ``fsync`` the file before it is renamed into place.
        make_folder: create ``folder`` when it is missing (found by the failing open: a folder
            that exists costs nothing).
    """
    while True:
        tmp = os.path.join(folder, f"tmp_obj_{os.getpid()}_{next(_counter)}")
        try:
            fd = os.open(tmp, _FLAGS, 0o444)
            break
        except FileExistsError:  # left by a killed process that had this pid: take the next name
            continue
        except FileNotFoundError:
            if not make_folder:
                raise
            os.makedirs(folder, exist_ok=True)
            make_folder = False
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if flush:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, os.path.join(folder, name))


def flush_folder(folder: str) -> None:
    """``fsync`` a folder, so that the names just renamed into it survive a crash."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
