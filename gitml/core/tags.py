"""The registry's tag grammar (GTO's), in one place: parse and format, nothing else.

| event              | tag name            |
|--------------------|---------------------|
| register a version | ``churn@v1.2.0``    |
| deregister it      | ``churn@v1.2.0!``   |
| assign a stage     | ``churn#prod#5``    |
| unassign a stage   | ``churn#prod!#6``   |
| deprecate a model  | ``churn@deprecated`` (GTO also writes ``churn@deprecated#7``) |

Model names may be nested (``nlp/sentiment``); the counter of stage events counts all stage
events of the model. Versions are full semver with a ``v`` (``v1.0.0-rc.1``, ``v2.0.0+build.5``),
read, ordered and bumped by the ``semver`` library as GTO does; it is imported on first use, so
commands that never read a version do not pay for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gitml.core.errors import BadInputError

NAME = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:/[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
STAGE = r"[a-z](?:[a-z0-9-]*[a-z0-9])?"

# The shape of a version tag; whether the part after the "v" is semver is the library's call. A
# name of this shape whose version is not semver is not an event but is reported (tag_problem).
_VERSION = re.compile(rf"^(?P<model>{NAME})@(?P<version>v[0-9].*?)(?P<bang>!?)\Z")
_STAGE = re.compile(rf"^(?P<model>{NAME})#(?P<stage>{STAGE})(?P<bang>!?)#(?P<n>[0-9]+)\Z")
_DEPRECATE = re.compile(rf"^(?P<model>{NAME})@deprecated(?:#(?P<n>[0-9]+))?\Z")
# A stage tag whose stage has capitals (GTO allows them, e.g. churn#Production#1): reported.
_UPPER_STAGE = re.compile(rf"^(?P<model>{NAME})#(?P<stage>[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?)!?#[0-9]+\Z")
# A cheap first filter over every tag name in the repository: release tags never pass it.
CANDIDATE = re.compile(r"[@#]")


@dataclass(frozen=True)
class TagName:
    """A parsed registry tag name (GTO's grammar, see the module docstring).

    ``version`` is set for register and deregister events, ``stage`` and ``counter`` for
    assign and unassign events; ``counter`` may be set for a deprecation.
    """

    kind: str  # register | deregister | assign | unassign | deprecate
    model: str
    version: str | None = None  # "v1.2.0"
    stage: str | None = None
    counter: int | None = None


def parse_tag(name: str) -> TagName | None:
    """The registry event a tag name stands for.

    Args:
        name: a tag name, without ``refs/tags/``.

    Returns:
        The event, or None when the name is not a registry tag (a release tag, or a version
        tag whose version is not semver: see :func:`tag_problem`).
    """
    if not CANDIDATE.search(name):
        return None
    if m := _VERSION.match(name):
        if _semver(m["version"]) is None:
            return None
        return TagName("deregister" if m["bang"] else "register", m["model"], m["version"])
    if m := _STAGE.match(name):
        return TagName("unassign" if m["bang"] else "assign", m["model"], stage=m["stage"], counter=int(m["n"]))
    if m := _DEPRECATE.match(name):
        return TagName("deprecate", m["model"], counter=int(m["n"]) if m["n"] else None)
    return None


def tag_problem(name: str) -> str | None:
    """Why a tag that looks like a registry tag is not one; None for any other tag.

    A version tag whose version is not semver (``churn@v1.2``) is no registry event (GTO ignores
    it too), and neither is a stage tag whose stage has capitals (``churn#Production#1``, which
    GTO writes when told ``Production``; gitml reads and writes stages in lowercase). Both are
    reported rather than silently dropped.

    Args:
        name: a tag name, without ``refs/tags/``.

    Returns:
        One sentence naming the tag and what is wrong with it, or None.
    """
    upper = _UPPER_STAGE.match(name)
    if upper and not _STAGE.match(name) and name.isascii():
        return (f"tag {name!r} is not a registry event for gitml: its stage {upper['stage']!r} is not lowercase "
                f"(gitml assigns {upper['stage'].lower()!r}); it is ignored")
    m = _VERSION.match(name)
    if m is None or _semver(m["version"]) is not None:
        return None
    return (f"tag {name!r} is not a registry version: {m['version']!r} is not semver "
            f"(vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]); it is ignored")


def format_tag(event: TagName) -> str:
    """The tag name of an event (the inverse of :func:`parse_tag`).

    Args:
        event: the event; ``version`` for register/deregister, ``stage`` and ``counter`` for
            assign/unassign.

    Returns:
        The tag name (``churn@v1.2.0``, ``churn#prod#5``, ``churn@deprecated``).

    Raises:
        BadInputError: a bad model name, version or stage, or an unknown kind.
    """
    check_model(event.model)
    if event.kind in ("register", "deregister"):
        check_version(event.version or "")
        return f"{event.model}@{event.version}" + ("!" if event.kind == "deregister" else "")
    if event.kind in ("assign", "unassign"):
        stage = check_stage(event.stage or "")
        bang = "!" if event.kind == "unassign" else ""
        return f"{event.model}#{stage}{bang}#{event.counter}"
    if event.kind == "deprecate":
        return f"{event.model}@deprecated" + (f"#{event.counter}" if event.counter is not None else "")
    raise BadInputError(f"unknown registry event {event.kind!r}")


def check_model(name: str) -> str:
    """Validate a model name (GTO's grammar).

    Args:
        name: lowercase letters, digits and ``-``, not starting or ending with ``-``; nested
            with ``/`` (``nlp/sentiment``).

    Returns:
        ``name`` unchanged.

    Raises:
        BadInputError: it does not fit the grammar.
    """
    if not isinstance(name, str) or not re.fullmatch(NAME, name):
        raise BadInputError(f"invalid model name {name!r}",
                            hint="lowercase letters, digits and '-', nested with '/': nlp/sentiment")
    return name


def check_stage(name: str) -> str:
    """Validate a stage name and return it in lowercase, the form its tags carry.

    Stage names are read case-insensitively, so that MLflow's ``Staging``, ``Production`` and
    ``Archived`` (and ``PROD``) name the stages ``staging``, ``production``, ``archived`` (and
    ``prod``): the lowercase name fits GTO's stage grammar too, so GTO reads the tags. Only
    ASCII letters fold; any other character is refused, whatever its lowercase looks like.

    Args:
        name: letters, digits and ``-``, starting with a letter and not shaped like a version
            (``v1``), in any case.

    Returns:
        ``name`` in lowercase.

    Raises:
        BadInputError: it does not fit the grammar.
    """
    folded = name.lower() if isinstance(name, str) and name.isascii() else name
    if folded == "none":  # MLflow's stage None is "no stage", not a stage called none
        raise BadInputError(f"invalid stage name {name!r}: in MLflow, None means no stage",
                            hint="to take a stage away, use gitml registry unassign")
    if not isinstance(folded, str) or not re.fullmatch(STAGE, folded) or re.fullmatch(r"v[0-9].*", folded):
        raise BadInputError(f"invalid stage name {name!r}",
                            hint="letters, digits and '-', starting with a letter, not like a version; "
                                 "any case, read as lowercase: Production is production")
    return folded


def check_version(text: str) -> str:
    """Validate a semver version with a ``v`` (one is added when missing) and return it.

    Pre-release and build parts are allowed (``v1.0.0-rc.1``, ``v2.0.0-alpha+build.5``); a version
    git cannot hold in a tag name (one ending in ``.lock``) is refused.

    Args:
        text: the version, with or without its ``v``.

    Returns:
        The version with its ``v``.

    Raises:
        BadInputError: not semver, or not a string.
    """
    if not isinstance(text, str):
        raise BadInputError(f"invalid version {text!r}", hint="use semver: v1.2.0 or v1.2.0-rc.1")
    value = text if text.startswith("v") else f"v{text}"
    if _semver(value) is None or value.endswith(".lock"):
        raise BadInputError(f"invalid version {text!r}", hint="use semver: v1.2.0 or v1.2.0-rc.1")
    return value


@lru_cache(maxsize=8192)  # a fold asks for the same few versions again and again; Version is immutable
def _semver(version: str) -> Any:
    """The ``semver.Version`` of ``vX.Y.Z[-pre][+build]``, or None when it is not one."""
    import semver  # lazily: only commands that read versions need it

    if not version.startswith("v") or not version.isascii():
        return None
    try:
        return semver.Version.parse(version[1:])
    except (ValueError, TypeError):
        return None


def version_key(version: str) -> tuple[Any, str]:
    """Sort key of a valid version: semver precedence (``v1.0.0-rc.1`` < ``v1.0.0``), then the text.

    Semver gives versions differing only in build metadata equal precedence; the text breaks
    that tie so that orders (and ``latest``) never depend on the order tags were listed in.

    Args:
        version: a version with its ``v``.

    Returns:
        ``(semver.Version, version)``, comparable with other keys.

    Raises:
        BadInputError: ``version`` is not semver with a ``v``.
    """
    parsed = _semver(version)
    if parsed is None:
        raise BadInputError(f"invalid version {version!r}", hint="use semver: v1.2.0 or v1.2.0-rc.1")
    return parsed, version


def bump(version: str | None, part: str = "patch") -> str:
    """The next ``part`` version after ``version`` by semver's rules (``v0.0.1`` when there is none).

    From a release the part is incremented and those after it reset (``v1.2.3`` -> ``v1.3.0``
    for minor). From a pre-release, the next version is the first release of that part not
    below it: ``v1.0.0-rc.1`` -> ``v1.0.0`` for any part, ``v1.2.0-rc.1`` -> ``v1.2.0`` (patch,
    minor) or ``v2.0.0`` (major). Build metadata is dropped.

    Args:
        version: the current version with its ``v``, or None for a model without versions.
        part: ``patch``, ``minor`` or ``major``.

    Returns:
        The next version with its ``v``; without a current one ``v0.0.1``, ``v0.1.0`` or
        ``v1.0.0``.

    Raises:
        BadInputError: an unknown ``part``, or ``version`` is not semver.
    """
    if part not in ("patch", "minor", "major"):
        raise BadInputError(f"unknown bump {part!r}", hint="patch, minor or major")
    if version is None:
        return "v0.0.1" if part == "patch" else "v0.1.0" if part == "minor" else "v1.0.0"
    parsed = version_key(version)[0]
    return f"v{parsed.next_version(part)}"
