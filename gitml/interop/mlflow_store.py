"""Reading MLflow's tracking stores into plain records, without MLflow installed.

Three sources, one shape (:class:`SourceExperiment`, :class:`SourceRun`, :class:`SourceVersion`):

* a **file store** (an ``mlruns/`` folder or ``file:///…``), read as MLflow 3.x's
  ``mlflow/store/tracking/file_store.py`` writes it: ``<experiment id>/meta.yaml``, and per run
  ``<experiment id>/<run id>/meta.yaml`` plus one file per param, tag and metric (a metric file
  holds one point per line, ``<timestamp ms> <value> [<step> [<dataset name> <digest>]]``), the
  run's files under ``artifacts/``, its models (MLflow 3's logged models) under
  ``<experiment id>/models/<model id>/``, the registry under ``models/<name>/``;
* a **sqlite store** (``sqlite:///path/mlflow.db``), read with :mod:`sqlite3` from the tables of
  ``mlflow/store/tracking/dbmodels/models.py`` (``experiments``, ``runs``, ``metrics``,
  ``params``, ``tags``, ``logged_models``, ``registered_models``, ``model_versions``,
  ``registered_model_aliases``); the schema's ``alembic_version`` must be one MLflow made;
* a **tracking server** (``http://host:port``), through MLflow's REST API (``/api/2.0/mlflow/…``)
  with :mod:`urllib`.

Everything read is treated as hostile: a run the reader cannot take whole comes back with its
``problem`` set (and is never half-read); a store that is not one of these, or of a version this
module does not know, raises :class:`~gitml.core.errors.BadInputError` before anything is read.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gitml.core import yamlfmt
from gitml.core.errors import BadInputError, GitmlError, RemoteError
from gitml.core.ids import check_artifact_path

#: MLflow's run statuses; the file store writes them as these numbers (``RunStatus`` enum).
FILE_STATUSES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
#: Every ``alembic_version`` of MLflow's sqlite schema up to MLflow 3.17
#: (``mlflow/store/db_migrations/versions/*.py``, their ``revision``).
KNOWN_SCHEMAS = frozenset("""
0584bdc529eb 0a8213491aaa 0c779009ac13 17e22815139b 181f10493468 1971f2d9a75b 1a0cddfcaa16 1b5f0d9ad7c1
1bd49d398cd23 27a6a02d2cf1 2b4d017a5e9b 2c33131f4dae 2d6e25af4d3e 3500859a5d39 39d1c3be5f05 3da73c924c2f
400f98739977 4465047574b1 451aebb31d03 534353b11cbc 5b0e9adcef9c 5d2d30f0abce 6953534de441 6f8d9c3b2a1e
71994744cf8e 728d730b5ebd 75868b020152 76601a5f987d 770bee3ae1dd 7ac759974ad8 7d34483879f0 7f2a7d5fae7d
84291f40a231 867495a8f9d4 89d3d66ed43f 89d4b8295536 90e64c465722 97727af70f4d a1b2c3d4e5f6 a5b4c3d2e1f0
a8b9c0d1e2f3 a8c4a736bde6 acf3f17fdcc7 ae8bbe7743c9 b7c8d9e0f1a2 b7e2c1a4d9f3 b7e4c1a90f23 bd07f7e963c5
bda7b8c39065 bf29a5ff90ea c1d2e3f4a5b6 c3d6457b6d8a c3d9e7f1a2b4 c48cb773bb87 c8d9e0f1a2b3 c9d4e5f6a7b8
cbc13b556ace cc1f77228345 cfd24bdc0731 d0e1f2a3b4c5 d3e4f5a6b7c8 da6fb0208061 dc11669786a5 de4033877273
df50e92ffc5e e1f2a3b4c5d6 f5a4f2784254
""".split())
#: The columns read from each table (a schema without them is not one this reader knows).
_COLUMNS = {
    "experiments": ("experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time"),
    "experiment_tags": ("key", "value", "experiment_id"),
    "runs": ("run_uuid", "name", "status", "start_time", "end_time", "user_id", "lifecycle_stage",
             "artifact_uri", "experiment_id", "entry_point_name", "source_name"),
    "metrics": ("key", "value", "timestamp", "run_uuid", "step", "is_nan"),
    "params": ("key", "value", "run_uuid"),
    "tags": ("key", "value", "run_uuid"),
}
MAX_META_BYTES = 1 << 20  # a meta.yaml, a param or tag file: MLflow writes a few KiB at most
MAX_METRIC_FILE_BYTES = 256 << 20


@dataclass
class SourceExperiment:
    """An MLflow experiment.

    Attributes:
        id: MLflow's experiment id (text: ``"0"``, ``"255488390358177400"``).
        name: its name.
        artifact_location: where its runs' artifacts go, as MLflow wrote it, or None.
        creation_time: milliseconds since 1970, or None.
        lifecycle_stage: ``active`` or ``deleted``.
        tags: ``{key: text}`` (``mlflow.note.content`` is its description).
    """

    id: str
    name: str
    artifact_location: str | None = None
    creation_time: int | None = None
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceRun:
    """An MLflow run, whole, as its store holds it.

    Attributes:
        run_id: MLflow's id (32 hex digits for any MLflow since 0.x).
        experiment_id: MLflow's experiment id.
        name: the run name (``runs.name`` / meta.yaml ``run_name``), or None.
        status: ``RUNNING``, ``SCHEDULED``, ``FINISHED``, ``FAILED`` or ``KILLED``.
        start_time, end_time: milliseconds since 1970, or None.
        user: MLflow's ``user_id``, or None.
        lifecycle_stage: ``active`` or ``deleted``.
        artifact_uri: where the run's artifacts are, as MLflow wrote it.
        entry_point: ``entry_point_name`` (MLflow Projects), or None.
        params: ``{key: text}``.
        tags: ``{key: text}``.
        metrics: every point, ``(key, value, step, timestamp ms)``, grouped by key in
            code-point order, each key's points in the store's order.
        models: MLflow 3's logged models of the run, ``(name, artifact location)``.
        problem: why the run cannot be read whole (then the other fields may be partial), or None.
    """

    run_id: str
    experiment_id: str
    name: str | None = None
    status: str = "FINISHED"
    start_time: int | None = None
    end_time: int | None = None
    user: str | None = None
    lifecycle_stage: str = "active"
    artifact_uri: str | None = None
    entry_point: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)
    models: list[tuple[str, str]] = field(default_factory=list)
    problem: str | None = None
    # A reader may give the metrics already as history.tsv's rows instead of ``metrics`` (the
    # sqlite reader does: 10,000 runs of 1,000 points are formatted by sqlite, not point by
    # point in Python): the rows' text without the header, the latest point of each key
    # ``{key: (value, step, timestamp ms)}``, the points of each key ``{key: count}``.
    history_rows: str | None = None
    latest: dict[str, tuple[float, int, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class SourceVersion:
    """A version of a registered model.

    Attributes:
        model: the registered model's name.
        version: MLflow's version number (1, 2 …).
        run_id: the run it came from, or None.
        source: MLflow's ``source`` URI (``runs:/…/model``, ``models:/m-…``, a path).
        stage: MLflow's ``current_stage`` (``None``, ``Staging``, ``Production``, ``Archived``).
        aliases: the model's aliases that point at this version.
        description: text, or None.
        model_id: MLflow 3's logged model id (``m-…``) when the version came from one, or None.
        tags: the version's tags (``gitml_version`` names the gitml version it was exported from).
    """

    model: str
    version: int
    run_id: str | None
    source: str | None = None
    stage: str | None = None
    aliases: list[str] = field(default_factory=list)
    description: str | None = None
    model_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class ArtifactProblem(GitmlError):
    """A run's artifacts cannot be taken as they are (a path leaving its folder, an unreadable store)."""


