"""Experiments as objects, kept on the runs ref.

MLflow's ``set_experiment``, ``get_experiment_by_name``, ``search_experiments``, experiment
tags, description and rename.

An experiment is what runs name in ``run.yaml``; its record (``experiments/`` on the runs ref,
:mod:`gitml.core.experiments`) adds an id, a description, tags and a creation time, and is
shared and merged by ``gitml push``/``pull`` like a run. An experiment that has runs but no
record is listed all the same (``recorded`` False); tagging, describing or renaming it writes its
record. Every change is one commit on the runs ref, made by compare-and-swap on the newest tip,
so two processes tagging experiments at once both land.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from gitml.core import index, runsref, yamlfmt
from gitml.core.errors import BadInputError, ExperimentNotFoundError
from gitml.core.experiments import (
    ID_RE,
    MAX_TAG_VALUE,
    MAX_TAGS,
    NOTE_TAG,
    Experiment,
    Written,
    commit_experiments,
    experiment_id_for,
    read_record,
)
from gitml.core.filter import (
    Condition,
    Group,
    Node,
    compile_query,
    like,
    parse_filter,
    parse_order_by,
    utc_text,
)
from gitml.core.formats import iso_time
from gitml.core.gitrepo import GitRepo
from gitml.core.ids import check_key, check_name
from gitml.core.workspace import Workspace, WorkspaceLike, open_workspace

#: Environment variables naming the experiment of runs that name none (MLflow's included).
EXPERIMENT_ENV = ("GITML_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_NAME")
#: Attribute names an experiment filter or sort key may use (MLflow's), to canonical names.
ATTRIBUTES = {"name": "name", "experiment_id": "experiment_id", "id": "experiment_id",
              "creation_time": "creation_time", "last_update_time": "last_update_time"}
TIME_ATTRIBUTES = frozenset({"creation_time", "last_update_time"})
DEFAULT_ORDER = ("creation_time DESC", "experiment_id ASC")  # MLflow's

_lock = threading.Lock()
_current: str | None = None  # the name set_experiment chose
_current_id: str | None = None  # and its id: a rename elsewhere is followed, as MLflow follows its id


def default_experiment(repo: GitRepo | None = None) -> str | None:
    """The experiment of a run that names none, before ``gitml.yaml``'s.

    Args:
        repo: the run's repository: the experiment :func:`set_experiment` chose is looked up
            there by its id, so a rename made meanwhile (by another process, another clone)
            is followed.

    Returns:
        The name of the experiment :func:`set_experiment` chose in this process, else the
        environment variable ``GITML_EXPERIMENT_NAME`` (or MLflow's ``MLFLOW_EXPERIMENT_NAME``),
        else None.
    """
    global _current
    with _lock:
        name, chosen = _current, _current_id
    if name is not None:
        if repo is not None and chosen is not None:
            record = read_record(repo, repo.ref(runsref.RUNS_REF), chosen)
            if record is not None and record.name != name:
                with _lock:
                    if _current_id == chosen:
                        _current = record.name
                return record.name
        return name
    for name in EXPERIMENT_ENV:
        value = os.environ.get(name)
        if value:
            return value
    return None


# -- reading -----------------------------------------------------------------------------------

class _Catalog:
    """The experiments at one tip: the records, and the names runs carry."""

    def __init__(self, ws: Workspace, problems: dict[str, str] | None = None,
                 tip: str | None = None, records: dict[str, Experiment] | None = None) -> None:
        self.ws = ws
        self.tip = ws.runs_tip if records is None else tip
        if records is None:
            records, bad = ws.index.experiments(self.tip)
            if problems is not None:
                problems.update(bad)
        self.records = records
        self._runs: dict[str, tuple[int, str, str]] | None = None

    @property
    def runs(self) -> dict[str, tuple[int, str, str]]:
        """``{name: (run count, first start, last start)}`` of every name runs carry."""
        if self._runs is None:
            self._runs = self.ws.index.experiment_runs() if self.tip else {}
        return self._runs

    def stats(self, name: str) -> tuple[int, str | None, str | None]:
        """One name's run count and start times (one indexed lookup, not a scan)."""
        if self._runs is not None:
            return self._runs.get(name, (0, None, None))
        return self.ws.index.experiment_stats(name) if self.tip else (0, None, None)

    def record_named(self, name: str) -> Experiment | None:
        """The record that owns ``name``.

        Of several (made apart), one whose id the name gives (:func:`free_id`'s sequence)
        before any other, then the oldest.
        """
        found = [exp for exp in self.records.values() if exp.name == name]
        if len(found) < 2:
            return found[0] if found else None
        own = {experiment_id_for(name if n == 0 else f"{name}\0{n}") for n in range(4)}
        return min(found, key=lambda e: (e.experiment_id not in own, e.creation_time or "", e.experiment_id))

    def implicit(self, name: str) -> Experiment:
        count, first, last = self.stats(name)
        return Experiment(experiment_id=free_id(name, self.records), name=name, creation_time=first,
                          last_update_time=last, recorded=False, run_count=count)

    def by_name(self, name: str) -> Experiment | None:
        exp = self.record_named(name)
        if exp is not None:
            exp.run_count = self.stats(name)[0]
            return exp
        found = self.implicit(name)
        return found if found.run_count else None

    def everything(self) -> list[Experiment]:
        out: list[Experiment] = []
        named: set[str] = set()
        for exp in sorted(self.records.values(), key=lambda e: (e.creation_time or "", e.experiment_id)):
            if exp.name not in named:  # two records of one name (made apart): the runs count for the first
                exp.run_count = self.runs.get(exp.name, (0,))[0]
                named.add(exp.name)
            out.append(exp)
        out.extend(self.implicit(name) for name in self.runs if name not in named)
        return out

    def find(self, experiment: str) -> Experiment:
        """By id (32 hex digits) or name; ExperimentNotFoundError when neither."""
        if not isinstance(experiment, str) or not experiment:
            raise BadInputError(f"bad experiment {experiment!r}: expected a name or an id")
        if ID_RE.match(experiment):
            if experiment in self.records:
                return self._counted(experiment)
            for exp in self.everything():
                if exp.experiment_id == experiment:
                    return exp
        exp = self.by_name(experiment)
        if exp is None and re.fullmatch(r"[0-9a-f]{4,31}", experiment):  # an id's first digits, as listed
            matches = [e for e in self.everything() if e.experiment_id.startswith(experiment)]
            if len(matches) > 1:
                raise ExperimentNotFoundError(f"experiment id prefix {experiment!r} is ambiguous "
                                              f"({len(matches)} experiments)", hint="give more digits")
            exp = matches[0] if matches else None
        if exp is None:
            raise ExperimentNotFoundError(f"no experiment {experiment!r}",
                                          hint="gitml experiments list shows the experiments")
        return exp

    def _counted(self, experiment_id: str) -> Experiment:
        exp = self.records[experiment_id]
        if self.record_named(exp.name) is exp:
            exp.run_count = self.stats(exp.name)[0]
        return exp


def free_id(name: str, records: Mapping[str, Experiment]) -> str:
    """The id for experiment ``name``.

    :func:`~gitml.core.experiments.experiment_id_for` of it, unless a record of another name
    holds that id (it was renamed); then the next free one of a fixed sequence, so clones agree.

    Raises:
        BadInputError: a thousand ids of that sequence are taken.
    """
    for n in range(1000):
        candidate = experiment_id_for(name if n == 0 else f"{name}\0{n}")
        held = records.get(candidate)
        if held is None or held.name == name:
            return candidate
    raise BadInputError(f"no free id for experiment {name!r}")  # a thousand renames of one name


def get_experiment(experiment_id: str, repo: WorkspaceLike = None) -> Experiment:
    """The experiment with this id (MLflow's ``mlflow.get_experiment``).

    Args:
        experiment_id: 32 hex digits, as :func:`search_experiments` gives them (a name is also
            taken).
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The :class:`~gitml.core.experiments.Experiment`, with its ``run_count``.

    Raises:
        ExperimentNotFoundError: no experiment has this id (exit code 2).
    """
    with open_workspace(repo) as ws:
        return _shown(_Catalog(ws).find(experiment_id))


def get_experiment_by_name(name: str, repo: WorkspaceLike = None) -> Experiment | None:
    """The experiment called ``name``, or None (MLflow's ``mlflow.get_experiment_by_name``).

    An experiment that has runs but no record is found too (``recorded`` False).

    Args:
        name: the experiment's name.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The :class:`~gitml.core.experiments.Experiment`, or None when no record or run has that name.

    Raises:
        BadInputError: ``name`` is not a valid experiment name.
    """
    check_name(name, "experiment name")
    with open_workspace(repo) as ws:
        found = _Catalog(ws).by_name(name)
        return _shown(found) if found else None


VIEW_TYPES = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}  # MLflow's ViewType values


