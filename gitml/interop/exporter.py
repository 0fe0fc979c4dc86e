"""``gitml export mlflow DEST``: runs and the registry into an MLflow tracking store or server.

The way back from gitml, so that leaving costs nothing: every finished run (its experiment,
name, status, times, user, params, every metric point, tags, artifacts) and every registry
version with its stages (as MLflow registered models, model versions and aliases).

DEST is anything MLflow's client takes as a tracking URI:

- an MLflow **file store** (``file:///path/mlruns`` or a plain path) or a **database store**
  (``sqlite:///mlflow.db``, ``postgresql://…`` …): written with MLflow's own store classes, and
  the run ids are gitml's (MLflow's are 32 hex digits too), so an export of runs imported from
  MLflow gives them back under their ids;
- a **tracking server** (``http://host:port``): through its REST API; a server chooses the run
  ids, so each exported run carries its gitml id in the tag ``gitml_run_id`` (which is also
  how a second export finds what it already sent).

MLflow itself is needed (``pip install 'gitml[mlflow]'``); it is imported by this module only.

Mapping (the inverse of ``gitml import mlflow``, docs/migrate.md):

- the experiment ``default`` is MLflow's ``Default`` (id 0); other experiments are found or
  created by name, with their tags;
- the run's name is its ``mlflow.runName``; ``user`` its ``user_id``; the source commit, branch,
  command, entry point and description become ``mlflow.source.git.commit``,
  ``mlflow.source.git.branch``, ``mlflow.source.name``, ``mlflow.project.entryPoint`` and
  ``mlflow.note.content`` unless the run already has those tags; other tags are copied;
- params are text (MLflow's params are strings);
- artifacts are uploaded from the local content store (``gitml artifacts pull`` first for runs
  whose bytes are elsewhere; a run whose bytes are missing is exported without them and the
  summary says so);
- registry: one MLflow model version per gitml version, in registration order, with the tag
  ``gitml_version`` (``v1.2.0``), its run as ``run_id`` and as source the artifact's location in
  DEST (``<the run's artifact URI>/<path>``, what MLflow's ``register_model("runs:/<run>/<path>")``
  records); each stage a version holds now is an alias of that version (MLflow 2.9+'s
  replacement of stages).

DEST is checked before anything is written: a folder must be new, empty or an MLflow file store
(an empty one gets MLflow's ``Default`` experiment, as a new one does), a sqlite file new, empty
or MLflow's; every run to send is checked against what MLflow keeps (:func:`_fits`) before DEST
is created or written.

Idempotent: runs and versions already in DEST are skipped; each model's aliases are made gitml's
stages now (an alias whose stage gitml no longer has is removed; models gitml does not have are
left alone).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.core import store
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import parse_time
from gitml.core.workspace import WorkspaceLike, open_workspace
from gitml.interop import destinations
from gitml.interop.files import artifact_files, lay_out
from gitml.interop.registry import export_registry
from gitml.tracking import experiments as exps
from gitml.tracking import query

RUN_ID_TAG = "gitml_run_id"  # on a server, where MLflow picks the run ids
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_EXPERIMENT = "default"
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100  # MLflow's log_batch limits


@dataclass
class ExportSummary:
    """What an export did (``--dry-run``: would do).

    Attributes:
        runs: runs written; ``present``: runs already in DEST (skipped).
        points: metric points written; ``artifacts``/``bytes``: files and bytes uploaded.
        versions: model versions written; ``aliases``: aliases set, moved or removed.
        skipped: ``(what, why)`` for everything left out.
    """

    runs: int = 0
    present: int = 0
    points: int = 0
    artifacts: int = 0
    bytes: int = 0
    versions: int = 0
    aliases: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields above."""
        return {"runs": self.runs, "present": self.present, "points": self.points, "artifacts": self.artifacts,
                "bytes": self.bytes, "versions": self.versions, "aliases": self.aliases,
                "skipped": [{"what": w, "why": y} for w, y in self.skipped]}