# -- shared helpers -----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _millis(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("a time is a number of milliseconds")
    return int(value)


def local_path(uri: str | None, base: Path | None) -> Path | None:
    """The local folder a store's artifact URI names, or None when it is not on this machine.

    ``file:///x`` and absolute paths are themselves; a relative path is read from ``base``;
    ``mlflow-artifacts:/p`` (a server's proxied artifacts) is ``base/p`` when ``base`` is given.
    """
    if not uri:
        return None
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            return None
        return Path(urllib.parse.unquote(parsed.path))
    if parsed.scheme == "mlflow-artifacts":
        return base / urllib.parse.unquote(parsed.path).lstrip("/") if base is not None else None
    if parsed.scheme and len(parsed.scheme) > 1:  # s3://, gs://, dbfs:/ … (a drive letter is one)
        return None
    path = Path(uri)
    if path.is_absolute():
        return path
    return base / path if base is not None else None


def checked_folder(folder: Path, allowed: Iterable[Path]) -> Path | None:
    """``folder`` resolved, checked to lie inside one of ``allowed`` and to hold nothing that leaves it.

    Returns:
        The folder (real path), or None when it does not exist (a run that logged nothing).

    Raises:
        ArtifactProblem: the folder is outside every allowed root, a name in it is not a safe
            artifact path, or a symbolic link in it leads out of it.
    """
    try:
        real = Path(os.path.realpath(folder))
    except OSError as exc:
        raise ArtifactProblem(f"artifact folder {folder} cannot be read: {exc}") from None
    roots = [Path(os.path.realpath(root)) for root in allowed]
    if not any(real == root or root in real.parents for root in roots):
        raise ArtifactProblem(f"artifact folder {folder} is outside the store's artifact root "
                              f"({', '.join(map(str, roots)) or 'none'}): not read (--artifact-root names "
                              "another folder artifacts may be read from)")
    if not real.is_dir():
        return None
    for top, dirs, files in os.walk(real):
        for name in [*dirs, *files]:
            item = Path(top) / name
            rel = item.relative_to(real).as_posix()
            try:
                safe = check_artifact_path(rel) == rel
            except BadInputError:
                safe = False
            if not safe:
                raise ArtifactProblem(f"artifact {rel[:120]!r} is not a safe path")
            if item.is_symlink():
                target = Path(os.path.realpath(item))
                if target != real and real not in target.parents:
                    raise ArtifactProblem(f"artifact {rel[:120]!r} is a symbolic link leading out of the run's folder")
    return real


# -- file store ---------------------------------------------------------------------------------


def _read_small(path: Path, bound: int = MAX_META_BYTES) -> str:
    with open(path, "rb") as handle:
        data = handle.read(bound + 1)
    if len(data) > bound:
        raise ValueError(f"{path.name} is over {bound} bytes")
    return data.decode("utf-8")