def search_experiments(filter_string: str | None = None, order_by: str | Sequence[str] | None = None,
                       max_results: int | None = None, repo: WorkspaceLike = None,
                       problems: dict[str, str] | None = None, view_type: int | str = 1) -> list[Experiment]:
    """Experiments matching an MLflow experiment filter (MLflow's ``mlflow.search_experiments``).

    Args:
        filter_string: e.g. ``"name LIKE 'churn%' AND tags.team = 'ml'"``: MLflow's keys
            ``name``, ``experiment_id``, ``creation_time``, ``last_update_time`` (compared as
            instants: epoch milliseconds or ISO 8601) and ``tags.<key>``, with ``=``, ``!=``,
            ``LIKE``, ``ILIKE``, ``IN``, ``<``… as in run filters; ``OR`` and parentheses too.
        order_by: sort keys such as ``["name ASC"]`` (default MLflow's: ``creation_time DESC``,
            then ``experiment_id``).
        max_results: at most this many (default: all).
        repo: a Workspace, an open repository or a path inside one (default: the current directory).
        problems: filled with ``{key: message}`` for records on the ref that fail validation
            (they are skipped; the others are answered), and for each name two records share
            (key ``duplicate name <name>``: which record owns it).
        view_type: MLflow's ``ViewType`` (1 or ``"ACTIVE_ONLY"``, 2 ``"DELETED_ONLY"``, 3
            ``"ALL"``); gitml's experiments are all active, so ``DELETED_ONLY`` finds none.

    Returns:
        :class:`~gitml.core.experiments.Experiment` s, each with its ``run_count``.

    Raises:
        BadInputError: a bad filter, sort key or ``max_results`` (exit code 2).
    """
    view = VIEW_TYPES.get(view_type, view_type) if isinstance(view_type, int) else str(view_type).upper()
    if view not in VIEW_TYPES.values():
        raise BadInputError(f"bad view_type {view_type!r}: expected ACTIVE_ONLY, DELETED_ONLY or ALL (1, 2, 3)")
    where = parse_filter(filter_string, ATTRIBUTES, TIME_ATTRIBUTES)
    order = parse_order_by(list(order_by or DEFAULT_ORDER) if not isinstance(order_by, str) else order_by,
                           ATTRIBUTES)
    for key in order:
        if key.field != "attr":
            raise BadInputError(f"experiments sort by name, experiment_id, creation_time or last_update_time, "
                                f"not {key.field}s.{key.name}")
    _check_fields(where)
    if max_results is not None and (isinstance(max_results, bool) or not isinstance(max_results, int)
                                    or max_results < 1):
        raise BadInputError(f"bad max_results {max_results!r}: expected a positive whole number")
    if view == "DELETED_ONLY":
        return []
    with open_workspace(repo) as ws:
        catalog = _Catalog(ws, problems)
        found = [exp for exp in catalog.everything() if where is None or _matches(where, exp)]
        if problems is not None:
            problems.update(_duplicates(catalog))
    for key in reversed(order):
        present = [e for e in found if _attr(e, key.name) is not None]
        absent = [e for e in found if _attr(e, key.name) is None]
        present.sort(key=lambda e: _attr(e, key.name), reverse=key.descending)
        found = present + absent
    return [_shown(exp) for exp in (found[:max_results] if max_results else found)]


