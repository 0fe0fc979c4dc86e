"""The registry's tag grammar (GTO's), in one place: parse and format, nothing else.

| event              | tag name            |
|--------------------|---------------------|
| register a version | ``churn@v1.2.0``    |
| deregister it      | ``churn@v1.2.0!``   |
| assign a stage     | ``churn#prod#5``    |
| unassign a stage   | ``churn#prod!#6``   |
| deprecate a model  | ``churn@deprecated`` (GTO also writes ``churn@deprecated#7``) |

Model names may be nested (``nlp/sentiment``); the counter of stage events counts all stage
events of the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitml.core.errors import BadInputError

NAME = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:/[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
STAGE = r"[a-z](?:[a-z0-9-]*[a-z0-9])?"
SEMVER = r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"

_VERSION = re.compile(rf"^(?P<model>{NAME})@v(?P<version>{SEMVER})(?P<bang>!?)$")
_STAGE = re.compile(rf"^(?P<model>{NAME})#(?P<stage>{STAGE})(?P<bang>!?)#(?P<n>[0-9]+)$")
_DEPRECATE = re.compile(rf"^(?P<model>{NAME})@deprecated(?:#(?P<n>[0-9]+))?$")
# A cheap first filter over every tag name in the repository: release tags never pass it.
CANDIDATE = re.compile(r"[@#]")


@dataclass(frozen=True)
class TagName:
    """A parsed registry tag name."""

    kind: str  # register | deregister | assign | unassign | deprecate
    model: str
    version: str | None = None  # "v1.2.0"
    stage: str | None = None
    counter: int | None = None


def parse_tag(name: str) -> TagName | None:
    """The registry event a tag name stands for, or None when it is not a registry tag."""
    if not CANDIDATE.search(name):
        return None
    if m := _VERSION.match(name):
        kind = "deregister" if m["bang"] else "register"
        return TagName(kind, m["model"], "v" + m["version"])
    if m := _STAGE.match(name):
        return TagName("unassign" if m["bang"] else "assign", m["model"], stage=m["stage"], counter=int(m["n"]))
    if m := _DEPRECATE.match(name):
        return TagName("deprecate", m["model"], counter=int(m["n"]) if m["n"] else None)
    return None


def format_tag(event: TagName) -> str:
    """The tag name of an event (the inverse of :func:`parse_tag`)."""
    check_model(event.model)
    if event.kind in ("register", "deregister"):
        check_version(event.version or "")
        return f"{event.model}@{event.version}" + ("!" if event.kind == "deregister" else "")
    if event.kind in ("assign", "unassign"):
        check_stage(event.stage or "")
        bang = "!" if event.kind == "unassign" else ""
        return f"{event.model}#{event.stage}{bang}#{event.counter}"
    if event.kind == "deprecate":
        return f"{event.model}@deprecated" + (f"#{event.counter}" if event.counter is not None else "")
    raise BadInputError(f"unknown registry event {event.kind!r}")


def check_model(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(NAME, name):
        raise BadInputError(f"invalid model name {name!r}",
                            hint="lowercase letters, digits and '-', nested with '/': nlp/sentiment")
    return name


def check_stage(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(STAGE, name) or re.fullmatch(r"v[0-9].*", name):
        raise BadInputError(f"invalid stage name {name!r}",
                            hint="lowercase letters, digits and '-', starting with a letter, not like a version")
    return name


def check_version(text: str) -> str:
    """Validate ``vX.Y.Z`` (a missing ``v`` is added) and return it."""
    value = text if text.startswith("v") else f"v{text}"
    if not re.fullmatch(rf"v{SEMVER}", value):
        raise BadInputError(f"invalid version {text!r}", hint="use semver: v1.2.0")
    return value


def version_key(version: str) -> tuple[int, int, int]:
    major, minor, patch = version[1:].split(".")
    return int(major), int(minor), int(patch)


def bump(version: str | None, part: str = "patch") -> str:
    """The next version after ``version`` (``v0.0.1`` when there is none)."""
    if version is None:
        return "v0.0.1" if part == "patch" else "v0.1.0" if part == "minor" else "v1.0.0"
    major, minor, patch = version_key(version)
    if part == "major":
        return f"v{major + 1}.0.0"
    if part == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"