def _yaml(path: Path) -> dict:
    doc = yamlfmt.load_untrusted(_read_small(path), 16)
    if not isinstance(doc, dict):
        raise ValueError(f"{path.name} is not a mapping")
    return doc


def _files_under(folder: Path) -> dict[str, Path]:
    """``{key: file}`` for a params/tags/metrics folder (a key with ``/`` is a nested file)."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for top, _, files in os.walk(folder):
        for name in files:
            path = Path(top) / name
            if path.is_symlink() or not path.is_file():
                raise ValueError(f"{path.relative_to(folder)} is not a regular file")
            out[path.relative_to(folder).as_posix()] = path
    return out


class FileStore:
    """An MLflow file store (``mlruns/``), read directly.

    Args:
        root: the store's folder.
        artifact_root: another folder artifacts may be read from (runs whose artifact URI lies
            elsewhere than in the store), or None.

    Raises:
        BadInputError: not a folder, or no experiment's ``meta.yaml`` reads as MLflow writes it.
    """

    kind = "file store"

    def __init__(self, root: Path, artifact_root: Path | None = None) -> None:
        self.root = root
        self.artifact_root = artifact_root
        if not root.is_dir():
            raise BadInputError(f"{root} is not a folder", hint="give an mlruns/ folder, sqlite:///… or http://…")
        self._experiments: dict[str, tuple[SourceExperiment, Path]] = {}
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(".") or entry.name == "models" or not entry.is_dir():
                continue  # .trash (deleted experiments), the registry, stray files
            meta = entry / "meta.yaml"
            if not meta.is_file():
                continue
            try:
                doc = _yaml(meta)
                exp = SourceExperiment(
                    id=str(doc["experiment_id"]), name=str(doc["name"]),
                    artifact_location=_text(doc.get("artifact_location")),
                    creation_time=_millis(doc.get("creation_time")),
                    lifecycle_stage=str(doc.get("lifecycle_stage", "active")))
                tags = _files_under(entry / "tags")
                exp.tags = {key: _read_small(path) for key, path in tags.items()}
            except (KeyError, ValueError, TypeError, OSError, yamlfmt.YamlProblem) as exc:
                what = f"lacks {exc}" if isinstance(exc, KeyError) else str(exc)
                raise BadInputError(f"{meta} is not an MLflow experiment's meta.yaml ({what})",
                                    hint="a store of an MLflow version gitml does not read") from None
            if exp.id != entry.name:
                raise BadInputError(f"{meta} names experiment {exp.id[:40]!r}, not its folder's {entry.name!r}")
            self._experiments[exp.id] = (exp, entry)
        if not self._experiments:
            raise BadInputError(f"{root} holds no MLflow experiment (no <id>/meta.yaml)",
                                hint="give the mlruns/ folder itself")

    def describe(self) -> str:
        """The source, for messages."""
        return f"file store {self.root}"

    def reopen_args(self) -> tuple:
        """What opens this store again in another process: ``FileStore(*args)``."""
        return (self.root, self.artifact_root)

    def experiments(self) -> list[SourceExperiment]:
        """Every experiment, deleted ones included (their ``lifecycle_stage`` says so)."""
        return [exp for exp, _ in self._experiments.values()]

    def run_ids(self, experiment_ids: Iterable[str]) -> list[tuple[str, str]]:
        """``(run id, experiment id)`` of every run folder of those experiments, sorted."""
        out = []
        for exp_id in experiment_ids:
            folder = self._experiments[exp_id][1]
            for entry in sorted(folder.iterdir()):
                if entry.is_dir() and entry.name not in ("tags", "models", "datasets", "traces"):
                    out.append((entry.name, exp_id))
        return out

    def load_runs(self, ids: list[tuple[str, str]]) -> list[SourceRun]:
        """The runs, each whole or with its ``problem`` set."""
        return [self._load(run_id, exp_id) for run_id, exp_id in ids]

    def _load(self, run_id: str, exp_id: str) -> SourceRun:
        run = SourceRun(run_id=run_id, experiment_id=exp_id)
        folder = self._experiments[exp_id][1] / run_id
        meta = folder / "meta.yaml"
        if not meta.is_file():
            run.problem = "meta.yaml is missing (a run deleted by hand, or half-written)"
            return run
        try:
            doc = _yaml(meta)
            if str(doc["run_id"]) != run_id:
                raise ValueError(f"meta.yaml names run {str(doc['run_id'])[:40]!r}")
            if str(doc["experiment_id"]) != exp_id:
                raise ValueError(f"meta.yaml names experiment {str(doc['experiment_id'])[:40]!r}")
            status = doc.get("status", 1)
            run.status = FILE_STATUSES.get(status, str(status)) if isinstance(status, int) else str(status)
            if run.status not in STATUSES:
                raise ValueError(f"unknown status {str(status)[:20]!r}")
            run.name = _text(doc.get("run_name"))
            run.start_time = _millis(doc["start_time"])
            run.end_time = _millis(doc.get("end_time"))
            run.user = _text(doc.get("user_id"))
            run.lifecycle_stage = str(doc.get("lifecycle_stage", "active"))
            run.artifact_uri = _text(doc.get("artifact_uri"))
            run.entry_point = _text(doc.get("entry_point_name")) or None
            run.params = {k: _read_small(p) for k, p in _files_under(folder / "params").items()}
            run.tags = {k: _read_small(p) for k, p in _files_under(folder / "tags").items()}
            for key, path in sorted(_files_under(folder / "metrics").items()):
                run.metrics.extend(_metric_lines(key, _read_small(path, MAX_METRIC_FILE_BYTES)))
            run.models = self._models(folder, exp_id)
        except KeyError as exc:
            run.problem = f"meta.yaml lacks {exc}"
        except (ValueError, TypeError, OSError, yamlfmt.YamlProblem, UnicodeDecodeError) as exc:
            run.problem = f"unreadable: {str(exc)[:200]}"
        return run

    def _models(self, folder: Path, exp_id: str) -> list[tuple[str, str]]:
        out = []
        outputs = folder / "outputs"
        if not outputs.is_dir():
            return out
        for entry in sorted(outputs.iterdir()):
            model = self._experiments[exp_id][1] / "models" / entry.name / "meta.yaml"
            if not model.is_file():
                continue
            doc = _yaml(model)
            if str(doc.get("source_run_id")) == folder.name and doc.get("artifact_location"):
                out.append((str(doc.get("name") or entry.name), str(doc["artifact_location"])))
        return out

    def artifact_roots(self) -> list[Path]:
        """The folders artifacts may be read from: the store, and ``--artifact-root``."""
        return [self.root, *([self.artifact_root] if self.artifact_root else [])]

    def fetch_artifacts(self, uri: str | None, into: Path) -> Path | None:
        """The local folder holding the artifacts at ``uri``, checked (see :func:`checked_folder`).

        Raises:
            ArtifactProblem: not on this machine, outside the roots, or unsafe inside.
        """
        return _local_artifacts(uri, self.artifact_root or self.root, self.artifact_roots())

    def registry(self) -> list[SourceVersion]:
        """Every version of every registered model (``models/<name>/version-<n>/meta.yaml``)."""
        out: list[SourceVersion] = []
        top = self.root / "models"
        if not top.is_dir():
            return out
        for model_dir in sorted(top.iterdir()):
            meta = model_dir / "meta.yaml"
            if not meta.is_file():
                continue
            doc = _yaml(meta)
            aliases: dict[int, list[str]] = {}
            for alias, version in (doc.get("aliases") or {}).items():
                aliases.setdefault(int(version), []).append(str(alias))
            for version_dir in sorted(model_dir.glob("version-*")):
                vdoc = _yaml(version_dir / "meta.yaml")
                if vdoc.get("current_stage") == "Deleted_Internal":
                    continue
                number = int(vdoc["version"])
                out.append(SourceVersion(
                    model=str(doc["name"]), version=number, run_id=_text(vdoc.get("run_id")) or None,
                    source=_text(vdoc.get("source")), stage=_text(vdoc.get("current_stage")),
                    aliases=sorted(aliases.get(number, [])), description=_text(vdoc.get("description")),
                    model_id=_text(vdoc.get("model_id")), tags=_tag_files(version_dir / "tags")))
        return out


def _tag_files(folder: Path) -> dict[str, str]:
    """A file store's tags folder (one file per tag, its name the key): ``{key: value}``."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.iterdir())[:1000]:
        if path.is_file() and not path.is_symlink():
            out[path.name] = path.read_text(encoding="utf-8", errors="replace")[:8000]
    return out