DUPLICATE = "duplicate name "  # the key of a problem that is two records of one name


def _duplicates(catalog: _Catalog) -> dict[str, str]:
    """A note per name two records share (made apart, or crafted): which one owns it."""
    by_name: dict[str, list[str]] = {}
    for exp in catalog.records.values():
        by_name.setdefault(exp.name, []).append(exp.experiment_id)
    out = {}
    for name, ids in by_name.items():
        if len(ids) > 1:
            owner = catalog.record_named(name).experiment_id
            others = ", ".join(i[:8] for i in sorted(ids) if i != owner)
            out[DUPLICATE + name] = (f"{len(ids)} experiment records are named {name!r}: {owner[:8]} owns the name "
                                     f"and its runs, {others} not; rename one (gitml experiments rename ID NEW)")
    return out


def _check_fields(node: Node | None) -> None:
    if isinstance(node, Group):
        for part in node.parts:
            _check_fields(part)
    elif isinstance(node, Condition) and node.field not in ("attr", "tag"):
        raise BadInputError(f"experiments have no {node.field}s: filter on name, experiment_id, "
                            "creation_time, last_update_time or tags.<key>")


def _attr(exp: Experiment, name: str) -> str | None:
    if name in TIME_ATTRIBUTES:
        stamp = getattr(exp, name)
        return utc_text(stamp) if stamp else None
    return getattr(exp, name)