def _mlflow():
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise BadInputError("gitml export mlflow needs MLflow: pip install 'gitml[mlflow]'") from None
    import mlflow

    return mlflow


def _ms(iso: str | None) -> int | None:
    return None if iso is None else int(round(parse_time(iso) * 1000))


def export_mlflow(dest: str, experiments: list[str] | None = None, since: int | None = None,
                  dry_run: bool = False, registry: bool = True, repo: WorkspaceLike = None,
                  progress: Callable[[int, int], None] | None = None,
                  artifact_root: str | None = None) -> ExportSummary:
    """Export finished runs (and the registry) into an MLflow store or server.

    Args:
        dest: the MLflow tracking URI (see the module docstring).
        experiments: only these experiments (names); None for all.
        since: only runs started at or after this time, epoch milliseconds.
        dry_run: count what would be written, write nothing.
        registry: also export registry versions and stages.
        repo: a Workspace, an open repository or a path.
        progress: called ``(done, total)`` after each run.
        artifact_root: where a database store's new experiments keep their artifacts (MLflow's
            ``--default-artifact-root``); default for ``sqlite:///path/mlflow.db``:
            ``path/mlartifacts``; required for other databases. File stores and servers keep
            their own.

    Returns:
        The :class:`ExportSummary`.

    Raises:
        BadInputError: MLflow is not installed, DEST is not a tracking URI, or a folder or file
            that is neither new, empty nor an MLflow store; an experiment that does not exist.
            Nothing is created or written.
        RemoteError: the tracking server cannot be reached.
        GitmlError: a run MLflow would keep changed (checked before DEST is created or written),
            or DEST refused a write (MLflow's message).
    """
    kind = destinations.kind(dest)
    fresh = destinations.fresh(dest, kind)  # refuses, before anything is written, a DEST that is no MLflow store
    mlflow = _mlflow()
    summary = ExportSummary()
    # What MLflow resolves without being told (a model version's source, say) goes to DEST too,
    # not to its default store (sqlite:///mlflow.db in the current directory)
    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(dest)
    mlflow.set_registry_uri(dest)
    try:
        return _export(mlflow, dest, kind, fresh, experiments, since, dry_run, registry, repo, progress,
                       artifact_root, summary)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def _export(mlflow, dest: str, kind: str, fresh: bool, experiments: list[str] | None, since: int | None,
            dry_run: bool, registry: bool, repo: WorkspaceLike, progress, artifact_root: str | None,
            summary: ExportSummary) -> ExportSummary:
    """:func:`export_mlflow`'s work, with MLflow's tracking and registry URIs set to DEST.

    Every run to send is checked (:func:`_fits`) before the first write, and a DEST that is not
    there yet (``fresh``) is created only then: a refused export leaves nothing behind.
    """
    from mlflow.exceptions import MlflowException

    with open_workspace(repo) as ws:
        if experiments:
            for name in experiments:
                if exps.get_experiment_by_name(name, repo=ws) is None:
                    raise BadInputError(f"no experiment {name!r} in this repository")
        runs = query.search_runs(None, "attributes.start_time ASC", experiment=experiments or None, repo=ws)
        if since is not None:
            runs = [r for r in runs if (_ms(r.start_time) or 0) >= since]
        if kind == "server":
            destinations.reach(dest)
        try:
            # a store not there yet has no run of ours, and a dry run does not create it
            target = None if fresh else _Target(mlflow, dest, kind, artifact_root)
            exported: dict[str, str] = {}  # gitml id -> MLflow id
            pending = []
            for listed in runs:
                existing = target.existing_run(listed.id) if target is not None else None
                if existing is not None:
                    summary.present += 1
                    exported[listed.id] = existing
                else:
                    _fits(listed, _tags(listed))
                    pending.append(listed)
            if target is None and not dry_run:
                target = _Target(mlflow, dest, kind, artifact_root, fresh=True)
            if target is not None:
                target.exported.update(exported)
            _send_runs(ws, target, pending, dry_run, summary, exported,
                       None if progress is None else lambda done: progress(summary.present + done, len(runs)))
            if registry:
                export_registry(ws, target, exported, dry_run, summary)
        except MlflowException as exc:
            raise GitmlError(f"MLflow refused the export: {exc.message}") from None
        except OSError as exc:
            if kind == "server":
                from gitml.core.errors import RemoteError

                raise RemoteError(f"cannot reach the MLflow server at {dest}: {exc}") from None
            raise
    return summary