def _metric_lines(key: str, text: str) -> list[tuple[str, float, int, int]]:
    """The points of one file-store metric file (``file_store.py``'s ``_get_metric_from_line``)."""
    points = []
    for line in text.splitlines():
        parts = line.strip().split(" ")
        if parts == [""]:
            continue
        if len(parts) not in (2, 3, 5):
            raise ValueError(f"metric {key[:80]!r}: a line of {len(parts)} fields")
        step = int(parts[2]) if len(parts) >= 3 else 0
        points.append((key, float(parts[1]), step, int(parts[0])))
    return points


def _inside(folder: Path, roots: list[Path]) -> bool:
    real = Path(os.path.realpath(folder))
    return any(real == r or r in real.parents for r in (Path(os.path.realpath(root)) for root in roots))


def _local_artifacts(uri: str | None, base: Path | None, roots: list[Path]) -> Path | None:
    """The checked local folder of ``uri``; a store moved since MLflow wrote it is found again.

    MLflow records absolute artifact locations. When the one recorded is not inside the roots
    (the store was copied or moved), the same place relative to each root is tried: the last
    three or four parts of the location (``<experiment>/<run>/artifacts``,
    ``<experiment>/models/<model>/artifacts``) under a root or its ``mlruns/``, when that exists.
    """
    if not uri:
        return None
    folder = local_path(uri, base)
    if folder is None or not (_inside(folder, roots) and folder.exists()):
        parts = urllib.parse.unquote(urllib.parse.urlparse(uri).path).strip("/").split("/")
        for depth in (3, 4):
            found = [root / sub / Path(*parts[-depth:]) for root in roots for sub in ("", "mlruns")
                     if len(parts) >= depth and (root / sub / Path(*parts[-depth:])).is_dir()]
            if found and _inside(found[0], roots):
                folder = found[0]
                break
    if folder is None:
        raise ArtifactProblem(f"artifacts at {uri[:200]} are not on this machine "
                              "(import from the tracking server, or copy them and give --artifact-root)")
    if not _inside(folder, roots) and not os.path.lexists(folder):
        return None  # neither where MLflow wrote it nor in the moved store: the run logged no artifact
    return checked_folder(folder, roots)


