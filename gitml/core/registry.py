"""Registry state: a fold over tag events, never a stored file.

A command about one model lists only that model's tag refs (``churn@…``, ``churn#…``), reads
only their tag objects and folds only their events: other models' tags cost nothing. Each tag
object is read once and remembered by tag name and object id in the model's file under
``<git-common-dir>/gitml/registry-cache/`` (tags are immutable, so a cached event never goes
stale); which tags exist is read from the refs every time, so the cache is never trusted over
them. Unrelated release tags cost a string test, and only when every model is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from gitml.core import yamlfmt
from gitml.core.errors import BadInputError
from gitml.core.gitrepo import GitRepo
from gitml.core.ids import check_artifact_path, check_digest, check_run_id
from gitml.core.tags import CANDIDATE, NAME, TagName, check_version, parse_tag, tag_problem, version_key

CACHE_DIR = "registry-cache"  # one file per model: <git-common-dir>/gitml/registry-cache/<model>.json, "/" as "+"
DIGESTS_FILE = "_digests.json"  # every version tag's digest (no model name starts with "_")
SUMMARY_FILE = "_models.json"  # every model's folded state, for `show` of every model
LEGACY_CACHE_FILE = "registry-cache.json"  # every model in one file (cache versions 1 and 2): removed
# 2: versions are full semver; caches of 1 remember pre-release tags (v1.0.0-rc.1) as no event.
# 3: one file per model, and only events (names that are no event and unreadable objects are not kept).
CACHE_VERSION = 3
REMEMBER_AT_MOST = 16  # `show` of every model rewrites the cache files of this many changed models at most
BULK_READ = 256  # more uncached tag objects than this are read with one git for-each-ref
_MODEL = re.compile(NAME)


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
                "stages": self.stages,  # asdict(Version) deep-copies each field: 5x slower for `show`
                "versions": {v: {**vars(i), "stages": list(i.stages)} for v, i in self.to_versions()}}


MAX_BLOCK_CHARS = 64 << 10  # a tag message's metadata block; longer ones are read as having none
_FIELDS = frozenset(f.name for f in fields(Event))  # what a cached event must hold, no more
_DIGEST_FIELDS = frozenset({"kind", "model", "version", "time", "sha256"})


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
    text = rest if rest.endswith("\n") else rest + "\n"
    block = _plain_block(text)
    if block is None:
        try:
            block = yamlfmt.load(text).get("gitml")
        except ValueError:
            return {}
    return _checked_meta(block) if isinstance(block, dict) else {}


# The block as gitml writes it when every value is printable ASCII without quotes or
# backslashes (a run id, a path, a digest, a size, a version, most descriptions): read and
# written here without yamlfmt, whose regexes take ~25 ms to compile on first use. Anything else
# goes through yamlfmt; on what both accept, both give the same (tests/test_registry_scale.py).
_PLAIN_ROW = re.compile(r'  ([a-z0-9]+): (?:"([ !#-\[\]-~]*)"|(0|-?[1-9][0-9]*))\n')
_PLAIN_KEYS = frozenset({"description", "path", "run", "sha256", "size", "version"})
_PLAIN_TEXT = re.compile(r'[ !#-\[\]-~]*')


def _digest_of(message: str) -> str | None:
    """``parse_message(message).get("sha256")``, checking only that field (a cold cache reads thousands)."""
    _, sep, rest = message.partition("\n\n")
    if not sep or not rest.startswith("gitml:") or len(rest) > MAX_BLOCK_CHARS:
        return None
    text = rest if rest.endswith("\n") else rest + "\n"
    block = _plain_block(text)
    if block is None:
        return parse_message(message).get("sha256")
    digest = block.get("sha256")
    try:
        return digest if isinstance(digest, str) and check_digest(digest) == digest else None
    except BadInputError:
        return None


def _plain_block(text: str) -> dict[str, Any] | None:
    """The ``gitml:`` mapping of a block in the plain form above, or None for any other text."""
    if text == "gitml: {}\n":  # a deprecation's
        return {}
    if not text.startswith("gitml:\n") or len(text) == 7:
        return None
    found: dict[str, Any] = {}
    pos = 7
    while pos < len(text):
        row = _PLAIN_ROW.match(text, pos)
        if row is None or row[1] not in _PLAIN_KEYS or row[1] in found:
            return None
        found[row[1]] = row[2] if row[3] is None else int(row[3])
        pos = row.end()
    return found


def format_block(meta: dict[str, Any]) -> str:
    """The YAML block of a tag message: ``gitml:`` and the fields of ``meta`` that are not None.

    Args:
        meta: the fields (``run``, ``path``, ``sha256``, ``size``, ``version``, ``description``).

    Returns:
        Canonical YAML (:func:`gitml.core.yamlfmt.dump`'s text), ending with a newline.
    """
    fields_ = {k: v for k, v in meta.items() if v is not None}
    plain = fields_ and all(
        key in _PLAIN_KEYS and (type(value) is int or (isinstance(value, str) and _PLAIN_TEXT.fullmatch(value)))
        for key, value in fields_.items())
    if not plain:
        return yamlfmt.dump({"gitml": fields_})
    return "gitml:\n" + "".join(
        f'  {key}: {value}\n' if type(value) is int else f'  {key}: "{value}"\n' for key, value in sorted(fields_.items()))


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


def _event_data(name: str, parsed: TagName, info: dict[str, Any]) -> dict[str, Any]:
    """The cached form of one event: the fields of :class:`Event`, from its name and tag object."""
    meta = parse_message(info["message"])
    return {"tag": name, "kind": parsed.kind, "model": parsed.model, "target": info["target"],
            "time": info["time"], "tagger": info["tagger"], "message": info["message"].rstrip("\n"),
            "version": parsed.version or meta.get("version"), "stage": parsed.stage,
            "counter": parsed.counter, "meta": meta}


def model_of(name: str) -> str | None:
    """The model a tag name would be an event of: its text before the first ``@`` or ``#``.

    Every registry tag of model ``m`` starts with ``m@`` or ``m#`` (a model name holds neither
    character), so a name whose start is no model name is no registry tag.

    Args:
        name: a tag name, without ``refs/tags/``.

    Returns:
        The model name, or None when the name has no ``@``/``#`` or its start is no model name.
    """
    found = CANDIDATE.search(name)
    if found is None:
        return None
    model = name[:found.start()]
    return model if _MODEL.fullmatch(model) else None


def model_tags(git: GitRepo, model: str | None = None) -> dict[str, dict[str, str]]:
    """The tags that may be registry events, by model, without reading any tag object.

    Args:
        git: the open repository.
        model: only this (valid) model's tags: those starting with ``<model>@`` or ``<model>#``,
            found without listing the other tags (:meth:`GitRepo.refs_with_prefix`).

    Returns:
        ``{model: {tag name: sha of its ref}}``; models without such a tag are left out.
    """
    if model is not None:
        found = {**git.refs_with_prefix(f"refs/tags/{model}@"), **git.refs_with_prefix(f"refs/tags/{model}#")}
        names = {ref[len("refs/tags/"):]: sha for ref, sha in found.items()}
        return {model: names} if names else {}
    groups: dict[str, dict[str, str]] = {}
    for name, sha in git.tags().items():
        owner = model_of(name)
        if owner is not None:
            groups.setdefault(owner, {})[name] = sha
    return groups


def load_events(git: GitRepo, model: str | None = None) -> list[Event]:
    """The registry events of one model (or of every model), reading only tags not seen before.

    Only the model's own tag refs are listed (``<model>@…``, ``<model>#…``) and only their tag
    objects read; each is remembered by tag name and object id in the model's cache file,
    ``<git-common-dir>/gitml/registry-cache/<model>.json`` (``/`` written as ``+``), rewritten
    when the model's tag set changed. The cache only saves reading objects: which tags exist is always read from the refs.

    Args:
        git: the open repository.
        model: a valid model name; None for every model.

    Returns:
        The events, in no particular order; tags that are not registry events, or whose
        object is missing or malformed, are left out.
    """
    return _events_of(git, model_tags(git, model))


def _events_of(git: GitRepo, groups: dict[str, dict[str, str]], remember: bool = True) -> list[Event]:
    """:func:`load_events` of the models and tags in ``groups`` (see :func:`model_tags`).

    With ``remember`` False the models' cache files are read but not rewritten: ``show`` of
    every model keeps its own summary, and writing hundreds of files would cost it more than
    the commands about one model save (each fills its own file on first use).
    """
    caches = {name: _load_cache(git, name) for name in groups}
    fresh: dict[str, dict[str, Any]] = {name: {} for name in groups}
    unread: dict[str, list[tuple[str, str, TagName]]] = {}
    for owner, names in groups.items():
        known = caches[owner]
        for name, sha in names.items():
            key = f"{name} {sha}"
            if _usable(known.get(key), name, owner):
                fresh[owner][key] = known[key]
            elif (parsed := parse_tag(name)) is not None:
                unread.setdefault(sha, []).append((owner, name, parsed))
    infos = _read_objects(git, list(unread))
    for sha, wanted in unread.items():
        info = infos.get(sha)
        for owner, name, parsed in wanted:
            if info is not None:  # a missing object is not remembered: it may arrive later
                fresh[owner][f"{name} {sha}"] = _event_data(name, parsed, info)
    events = []
    for owner in groups:
        if remember and fresh[owner] != caches[owner]:
            _save(_cache_path(git, owner), {"version": CACHE_VERSION, "tags": fresh[owner]})
        events += [Event(**data) for data in fresh[owner].values()]
    return events


def _read_objects(git: GitRepo, shas: list[str], patterns: tuple[str, ...] = ("refs/tags",)) -> dict[str, dict]:
    """The tag objects ``shas`` (:meth:`GitRepo.read_tags`); many at once through git for-each-ref.

    A cold cache (a fresh clone, ``show`` of every model) needs thousands: git parsing every
    tag is twice as fast as parsing them here. What it could not give is read one by one.
    """
    if len(shas) <= BULK_READ:
        return git.read_tags(shas) if shas else {}
    found = git.read_all_tags(patterns)
    missing = [sha for sha in shas if sha not in found]
    if missing:
        found.update(git.read_tags(missing))
    return found


def _usable(data: Any, name: str, owner: str) -> bool:
    """Whether a cache entry is an event of this tag (a hand-edited or torn file is not trusted)."""
    return isinstance(data, dict) and data.keys() == _FIELDS and data["tag"] == name and data["model"] == owner


def _cache_path(git: GitRepo, model: str) -> Path:
    # Flat: "nlp/sentiment" is nlp+sentiment.json ("+" is in no model name), so a name nested a
    # thousand deep is one file name (too long, so never cached), not a thousand folders.
    return git.gitml_dir / CACHE_DIR / f"{model.replace('/', '+')}.json"


def _load_cache(git: GitRepo, model: str) -> dict[str, Any]:
    return _load_cache_file(_cache_path(git, model), legacy=git.gitml_dir / LEGACY_CACHE_FILE)


def _load_cache_file(path: Path, legacy: Path | None = None) -> dict[str, Any]:
    """The ``tags`` of a cache file; ``{}`` when it is missing, unreadable or of another version."""
    try:
        cache = json.loads(path.read_text())
    except FileNotFoundError:
        if legacy is not None:
            legacy.unlink(missing_ok=True)  # the one-file cache of cache versions 1 and 2
        return {}
    except (OSError, ValueError):
        return {}
    if not isinstance(cache, dict) or cache.get("version") != CACHE_VERSION or not isinstance(cache.get("tags"), dict):
        return {}
    return cache["tags"]


def versions_with_digest(git: GitRepo, digest: str) -> list[tuple[str, Version]]:
    """Every registered version, of any model, whose artifact has this sha256.

    For the "same bytes as …" warning of a registration, without folding every model: every
    version tag (``<model>@v…``, with or without ``!``) is remembered once, with its digest and
    time, in ``<git-common-dir>/gitml/registry-cache/_digests.json`` (a name no model's file can
    have); the tag refs are listed every time, so the file is rewritten when they change. Only
    the versions with this digest are folded.

    Args:
        git: the open repository.
        digest: the artifact's sha256, hex.

    Returns:
        ``[(model, version info)]`` sorted by model, then version (semver); deregistered ones
        are included, marked as such.
    """
    path = git.gitml_dir / CACHE_DIR / DIGESTS_FILE
    known = _load_cache_file(path)
    fresh: dict[str, Any] = {}
    unread: dict[str, list[tuple[str, TagName]]] = {}
    for name, sha in git.tags_containing("@v").items():  # every version tag's name has "@v"
        key = f"{name} {sha}"
        entry = known.get(key)
        if isinstance(entry, dict) and entry.keys() == _DIGEST_FIELDS:
            fresh[key] = entry
        elif (parsed := parse_tag(name)) is not None and parsed.kind in ("register", "deregister"):
            unread.setdefault(sha, []).append((name, parsed))
    infos = _read_objects(git, list(unread), ("refs/tags/**/*@v*",))  # "**/" matches no folder too
    for sha, wanted in unread.items():
        if (info := infos.get(sha)) is not None:
            for name, parsed in wanted:
                sha256 = _digest_of(info["message"]) if parsed.kind == "register" else None
                fresh[f"{name} {sha}"] = {"kind": parsed.kind, "model": parsed.model, "version": parsed.version,
                                          "time": info["time"], "sha256": sha256}
    if fresh != known:
        _save(path, {"version": CACHE_VERSION, "tags": fresh})
    matched = {(e["model"], e["version"]) for e in fresh.values() if e["sha256"] == digest and e["kind"] == "register"}
    events = [Event(key.rsplit(" ", 1)[0], e["kind"], e["model"], key.rsplit(" ", 1)[1], e["time"], None, "",
                    e["version"], meta={"sha256": e["sha256"]} if e["sha256"] else {})
              for key, e in fresh.items() if (e["model"], e["version"]) in matched]
    return [(name, info) for name, state in sorted(fold(events).items())
            for _, info in state.to_versions() if info.sha256 == digest]


def tag_problems(git: GitRepo, model: str | None = None) -> list[str]:
    """Say which tags look like version tags but are not (``churn@v1.2``, ``churn@v01.0.0``).

    Such tags are no events, but are not dropped unsaid.

    Args:
        git: the open repository.
        model: only this (valid) model's tags (default: every model's); the other tags are
            not listed.

    Returns:
        One message per such tag, in tag name order.
    """
    if model is not None:
        names = [name for names in model_tags(git, model).values() for name in names]
    else:
        names = list(git.tags())
    found = []
    for name in sorted(names):
        problem = tag_problem(name)
        if problem is not None:
            found.append(problem)
    return found


@dataclass
class ModelSummary:
    """One model as ``show`` of every model lists it: its state now, without its events.

    The fields are those of :meth:`ModelState.to_dict` (``versions`` holds each version's
    fields as a dict), which :meth:`to_dict` returns unchanged.
    """

    name: str
    latest: str | None
    deprecated: bool
    stages: dict[str, str]
    versions: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, the shape of :meth:`ModelState.to_dict`."""
        return asdict(self)


