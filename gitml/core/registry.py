"""Registry state: a fold over tag events, never a stored file.

Only tags whose names pass the grammar's cheap filter are read; each tag object is read once
and remembered by its sha in ``<git-common-dir>/gitml/registry-cache.json`` (tags are
immutable, so a cached event never goes stale), so unrelated release tags cost a regex test and
a command reads only the tags it has never seen.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

from gitml.core import yamlfmt
from gitml.core.errors import BadInputError
from gitml.core.gitrepo import GitRepo
from gitml.core.ids import check_artifact_path, check_digest, check_run_id
from gitml.core.tags import check_version, parse_tag, tag_problem, version_key

CACHE_FILE = "registry-cache.json"
# 2: versions are full semver; caches of 1 remember pre-release tags (v1.0.0-rc.1) as no event.
CACHE_VERSION = 2


@dataclass
class Event:
    """One registry tag, parsed.

    ``kind`` is a :class:`~gitml.core.tags.TagName` kind; ``target`` the sha of the commit the
    tag points at; ``time`` its POSIX seconds and ``tagger`` its ``Name <email>`` (None for a
    lightweight tag); ``meta`` the checked block gitml writes into the message (see
    :func:`parse_message`; ``{}`` for a GTO or hand-made tag).
    """

    tag: str
    kind: str
    model: str
    target: str
    time: int | None
    tagger: str | None
    message: str
    version: str | None = None
    stage: str | None = None
    counter: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The first line of the tag message."""
        return self.message.split("\n", 1)[0]


@dataclass
class Version:
    """One registered version of a model, as the registry tags say.

    ``commit`` is the sha the version tag points at; ``run_id``, ``path`` and ``sha256`` (hex)
    come from gitml's block in the tag message and are None for a tag without one;
    ``registered_at`` is POSIX seconds. ``stages`` are the stages it holds now.
    """

    version: str
    commit: str
    run_id: str | None
    path: str | None
    sha256: str | None
    registered_at: int | None
    registered_by: str | None
    deregistered: bool = False
    stages: list[str] = field(default_factory=list)