# -- sqlite -------------------------------------------------------------------------------------


class SqliteStore:
    """An MLflow sqlite store, read with :mod:`sqlite3` (read-only) from MLflow's tables.

    Args:
        path: the database file.
        artifact_root: where relative (or ``mlflow-artifacts:``) artifact locations are read
            from, and the one folder artifacts may be read from (default: the database's folder).

    Raises:
        BadInputError: not a database, no ``alembic_version`` MLflow made, or a table lacks a
            column this reader needs.
    """

    kind = "sqlite store"

    def __init__(self, path: Path, artifact_root: Path | None = None) -> None:
        self.path = path
        self.artifact_root = artifact_root
        if not path.is_file():
            raise BadInputError(f"{path}: no such database file")
        try:
            self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            version = self.db.execute("SELECT version_num FROM alembic_version").fetchall()
            tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise BadInputError(f"{path} is not an MLflow sqlite store ({exc})") from None
        if len(version) != 1 or version[0][0] not in KNOWN_SCHEMAS:
            found = version[0][0] if len(version) == 1 else "none"
            self.db.close()
            raise BadInputError(f"{path}: unknown MLflow schema version {str(found)[:40]!r}",
                                hint="gitml reads the schemas of MLflow up to 3.17; "
                                     "`mlflow db upgrade` an older one")
        for table, columns in _COLUMNS.items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")} if table in tables else set()
            missing = [c for c in columns if c not in have]
            if missing:
                self.db.close()
                raise BadInputError(f"{path}: table {table} lacks {', '.join(missing)}",
                                    hint="not an MLflow schema gitml reads")
        self.tables = tables

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def reopen_args(self) -> tuple:
        """What opens this store again in another process: ``SqliteStore(*args)``."""
        return (self.path, self.artifact_root)

    def describe(self) -> str:
        """The source, for messages."""
        return f"sqlite store {self.path}"

    def experiments(self) -> list[SourceExperiment]:
        """Every experiment, deleted ones included, with its tags."""
        out = {}
        for exp_id, name, location, stage, created in self.db.execute(
                "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time FROM experiments "
                "ORDER BY experiment_id"):
            out[str(exp_id)] = SourceExperiment(str(exp_id), str(name), _text(location), _millis(created),
                                                str(stage or "active"))
        for key, value, exp_id in self.db.execute("SELECT key, value, experiment_id FROM experiment_tags"):
            if str(exp_id) in out:
                out[str(exp_id)].tags[str(key)] = "" if value is None else str(value)
        return list(out.values())

    def run_ids(self, experiment_ids: Iterable[str]) -> list[tuple[str, str]]:
        """``(run id, experiment id)`` of every run of those experiments, sorted by id."""
        wanted = {str(e) for e in experiment_ids}
        return [(str(run_id), str(exp_id)) for run_id, exp_id in
                self.db.execute("SELECT run_uuid, experiment_id FROM runs ORDER BY run_uuid")
                if str(exp_id) in wanted]

    def load_runs(self, ids: list[tuple[str, str]]) -> list[SourceRun]:
        """The runs, read in a few queries for the whole batch."""
        runs: dict[str, SourceRun] = {}
        for start in range(0, len(ids), 900):  # sqlite's bound on host parameters
            chunk = [run_id for run_id, _ in ids[start:start + 900]]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                    "SELECT run_uuid, experiment_id, name, status, start_time, end_time, user_id, lifecycle_stage, "
                    f"artifact_uri, entry_point_name FROM runs WHERE run_uuid IN ({marks})", chunk):
                run = SourceRun(run_id=str(row[0]), experiment_id=str(row[1]), name=_text(row[2]),
                                status=str(row[3]), user=_text(row[6]), lifecycle_stage=str(row[7] or "active"),
                                artifact_uri=_text(row[8]), entry_point=_text(row[9]) or None)
                try:
                    run.start_time, run.end_time = _millis(row[4]), _millis(row[5])
                    if run.status not in STATUSES:
                        raise ValueError(f"unknown status {run.status[:20]!r}")
                except (ValueError, TypeError) as exc:
                    run.problem = f"unreadable: {exc}"
                runs[run.run_id] = run
            for key, value, run_id in self.db.execute(
                    f"SELECT key, value, run_uuid FROM params WHERE run_uuid IN ({marks})", chunk):
                runs[run_id].params[str(key)] = str(value)
            for key, value, run_id in self.db.execute(
                    f"SELECT key, value, run_uuid FROM tags WHERE run_uuid IN ({marks})", chunk):
                runs[run_id].tags[str(key)] = "" if value is None else str(value)
            for run_id in chunk:
                if run_id in runs:
                    self._metrics(runs[run_id])
            if "logged_models" in self.tables:
                for name, location, run_id in self.db.execute(
                        "SELECT name, artifact_location, source_run_id FROM logged_models "
                        f"WHERE source_run_id IN ({marks}) AND (lifecycle_stage IS NULL OR lifecycle_stage = 'active') "
                        "ORDER BY creation_timestamp_ms, model_id", chunk):
                    runs[run_id].models.append((str(name), str(location)))
        return [runs[run_id] for run_id, _ in ids if run_id in runs]

    def _metrics(self, run: SourceRun) -> None:
        """The run's points as history.tsv rows (docs/formats.md), formatted here in one pass.

        Keys come in code-point order (sqlite's BINARY collation of UTF-8), each key's points by
        step, then as logged (the index ``(run_uuid, key, step)``); the latest point of each key
        is MLflow's own (``latest_metrics``, same rule as gitml's). A value that is not a float,
        a step that is not an integer or a timestamp outside 1970 … 9999 is the run's ``problem``.
        """
        rows = self.db.execute(_POINTS, (run.run_id,)).fetchall()
        if not rows:
            return
        out: list[str] = []
        add = out.append
        keys: dict[str, str] = {}
        counts: dict[str, int] = {}
        try:
            for key, step, stamp, value, is_nan in rows:
                shown = keys.get(key)
                if shown is None:
                    shown = keys[key] = key.replace("\\", "\\\\").replace("\t", "\\t")
                    counts[key] = 0
                counts[key] += 1
                if type(step) is not int or type(stamp) is not int or type(value) is not float \
                        or not 0 <= stamp <= 253_402_300_799_999:
                    raise ValueError(key)
                seconds, ms = divmod(stamp, 1000)
                head = _HEADS.get(seconds) or _head(seconds)
                add(f"{shown}\t{step}\t{head}{_MS[ms]}{'nan' if is_nan else repr(value)}\n")
        except (ValueError, TypeError, AttributeError) as exc:
            run.problem = f"metric {str(exc)[:80]!r} has a point whose value, step or time MLflow does not write"
            return
        run.history_rows = "".join(out)
        run.counts = counts
        for key, value, is_nan, step, stamp in self.db.execute(
                "SELECT key, value, is_nan, step, timestamp FROM latest_metrics WHERE run_uuid = ?", (run.run_id,)):
            if key in counts and type(value) is float and type(step) is int and type(stamp) is int:
                run.latest[key] = (math.nan if is_nan else value, step, stamp)
        for key in counts.keys() - run.latest.keys():  # MLflow's own latest is missing: found here
            points = [(s, t, 0.0 if n else v, math.nan if n else v) for k, s, t, v, n in rows if k == key]
            step, stamp, _, value = max(points, key=lambda p: p[:3])
            run.latest[key] = (value, step, stamp)

    def points(self, run_id: str) -> list[tuple[str, float, int, int]]:
        """Every point of a run, ``(key, value, step, timestamp ms)`` (when its history is over the bound)."""
        return [(str(k), math.nan if n else float(v), int(s), int(t)) for k, v, s, t, n in self.db.execute(
            "SELECT key, value, step, timestamp, is_nan FROM metrics WHERE run_uuid = ? "
            "ORDER BY key, step, timestamp, value", (run_id,))]

    def artifact_roots(self) -> list[Path]:
        """The one folder artifacts may be read from: ``--artifact-root``, else the database's folder."""
        return [self.artifact_root or self.path.resolve().parent]

    def fetch_artifacts(self, uri: str | None, into: Path) -> Path | None:
        """As :meth:`FileStore.fetch_artifacts`."""
        return _local_artifacts(uri, self.artifact_roots()[0], self.artifact_roots())

    def registry(self) -> list[SourceVersion]:
        """Every version of every registered model, with its aliases."""
        if not {"model_versions", "registered_model_aliases"} <= self.tables:
            return []
        aliases: dict[tuple[str, int], list[str]] = {}
        for alias, version, name in self.db.execute("SELECT alias, version, name FROM registered_model_aliases"):
            aliases.setdefault((str(name), int(version)), []).append(str(alias))
        tags: dict[tuple[str, int], dict[str, str]] = {}
        if "model_version_tags" in self.tables:
            for key, value, name, version in self.db.execute("SELECT key, value, name, version FROM model_version_tags"):
                tags.setdefault((str(name), int(version)), {})[str(key)] = _text(value) or ""
        out = []
        for name, version, run_id, source, stage, description in self.db.execute(
                "SELECT name, version, run_id, source, current_stage, description FROM model_versions "
                "WHERE current_stage IS NULL OR current_stage != 'Deleted_Internal' ORDER BY name, version"):
            model_id = None
            if source and str(source).startswith("models:/m-"):
                model_id = str(source)[len("models:/"):].split("/")[0]
            out.append(SourceVersion(str(name), int(version), _text(run_id) or None, _text(source), _text(stage),
                                     sorted(aliases.get((str(name), int(version)), [])), _text(description),
                                     model_id, tags.get((str(name), int(version)), {})))
        return out