_SUMMARY_KEYS = frozenset(f.name for f in fields(ModelSummary))


def overview(git: GitRepo, one_stage_per_version: bool = False) -> tuple[list[ModelSummary], list[str]]:
    """Every model's state now, and the problems of every tag (``show`` of every model).

    The tag refs are listed once. Each model's folded state and problems are remembered in
    ``<git-common-dir>/gitml/registry-cache/_models.json`` under a fingerprint of its tag set
    (names and ref shas): a model whose tags did not change is neither read nor folded again,
    so the cost is the listing and the output. A model whose tags changed is folded from its
    events (:func:`load_events`; a cold cache reads every tag object with one git process).

    Args:
        git: the open repository.
        one_stage_per_version: as :func:`fold`'s.

    Returns:
        ``(models sorted by name, problems in tag name order)``: the states :func:`fold` gives
        and the messages :func:`tag_problems` gives, for every model.
    """
    groups = model_tags(git)
    path = git.gitml_dir / CACHE_DIR / SUMMARY_FILE
    known = _load_cache_file(path)
    rules = "one-stage" if one_stage_per_version else "labels"
    fresh: dict[str, Any] = {}
    stale: dict[str, str] = {}
    for model, names in groups.items():
        fingerprint = hashlib.sha1("\n".join(sorted(f"{n} {sha}" for n, sha in names.items())).encode()).hexdigest()
        entry = known.get(model)
        if _summary_usable(entry, model, fingerprint, rules):
            fresh[model] = entry
        else:
            stale[model] = fingerprint
    if stale:
        few = len(stale) <= REMEMBER_AT_MOST
        states = fold(_events_of(git, {model: groups[model] for model in stale}, remember=few), one_stage_per_version)
        for model, fingerprint in stale.items():
            found = [[name, problem] for name in sorted(groups[model]) if (problem := tag_problem(name)) is not None]
            fresh[model] = {"fp": fingerprint, "rules": rules, "problems": found,
                            "state": states[model].to_dict() if model in states else None}
    if fresh != known:
        _save(path, {"version": CACHE_VERSION, "tags": fresh})
    models = [ModelSummary(**entry["state"]) for _, entry in sorted(fresh.items()) if entry["state"] is not None]
    problems = [problem for _, problem in sorted(pair for entry in fresh.values() for pair in entry["problems"])]
    return models, problems


def _summary_usable(entry: Any, model: str, fingerprint: str, rules: str) -> bool:
    """Whether a remembered summary is this model's for this tag set (a torn or edited file is not)."""
    if not isinstance(entry, dict) or entry.get("fp") != fingerprint or entry.get("rules") != rules:
        return False
    state, problems = entry.get("state"), entry.get("problems")
    if not isinstance(problems, list) or not all(isinstance(p, list) and len(p) == 2 for p in problems):
        return False
    return state is None or (isinstance(state, dict) and state.keys() == _SUMMARY_KEYS and state["name"] == model
                             and isinstance(state["versions"], dict) and isinstance(state["stages"], dict))


def _save(path: Path, data: dict[str, Any]) -> None:
    """Write a cache file atomically, or leave it unwritten: the cache only saves time.

    It cannot be written in a read-only repository, or for a model name too long for a file name.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".registry-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(data))  # json.dumps uses the C encoder, json.dump does not
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


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