@dataclass
class ModelState:
    """One model's registry state, folded from its events (see :func:`fold`).

    ``versions`` maps each version (``v1.2.0``) to its :class:`Version`, deregistered ones
    included; ``events`` lists every event of the model, oldest first.
    """

    name: str
    versions: dict[str, Version] = field(default_factory=dict)
    # stage -> versions holding it, most recently assigned last; the last one is "the" version
    # in that stage (which, models:/m@stage), as in GTO: a stage may label several versions.
    holders: dict[str, list[str]] = field(default_factory=dict)
    deprecated: bool = False
    events: list[Event] = field(default_factory=list)

    @property
    def stages(self) -> dict[str, str]:
        """Each stage and the version that holds it now (the most recently assigned live holder)."""
        current = {}
        for stage, versions in sorted(self.holders.items()):
            live = [v for v in versions if v in self.versions and not self.versions[v].deregistered]
            if live:
                current[stage] = live[-1]
        return current

    @property
    def latest(self) -> str | None:
        """The highest live version in semver order, as GTO picks it.

        A pre-release counts: ``v1.1.0-rc.1`` is above ``v1.0.0``, but ``v1.0.0`` is above
        ``v1.0.0-rc.1``, so a release always wins over its own pre-releases.
        """
        live = [v for v, info in self.versions.items() if not info.deregistered]
        return max(live, key=version_key) if live else None

    @property
    def max_counter(self) -> int:
        """The highest event counter of the model's tags (0 without any); the next is one more."""
        return max((e.counter or 0 for e in self.events), default=0)

    def to_versions(self) -> list[tuple[str, Version]]:
        """Every version, deregistered ones included, in semver order.

        Returns:
            ``[(version, info)]``, lowest version first.
        """
        return sorted(self.versions.items(), key=lambda item: version_key(item[0]))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``registry show --json`` shape).

        Returns:
            ``{"name", "latest", "deprecated", "stages": {stage: version}, "versions":
            {version: fields of Version}}``, versions in semver order.
        """
        return {"name": self.name, "latest": self.latest, "deprecated": self.deprecated,
                "stages": self.stages,
                "versions": {v: asdict(i) for v, i in self.to_versions()}}


MAX_BLOCK_CHARS = 64 << 10  # a tag message's metadata block; longer ones are read as having none


def parse_message(message: str) -> dict[str, Any]:
    """The YAML block gitml writes into a tag message after its first line.

    Args:
        message: the whole tag message.

    Returns:
        The mapping under ``gitml:`` (``run``, ``path``, ``sha256``, ``version``, …), with fields
        that fail their grammar dropped; ``{}`` for a tag without one, or with one that is not
        YAML or longer than :data:`MAX_BLOCK_CHARS`.
    """
    _, sep, rest = message.partition("\n\n")
    if not sep or not rest.startswith("gitml:") or len(rest) > MAX_BLOCK_CHARS:
        return {}
    try:
        block = yamlfmt.load(rest if rest.endswith("\n") else rest + "\n").get("gitml")
    except ValueError:
        return {}
    return _checked_meta(block) if isinstance(block, dict) else {}


def _checked_meta(block: dict[str, Any]) -> dict[str, Any]:
    """Drop the fields of a tag's block that fail their grammar.

    A tag is anyone's to push, and ``run``, ``path`` and ``sha256`` end up in ``runs:/`` URIs
    and paths.
    """
    out = dict(block)
    checks = {"run": check_run_id, "path": check_artifact_path, "sha256": check_digest,
              "version": check_version}
    for key, check in checks.items():
        if key in out:
            try:
                value = out[key] if isinstance(out[key], str) else None
                if value is None or (check(value) != value and key != "version"):
                    raise BadInputError(key)
                out[key] = check(value)  # a version may omit its "v"
            except BadInputError:
                del out[key]
    return out


def _read_event(git: GitRepo, name: str, sha: str) -> dict[str, Any] | None:
    parsed = parse_tag(name)
    if parsed is None:
        return None
    try:
        info = git.read_tag(sha)
    except (KeyError, AttributeError, ValueError):  # a tag whose object is missing or malformed
        return None
    meta = parse_message(info["message"])
    return {"tag": name, "kind": parsed.kind, "model": parsed.model, "target": info["target"],
            "time": info["time"], "tagger": info["tagger"], "message": info["message"].rstrip("\n"),
            "version": parsed.version or meta.get("version"), "stage": parsed.stage,
            "counter": parsed.counter, "meta": meta}


def load_events(git: GitRepo) -> list[Event]:
    """Every registry event in the repository, reading only tags not seen before.

    Tags already read are taken from ``<git-common-dir>/gitml/registry-cache.json``, keyed by
    name and sha; the cache is rewritten when the tag set changed.

    Args:
        git: the open repository.

    Returns:
        The events, in no particular order; tags that are not registry events, or whose
        object is missing or malformed, are left out.
    """
    path = git.gitml_dir / CACHE_FILE
    try:
        cache = json.loads(path.read_text())
        if cache.get("version") != CACHE_VERSION:
            cache = {}
    except (OSError, ValueError):
        cache = {}
    known: dict[str, Any] = cache.get("tags", {})
    events, fresh = [], {}
    for name, sha in git.tags().items():
        if "@" not in name and "#" not in name:
            continue
        key = f"{name} {sha}"
        data = known.get(key)
        if data is None:
            data = _read_event(git, name, sha) or {}
        fresh[key] = data
        if data:
            events.append(Event(**data))
    if fresh != known:
        _save(path, {"version": CACHE_VERSION, "tags": fresh})
    return events


def tag_problems(git: GitRepo, model: str | None = None) -> list[str]:
    """Say which tags look like version tags but are not (``churn@v1.2``, ``churn@v01.0.0``).

    Such tags are no events, but are not dropped unsaid.

    Args:
        git: the open repository.
        model: only this model's tags (default: every model's).

    Returns:
        One message per such tag, in tag name order.
    """
    found = []
    for name in sorted(git.tags()):
        if model is None or name.startswith((f"{model}@", f"{model}#")):
            problem = tag_problem(name)
            if problem is not None:
                found.append(problem)
    return found


def _save(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".registry-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def fold(events: list[Event], one_stage_per_version: bool = False) -> dict[str, ModelState]:
    """Registry state from events: versions by registration, stages by the counter order.

    A version is registered by its first register event (by time); stage events apply in
    counter order. A stage event without a version in its block applies to the newest version
    registered at its commit, and is skipped when there is none.

    Args:
        events: the events, in any order (see :func:`load_events`).
        one_stage_per_version: an assignment moves the version out of its other stages
            (gitml.yaml's ``registry.one_stage_per_version``); otherwise stages are labels and
            a version may hold several.

    Returns:
        ``{model name: state}`` for every model that has an event.
    """
    models: dict[str, ModelState] = {}
    for event in sorted(events, key=lambda e: (e.time or 0, e.tag)):
        model = models.setdefault(event.model, ModelState(event.model))
        model.events.append(event)
        if event.kind == "register" and event.version not in model.versions:
            meta = event.meta
            model.versions[event.version] = Version(
                event.version, event.target, meta.get("run"), meta.get("path"), meta.get("sha256"),
                event.time, event.tagger)
        elif event.kind == "deregister" and event.version in model.versions:
            model.versions[event.version].deregistered = True
        elif event.kind == "deprecate":
            model.deprecated = True
    for model in models.values():
        stage_events = [e for e in model.events if e.kind in ("assign", "unassign")]
        for event in sorted(stage_events, key=lambda e: (e.counter or 0, e.time or 0, e.tag)):
            version = event.version or _version_at(model, event.target)
            if version is None:
                continue
            for stage, versions in model.holders.items():
                if version in versions and (stage == event.stage or (one_stage_per_version and event.kind == "assign")):
                    versions.remove(version)
            if event.kind == "assign":
                model.holders.setdefault(event.stage, []).append(version)
        for stage, versions in sorted(model.holders.items()):
            for version in versions:
                if version in model.versions and not model.versions[version].deregistered:
                    model.versions[version].stages.append(stage)
        model.events.sort(key=lambda e: (e.time or 0, e.counter or 0, e.tag))
    return models


def _version_at(model: ModelState, commit: str) -> str | None:
    """For a hand-made stage tag without gitml's block: the newest version registered at its commit."""
    found = [v for v, info in model.versions.items() if info.commit == commit]
    return max(found, key=version_key) if found else None
