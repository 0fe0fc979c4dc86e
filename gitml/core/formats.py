"""Run records and their files on the runs ref (docs/formats.md is the normative spec).

A run directory ``runs/<id[:2]>/<id>/`` holds ``run.yaml``, ``params.yaml``, ``metrics.yaml``,
``tags.yaml``, ``artifacts.yaml`` and, when there is something to say, ``history.tsv`` and
``patch.diff``. This module turns a :class:`Run` into those files' bytes and back, validating
what it reads so a corrupted file is reported with its run id.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from gitml.core import yamlfmt
from gitml.core.errors import BadInputError, CorruptRunError
from gitml.core.ids import (
    COMMIT_RE,
    RUN_ID_RE,
    check_artifact_path,
    check_digest,
    check_disjoint_paths,
    check_key,
    check_name,
)

SCHEMA_VERSION = 1
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
FINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
MAX_PARAM_LENGTH = 6000
HISTORY_BOUND = 1 << 20  # bytes of history.tsv kept in git; past it, a downsampled series
HISTORY_HEADER = "key\tstep\ttimestamp\tvalue\n"
RUN_FILES = ("run.yaml", "params.yaml", "metrics.yaml", "tags.yaml", "artifacts.yaml", "inputs.yaml")
# Bounds a reader enforces on what a runs ref holds (anyone with push rights writes it), and a
# writer enforces on what it commits, so a run gitml wrote is always one gitml can read.
MAX_RECORD_BYTES = 4 << 20  # each YAML file of a run
MAX_HISTORY_BYTES = HISTORY_BOUND + (64 << 10)  # the sampled history plus its header lines
MAX_PATCH_BYTES = 256 << 20
MAX_FILE_BYTES = {name: MAX_RECORD_BYTES for name in RUN_FILES} | {
    "history.tsv": MAX_HISTORY_BYTES, "patch.diff": MAX_PATCH_BYTES}
# What inputs.yaml holds for each dataset (docs/formats.md, "inputs.yaml"): text, or counts.
DATASET_TEXT = ("digest", "source_type", "source", "schema")
DATASET_COUNTS = ("num_rows", "num_elements")
KNOWN_FILES = (*RUN_FILES, "history.tsv", "patch.diff")  # any other file in a run folder is ignored
ARTIFACT_KINDS = ("file", "dir")
_TEXT_FIELDS = ("end_time", "updated", "user", "command", "entry_point", "description", "gitml_version")
_TIME_FIELDS = ("start_time", "end_time", "updated")

ParamValue = str | int | float | bool | None


def iso_time(stamp: float) -> str:
    """Format a POSIX time as UTC ISO-8601 with milliseconds, e.g. ``2026-11-27T10:23:27.123Z``.

    Args:
        stamp: seconds since the epoch; below a millisecond is cut off, not rounded.

    Returns:
        The time as text, always ending in ``Z``.
    """
    moment = datetime.fromtimestamp(stamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float:
    """Read an ISO-8601 time as written in run records (``Z`` or an offset).

    Args:
        text: the time, e.g. ``2026-11-27T10:23:27.123Z``.

    Returns:
        Seconds since the epoch; a time without an offset is taken as local time.

    Raises:
        ValueError: the text is not an ISO-8601 time.
    """
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Metric:
    """One logged point of a metric: key, value, step and UTC ISO-8601 timestamp."""

    key: str
    value: float
    step: int
    timestamp: str


@dataclass
class Run:
    """A run as stored on the runs ref (or in progress, with ``status == "RUNNING"``).

    ``metrics`` maps each key to its latest value; ``metric_info`` keeps that value's step and
    timestamp. ``history`` is only filled by :func:`gitml.get_run` (and ``runs show``).
    ``warnings`` is what :func:`gitml.commit_run` found worth saying about the run it just
    committed (an empty run, params edited after the metrics were written); it is not stored.
    """

    id: str
    name: str
    experiment: str
    status: str
    start_time: str
    end_time: str | None = None
    updated: str | None = None
    user: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    entry_point: str | None = None
    description: str | None = None
    gitml_version: str | None = None
    # what `gitml run` ran: {name, uri, version, parameters, environment: {manager, hash},
    # exit_code, duration} (docs/formats.md, run.yaml); None for other runs
    project: dict[str, Any] | None = None
    params: dict[str, ParamValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    metric_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # datasets the run read: {context: {dataset name: {digest, source_type, source, schema,
    # num_rows, num_elements}}} (log_input)
    inputs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    patch: str | None = None
    history: list[Metric] | None = None
    full_history: str | None = None  # sha256 of the whole history when history.tsv is sampled
    # What committing this run warned about (never stored; empty on a run read back).
    warnings: list[str] = field(default_factory=list, compare=False, repr=False)

    def to_dict(self, history: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (the stable ``--json`` shape documented in docs/formats.md).

        Args:
            history: also give ``history`` (every logged point) and ``full_history``.

        Returns:
            The run's fields, NaN and infinities as the strings ``"nan"``, ``"inf"``, ``"-inf"``,
            and ``patch`` as a bool: whether the work tree was dirty at start.
        """
        # Built by hand, not with dataclasses.asdict: this runs once per run in an index rebuild.
        data = {name: getattr(self, name) for name in _DICT_FIELDS}
        data["metrics"] = {key: _json_number(value) for key, value in self.metrics.items()}
        data["params"] = {
            key: _json_number(value) if isinstance(value, float) else value
            for key, value in self.params.items()
        }
        # A patch is recorded exactly when the tree was dirty; index rows keep no patch text.
        data["patch"] = self.patch is not None or bool(self.source.get("dirty"))
        if history:
            data["history"] = [
                {"key": m.key, "step": m.step, "timestamp": m.timestamp, "value": _json_number(m.value)}
                for m in self.history or []
            ]
            data["full_history"] = self.full_history
        return data