def _matches(node: Node, exp: Experiment) -> bool:
    if isinstance(node, Group):
        parts = (_matches(part, exp) for part in node.parts)
        return all(parts) if node.joiner == "AND" else any(parts)
    value = exp.tags.get(node.name) if node.field == "tag" else _attr(exp, node.name)
    if node.op == "NULL":
        return (value is None) != node.negate
    if value is None:
        return False
    texts = [v.value if v.kind in ("str", "time") else v.text for v in node.values]
    if node.op in ("LIKE", "ILIKE"):
        return like(texts[0], value, node.op == "ILIKE") != node.negate
    if node.op == "IN":
        return (value in texts) != node.negate
    other = texts[0]
    return {"=": value == other, "!=": value != other, "<": value < other, "<=": value <= other,
            ">": value > other, ">=": value >= other}[node.op]


# -- writing -----------------------------------------------------------------------------------

def _now() -> str:
    return iso_time(time.time())


def _change(experiment: str, what: str, apply, repo: WorkspaceLike, create: bool = False) -> Experiment:
    """Write the record of ``experiment`` as ``apply(record)`` leaves it, in one commit.

    An experiment without a record gets one (its runs' earliest start as creation time);
    ``create`` makes one for a name nothing has yet.
    """
    with open_workspace(repo) as ws:
        def decide(tip: str | None, records: dict[str, Experiment]):
            catalog = _Catalog(ws, tip=tip, records=records)
            try:
                exp = catalog.find(experiment)
            except ExperimentNotFoundError:
                if not create:
                    raise
                exp = Experiment(experiment_id=free_id(experiment, records), name=experiment,
                                 creation_time=_now(), recorded=False)
            had_record = exp.recorded
            if not had_record:
                exp = Experiment(experiment_id=exp.experiment_id, name=exp.name,
                                 creation_time=exp.creation_time or _now(), run_count=exp.run_count)
            before = (exp.name, dict(exp.tags), exp.description)
            apply(exp)
            exp.tags.pop(NOTE_TAG, None)
            if had_record and (exp.name, dict(exp.tags), exp.description) == before:
                return {}, {}, {}, exp  # nothing changes: no commit
            exp.last_update_time = _now()
            exp.recorded = True
            return {exp.experiment_id: exp}, {}, {}, exp

        written = _commit(ws, decide, f"experiment {experiment}: {what}")
        return _shown(written.result)