_POINTS = "SELECT key, step, timestamp, value, is_nan FROM metrics WHERE run_uuid = ? ORDER BY key, step"
_HEADS: dict[int, str] = {}
_MS = [f"{ms:03d}Z\t" for ms in range(1000)]


def _head(seconds: int) -> str:
    """``2026-11-27T10:23:27.`` for a second since 1970 (cached: a run's points share seconds)."""
    if len(_HEADS) > 100_000:
        _HEADS.clear()
    text = _HEADS[seconds] = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
    return text


# -- tracking server ----------------------------------------------------------------------------


class ServerStore:
    """A running MLflow tracking server, read through its REST API (``/api/2.0/mlflow``).

    Args:
        url: ``http://host:port`` (a path prefix is kept).
        timeout: seconds per request.

    Raises:
        BadInputError: the server does not answer MLflow's experiments search.
    """

    kind = "tracking server"

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._experiments = {exp.id: exp for exp in self._search_experiments()}

    def describe(self) -> str:
        """The source, for messages."""
        return f"tracking server {self.url}"

    def _call(self, path: str, query: dict | None = None, body: dict | None = None, raw: bool = False) -> Any:
        url = f"{self.url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"{self.url}: {path} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteError(f"{self.url} cannot be reached: {getattr(exc, 'reason', exc)}") from None
        if raw:
            return payload
        try:
            return json.loads(payload or b"{}")
        except ValueError:
            raise RemoteError(f"{self.url}: {path} did not answer JSON (not an MLflow server?)") from None

    def _pages(self, path: str, key: str, query: dict | None = None, body: dict | None = None) -> Iterator[dict]:
        token = None
        while True:
            if body is not None:
                answer = self._call(path, body={**body, **({"page_token": token} if token else {})})
            else:
                answer = self._call(path, query={**(query or {}), **({"page_token": token} if token else {})})
            yield from answer.get(key) or []
            token = answer.get("next_page_token")
            if not token:
                return

    def _search_experiments(self) -> list[SourceExperiment]:
        try:
            found = list(self._pages("/api/2.0/mlflow/experiments/search", "experiments",
                                     body={"max_results": 1000, "view_type": "ALL"}))
        except RemoteError as exc:
            if "cannot be reached" in exc.message:
                raise  # nothing answers: a remote that failed (1), as for every gitml command
            raise BadInputError(f"{exc.message}: not an MLflow tracking server gitml reads") from None
        out = []
        for doc in found:
            out.append(SourceExperiment(
                id=str(doc["experiment_id"]), name=str(doc["name"]), artifact_location=_text(doc.get("artifact_location")),
                creation_time=_millis(doc.get("creation_time")), lifecycle_stage=str(doc.get("lifecycle_stage", "active")),
                tags={str(t["key"]): str(t.get("value", "")) for t in doc.get("tags") or []}))
        return out

    def experiments(self) -> list[SourceExperiment]:
        """Every experiment, deleted ones included."""
        return list(self._experiments.values())

    def run_ids(self, experiment_ids: Iterable[str]) -> list[tuple[str, str]]:
        """``(run id, experiment id)`` of every run of those experiments (deleted ones too)."""
        self._runs: dict[str, dict] = {}
        ids = [str(e) for e in experiment_ids]
        out = []
        for start in range(0, len(ids), 100):
            for doc in self._pages("/api/2.0/mlflow/runs/search", "runs",
                                   body={"experiment_ids": ids[start:start + 100], "max_results": 1000,
                                         "run_view_type": "ALL"}):
                info = doc.get("info") or {}
                run_id = str(info.get("run_id") or info.get("run_uuid"))
                self._runs[run_id] = doc
                out.append((run_id, str(info.get("experiment_id"))))
        return sorted(out)

    def load_runs(self, ids: list[tuple[str, str]]) -> list[SourceRun]:
        """The runs, each with every metric point (``metrics/get-history``)."""
        return [self._load(run_id, exp_id) for run_id, exp_id in ids]

    def _load(self, run_id: str, exp_id: str) -> SourceRun:
        doc = self._runs.get(run_id) or {}
        info, data = doc.get("info") or {}, doc.get("data") or {}
        run = SourceRun(run_id=run_id, experiment_id=exp_id, name=_text(info.get("run_name")),
                        status=str(info.get("status", "RUNNING")), user=_text(info.get("user_id")),
                        lifecycle_stage=str(info.get("lifecycle_stage", "active")),
                        artifact_uri=_text(info.get("artifact_uri")))
        try:
            run.start_time, run.end_time = _millis(info.get("start_time")), _millis(info.get("end_time"))
            if run.status not in STATUSES:
                raise ValueError(f"unknown status {run.status[:20]!r}")
            run.params = {str(p["key"]): str(p.get("value", "")) for p in data.get("params") or []}
            run.tags = {str(t["key"]): str(t.get("value", "")) for t in data.get("tags") or []}
            for key in sorted({str(m["key"]) for m in data.get("metrics") or []}):
                history = list(self._pages("/api/2.0/mlflow/metrics/get-history", "metrics",
                                           query={"run_id": run_id, "metric_key": key, "max_results": 25000}))
                history.sort(key=lambda m: (int(m.get("step", 0)), int(m.get("timestamp", 0))))
                run.metrics.extend((key, _json_float(m.get("value")), int(m.get("step", 0)), int(m["timestamp"]))
                                   for m in history)
            for output in (doc.get("outputs") or {}).get("model_outputs") or []:
                model = self._call(f"/api/2.0/mlflow/logged-models/{urllib.parse.quote(str(output['model_id']))}")
                model_info = (model.get("model") or {}).get("info") or {}
                if model_info.get("artifact_uri") and str(model_info.get("source_run_id")) == run_id:
                    run.models.append((str(model_info.get("name") or output["model_id"]),
                                       str(model_info["artifact_uri"])))
        except (KeyError, ValueError, TypeError) as exc:
            run.problem = f"unreadable: {str(exc)[:200]}"
        return run

    def artifact_roots(self) -> list[Path]:
        """None: artifacts come through the server."""
        return []

    def fetch_artifacts(self, uri: str | None, into: Path) -> Path | None:
        """Download the artifacts at ``uri`` (``mlflow-artifacts:/…``) into ``into``, checked.

        Every listed path must be a safe relative path under the one listed (no ``..``, no
        absolute path), or nothing is downloaded.

        Raises:
            ArtifactProblem: a listed path leaves its folder, or the server keeps its artifacts
                where it does not serve them.
        """
        if not uri:
            return None
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme != "mlflow-artifacts":
            raise ArtifactProblem(f"artifacts at {uri[:200]} are not served by the tracking server "
                                  "(start it with --serve-artifacts, or import its store directly)")
        base = urllib.parse.unquote(parsed.path).strip("/")
        files: list[tuple[str, int]] = []
        stack = [""]
        while stack:
            rel = stack.pop()
            answer = self._call("/api/2.0/mlflow-artifacts/artifacts",
                                query={"path": f"{base}/{rel}".rstrip("/")})
            for entry in answer.get("files") or []:
                name = str(entry.get("path", ""))
                child = f"{rel}/{name}".lstrip("/") if rel else name
                try:
                    safe = check_artifact_path(child) == child and "/" not in name.strip("/")
                except BadInputError:
                    safe = False
                if not safe:
                    raise ArtifactProblem(f"artifact {child[:120]!r} is not a safe path")
                if entry.get("is_dir"):
                    stack.append(child)
                else:
                    files.append((child, int(entry.get("file_size") or 0)))
        if not files:
            return None
        into.mkdir(parents=True, exist_ok=True)
        for rel, _ in files:
            target = into / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            quoted = urllib.parse.quote(f"{base}/{rel}")
            data = self._call(f"/api/2.0/mlflow-artifacts/artifacts/{quoted}", raw=True)
            target.write_bytes(data)
        return into

    def registry(self) -> list[SourceVersion]:
        """Every version of every registered model, with its aliases."""
        out = []
        for model in self._pages("/api/2.0/mlflow/registered-models/search", "registered_models",
                                 query={"max_results": 1000}):
            name = str(model["name"])
            aliases: dict[int, list[str]] = {}
            for alias in model.get("aliases") or []:
                aliases.setdefault(int(alias["version"]), []).append(str(alias["alias"]))
            escaped = name.replace("'", "\\'")
            for version in self._pages("/api/2.0/mlflow/model-versions/search", "model_versions",
                                       query={"filter": f"name='{escaped}'", "max_results": 1000}):
                number = int(version["version"])
                source = _text(version.get("source"))
                model_id = _text(version.get("model_id")) or (
                    source[len("models:/"):].split("/")[0] if source and source.startswith("models:/m-") else None)
                out.append(SourceVersion(name, number, _text(version.get("run_id")) or None, source,
                                         _text(version.get("current_stage")), sorted(aliases.get(number, [])),
                                         _text(version.get("description")), model_id,
                                         {str(t["key"]): _text(t.get("value")) or "" for t in version.get("tags") or []}))
        return sorted(out, key=lambda v: (v.model, v.version))


