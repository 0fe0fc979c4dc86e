"""Experiments as records on the runs ref: ``experiments/<id[:2]>/<id>/experiment.yaml``.

A run names its experiment (``experiment:`` in its ``run.yaml``); an experiment *record* adds
what belongs to the experiment itself: a stable id, a description, tags, a creation time. Runs
find their experiment by name, so an experiment that has runs but no record (every experiment
before records existed, or one only ever named by ``start_run(experiment=...)``) is still an
experiment: it is listed with the id its name gives (:func:`experiment_id_for`).

The id of a new record is that same id, derived from the name, so two clones that each create
experiment ``churn`` offline write the same record folder, and ``gitml pull`` merges the two
copies like two copies of a run (the later ``updated`` wins, the other stays in history). A
rename keeps the id. Records live beside ``runs/`` in the same commits; writers of runs keep
them (they rebuild only ``runs/`` and ``maps/``), and older readers ignore them.

Everything here reads records as hostile: a record that fails :func:`parse_experiment` is
reported by its key and skipped, never hiding the others.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gitml.core import yamlfmt
from gitml.core.cas import attempts
from gitml.core.errors import BadInputError, CorruptRunError, MissingObjectError
from gitml.core.formats import MAX_RECORD_BYTES, parse_time
from gitml.core.gitrepo import BLOB_MODE, TREE_MODE, GitRepo
from gitml.core.ids import check_key, check_name, printable
from gitml.core.runsref import RUNS_REF, BadEntry, _maybe_pack, _missing_sha, apply_changes, display_key

EXPERIMENTS_DIR = "experiments"
EXPERIMENT_FILE = "experiment.yaml"
SCHEMA_VERSION = 1
NOTE_TAG = "mlflow.note.content"  # MLflow keeps an experiment's description in this tag
ID_RE = re.compile(r"^[0-9a-f]{32}$")
SHARD_RE = re.compile(r"^[0-9a-f]{2}$")
MAX_TAG_VALUE = 8000  # characters: MLflow's bound for a tag value
MAX_TAGS = 1000
FUTURE_SLACK = 86400  # seconds a record's time may be ahead of this clock (clocks differ)


@dataclass
class Experiment:
    """An experiment: MLflow's ``Experiment`` entity as gitml keeps it.

    Attributes:
        experiment_id: 32 lowercase hex digits, stable across renames.
        name: the name runs carry in their ``run.yaml``.
        tags: ``{key: text}``; MLflow's ``mlflow.note.content`` is the description.
        description: free text, or None.
        creation_time: ISO 8601 UTC (``2026-12-01T07:00:00.000Z``), or None for an experiment
            known from its runs only (then the earliest run's start is given instead).
        last_update_time: ISO 8601 UTC of the last change to the record, or None.
        recorded: whether a record exists on the runs ref (False: known from runs only).
        run_count: how many runs name it (filled by searches; 0 otherwise).
        lifecycle_stage: always ``"active"`` (MLflow's field; gitml has no deleted experiments).
    """

    experiment_id: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    creation_time: str | None = None
    last_update_time: str | None = None
    recorded: bool = True
    run_count: int = 0
    lifecycle_stage: str = "active"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: every attribute above, by name."""
        return {"experiment_id": self.experiment_id, "name": self.name, "description": self.description,
                "tags": dict(self.tags), "creation_time": self.creation_time,
                "last_update_time": self.last_update_time, "recorded": self.recorded,
                "run_count": self.run_count, "lifecycle_stage": self.lifecycle_stage}


def experiment_id_for(name: str) -> str:
    """The id an experiment called ``name`` gets when it is first recorded (or has no record).

    Args:
        name: the experiment's name.

    Returns:
        The first 32 hex digits of SHA-256 of ``gitml experiment``, a NUL byte and the UTF-8
        name: the same on every clone, so records made apart merge.
    """
    return hashlib.sha256(b"gitml experiment\0" + name.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def check_experiment_id(value: object) -> str:
    """Validate an experiment id (32 lowercase hex digits).

    Raises:
        BadInputError: anything else.
    """
    if not isinstance(value, str) or not ID_RE.match(value):
        raise BadInputError(f"bad experiment id {printable(str(value))[:60]!r}: expected 32 hex digits")
    return value


def dump_experiment(exp: Experiment) -> bytes:
    """The ``experiment.yaml`` bytes of a record (canonical YAML; see docs/formats.md).

    Raises:
        BadInputError: the record is over :data:`~gitml.core.formats.MAX_RECORD_BYTES`.
    """
    data = yamlfmt.dump({
        "schema": SCHEMA_VERSION,
        "id": exp.experiment_id,
        "name": exp.name,
        "description": exp.description,
        "tags": dict(exp.tags),
        "creation_time": exp.creation_time,
        "updated": exp.last_update_time,
    }).encode()
    if len(data) > MAX_RECORD_BYTES:
        raise BadInputError(f"experiment {exp.name!r}: its record would be over {MAX_RECORD_BYTES >> 20} MiB")
    return data


def _bad(key: str, message: str) -> CorruptRunError:
    return CorruptRunError("", f"experiment {display_key(key)}: {message}")


def parse_experiment(key: str, raw: bytes) -> Experiment:
    """Read an ``experiment.yaml`` as hostile input.

    Args:
        key: the record's folder name (its id), for errors and the id check.
        raw: the file's bytes.

    Returns:
        The record.

    Raises:
        CorruptRunError: over the size bound, not YAML, or a field of the wrong shape (the id
            must equal the folder name, the name must be a valid experiment name, tags plain
            text under a bound, times ISO 8601 and not more than a day ahead of this clock).
    """
    if len(raw) > MAX_RECORD_BYTES:
        raise _bad(key, f"{EXPERIMENT_FILE} is over {MAX_RECORD_BYTES >> 20} MiB")
    try:
        head = yamlfmt.load(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(key, f"{EXPERIMENT_FILE}: {exc}") from None
    if not isinstance(head, dict):
        raise _bad(key, f"{EXPERIMENT_FILE} is not a mapping")
    if head.get("id") != key:
        raise _bad(key, f"{EXPERIMENT_FILE} names id {str(head.get('id'))[:40]!r}")
    try:
        name = check_name(head.get("name"), "experiment name")
    except BadInputError:
        raise _bad(key, "its name is empty, too long or has a control character") from None
    description = head.get("description")
    if description is not None and not isinstance(description, str):
        raise _bad(key, "its description is not text")
    tags = head.get("tags") or {}
    if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
        raise _bad(key, f"its tags are not a mapping of at most {MAX_TAGS} entries")
    for tag, value in tags.items():
        try:
            check_key(tag, "tag key")
        except BadInputError:
            raise _bad(key, f"tag {printable(str(tag))[:60]!r} is not a valid key") from None
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise _bad(key, f"tag {tag!r} is not text of at most {MAX_TAG_VALUE} characters")
    for name_ in ("creation_time", "updated"):
        stamp = head.get(name_)
        if stamp is None:
            continue
        try:
            if not isinstance(stamp, str) or len(stamp) > 40:
                raise ValueError(stamp)
            moment = parse_time(stamp)
        except (ValueError, OverflowError, OSError):
            raise _bad(key, f"{name_} is not an ISO 8601 time") from None
        if moment > time.time() + FUTURE_SLACK:  # it would win every merge from now on
            raise _bad(key, f"{name_} {stamp} is in the future")
    return Experiment(experiment_id=key, name=name, tags=dict(tags), description=description,
                      creation_time=head.get("creation_time"), last_update_time=head.get("updated"))


def _root(repo: GitRepo, tip: str | None) -> dict[str, tuple[int, str]]:
    return repo.read_tree(repo.read_commit(tip)[0]) if tip else {}


def experiments_top(repo: GitRepo, tip: str | None) -> tuple[int, str] | None:
    """The ``(mode, sha)`` of the ``experiments`` entry of ``tip``'s root tree, or None."""
    return _root(repo, tip).get(EXPERIMENTS_DIR)


def _shard_entries(repo: GitRepo, shard: str, entry: tuple[int, str]) -> dict[str, str]:
    mode, sha = entry
    path = f"{EXPERIMENTS_DIR}/{shard}"
    if not SHARD_RE.match(shard) or mode != TREE_MODE:
        return {path: BadEntry(sha, f"{display_key(path)}: not a shard folder (two hex digits)")}
    out: dict[str, str] = {}
    for name, (sub_mode, sub_sha) in repo.read_tree(sha).items():
        if not ID_RE.match(name) or name[:2] != shard or sub_mode != TREE_MODE:
            out[f"{path}/{name}"] = BadEntry(
                sub_sha, f"{display_key(f'{path}/{name}')}: not an experiment folder of shard {shard}")
        else:
            out[name] = sub_sha
    return out


def _shards(repo: GitRepo, top: tuple[int, str] | None) -> dict[str, tuple[int, str]] | BadEntry:
    if top is None:
        return {}
    if top[0] != TREE_MODE:
        return BadEntry(top[1], f"{EXPERIMENTS_DIR}: a file where a folder should be")
    return repo.read_tree(top[1])


def diff_experiments(repo: GitRepo, old_top: tuple[int, str] | None, new_top: tuple[int, str] | None
                     ) -> tuple[dict[str, str], set[str]]:
    """Records added or changed, and removed, between two ``experiments`` entries (shards compared).

    Args:
        repo: the open repository.
        old_top: ``(mode, sha)`` of the older ``experiments`` entry (see :func:`experiments_top`).
        new_top: the newer one's.

    Returns:
        ``(changed, removed)``: ``{key: folder tree sha, or BadEntry}`` at ``new_top``, and the
        keys gone.
    """
    if old_top == new_top:
        return {}, set()
    old, new = _shards(repo, old_top), _shards(repo, new_top)
    if isinstance(old, BadEntry) or isinstance(new, BadEntry):
        before = {EXPERIMENTS_DIR: old} if isinstance(old, BadEntry) else _all(repo, old)
        after = {EXPERIMENTS_DIR: new} if isinstance(new, BadEntry) else _all(repo, new)
        return ({k: v for k, v in after.items() if before.get(k) != v}, set(before) - set(after))
    changed: dict[str, str] = {}
    removed: set[str] = set()
    for shard in old.keys() | new.keys():
        if old.get(shard) == new.get(shard):
            continue
        before = _shard_entries(repo, shard, old[shard]) if shard in old else {}
        after = _shard_entries(repo, shard, new[shard]) if shard in new else {}
        changed.update({k: v for k, v in after.items() if before.get(k) != v})
        removed |= set(before) - set(after)
    return changed, removed


def _all(repo: GitRepo, shards: dict[str, tuple[int, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for shard, entry in shards.items():
        out.update(_shard_entries(repo, shard, entry))
    return out


def read_record(repo: GitRepo, tip: str | None, experiment_id: str) -> Experiment | None:
    """The record of one experiment at ``tip``, found by its path (a few tree reads), or None.

    None too when the record fails :func:`parse_experiment` (the others are unaffected).
    """
    if not ID_RE.match(experiment_id):
        return None
    try:
        entry = experiments_top(repo, tip)
        for name in (experiment_id[:2], experiment_id, EXPERIMENT_FILE):
            if entry is None or entry[0] != TREE_MODE and name != EXPERIMENT_FILE:
                return None
            entry = repo.read_tree(entry[1]).get(name)
        if entry is None or entry[0] not in (BLOB_MODE, 0o100755):
            return None
        return parse_experiment(experiment_id, repo.read_blob(entry[1]))
    except (KeyError, BadInputError, CorruptRunError):
        return None


def experiment_trees(repo: GitRepo, tip: str | None) -> dict[str, str]:
    """``{key: folder tree sha}`` of every entry under ``experiments/`` at ``tip``.

    A malformed entry (a file where a folder should be, a name that is not an id of its shard)
    comes back as a :class:`~gitml.core.runsref.BadEntry` under its path, so it is reported by
    name and skipped.
    """
    shards = _shards(repo, experiments_top(repo, tip))
    return {EXPERIMENTS_DIR: shards} if isinstance(shards, BadEntry) else _all(repo, shards)


def read_trees(repo: GitRepo, trees: dict[str, str], problems: dict[str, str] | None = None
               ) -> dict[str, Experiment]:
    """Parse the records of ``trees`` (as :func:`experiment_trees` gives them).

    Args:
        repo: the open repository.
        trees: ``{key: folder tree sha or BadEntry}``.
        problems: filled with ``{key: message}`` for each entry that fails; it is skipped.

    Returns:
        ``{experiment id: Experiment}`` of the records that pass.
    """
    out: dict[str, Experiment] = {}
    blobs: dict[str, str] = {}
    for key, tree in trees.items():
        if isinstance(tree, BadEntry):
            if problems is not None:
                problems[key] = tree.problem
            continue
        entry = repo.read_tree(tree).get(EXPERIMENT_FILE)
        if entry is None or entry[0] not in (BLOB_MODE, 0o100755):
            if problems is not None:
                problems[key] = str(_bad(key, f"{EXPERIMENT_FILE} is missing"))
            continue
        blobs[key] = entry[1]
    sizes = repo.object_sizes(list(blobs.values())) if blobs else {}
    small = {key: sha for key, sha in blobs.items() if sizes.get(sha, 0) <= MAX_RECORD_BYTES}
    contents = repo.cat_blobs(sorted(set(small.values()))) if small else {}
    for key, sha in blobs.items():
        try:
            out[key] = parse_experiment(key, contents[sha] if key in small else b"x" * (MAX_RECORD_BYTES + 1))
        except CorruptRunError as exc:
            if problems is not None:
                problems[key] = str(exc)
    return out


def read_experiments(repo: GitRepo, tip: str | None, problems: dict[str, str] | None = None
                     ) -> dict[str, Experiment]:
    """Every experiment record at ``tip`` that passes :func:`parse_experiment`.

    Args:
        repo: the open repository.
        tip: a runs-ref commit sha, or None.
        problems: filled with ``{key: message}`` for records that fail (skipped).

    Returns:
        ``{experiment id: Experiment}``.
    """
    return read_trees(repo, experiment_trees(repo, tip), problems)


def changed_experiments(repo: GitRepo, old_tip: str | None, new_tip: str | None) -> dict[str, str]:
    """Records added or changed between two tips: ``{key: tree sha or BadEntry}`` at ``new_tip``."""
    return diff_experiments(repo, experiments_top(repo, old_tip), experiments_top(repo, new_tip))[0]


def apply_experiments(repo: GitRepo, root_sha: str, changes: dict[str, str | None]) -> str:
    """The root tree ``root_sha`` with experiment folders set (a tree sha) or removed (None).

    Keys are experiment ids, or the path of a bad entry (``experiments/<shard>[/<name>]``, or
    ``experiments``), which can only be removed. Returns the new root tree's sha.
    """
    if not changes:
        return root_sha
    root = repo.read_tree(root_sha)
    entry = root.get(EXPERIMENTS_DIR)
    top_sha = entry[1] if entry and entry[0] == TREE_MODE and EXPERIMENTS_DIR not in changes else None
    by_shard: dict[str, dict[str, tuple[int, str] | None]] = {}
    top_edits: dict[str, tuple[int, str] | None] = {}
    for key, tree in changes.items():
        parts = key.split("/")
        if key == EXPERIMENTS_DIR:
            continue
        if parts[0] == EXPERIMENTS_DIR and len(parts) == 2:
            top_edits[parts[1]] = None
        elif parts[0] == EXPERIMENTS_DIR and len(parts) == 3:
            by_shard.setdefault(parts[1], {})[parts[2]] = None
        else:
            by_shard.setdefault(key[:2], {})[key] = None if tree is None else (TREE_MODE, tree)
    current = repo.tree_entries(top_sha, by_shard) if top_sha else {}
    for shard, edits in by_shard.items():
        old = current.get(shard)
        new = repo.edit_tree(old[1] if old and old[0] == TREE_MODE else None, edits)
        top_edits[shard] = None if new is None else (TREE_MODE, new)
    new_top = repo.edit_tree(top_sha, top_edits)
    if new_top is None:
        root.pop(EXPERIMENTS_DIR, None)
    else:
        root[EXPERIMENTS_DIR] = (TREE_MODE, new_top)
    return repo.write_tree(root)


def write_record(repo: GitRepo, exp: Experiment) -> str:
    """Write a record's folder (its blob and tree); return the tree's sha."""
    blob = repo.write_blob(dump_experiment(exp))
    return repo.write_tree({EXPERIMENT_FILE: (BLOB_MODE, blob)})


def merge_experiments(repo: GitRepo, ours: str, theirs: str, base: str | None) -> dict[str, str | None]:
    """What to apply on ``ours`` for the union of both sides' records (the rule of runs).

    Three-way against ``base``, folder by folder: a change on one side is taken; a change beats
    a deletion; changed on both sides, the two are merged field by field and tag by tag (see
    :func:`_merge_records`). Bad entries are never taken from ``theirs`` (they are refused
    before a merge).

    Returns:
        ``{experiment id: tree sha or None}`` for :func:`apply_experiments`.
    """
    mine, other = experiment_trees(repo, ours), experiment_trees(repo, theirs)
    old = experiment_trees(repo, base) if base else {}
    changes: dict[str, str | None] = {}
    for key in mine.keys() | other.keys():
        a, b, o = mine.get(key), other.get(key), old.get(key)
        if a == b or b == o or isinstance(b, BadEntry) or not ID_RE.match(key):
            continue
        if a == o or a is None:
            changes[key] = b
        elif b is None:
            continue
        else:  # changed on both sides: field by field, tag by tag
            merged = _merge_records(repo, key, o, a, b)
            if merged is not None and merged != a:
                changes[key] = merged
    return changes


def _merge_records(repo: GitRepo, key: str, base: str | None, ours: str, theirs: str) -> str | None:
    """The folder of a record changed on both sides: each field and each tag three-way.

    A field (or tag) one side changed takes that side's value; changed on both sides
    differently, the side whose record has the later ``updated`` wins it (ties: the greater
    tree id), as whole runs do. The result is the same whichever side merges, so clones converge.
    Returns the merged folder's tree (written), or None when a side cannot be read.
    """
    trees = {"o": base, "a": ours, "b": theirs}
    found: dict[str, Experiment | None] = {}
    for name, tree in trees.items():
        if tree:
            record = read_trees(repo, {key: tree}).get(key)
            if record is None and name != "o":
                return None
            found[name] = record
    o, a, b = found.get("o"), found["a"], found["b"]
    a_wins = (a.last_update_time or "", ours) > (b.last_update_time or "", theirs)

    def pick(old: object, mine: object, other: object) -> object:
        if mine == other or other == old:
            return mine
        if mine == old:
            return other
        return mine if a_wins else other

    tags: dict[str, str] = {}
    for tag in sorted({*a.tags, *b.tags, *(o.tags if o else {})}):
        value = pick(o.tags.get(tag) if o else None, a.tags.get(tag), b.tags.get(tag))
        if value is not None:
            tags[tag] = value
    merged = Experiment(
        experiment_id=key,
        name=pick(o.name if o else None, a.name, b.name),
        tags=tags,
        description=pick(o.description if o else None, a.description, b.description),
        creation_time=min(t for t in (a.creation_time, b.creation_time) if t) if a.creation_time or
        b.creation_time else None,
        last_update_time=max(a.last_update_time or "", b.last_update_time or "") or None,
    )
    return write_record(repo, merged)


Decide = Callable[[str | None, dict[str, Experiment]],
                  tuple[dict[str, Experiment], dict[str, str | None], dict, Any]]


@dataclass
class Written:
    """What :func:`commit_experiments` wrote.

    The tips, the ``experiments`` entries before and after, each record written with its folder
    tree (``{id: (tree, Experiment)}``), the run changes, and what ``decide`` returned.
    """

    parent: str | None
    tip: str | None
    old_top: tuple[int, str] | None = None
    new_top: tuple[int, str] | None = None
    records: dict[str, tuple[str, Experiment]] = field(default_factory=dict)
    run_changes: dict[str, str | None] = field(default_factory=dict)
    result: Any = None


def commit_experiments(repo: GitRepo, decide: Decide, message: str, ref: str = RUNS_REF,
                       records_at: Callable[[str | None], dict[str, Experiment]] | None = None) -> Written:
    """Write experiment records (and, with them, run folders) in one commit, by compare-and-swap.

    ``decide(tip, records)`` is called with the newest tip and its records, and again after a
    lost race, so every change is made on what the ref holds when it lands. It returns
    ``(records to write, run changes, lookup-map hints, result)``: run changes as
    :func:`gitml.core.runsref.apply_changes` takes them. Nothing to write: no commit.

    Args:
        repo: the open repository.
        decide: as above; it may raise to refuse (nothing is written).
        message: the commit message.
        ref: the ref to move.
        records_at: ``tip -> {id: Experiment}`` (default :func:`read_experiments`; the query
            index answers it from its cache).

    Returns:
        A :class:`Written`; its ``tip`` is None when nothing was written.

    Raises:
        whatever ``decide`` raises; MissingObjectError, ConcurrencyError as
        :func:`gitml.core.runsref.commit_runs`.
    """
    missing = 0
    for _ in attempts(f"update {ref}", hint="another process keeps the ref busy; try again"):
        with repo.batch():  # a rename's hundreds of objects go as one pack, a record's few loose
            written, lost_object = _attempt(repo, decide, message, ref, records_at)
        if lost_object is not None:  # moved into a new pack under our feet, or lost
            missing += 1
            if missing >= 3:
                raise MissingObjectError(lost_object, f"updating {ref}")
        elif written is not None:
            return written
    raise AssertionError("unreachable: attempts() raises when it runs out")


def _attempt(repo: GitRepo, decide: Decide, message: str, ref: str,
             records_at: Callable[[str | None], dict[str, Experiment]] | None) -> tuple[Written | None, str | None]:
    """One try of :func:`commit_experiments`.

    Returns:
        ``(what was written, None)``; ``(None, None)`` after a lost compare-and-swap;
        ``(None, object id)`` when an object the tip leads to could not be read.
    """
    tip = repo.ref(ref)
    try:
        records = records_at(tip) if records_at else read_experiments(repo, tip)
        changes, run_changes, hints, result = decide(tip, {k: _copy(v) for k, v in records.items()})
        if not changes and not run_changes:
            return Written(tip, None, result=result), None
        if run_changes or tip is None:
            root = apply_changes(repo, tip, run_changes, hints)
        else:  # only records change: runs/ and maps/ stay as they are
            root = repo.read_commit(tip)[0]
        old_top = experiments_top(repo, tip)
        trees = {key: (write_record(repo, exp), exp) for key, exp in changes.items()}
        root = apply_experiments(repo, root, {key: tree for key, (tree, _) in trees.items()})
        new_top = repo.read_tree(root).get(EXPERIMENTS_DIR)
    except KeyError as exc:
        return None, _missing_sha(exc)
    commit = repo.write_commit(root, [tip] if tip else [], message)
    repo.flush()
    if repo.set_ref_if_equals(ref, tip, commit):
        _maybe_pack(repo)
        return Written(tip, commit, old_top, new_top, trees, run_changes, result), None
    return None, None


def _copy(exp: Experiment) -> Experiment:
    return Experiment(exp.experiment_id, exp.name, dict(exp.tags), exp.description, exp.creation_time,
                      exp.last_update_time, exp.recorded, exp.run_count, exp.lifecycle_stage)