def _commit(ws: Workspace, decide, message: str, runs: list | None = None) -> Written:
    """Commit with the index's copy of the records, then put what was written into the index.

    The next question then reads nothing again (see :func:`gitml.core.index.record_written`).
    """
    written = commit_experiments(ws.repo, decide, message[:200], records_at=lambda tip: ws.index.experiments(tip)[0])
    if written.tip is not None:
        index.record_written(ws.repo, written.parent, written.tip, runs(written) if runs else [],
                             experiments=written)
    return written


def _shown(exp: Experiment) -> Experiment:
    """The record as readers see it: the description also as MLflow's ``mlflow.note.content`` tag."""
    if exp.description is not None:
        exp.tags = {**exp.tags, NOTE_TAG: exp.description}
    return exp


def create_experiment(name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None,
                      description: str | None = None, repo: WorkspaceLike = None) -> str:
    """Record a new experiment (MLflow's ``mlflow.create_experiment``); return its id.

    Args:
        name: its name; no record or run may have it yet.
        artifact_location: MLflow's; not supported (artifacts go to the content store and the
            remotes of ``gitml.yaml``): anything but None is ``BadInputError``.
        tags: ``{key: value}`` (values stored as text).
        description: free text (MLflow's ``mlflow.note.content`` tag).
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The new experiment's id (32 hex digits).

    Raises:
        BadInputError: a bad name, tag or description, an ``artifact_location``, or an
            experiment called ``name`` exists already (exit code 2; nothing is written).
    """
    check_name(name, "experiment name")
    checked = _checked_tags(tags or {})
    if description is not None and not isinstance(description, str):
        raise BadInputError(f"a description is text, got {type(description).__name__}")
    if artifact_location is not None:
        raise BadInputError("artifact_location is not supported: a run's files go to the content store "
                            "and the artifact remotes of gitml.yaml", hint="leave artifact_location out")
    with open_workspace(repo) as ws:
        if _Catalog(ws).by_name(name) is not None:
            raise BadInputError(f"experiment {name!r} exists already",
                                hint="gitml.set_experiment(name) uses an existing one")

        def apply(exp: Experiment) -> None:
            if exp.last_update_time is not None:  # recorded meanwhile by another process
                raise BadInputError(f"experiment {name!r} exists already")
            exp.tags.update(checked)
            if description is not None:
                exp.description = description
            if NOTE_TAG in checked:
                exp.description = checked[NOTE_TAG]

        return _change(name, "create", apply, ws, create=True).experiment_id


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None,
                   repo: WorkspaceLike = None) -> Experiment:
    """Make an experiment the one later runs of this process use (MLflow's ``mlflow.set_experiment``).

    ``start_run()`` and ``commit_run()`` without an ``experiment`` then use it (before the
    environment's ``GITML_EXPERIMENT_NAME`` and ``gitml.yaml``'s ``experiment``). An experiment
    that neither a record nor a run has yet is recorded first (one commit), as MLflow creates it.

    Args:
        experiment_name: its name; or
        experiment_id: its id (it must exist).
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The :class:`~gitml.core.experiments.Experiment`.

    Raises:
        BadInputError: neither or both of name and id, or a bad name.
        ExperimentNotFoundError: no experiment has ``experiment_id``.
    """
    global _current
    if (experiment_name is None) == (experiment_id is None):
        raise BadInputError("set_experiment takes an experiment name or an id, not both or neither")
    with open_workspace(repo) as ws:
        if experiment_id is not None:
            exp = _Catalog(ws).find(experiment_id)
        else:
            check_name(experiment_name, "experiment name")
            exp = _Catalog(ws).by_name(experiment_name)
            if exp is None:
                exp = _change(experiment_name, "create", lambda e: None, ws, create=True)
    global _current_id
    with _lock:
        _current, _current_id = exp.name, exp.experiment_id
    return _shown(exp)