def _send_runs(ws, target: _Target | None, runs: list, dry_run: bool, summary: ExportSummary,
               exported: dict[str, str], progress: Callable[[int], None] | None) -> None:
    """Write (``dry_run``: count) the runs not in DEST yet, oldest first."""
    cache = store.cache_dir(ws.repo.gitml_dir)
    for done, listed in enumerate(runs, 1):
        run = query.get_run(listed.id, repo=ws)
        if dry_run:
            _fits(run, _tags(run))
            found, _ = artifact_files(run, cache)
            summary.runs += 1
            summary.points += len(run.history or [])
            summary.artifacts += len(found)
            summary.bytes += sum(size for _, _, size in found)
            exported[run.id] = run.id
        else:
            _fetch_missing(ws, run, cache)
            exported[run.id] = target.exported[run.id] = target.write_run_whole(ws, run, cache, summary)
        if progress is not None:
            progress(done)


class _Target:
    """One MLflow destination: its store (file/sql) or client (server), experiments by name."""

    def __init__(self, mlflow, dest: str, kind: str, artifact_root: str | None = None, fresh: bool = False) -> None:
        """Open DEST with MLflow's classes; ``fresh``: DEST holds nothing yet (see :func:`_fresh`)."""
        from mlflow.tracking import MlflowClient

        self.kind = kind
        self.dest = dest
        if kind == "sql":
            # MLflow's own store class, given the artifact root a server would be given; made
            # first, so a new database's Default experiment gets it too
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            self.store = SqlAlchemyStore(dest, destinations.artifact_root(dest, artifact_root))
        self.client = MlflowClient(tracking_uri=dest, registry_uri=dest)
        if kind != "sql":
            self.store = self.client._tracking_client.store  # MLflow's own store class for this URI
        if kind == "file" and fresh and self._default_experiment() is None:
            # MLflow's FileStore makes its Default experiment only in a root folder it creates
            # itself; an empty folder is a new store all the same
            self._create_default_experiment()
        self.experiments: dict[str, str] = {}
        self._server_ids: dict[str, str] | None = None
        self.exported: dict[str, str] = {}  # gitml id -> MLflow id, as runs are written or found
        self._locations: dict[str, str] = {}  # experiment id -> its artifact location

    def experiment_id(self, ws, name: str) -> str:
        """The MLflow experiment id of a gitml experiment, created (with its tags) when missing."""
        if name in self.experiments:
            return self.experiments[name]
        found = self.store.get_experiment_by_name("Default" if name == DEFAULT_EXPERIMENT else name)
        if found is None and name == DEFAULT_EXPERIMENT:
            found = self._default_experiment() or self._create_default_experiment()
        if found is None:
            record = exps.get_experiment_by_name(name, repo=ws)
            tags = dict(record.tags) if record is not None else {}
            if record is not None and record.description:
                tags.setdefault("mlflow.note.content", record.description)
            from mlflow.entities import ExperimentTag

            experiment_id = self.store.create_experiment(name, None, [ExperimentTag(k, v) for k, v in tags.items()])
        else:
            experiment_id = found.experiment_id
            if found.name != name and name != DEFAULT_EXPERIMENT:
                raise BadInputError(f"experiment {name!r} is {found.name!r} in MLflow")
        self.experiments[name] = experiment_id
        return experiment_id

    def _default_experiment(self):
        """MLflow's experiment 0 (``Default``), or None when DEST has none."""
        from mlflow.exceptions import MlflowException

        try:
            return self.store.get_experiment("0")
        except MlflowException:
            return None

    def _create_default_experiment(self):
        """Make ``Default`` as MLflow makes it in a new store: id 0 in a file store (by name elsewhere)."""
        from mlflow.entities import Experiment

        if self.kind == "file":
            self.store._create_experiment_with_id(Experiment.DEFAULT_EXPERIMENT_NAME, "0", None, None)
            return self.store.get_experiment("0")
        return self.store.get_experiment(self.store.create_experiment(Experiment.DEFAULT_EXPERIMENT_NAME))

    def existing_run(self, run_id: str) -> str | None:
        """The MLflow id of a gitml run already in DEST, or None."""
        if self.kind == "server":
            if self._server_ids is None:
                self._server_ids = {}
                for run in self.client.search_runs(
                        [e.experiment_id for e in self.client.search_experiments()],
                        filter_string=f"tags.{RUN_ID_TAG} != ''", max_results=50000):
                    self._server_ids[run.data.tags[RUN_ID_TAG]] = run.info.run_id
            return self._server_ids.get(run_id)
        from mlflow.exceptions import MlflowException

        try:
            self.store.get_run(run_id)
            return run_id
        except MlflowException:
            return None

    def registered_model(self, name: str):
        """MLflow's registered model ``name`` (with its aliases), or None."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException:
            return None

    def write_run_whole(self, ws, run, cache: Path, summary: ExportSummary) -> str:
        """:meth:`write_run`, or nothing: a run that fails half-way is removed from DEST again."""
        self.started: str | None = None
        try:
            return self.write_run(ws, run, cache, summary)
        except BaseException:
            if self.started is not None:
                self._discard(self.started)
            raise

    def _discard(self, mlflow_id: str) -> None:
        try:
            if self.kind == "sql":
                self.store._hard_delete_run(mlflow_id)
            elif self.kind == "file":
                shutil.rmtree(self.store._get_run_dir(*self._located(mlflow_id)), ignore_errors=True)
            else:
                self.client.delete_run(mlflow_id)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass

    def _located(self, mlflow_id: str) -> tuple[str, str]:
        return self.store.get_run(mlflow_id).info.experiment_id, mlflow_id

    def write_run(self, ws, run, cache: Path, summary: ExportSummary) -> str:
        """Write one run whole: record, metric points, tags, then its artifacts; its MLflow id."""
        from mlflow.entities import Metric, Param, RunStatus, RunTag

        experiment_id = self.experiment_id(ws, run.experiment)
        tags = _tags(run)
        _fits(run, tags)
        parent = tags.get(PARENT_TAG)
        if parent in self.exported:  # a server gave the parent a new id: the child names that one
            tags[PARENT_TAG] = self.exported[parent]
        params = [Param(k, _param_text(v)) for k, v in run.params.items()]
        points = [Metric(p.key, p.value, _ms(p.timestamp), p.step) for p in run.history or []]
        start, end = _ms(run.start_time), _ms(run.end_time)
        if self.kind == "server":  # the server picks the id, and the user is whoever calls it
            if run.user:
                tags.setdefault("mlflow.user", run.user)
            created = self.client.create_run(experiment_id, start_time=start, run_name=run.name,
                                             tags={**tags, RUN_ID_TAG: run.id})
            mlflow_id = self.started = created.info.run_id
            tag_list = []
        elif self.kind == "sql":
            mlflow_id = self.started = run.id  # not in DEST before (existing_run): removed on failure
            self._write_sql(run, experiment_id, start, end, points, params, [RunTag(k, v) for k, v in tags.items()])
            self._artifacts(run, mlflow_id, cache, summary)
            summary.runs += 1
            summary.points += len(points)
            return mlflow_id
        else:
            mlflow_id = self.started = run.id  # not in DEST before (existing_run): removed on failure
            self._create_with_id(run, experiment_id, start)
            tag_list = [RunTag(k, v) for k, v in tags.items()]
        for i in range(0, len(points), MAX_METRICS):
            self.store.log_batch(mlflow_id, points[i:i + MAX_METRICS], [], [])
        for i in range(0, len(tag_list), MAX_TAGS):
            self.store.log_batch(mlflow_id, [], [], tag_list[i:i + MAX_TAGS])
        for i in range(0, len(params), MAX_PARAMS):
            self.store.log_batch(mlflow_id, [], params[i:i + MAX_PARAMS], [])
        self._artifacts(run, mlflow_id, cache, summary)
        self.store.update_run_info(mlflow_id, RunStatus.from_string(run.status), end, run.name)
        summary.runs += 1
        summary.points += len(points)
        return mlflow_id

    def _write_sql(self, run, experiment_id: str, start: int | None, end: int | None, points: list,
                   params: list, tags: list) -> None:
        """A whole run into a database store in one transaction, as MLflow's ORM rows.

        MLflow's ``log_batch`` checks the run and commits per call (about 40 ms a call on
        sqlite here); the rows it would write are written at once instead, after MLflow's
        own validation of the batch, with its NaN and infinity conventions
        (``sanitize_metric_value``) and the latest point per key by its rule (highest step,
        then time, then value).
        """
        from mlflow.entities import LifecycleStage
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
        from mlflow.utils.validation import _validate_batch_log_data

        points, params, tags = _validate_batch_log_data(points, params, tags)
        if experiment_id not in self._locations:
            self._locations[experiment_id] = self.store.get_experiment(experiment_id).artifact_location
        record = SqlRun(
            run_uuid=run.id, name=run.name, source_type="LOCAL", source_name="", entry_point_name="",
            user_id=run.user, status=run.status, start_time=start, end_time=end, source_version="",
            lifecycle_stage=LifecycleStage.ACTIVE, experiment_id=int(experiment_id),
            artifact_uri=f"{self._locations[experiment_id].rstrip('/')}/{run.id}/artifacts")
        metrics: dict[tuple, dict] = {}  # MLflow's primary key: the same point twice is one row
        latest: dict[str, dict] = {}
        for point in points:
            is_nan, value = self.store.sanitize_metric_value(point.value)
            row = {"run_uuid": run.id, "key": point.key, "value": value, "timestamp": point.timestamp,
                   "step": point.step, "is_nan": is_nan}
            metrics.setdefault((point.key, point.timestamp, point.step, value, is_nan), row)
            best = latest.get(point.key)
            if best is None or (point.step, point.timestamp, 0.0 if is_nan else value) > \
                    (best["step"], best["timestamp"], 0.0 if best["is_nan"] else best["value"]):
                latest[point.key] = row
        with self.store.ManagedSessionMaker(read_only=False) as session:
            session.add(record)
            session.flush()  # the run row first: the others refer to it
            # the rows as one executemany each (SQLAlchemy Core), not one ORM object per point
            for table, rows in ((SqlMetric.__table__, list(metrics.values())),
                                (SqlLatestMetric.__table__, list(latest.values())),
                                (SqlParam.__table__, [{"run_uuid": run.id, "key": p.key, "value": p.value}
                                                      for p in params]),
                                (SqlTag.__table__, [{"run_uuid": run.id, "key": t.key, "value": t.value}
                                                    for t in tags])):
                if rows:
                    session.execute(table.insert(), rows)

    def _create_with_id(self, run, experiment_id: str, start: int | None) -> None:
        """Start a run under gitml's id.

        MLflow's stores make a new id in ``create_run``, so the record is written as they write
        it, with MLflow's own classes (3.x).
        """
        from mlflow.entities import LifecycleStage, RunInfo, RunStatus

        if self.kind == "sql":
            from mlflow.store.tracking.dbmodels.models import SqlRun

            experiment = self.store.get_experiment(experiment_id)
            artifact_uri = f"{experiment.artifact_location.rstrip('/')}/{run.id}/artifacts"
            with self.store.ManagedSessionMaker(read_only=False) as session:
                session.add(SqlRun(
                    run_uuid=run.id, name=run.name, source_type="LOCAL", source_name="", entry_point_name="",
                    user_id=run.user, status=RunStatus.to_string(RunStatus.RUNNING), start_time=start,
                    end_time=None, source_version="", lifecycle_stage=LifecycleStage.ACTIVE,
                    artifact_uri=artifact_uri, experiment_id=int(experiment_id)))
            return
        from mlflow.store.tracking.file_store import FileStore, _make_persisted_run_info_dict
        from mlflow.utils.file_utils import mkdir, write_yaml

        info = RunInfo(run_id=run.id, run_name=run.name, experiment_id=experiment_id,
                       artifact_uri=self.store._get_artifact_dir(experiment_id, run.id), user_id=run.user or "",
                       status=RunStatus.to_string(RunStatus.RUNNING), start_time=start, end_time=None,
                       lifecycle_stage=LifecycleStage.ACTIVE)
        run_dir = self.store._get_run_dir(experiment_id, run.id)
        mkdir(run_dir)
        meta = _make_persisted_run_info_dict(info)
        meta["deleted_time"] = None
        write_yaml(run_dir, FileStore.META_DATA_FILE_NAME, meta)
        for folder in (FileStore.METRICS_FOLDER_NAME, FileStore.PARAMS_FOLDER_NAME, FileStore.ARTIFACTS_FOLDER_NAME):
            mkdir(run_dir, folder)

    def _artifacts(self, run, mlflow_id: str, cache: Path, summary: ExportSummary) -> None:
        found, missing = artifact_files(run, cache)
        if missing:
            summary.skipped.append((f"run {run.id[:8]}: {len(missing)} artifact file(s), e.g. {missing[0]}",
                                    "their bytes are not in the local content store: gitml artifacts pull"))
        if not found:
            return
        scratch = Path(tempfile.mkdtemp(prefix="gitml-export-"))
        try:
            lay_out(found, scratch, link=True)  # read by MLflow's client, then removed
            self.client.log_artifacts(mlflow_id, str(scratch))
            summary.artifacts += len(found)
            summary.bytes += sum(size for _, _, size in found)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


MAX_TAG_VALUE, MAX_PARAM_VALUE = 8000, 6000  # what MLflow's stores keep (longer tags are cut)


def _fits(run, tags: dict[str, str]) -> None:
    """Refuse, before anything of it is written, a run MLflow would keep changed.

    MLflow cuts a tag value over 8,000 characters (with a warning only) and refuses a param
    over 6,000.
    """
    for key, value in tags.items():
        if len(value) > MAX_TAG_VALUE:
            raise GitmlError(f"run {run.id[:8]}: tag {key[:60]!r} is {len(value):,} characters; MLflow keeps "
                             f"{MAX_TAG_VALUE:,} and would cut it", hint="shorten the tag (gitml runs tag), or "
                             "export the other runs with -e")
    for key, value in run.params.items():
        if len(_param_text(value)) > MAX_PARAM_VALUE:
            raise GitmlError(f"run {run.id[:8]}: param {key[:60]!r} is longer than MLflow's {MAX_PARAM_VALUE:,} "
                             "characters")


def _fetch_missing(ws, run, cache: Path) -> None:
    """Fetch the run's artifacts the local cache lacks from the artifact remote, if one is set."""
    _, missing = artifact_files(run, cache)
    if not missing or not ws.remotes():
        return
    from gitml.artifacts.transfer import fetch_to_cache

    try:
        fetch_to_cache([run.id], repo=ws)
    except GitmlError:
        pass  # still missing: the summary names them


def _param_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return repr(value)


def _tags(run) -> dict[str, str]:
    tags = dict(run.tags)
    tags["mlflow.runName"] = run.name
    for key, value in (("mlflow.source.git.commit", run.source.get("commit")),
                       ("mlflow.source.git.branch", run.source.get("branch")),
                       ("mlflow.source.name", run.command), ("mlflow.project.entryPoint", run.entry_point),
                       ("mlflow.note.content", run.description)):
        if value and key not in tags:
            tags[key] = str(value)
    return tags
