"""Grammar of run ids, run names, param/metric/tag keys and artifact paths."""

from __future__ import annotations

import random
import re
import uuid

from gitml.core.errors import BadInputError

RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
# A git object id: sha1 (40 hex) or, in a sha256 repository, 64 hex.
COMMIT_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
RUN_PREFIX_RE = re.compile(r"^[0-9a-f]{4,32}$")
MAX_KEY_LENGTH = 250
MAX_NAME_LENGTH = 250
MAX_PATH_PART_BYTES = 200  # one name in an artifact path; file systems stop at 255
MAX_PATH_CHARS = 1024  # a whole artifact path
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_ADJECTIVES = (
    "able", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring",
    "eager", "fancy", "gentle", "glad", "golden", "grand", "happy", "honest", "jolly", "keen",
    "kind", "lucky", "merry", "mighty", "nimble", "noble", "polite", "proud", "quick", "quiet",
    "rapid", "shiny", "silent", "smart", "snappy", "steady", "sunny", "swift", "tidy", "vivid",
    "warm", "wise", "witty", "young", "zesty",
)
_ANIMALS = (
    "ant", "bat", "bear", "bee", "bison", "cat", "crab", "crow", "deer", "dingo", "dove", "eagle",
    "eel", "elk", "falcon", "finch", "fox", "frog", "gecko", "goat", "hare", "hawk", "heron",
    "ibis", "koala", "lark", "lemur", "lion", "lynx", "mole", "moose", "newt", "otter", "owl",
    "panda", "puma", "quail", "raven", "seal", "shark", "sloth", "swan", "tiger", "toad", "wolf",
    "yak", "zebra",
)


def new_run_id() -> str:
    """Return a fresh run id: 32 lowercase hex digits (a uuid4), unique without coordination.

    Returns:
        The run id.
    """
    return uuid.uuid4().hex


def new_run_name(rng: random.Random | None = None) -> str:
    """Return a human display name such as ``brave-otter-17`` (not unique: ids are).

    Args:
        rng: the random source (default: the ``random`` module's), for repeatable names.

    Returns:
        ``<adjective>-<animal>-<1..99>``.
    """
    pick = rng or random
    return f"{pick.choice(_ADJECTIVES)}-{pick.choice(_ANIMALS)}-{pick.randint(1, 99)}"


def shard(run_id: str) -> str:
    """The shard folder of a run id on the runs ref.

    Args:
        run_id: a full run id.

    Returns:
        Its first two hex digits.

    Raises:
        BadInputError: ``run_id`` is not a full run id (it must never become a path).
    """
    return check_run_id(run_id)[:2]


def check_run_id(value: object, where: str = "") -> str:
    """Validate a full run id (32 lowercase hex) read from anywhere; return it.

    Args:
        value: the value to check, of any type.
        where: what it came from, prefixed to the error (``"tag churn@v1.0.0"``).

    Returns:
        ``value`` unchanged.

    Raises:
        BadInputError: ``value`` is not exactly 32 lowercase hex digits.
    """
    if not isinstance(value, str) or not RUN_ID_RE.match(value):
        raise BadInputError(f"{where + ': ' if where else ''}not a run id: {_show(value)}",
                            hint="run ids are 32 lowercase hex digits")
    return value


def check_digest(value: object, where: str = "") -> str:
    """Validate a content digest (sha256: 64 lowercase hex) before it names a file; return it.

    Digests come from run records, manifests and registry tags that anyone with push rights can
    write; one that is not exactly 64 lowercase hex must never reach a path.

    Args:
        value: the value to check, of any type.
        where: what it came from, prefixed to the error.

    Returns:
        ``value`` unchanged.

    Raises:
        BadInputError: ``value`` is not exactly 64 lowercase hex digits.
    """
    if not isinstance(value, str) or not DIGEST_RE.match(value):
        raise BadInputError(f"{where + ': ' if where else ''}not a sha256 digest: {_show(value)}")
    return value


def is_digest(value: object) -> bool:
    """Whether ``value`` is a sha256 digest (64 lowercase hex), without raising.

    Args:
        value: the value to test, of any type.

    Returns:
        True for a string of exactly 64 lowercase hex digits.
    """
    return isinstance(value, str) and DIGEST_RE.match(value) is not None