def _checked_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise BadInputError(f"bad tags: expected a mapping, got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise BadInputError(f"at most {MAX_TAGS} tags per experiment")
    out = {}
    for key, value in tags.items():
        text = _tag_text(value)
        out[check_key(key, "tag key")] = text
    return out


def _tag_text(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    elif isinstance(value, (str, int, float, bool)):
        text = str(value)
    else:
        raise BadInputError(f"a tag value must be text or a number, got {type(value).__name__}")
    if len(text) > MAX_TAG_VALUE:
        raise BadInputError(f"a tag value is at most {MAX_TAG_VALUE} characters, got {len(text)}")
    return text


def _target(experiment: str | None) -> str:
    name = experiment if experiment is not None else default_experiment()
    if name is None:
        raise BadInputError("no experiment given and none set", hint="call gitml.set_experiment(name) first")
    return name


def set_experiment_tags(tags: Mapping[str, Any], experiment: str | None = None,
                        repo: WorkspaceLike = None) -> Experiment:
    """Set several tags of an experiment in one commit (MLflow's ``mlflow.set_experiment_tags``).

    Args:
        tags: ``{key: value}``; values are stored as text (at most 8,000 characters, MLflow's
            bound). ``mlflow.note.content`` sets the description.
        experiment: its name or id (default: the one :func:`set_experiment` chose).
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The experiment as now recorded.

    Raises:
        BadInputError: a bad key or value, or no experiment given and none set.
        ExperimentNotFoundError: no such experiment.
    """
    checked = _checked_tags(tags)

    def apply(exp: Experiment) -> None:
        for key, text in checked.items():
            if key == NOTE_TAG:
                exp.description = text
            else:
                exp.tags[key] = text
        if len(exp.tags) > MAX_TAGS:
            raise BadInputError(f"at most {MAX_TAGS} tags per experiment")

    return _change(_target(experiment), "set tags " + ", ".join(checked), apply, repo)


def set_experiment_tag(key: str, value: Any, experiment: str | None = None, repo: WorkspaceLike = None) -> Experiment:
    """Set one tag of an experiment (MLflow's ``mlflow.set_experiment_tag``).

    Args:
        key: the tag's key; ``mlflow.note.content`` sets the description.
        value: stored as text.
        experiment: its name or id (default: the one :func:`set_experiment` chose).
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The experiment as now recorded.

    Raises:
        BadInputError, ExperimentNotFoundError: as :func:`set_experiment_tags`.
    """
    return set_experiment_tags({key: value}, experiment, repo)


def delete_experiment_tag(key: str, experiment: str | None = None, repo: WorkspaceLike = None) -> Experiment:
    """Remove a tag of an experiment (MLflow's ``MlflowClient.delete_experiment_tag``).

    Args:
        key: the tag's key (``mlflow.note.content`` clears the description).
        experiment: its name or id (default: the one :func:`set_experiment` chose).
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The experiment as now recorded.

    Raises:
        BadInputError: the experiment has no such tag.
        ExperimentNotFoundError: no such experiment.
    """
    key = check_key(key, "tag key")

    def apply(exp: Experiment) -> None:
        if key == NOTE_TAG and exp.description is not None:
            exp.description = None
        elif exp.tags.pop(key, None) is None:
            raise BadInputError(f"experiment {exp.name!r} has no tag {key!r}")

    return _change(_target(experiment), f"delete tag {key}", apply, repo)


def set_experiment_description(description: str | None, experiment: str | None = None,
                               repo: WorkspaceLike = None) -> Experiment:
    """Set (or, with None or ``""``, clear) an experiment's description.

    MLflow keeps it in the tag ``mlflow.note.content``; gitml in the record's ``description``,
    shown under that tag too.

    Raises:
        BadInputError: not text; ExperimentNotFoundError: no such experiment.
    """
    if description is not None and not isinstance(description, str):
        raise BadInputError(f"a description is text, got {type(description).__name__}")

    def apply(exp: Experiment) -> None:
        exp.description = description or None

    return _change(_target(experiment), "describe", apply, repo)


def rename_experiment(experiment: str, new_name: str, repo: WorkspaceLike = None) -> Experiment:
    """Rename an experiment and its runs in one commit (MLflow's ``MlflowClient.rename_experiment``).

    The id stays. Every run on the runs ref that names the experiment is rewritten to name the
    new one (its ``run.yaml``; ``updated`` moves), in the same commit as the record. A run that
    arrives later under the old name (a run in progress now, another clone's) lists under the old
    name; renaming that old name to the new one again moves it in: a name that only runs carry
    (no record) may be renamed to an existing experiment, whose runs it then joins.

    Args:
        experiment: its name or id.
        new_name: the new name; no other experiment may have it.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).

    Returns:
        The experiment as now recorded (``run_count``: the runs moved).

    Raises:
        BadInputError: a bad name, or ``new_name`` is another recorded experiment's while this one
            has a record too (nothing is written).
        ExperimentNotFoundError: no such experiment.
    """
    check_name(new_name, "experiment name")
    with open_workspace(repo) as ws:
        def decide(tip: str | None, records: dict[str, Experiment]):
            catalog = _Catalog(ws, tip=tip, records=records)
            exp = catalog.find(experiment)
            old = exp.name
            if old == new_name:
                return {}, {}, {}, (exp, old)
            taken = catalog.by_name(new_name)
            if taken is not None:
                if exp.recorded:
                    raise BadInputError(f"experiment {new_name!r} exists already (id {taken.experiment_id})",
                                        hint="pick another name")
                exp = taken  # a name only runs carry (left behind by a rename): its runs move in
            else:
                if not exp.recorded:
                    exp = Experiment(experiment_id=exp.experiment_id, name=old,
                                     creation_time=exp.creation_time or _now())
                exp.name = new_name
                exp.last_update_time = _now()
                exp.recorded = True
            changes, hints = _renamed_runs(ws, tip, old, new_name)
            exp.run_count = len(changes) + catalog.runs.get(new_name, (0,))[0]
            return {exp.experiment_id: exp} if taken is None else {}, changes, hints, (exp, old)

        def moved(written: Written) -> list:
            """The renamed runs as the index holds them (at the parent), with their new fields."""
            exp, old = written.result
            runs = [run for run in ws.index.search(compile_query(experiment=old)) if run.id in written.run_changes]
            for run in runs:
                run.tags  # noqa: B018 - decodes the run's document before two of its fields change
                run.experiment, run.updated = exp.name, exp.last_update_time
            return runs

        written = _commit(ws, decide, f"experiment {experiment}: rename to {new_name}", runs=moved)
        exp, old = written.result
    global _current
    with _lock:
        if _current == old:  # set_experiment chose it: later runs follow the new name, as in MLflow
            _current = exp.name
    return _shown(exp)


def _renamed_runs(ws: Workspace, tip: str | None, old: str, new: str) -> tuple[dict[str, str], dict]:
    """The run folders at ``tip`` of experiment ``old``, rewritten to name ``new``."""
    repo = ws.repo
    ids = ws.index.experiment_run_ids(old) if tip else []
    trees = runsref.run_trees(repo, tip, ids)
    blobs: dict[str, str] = {}
    for run_id, tree in trees.items():
        entry = repo.read_tree(tree).get("run.yaml")
        if entry:
            blobs[run_id] = entry[1]
    contents = repo.cat_blobs(sorted(set(blobs.values()))) if blobs else {}
    now = _now()
    changes: dict[str, str] = {}
    hints: dict = {}
    for run_id, sha in blobs.items():
        raw = contents[sha]
        head = yamlfmt.load(raw.decode())
        if head.get("experiment") != old:
            continue  # the index was behind this tip: the run moved already
        head["experiment"], head["updated"] = new, now
        new_raw = yamlfmt.dump(head).encode()
        new_tree = repo.edit_tree(trees[run_id], {"run.yaml": (0o100644, repo.write_blob(new_raw))})
        changes[run_id] = new_tree
        hints[trees[run_id]] = hints[new_tree] = runsref._keys_of(raw)
    return changes, hints
