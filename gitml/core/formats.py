"""Run records and their files on the runs ref (docs/formats.md is the normative spec).

A run directory ``runs/<id[:2]>/<id>/`` holds ``run.yaml``, ``params.yaml``, ``metrics.yaml``,
``tags.yaml``, ``artifacts.yaml`` and, when there is something to say, ``history.tsv`` and
``patch.diff``. This module turns a :class:`Run` into those files' bytes and back, validating
what it reads so a corrupted file is reported with its run id.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from gitml.core import yamlfmt
from gitml.core.errors import BadInputError, CorruptRunError
from gitml.core.ids import RUN_ID_RE, check_key

SCHEMA_VERSION = 1
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
FINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
MAX_PARAM_LENGTH = 6000
HISTORY_BOUND = 1 << 20  # bytes of history.tsv kept in git; past it, a downsampled series
HISTORY_HEADER = "key\tstep\ttimestamp\tvalue\n"
RUN_FILES = ("run.yaml", "params.yaml", "metrics.yaml", "tags.yaml", "artifacts.yaml")

ParamValue = str | int | float | bool | None


def iso_time(stamp: float) -> str:
    """Format a POSIX time as UTC ISO-8601 with milliseconds, e.g. ``2026-11-27T10:23:27.123Z``."""
    moment = datetime.fromtimestamp(stamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Metric:
    """One logged point of a metric."""

    key: str
    value: float
    step: int
    timestamp: str


@dataclass
class Run:
    """A run as stored on the runs ref (or in progress, with ``status == "RUNNING"``).

    ``metrics`` maps each key to its latest value; ``metric_info`` keeps that value's step and
    timestamp. ``history`` is only filled by :func:`gitml.get_run` (and ``runs show``).
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
    params: dict[str, ParamValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    metric_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    patch: str | None = None
    history: list[Metric] | None = None
    full_history: str | None = None  # sha256 of the whole history when history.tsv is sampled

    def to_dict(self, history: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (the stable ``--json`` shape documented in docs/formats.md)."""
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
    "command", "entry_point", "description", "gitml_version", "params", "metric_info", "tags",
    "artifacts",
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
    """Validate a metric value: any real number (NaN and ±inf included), never bool or text."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadInputError(f"metric {key!r} must be a number, got {type(value).__name__}: {value!r}")
    return float(value)


def param_value(key: str, value: object) -> ParamValue:
    """Normalise a param value to a YAML scalar; other objects are stored as their text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        scalar = value
    elif isinstance(value, (list, tuple, dict)):
        scalar = json.dumps(value, sort_keys=True, default=str)
    elif hasattr(value, "item") and callable(value.item):  # numpy scalars
        scalar = value.item()
        if not (scalar is None or isinstance(scalar, (str, bool, int, float))):
            scalar = str(value)
    else:
        scalar = str(value)
    if isinstance(scalar, str) and len(scalar) > MAX_PARAM_LENGTH:
        raise BadInputError(f"param {key!r} is longer than {MAX_PARAM_LENGTH} characters")
    return scalar


def parse_scalar(text: str) -> ParamValue:
    """Read a value typed on the command line (``200``, ``0.1``, ``true``, ``rf``)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none", "~"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# -- writing ----------------------------------------------------------------------------------


def run_files(run: Run, history: list[Metric] | None = None) -> dict[str, bytes]:
    """Serialise a finished run into the files of its directory on the runs ref."""
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
    out = {name: text.encode() for name, text in files.items()}
    if run.patch is not None:
        out["patch.diff"] = run.patch.encode("utf-8", "surrogateescape")
    return out


def history_tsv(points: list[Metric]) -> str:
    """All points as TSV (header, then one line per point), in logging order per key."""
    lines = [HISTORY_HEADER]
    for point in sorted(points, key=lambda m: m.key):  # stable: keeps logging order per key
        lines.append(f"{_tsv_key(point.key)}\t{point.step}\t{point.timestamp}\t{point.value!r}\n")
    return "".join(lines)


def downsample(points: list[Metric], bound: int = HISTORY_BOUND) -> list[Metric]:
    """Keep an evenly spaced subset of each key's points (first and last kept) within ``bound``."""
    total = len(history_tsv(points).encode())
    keep_ratio = bound / total
    by_key: dict[str, list[Metric]] = {}
    for point in points:
        by_key.setdefault(point.key, []).append(point)
    kept: list[Metric] = []
    for series in by_key.values():
        want = max(2, int(len(series) * keep_ratio * 0.95))
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


def _mapping(run_id: str, files: dict[str, bytes], name: str, required: bool = True) -> dict:
    raw = files.get(name)
    if raw is None:
        if required:
            raise CorruptRunError(run_id, f"{name} is missing")
        return {}
    try:
        return yamlfmt.load(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRunError(run_id, f"{name}: {exc}") from None


def parse_run(run_id: str, files: dict[str, bytes]) -> Run:
    """Read a run from its directory's files; raise :class:`CorruptRunError` on any defect."""
    head = _mapping(run_id, files, "run.yaml")
    if head.get("id") != run_id:
        raise CorruptRunError(run_id, f"run.yaml names id {head.get('id')!r}")
    if head.get("status") not in STATUSES:
        raise CorruptRunError(run_id, f"run.yaml has unknown status {head.get('status')!r}")
    for key in ("name", "experiment", "start_time"):
        if not isinstance(head.get(key), str):
            raise CorruptRunError(run_id, f"run.yaml lacks a text {key!r}")
    source = head.get("source") or {}
    if not isinstance(source, dict):
        raise CorruptRunError(run_id, "run.yaml 'source' is not a mapping")
    metrics_doc = _mapping(run_id, files, "metrics.yaml", required=False)
    metrics: dict[str, float] = {}
    info: dict[str, dict[str, Any]] = {}
    for key, entry in metrics_doc.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise CorruptRunError(run_id, f"metrics.yaml entry {key!r} has no value")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CorruptRunError(run_id, f"metric {key!r} is not a number: {value!r}")
        metrics[str(key)] = float(value)
        info[str(key)] = {k: v for k, v in entry.items() if k != "value"}
    params = _mapping(run_id, files, "params.yaml", required=False)
    tags = _mapping(run_id, files, "tags.yaml", required=False)
    artifacts = _mapping(run_id, files, "artifacts.yaml", required=False)
    patch = files.get("patch.diff")
    return Run(
        id=run_id,
        name=head["name"],
        experiment=head["experiment"],
        status=head["status"],
        start_time=head["start_time"],
        end_time=head.get("end_time"),
        updated=head.get("updated"),
        user=head.get("user"),
        source=source,
        command=head.get("command"),
        entry_point=head.get("entry_point"),
        description=head.get("description"),
        gitml_version=head.get("gitml_version"),
        params={str(k): v for k, v in params.items()},
        metrics=metrics,
        metric_info=info,
        tags={str(k): str(v) for k, v in tags.items()},
        artifacts={str(k): v for k, v in artifacts.items()},
        patch=patch.decode("utf-8", "surrogateescape") if patch is not None else None,
    )


def parse_history(run_id: str, raw: bytes) -> tuple[list[Metric], str | None]:
    """Read ``history.tsv``: the points and, when sampled, the sha256 of the full history."""
    points: list[Metric] = []
    full = None
    for number, line in enumerate(raw.decode().splitlines(), 1):
        if line.startswith("# full history: sha256:"):
            full = line.split("sha256:", 1)[1].split()[0]
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
    if not RUN_ID_RE.match(run_id):
        raise BadInputError(f"not a run id: {run_id!r}")
    return run_id


def validate_keys(mapping: dict[str, Any], kind: str) -> None:
    for key in mapping:
        check_key(key, kind)