def printable(text: str) -> str:
    """``text`` made safe to show on one terminal line.

    Control characters (escape sequences, newlines that would forge a table row), separators
    and unpaired surrogates are backslash-escaped as ``repr`` writes them. Run records, tags and
    file names come from anyone.

    Args:
        text: any text.

    Returns:
        ``text`` itself when it is all printable, else the escaped copy.
    """
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _show(value: object) -> str:
    """A short, printable rendering of an untrusted value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_run_prefix(text: str) -> str:
    """Validate a run id or prefix given by a user and return it lowercased.

    Args:
        text: what the user typed; surrounding blanks are ignored.

    Returns:
        The prefix, 4 to 32 lowercase hex digits.

    Raises:
        BadInputError: it is not 4 to 32 hex digits.
    """
    value = text.strip().lower()
    if not RUN_PREFIX_RE.match(value):
        raise BadInputError(
            f"not a run id or prefix: {text!r}",
            hint="use 4 to 32 hex digits, as printed by `gitml runs list`",
        )
    return value


def check_key(key: object, kind: str = "key") -> str:
    """Validate a param, metric or tag key and return it.

    Keys are free text as in MLflow (``val/loss``, ``lr decay``), but never empty, over 250
    characters, carrying control characters, or with ``.``/``..`` path segments — keys end up in
    file names of artifact stores and in SQL parameters, so they are kept boring.

    Args:
        key: the key, of any type.
        kind: what the key is, for the error (``"metric key"``).

    Returns:
        ``key`` unchanged.

    Raises:
        BadInputError: the key breaks one of those rules, or is not a string.
    """
    if not isinstance(key, str):
        raise BadInputError(f"{kind} must be a string, got {type(key).__name__}: {key!r}")
    if not key or not key.strip():
        raise BadInputError(f"empty {kind}")
    if len(key) > MAX_KEY_LENGTH:
        raise BadInputError(f"{kind} longer than {MAX_KEY_LENGTH} characters: {key[:40]!r}...")
    if _CONTROL_RE.search(key):
        raise BadInputError(f"{kind} contains a control character: {key!r}")
    if key.startswith("/") or any(part in (".", "..") for part in key.split("/")):
        raise BadInputError(f"{kind} has a '.', '..' or absolute path segment: {key!r}")
    return key


def check_name(value: object, kind: str) -> str:
    """Validate a run or experiment name: non-empty text without control characters.

    Args:
        value: the name, of any type.
        kind: what the name is, for the error (``"experiment"``).

    Returns:
        ``value`` unchanged.

    Raises:
        BadInputError: not a string, blank, longer than :data:`MAX_NAME_LENGTH` characters, or
            holding a control character.
    """
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(f"{kind} must be a non-empty string, got {value!r}")
    if len(value) > MAX_NAME_LENGTH or _CONTROL_RE.search(value):
        raise BadInputError(f"invalid {kind}: {value[:60]!r}")
    return value


def check_artifact_path(path: str) -> str:
    """Validate a logical artifact path: relative, ``/``-separated, no ``..`` segments.

    Args:
        path: the path as given; backslashes count as separators.

    Returns:
        Its normal form: ``/``-separated, without empty or ``.`` segments (``a//./b`` is ``a/b``).

    Raises:
        BadInputError: empty, absolute (``/x``, ``C:``), escaping the run (``..``), naming a
            ``.git`` folder (any case), holding a control character, longer than
            :data:`MAX_PATH_CHARS` characters, or with a name over :data:`MAX_PATH_PART_BYTES` bytes.
    """
    if not isinstance(path, str) or not path or path in (".", "/"):
        raise BadInputError(f"invalid artifact path: {_show(path)}")
    norm = path.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise BadInputError(f"artifact path must be relative: {_show(path)}")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or _CONTROL_RE.search(norm):
        raise BadInputError(f"artifact path escapes the run: {_show(path)}")
    if any(_is_git_dir_name(p) for p in parts):
        raise BadInputError(f"artifact path has a .git segment: {_show(path)}",
                            hint="files under .git would become git's own (hooks, config); pick another name")
    if len(norm) > MAX_PATH_CHARS:
        raise BadInputError(f"artifact path longer than {MAX_PATH_CHARS} characters: {_show(path)}")
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_PATH_PART_BYTES for p in parts):
        raise BadInputError(f"artifact path has a name longer than {MAX_PATH_PART_BYTES} bytes: {_show(path)}",
                            hint="file systems refuse names past 255 bytes; gitml keeps room for its temporary names")
    return "/".join(parts)


# Code points HFS+ ignores in names, as git's own check does (git's utf8.c, is_hfs_dotgit).
_HFS_IGNORED = dict.fromkeys([0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070),
                              0xFEFF])


def _is_git_dir_name(part: str) -> bool:
    """Whether a path segment is ``.git`` as some file system reads it.

    Case-insensitive, with trailing dots and spaces dropped (Windows), the code points HFS+
    ignores removed, and NTFS's short name ``git~1``: the names git itself refuses in a tree
    (``core.protectNTFS``, ``core.protectHFS``).
    """
    name = part.translate(_HFS_IGNORED).rstrip(". ").lower()
    return name in (".git", "git~1")


def check_disjoint_paths(paths: list[str], where: str) -> None:
    """Refuse a set of artifact paths where one is a folder of another (``a`` and ``a/b``).

    No file system can hold both, so a fetch would fail half-way.

    Args:
        paths: normalised artifact paths.
        where: what they came from, prefixed to the error.

    Raises:
        BadInputError: naming the two paths.
    """
    ordered = sorted(paths)
    for first, second in zip(ordered, ordered[1:], strict=False):
        if second.startswith(first + "/"):
            raise BadInputError(f"{where}: {first!r} is both a file and the folder of {second!r}")