def _json_float(value: Any) -> float:
    """A metric value from MLflow's JSON: a number, or ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
    if isinstance(value, bool):
        raise ValueError("a metric value is a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    raise ValueError(f"a metric value is a number, got {str(value)[:40]!r}")


# -- opening a source ---------------------------------------------------------------------------

Store = FileStore | SqliteStore | ServerStore


def open_store(source: str, artifact_root: str | os.PathLike | None = None) -> Store:
    """The reader for ``source``: a folder or ``file://`` URI, ``sqlite:///path``, or ``http(s)://``.

    Args:
        source: what ``gitml import mlflow`` was given.
        artifact_root: a folder for artifact locations a store gives relative (sqlite), and the
            folder artifacts may be read from besides the store's own.

    Returns:
        A :class:`FileStore`, :class:`SqliteStore` or :class:`ServerStore`.

    Raises:
        BadInputError: a source of another kind (``postgresql://`` …), or one that does not read
            as an MLflow store of a known version; nothing is read further.
    """
    root = Path(artifact_root).expanduser().resolve() if artifact_root else None
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        return ServerStore(source)
    if parsed.scheme == "sqlite":
        path = source[len("sqlite:///"):] if source.startswith("sqlite:///") else parsed.path
        if not path or path == ":memory:":
            raise BadInputError(f"{source}: give a database file, sqlite:///path/to/mlflow.db")
        # sqlite:////abs (four slashes) is an absolute path; sqlite:///rel is relative, as SQLAlchemy reads it
        return SqliteStore(Path(path), root)
    if parsed.scheme == "file":
        folder = local_path(source, None)
        if folder is None:
            raise BadInputError(f"{source}: not a local file URI")
        return FileStore(folder, root)
    if parsed.scheme and len(parsed.scheme) > 1:
        raise BadInputError(f"{parsed.scheme}:// stores are not read",
                            hint="give an mlruns/ folder, sqlite:///mlflow.db or a tracking server's http:// URL; "
                                 "a server in front of any other database works")
    path = Path(source).expanduser()
    if path.is_file() and path.suffix in (".db", ".sqlite", ".sqlite3"):
        return SqliteStore(path, root)
    return FileStore(path, root)


def cleanup(folder: Path) -> None:
    """Remove a temporary download folder, ignoring what is gone already."""
    shutil.rmtree(folder, ignore_errors=True)


def temp_folder() -> Path:
    """A new temporary folder for a server's downloads."""
    return Path(tempfile.mkdtemp(prefix="gitml-import-"))