_DICT_FIELDS = (
    "id", "name", "experiment", "status", "start_time", "end_time", "updated", "user", "source",
    "command", "entry_point", "description", "gitml_version", "project", "params", "metric_info", "tags",
    "artifacts", "inputs",
)


def _json_number(value: float) -> float | str:
    # JSON has no NaN/Infinity; scripts get the YAML spelling as a string instead.
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


# -- values -----------------------------------------------------------------------------------


def metric_value(key: str, value: object) -> float:
    """Validate a metric value: any real number (NaN and ±inf included), never bool or text.

    Args:
        key: the metric's key, for the error.
        value: what was logged (a numpy scalar counts as a real number).

    Returns:
        The value as a float.

    Raises:
        BadInputError: ``value`` is a bool, text or anything but a real number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadInputError(f"metric {key!r} must be a number, got {type(value).__name__}: {_short(value)}")
    try:
        return float(value)
    except OverflowError:  # an int past 1.8e308 rounds to an infinity, as the text "1e999" does
        return math.inf if value > 0 else -math.inf


def check_step(step: object) -> int:
    """A metric step: an integer (numpy's too) within 64 bits, as MLflow's steps are.

    Raises:
        BadInputError: anything else.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise BadInputError(f"step must be an integer, got {step!r}")
    step = int(step)
    if not -(2**63) <= step < 2**63:
        raise BadInputError(f"step {step} does not fit in 64 bits, as MLflow's steps do")
    return step


def check_timestamp_ms(timestamp: object) -> int:
    """A metric timestamp: integer milliseconds since 1970-01-01 UTC, before the year 10000.

    Raises:
        BadInputError: anything else.
    """
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise BadInputError(f"timestamp must be an integer of milliseconds since 1970, got {timestamp!r}")
    timestamp = int(timestamp)
    if not 0 <= timestamp <= 253_402_300_799_999:
        raise BadInputError(f"timestamp {timestamp} is not a time between 1970 and the year 9999",
                            hint="give milliseconds since 1970-01-01 UTC, e.g. int(time.time() * 1000)")
    return timestamp


def _short(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python turns into text
        return "(too long to show)"
    return text if len(text) <= 80 else text[:77] + "..."


def _numpy_scalar(value: object) -> ParamValue:
    """A numpy-style scalar (``ndim == 0`` with ``.item()``) as the Python value whose ``str`` is its own.

    MLflow stores ``str(value)``: ``np.float32(0.1)`` is ``0.1``, while ``.item()`` gives the
    float 0.10000000149011612. The value kept is the Python scalar that writes the same text
    (``0.1``), or that text itself; any other object (an array, a list, a dict …) is its text.
    """
    text = str(value)
    if getattr(value, "ndim", None) != 0 or not callable(getattr(value, "item", None)):
        return text
    try:
        item = value.item()
    except (TypeError, ValueError):
        return text
    if isinstance(item, float) and not isinstance(item, bool):
        try:
            item = float(text)
        except ValueError:
            return text
    if item is None or isinstance(item, (str, bool, int, float)):
        return item if str(item) == text else text
    return text


def param_value(key: str, value: object) -> ParamValue:
    """Normalise a param value to a YAML scalar; other objects are stored as their text.

    Args:
        key: the param's key, for the error.
        value: what was logged: a scalar is kept, a numpy scalar becomes the Python value
            that writes the same text (``np.float32(0.1)`` is ``0.1``), anything else (a list,
            tuple, dict, array …) its ``str(value)``: always the text MLflow stores for it
            (``"{'a': 1}"``, ``[1 2]``), so a search finds it as an MLflow user writes it.

    Returns:
        None, a bool, an int, a float or a string.

    Raises:
        BadInputError: the text is longer than :data:`MAX_PARAM_LENGTH` characters, or an int
            has more digits than Python writes as text (4300 by default).
    """
    if value is None or type(value) in (str, bool, int, float):
        scalar = value
    elif isinstance(value, (str, bool, int, float)):  # a subclass: np.float64, np.str_, an IntEnum …
        scalar = next(kind(value) for kind in (bool, int, float, str) if isinstance(value, kind))
    else:
        scalar = _numpy_scalar(value)
    if isinstance(scalar, str) and len(scalar) > MAX_PARAM_LENGTH:
        raise BadInputError(f"param {key!r} is longer than {MAX_PARAM_LENGTH} characters")
    if isinstance(scalar, int) and not isinstance(scalar, bool):
        try:
            int.__repr__(scalar)
        except ValueError:  # it could be neither written to params.yaml nor read back
            raise BadInputError(f"param {key!r} is an int of more digits than Python writes as text",
                                hint="log it as text if it must be kept") from None
    return scalar


# The one grammar for a value written as text (``-p``/``-m``, plain scalars in YAML params and
# metrics files): YAML 1.2's core schema, plus the words Python and JSON writers use for NaN
# and the infinities. docs/formats.md, "Values written as text", is its specification.
_NULLS = frozenset({"null", "Null", "NULL", "~"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_DECIMAL_INT = re.compile(r"[-+]?[0-9]+")
_OCTAL_INT = re.compile(r"0o[0-7]+")
_HEX_INT = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {
    **{word: math.inf for word in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{word: -math.inf for word in ("-.inf", "-.Inf", "-.INF")},
    **{word: math.nan for word in (".nan", ".NaN", ".NAN")},
}
_FLOAT_WORDS = {"nan": math.nan, "inf": math.inf, "infinity": math.inf}


def parse_scalar(text: str) -> ParamValue:
    """Read a value written as text: ``-p``/``-m`` values and plain scalars of YAML files.

    The grammar is YAML 1.2's core schema, so a value reads the same on the command line, in a
    params or metrics file written by any YAML 1.2 tool, and in ``gitml.yaml``'s files:

    * ``null``, ``Null``, ``NULL``, ``~`` are None; ``true``/``false`` (also ``True``,
      ``TRUE``, ``False``, ``FALSE``) are bools; ``yes``, ``no``, ``on``, ``off`` are text;
    * ``[-+]?[0-9]+`` is a decimal int (``007`` is 7), ``0o17`` an octal and ``0x1F`` a hex int;
      ``1_000``, ``0b101`` and ``1:30`` are text;
    * ``1e-5``, ``1E5``, ``.5``, ``5.``, ``-2.5e+3`` are floats (beyond 1.8e308, ``±inf``), as
      are ``.inf``, ``-.inf``, ``.nan`` and, gitml's one addition, ``nan``, ``inf``,
      ``infinity`` with an optional sign in any case (as Python and JSON writers spell them);
    * anything else, the empty text and an int of more than 4300 digits (more than Python
      turns into a number) included, is the text unchanged.

    Args:
        text: the value as written.

    Returns:
        None, a bool, an int, a float or the text unchanged.
    """
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    try:
        if _DECIMAL_INT.fullmatch(text):
            return int(text)
        if _OCTAL_INT.fullmatch(text):
            return int(text[2:], 8)
        if _HEX_INT.fullmatch(text):
            return int(text[2:], 16)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        return text
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    word = text.lower()
    sign = -1.0 if word[:1] == "-" else 1.0
    word = word[1:] if word[:1] in "+-" else word
    if word in _FLOAT_WORDS:
        return math.nan if word == "nan" else sign * _FLOAT_WORDS[word]
    return text


# -- writing ----------------------------------------------------------------------------------


def run_files(run: Run, history: list[Metric] | None = None) -> dict[str, bytes]:
    """Serialise a run into the files of its directory on the runs ref (docs/formats.md).

    Args:
        run: the run; its ``patch`` becomes ``patch.diff`` when set.
        history: unused: ``history.tsv`` is written by the caller (see :func:`history_tsv`).

    Returns:
        ``{file name: bytes}`` for ``run.yaml``, ``params.yaml``, ``metrics.yaml``,
        ``tags.yaml``, ``artifacts.yaml`` and maybe ``patch.diff``, in canonical YAML.

    Raises:
        BadInputError: a file would be over the bound every reader enforces
            (:data:`MAX_FILE_BYTES`).
        TypeError: a value is of a type canonical YAML cannot hold.
    """
    head = {
        "schema": SCHEMA_VERSION,
        "id": run.id,
        "name": run.name,
        "experiment": run.experiment,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "updated": run.updated,
        "user": run.user,
        "source": run.source,
        "command": run.command,
        "gitml_version": run.gitml_version,
    }
    if run.entry_point is not None:
        head["entry_point"] = run.entry_point
    if run.description is not None:
        head["description"] = run.description
    if run.project is not None:
        head["project"] = run.project
    metrics = {
        key: {"value": value, **run.metric_info.get(key, {})} for key, value in run.metrics.items()
    }
    files = {
        "run.yaml": yamlfmt.dump(head),
        "params.yaml": yamlfmt.dump(run.params),
        "metrics.yaml": yamlfmt.dump(metrics),
        "tags.yaml": yamlfmt.dump(run.tags),
        "artifacts.yaml": yamlfmt.dump(run.artifacts),
    }
    if run.inputs:  # only when the run read a dataset: a run without keeps the files it always had
        files["inputs.yaml"] = yamlfmt.dump(run.inputs)
    out = {name: text.encode() for name, text in files.items()}
    if run.patch is not None:
        out["patch.diff"] = run.patch.encode("utf-8", "surrogateescape")
    for name, data in out.items():
        if len(data) > MAX_FILE_BYTES[name]:
            raise BadInputError(f"run {run.id}: {name} would be {len(data)} bytes, over the "
                                f"{MAX_FILE_BYTES[name]}-byte bound every reader enforces",
                                hint="log fewer or shorter values; put large text in an artifact")
    return out


def history_tsv(points: list[Metric]) -> str:
    """All points as TSV (header, then one line per point), in logging order per key.

    Args:
        points: the metric points, in logging order.

    Returns:
        The text of ``history.tsv``: ``key``, ``step``, ``timestamp``, ``value`` columns, keys
        sorted; a tab in a key is written as a backslash and ``t``, a backslash as two.
    """
    lines = [HISTORY_HEADER]
    for point in sorted(points, key=lambda m: m.key):  # stable: keeps logging order per key
        lines.append(f"{_tsv_key(point.key)}\t{point.step}\t{point.timestamp}\t{point.value!r}\n")
    return "".join(lines)


def downsample(points: list[Metric], bound: int = HISTORY_BOUND) -> list[Metric]:
    """Keep an evenly spaced subset of each key's points (first and last kept) within ``bound``.

    Args:
        points: every logged point, in logging order.
        bound: the size in bytes the subset's :func:`history_tsv` text should stay under.

    The budget of points is shared out fairly, shortest series first: a series within its share
    (five points of a validation metric beside a million of a loss) is kept whole, and what it
    leaves goes to the long ones.

    Returns:
        The points kept, at least two per key, grouped by key in first-logged order.
    """
    total = len(history_tsv(points).encode())
    budget = len(points) * bound / total * 0.95  # points that fit, at the history's mean line length
    by_key: dict[str, list[Metric]] = {}
    for point in points:
        by_key.setdefault(point.key, []).append(point)
    wants: dict[str, int] = {}
    left = len(by_key)
    for key in sorted(by_key, key=lambda k: len(by_key[k])):
        share = budget / left
        wants[key] = min(len(by_key[key]), max(2, int(share)))
        budget -= wants[key]
        left -= 1
    kept: list[Metric] = []
    for key, series in by_key.items():
        want = wants[key]
        if want >= len(series):
            kept.extend(series)
            continue
        stride = (len(series) - 1) / (want - 1)
        kept.extend(series[round(i * stride)] for i in range(want))
    return kept


_TSV_ESCAPE = re.compile(r"\\(t|\\)")


def _tsv_key(key: str) -> str:
    return key.replace("\\", "\\\\").replace("\t", "\\t")


# -- reading ----------------------------------------------------------------------------------


class TooLarge(bytes):
    """Stands for a file that a bulk reader did not read because it is over its bound."""

    def __new__(cls, size: int) -> TooLarge:
        """An empty bytes value that remembers ``size``, the file's real size in bytes."""
        obj = super().__new__(cls, b"")
        obj.size = size
        return obj


class NotAFile(TooLarge):
    """Stands for a run file that is not a regular file (a folder, a symlink, a submodule)."""


def check_file_size(run_id: str, name: str, raw: bytes) -> None:
    """Refuse a run file over its bound (:data:`MAX_FILE_BYTES`) before anything parses it.

    Args:
        run_id: the run, for the error.
        name: the file's name in the run folder (``metrics.yaml``).
        raw: its bytes, or the :class:`TooLarge` / :class:`NotAFile` a bulk reader put there.

    Raises:
        CorruptRunError: the file is over its bound or not a regular file.
    """
    if isinstance(raw, NotAFile):
        raise CorruptRunError(run_id, f"{name} is not a regular file")
    size = raw.size if isinstance(raw, TooLarge) else len(raw)
    bound = MAX_FILE_BYTES.get(name, MAX_RECORD_BYTES)
    if size > bound:
        raise CorruptRunError(run_id, f"{name} is {size} bytes, over the {bound}-byte bound")


def _mapping(run_id: str, files: dict[str, bytes], name: str, required: bool = True) -> dict:
    raw = files.get(name)
    if raw is None:
        if required:
            raise CorruptRunError(run_id, f"{name} is missing")
        return {}
    check_file_size(run_id, name, raw)
    try:
        return yamlfmt.load(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRunError(run_id, f"{name}: {exc}") from None


def _bad(run_id: str, message: str) -> CorruptRunError:
    return CorruptRunError(run_id, message)


# Keys already found good: runs repeat the same few keys, and an index rebuild checks each of
# them once, not once per run. Bounded, so a stranger's many distinct keys cannot grow it.
_GOOD_KEYS: set[str] = set()
_GOOD_KEYS_BOUND = 1 << 16


def _checked_key(run_id: str, name: str, key: object) -> str:
    if key.__class__ is str and key in _GOOD_KEYS:
        return key
    try:
        check_key(key, f"{name} key")
    except BadInputError as exc:
        raise _bad(run_id, exc.message) from None
    if len(_GOOD_KEYS) < _GOOD_KEYS_BOUND:
        _GOOD_KEYS.add(key)
    return key


def _scalar_value(value: object) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


def _head(run_id: str, files: dict[str, bytes]) -> dict:
    head = _mapping(run_id, files, "run.yaml")
    if head.get("id") != run_id:
        raise _bad(run_id, f"run.yaml names id {str(head.get('id'))[:40]!r}")
    if head.get("status") not in STATUSES:
        raise _bad(run_id, f"run.yaml has unknown status {str(head.get('status'))[:20]!r}")
    for key in ("name", "experiment", "start_time"):
        if not isinstance(head.get(key), str):
            raise _bad(run_id, f"run.yaml lacks a text {key!r}")
    for key in _TEXT_FIELDS:
        if not (head.get(key) is None or isinstance(head.get(key), str)):
            raise _bad(run_id, f"run.yaml {key!r} is not text")
    for key in ("name", "experiment"):
        try:
            check_name(head[key], key)
        except BadInputError:
            raise _bad(run_id, f"run.yaml {key!r} is empty, too long or has a control character") from None
    if len(head.get("user") or "") > 1024:  # shown escaped: control characters never reach a terminal
        raise _bad(run_id, "run.yaml 'user' is too long")
    for key in _TIME_FIELDS:
        if head.get(key) is not None:
            try:
                parse_time(head[key])
            except (ValueError, OverflowError, OSError):
                raise _bad(run_id, f"run.yaml {key!r} is not an ISO-8601 time") from None
    source = head.get("source") or {}
    if not isinstance(source, dict) or not all(_scalar_value(v) for v in source.values()):
        raise _bad(run_id, "run.yaml 'source' is not a mapping of plain values")
    commit = source.get("commit")
    if commit and not (isinstance(commit, str) and COMMIT_RE.match(commit)):
        raise _bad(run_id, "run.yaml source.commit is not a commit id")
    branch = source.get("branch")
    if branch is not None and not (isinstance(branch, str) and branch.isprintable() and len(branch) <= 1024):
        raise _bad(run_id, "run.yaml source.branch is not a branch name")
    head["source"] = source
    return head


def _artifacts(run_id: str, files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """``artifacts.yaml``, every name a safe relative path and every entry well formed."""
    out: dict[str, dict[str, Any]] = {}
    for name, entry in _mapping(run_id, files, "artifacts.yaml", required=False).items():
        why = "not its normal form"
        try:
            safe = isinstance(name, str) and check_artifact_path(name) == name
        except BadInputError as exc:
            safe, why = False, exc.message.split(": ", 1)[0]
        if not safe:
            raise _bad(run_id, f"artifacts.yaml names an unsafe path {str(name)[:80]!r} ({why})")
        if not isinstance(entry, dict):
            raise _bad(run_id, f"artifacts.yaml entry {name!r} is not a mapping")
        if entry.get("kind") not in ARTIFACT_KINDS:
            raise _bad(run_id, f"artifacts.yaml entry {name!r} has no kind file or dir")
        try:
            check_digest(entry.get("sha256"), f"artifacts.yaml entry {name!r}")
        except BadInputError as exc:
            raise _bad(run_id, exc.message) from None
        for key in ("size", "files"):
            value = entry.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad(run_id, f"artifacts.yaml entry {name!r} has a bad {key}")
        out[name] = entry
    try:
        check_disjoint_paths(list(out), "artifacts.yaml")
    except BadInputError as exc:
        raise _bad(run_id, exc.message) from None
    return out


def parse_run(run_id: str, files: dict[str, bytes]) -> Run:
    """Read a run from its directory's files; raise :class:`CorruptRunError` on any defect.

    Everything is checked as if written by a stranger (docs/formats.md, "Reading hostile runs"):
    the run id, file sizes, YAML without anchors or aliases, the types of every field, commit
    ids, artifact names (safe relative paths) and digests (64 hex). A run that fails any check
    is refused whole, so nothing downstream ever sees a half-checked record.

    Args:
        run_id: the run folder's name, which must be a full run id.
        files: ``{file name: bytes}`` of the folder (``run.yaml`` is required; the other files
            may be missing).

    Returns:
        The run, without ``history`` (see :func:`parse_history`).

    Raises:
        CorruptRunError: any defect, naming the run and the file.
    """
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise CorruptRunError(str(run_id)[:80], "folder name is not a run id (32 lowercase hex)")
    head = _head(run_id, files)
    metrics_doc = _mapping(run_id, files, "metrics.yaml", required=False)
    metrics: dict[str, float] = {}
    info: dict[str, dict[str, Any]] = {}
    for key, entry in metrics_doc.items():
        key = _checked_key(run_id, "metrics.yaml", key)
        if not isinstance(entry, dict) or "value" not in entry:
            raise _bad(run_id, f"metrics.yaml entry {key!r} has no value")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(run_id, f"metric {key!r} is not a number")
        step = entry.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, int) or not -(2**63) <= step < 2**63 or not (
                entry.get("timestamp") is None or isinstance(entry.get("timestamp"), str)):
            raise _bad(run_id, f"metric {key!r} has a bad step or timestamp")
        try:
            metrics[key] = float(value)
        except OverflowError:
            raise _bad(run_id, f"metric {key!r} is too large for a float") from None
        info[key] = {k: v for k, v in entry.items() if k != "value"}
    params = _mapping(run_id, files, "params.yaml", required=False)
    for key, value in params.items():
        _checked_key(run_id, "params.yaml", key)
        if not _scalar_value(value):
            raise _bad(run_id, f"param {key!r} is not a plain value")
    tags = _mapping(run_id, files, "tags.yaml", required=False)
    for key, value in tags.items():
        _checked_key(run_id, "tags.yaml", key)
        if not _scalar_value(value):
            raise _bad(run_id, f"tag {key!r} is not a plain value")
    artifacts = _artifacts(run_id, files)
    inputs = _inputs(run_id, files)
    patch = files.get("patch.diff")
    if patch is not None:
        check_file_size(run_id, "patch.diff", patch)
    return Run(
        id=run_id,
        name=head["name"],
        experiment=head["experiment"],
        status=head["status"],
        start_time=head["start_time"],
        end_time=head.get("end_time"),
        updated=head.get("updated"),
        user=head.get("user"),
        source=head["source"],
        command=head.get("command"),
        entry_point=head.get("entry_point"),
        description=head.get("description"),
        gitml_version=head.get("gitml_version"),
        project=_project(run_id, head.get("project")),
        params=dict(params),
        metrics=metrics,
        metric_info=info,
        tags={k: v if isinstance(v, str) else _tag_text(v) for k, v in tags.items()},
        artifacts=artifacts,
        inputs=inputs,
        patch=patch.decode("utf-8", "surrogateescape") if patch is not None else None,
    )


PROJECT_TEXT = ("name", "uri", "version")
MAX_PROJECT_PARAMS = 256


def _project(run_id: str, block: object) -> dict[str, Any] | None:
    """``run.yaml``'s ``project`` block, checked.

    Text fields, a parameters mapping of text, the environment's manager and hash, an integer
    exit code, a duration in seconds.
    """
    if block is None:
        return None
    if not isinstance(block, dict):
        raise _bad(run_id, "run.yaml 'project' is not a mapping")
    out: dict[str, Any] = {}
    for key in PROJECT_TEXT:
        value = block.get(key)
        if not (value is None or isinstance(value, str) and len(value) <= 4096):
            raise _bad(run_id, f"run.yaml project {key!r} is not text")
        out[key] = value
    params = block.get("parameters") or {}
    if not isinstance(params, dict) or len(params) > MAX_PROJECT_PARAMS or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= 6000 for k, v in params.items()):
        raise _bad(run_id, "run.yaml project 'parameters' is not a mapping of text")
    out["parameters"] = dict(params)
    environment = block.get("environment") or {}
    if not isinstance(environment, dict) or not all(
            isinstance(environment.get(k), str) and len(environment[k]) <= 64 for k in ("manager", "hash")):
        raise _bad(run_id, "run.yaml project 'environment' lacks a manager and a hash")
    out["environment"] = {"manager": environment["manager"], "hash": environment["hash"]}
    code = block.get("exit_code")
    if not (code is None or type(code) is int and -(2**31) <= code < 2**31):
        raise _bad(run_id, "run.yaml project 'exit_code' is not an integer")
    out["exit_code"] = code
    duration = block.get("duration")
    if not (duration is None or isinstance(duration, (int, float)) and not isinstance(duration, bool)
            and math.isfinite(duration) and duration >= 0):
        raise _bad(run_id, "run.yaml project 'duration' is not a number of seconds")
    out["duration"] = duration
    return out


def dataset_problem(entry: object) -> str | None:
    """What is wrong with one dataset entry of ``inputs.yaml`` (``has no digest``), or None.

    The digest is text; ``source_type``, ``source`` and ``schema`` are text or null;
    ``num_rows`` and ``num_elements`` non-negative integers or null. The writer
    (:func:`gitml.log_input`) checks an entry with this before logging it, as readers do.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
        return "has no digest"
    for key, value in entry.items():
        if key in DATASET_TEXT and not (value is None or isinstance(value, str)) or (
                key in DATASET_COUNTS and not (value is None or type(value) is int and value >= 0)):
            return f"has a bad {key}"
    return None


def _inputs(run_id: str, files: dict[str, bytes]) -> dict[str, dict[str, dict[str, Any]]]:
    """``inputs.yaml``, checked: contexts, then dataset names, then each dataset's fields."""
    doc = _mapping(run_id, files, "inputs.yaml", required=False)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for context, datasets in doc.items():
        context = _checked_key(run_id, "inputs.yaml", context)
        if not isinstance(datasets, dict):
            raise _bad(run_id, f"inputs.yaml context {context!r} is not a mapping")
        for name, entry in datasets.items():
            name = _checked_key(run_id, "inputs.yaml", name)
            problem = dataset_problem(entry)
            if problem:
                raise _bad(run_id, f"inputs.yaml dataset {name!r} {problem}")
            out.setdefault(context, {})[name] = {k: v for k, v in entry.items() if k in DATASET_TEXT + DATASET_COUNTS}
    return out


def _tag_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def parse_history(run_id: str, raw: bytes) -> tuple[list[Metric], str | None]:
    """Read ``history.tsv``: the points and, when sampled, the sha256 of the full history.

    Args:
        run_id: the run, for errors.
        raw: the file's bytes.

    Returns:
        ``(points in file order, full history's sha256 hex or None)``; the digest is given when
        the file holds a downsampled series and the whole one is in the artifact store.

    Raises:
        CorruptRunError: the file is too large, not UTF-8, or has a malformed line or digest.
    """
    points: list[Metric] = []
    full = None
    check_file_size(run_id, "history.tsv", raw)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise CorruptRunError(run_id, "history.tsv is not UTF-8") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# full history: sha256:"):
            full = (line.split("sha256:", 1)[1].split() or [""])[0]
            try:
                check_digest(full, "history.tsv")
            except BadInputError as exc:
                raise CorruptRunError(run_id, exc.message) from None
            continue
        if not line or line.startswith("#") or line + "\n" == HISTORY_HEADER:
            continue
        cells = line.split("\t")
        if len(cells) != 4:
            raise CorruptRunError(run_id, f"history.tsv line {number} has {len(cells)} cells")
        key = _TSV_ESCAPE.sub(lambda m: "\t" if m.group(1) == "t" else "\\", cells[0])
        try:
            points.append(Metric(key, float(cells[3]), int(cells[1]), cells[2]))
        except ValueError:
            raise CorruptRunError(run_id, f"history.tsv line {number} is malformed") from None
    return points, full


def validate_run_id(run_id: str) -> str:
    """Check a full run id (see :func:`gitml.core.ids.check_run_id` for untrusted values).

    Args:
        run_id: the id, a string.

    Returns:
        ``run_id`` unchanged.

    Raises:
        BadInputError: it is not 32 lowercase hex digits.
    """
    if not RUN_ID_RE.match(run_id):
        raise BadInputError(f"not a run id: {run_id!r}")
    return run_id


def validate_keys(mapping: dict[str, Any], kind: str) -> None:
    """Check every key of ``mapping`` with :func:`gitml.core.ids.check_key`.

    Args:
        mapping: params, metrics or tags.
        kind: what the keys are, for the error (``"param key"``).

    Raises:
        BadInputError: a key is empty, too long, has a control character or a path segment.
    """
    for key in mapping:
        check_key(key, kind)
