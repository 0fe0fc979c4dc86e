"""MLflow's own client writing to gitml: a tracking-store plugin for ``gitml:`` URIs.

Installed with ``pip install 'gitml[mlflow]'``; MLflow finds it through its documented entry
point group ``mlflow.tracking_store`` (``setup.cfg``), so that::

    mlflow.set_tracking_uri("gitml:///path/to/repo")   # or "gitml:." for the current repository
    mlflow.sklearn.autolog()
    pipeline.fit(X, y)

makes an ordinary gitml run: params, metrics (every point), tags, datasets and artifacts, the
model among them, committed to ``refs/gitml/runs`` when the run ends, listed by ``gitml runs
list`` and shared by ``git push``. ``mlflow ui --backend-store-uri gitml:///path`` (or
``mlflow server``) browses the same runs.

How MLflow's objects map (the entities of ``mlflow.entities``, MLflow 3.x):

- A run in progress is a gitml run in progress (``<common dir>/gitml/active/<id>``); ending it
  (``update_run_info`` with a terminal status) commits it, as ``gitml.end_run`` does.
- Experiments are gitml's experiment records; MLflow's default experiment ``"0"`` is the
  repository's default experiment (``gitml.yaml``'s ``experiment``, else ``default``).
- A run's ``artifact_uri`` is a folder under ``<common dir>/gitml/mlflow/artifacts/<run id>``
  that MLflow's own local artifact repository writes to; when the run ends (or ``gitml
  commit-run --resume`` commits it after a crash), each top-level file or folder in it is hashed
  into the content store and recorded as one of the run's artifacts (the next ``gitml push``
  uploads it). A logged model (MLflow 3's ``create_logged_model``) of a run in progress writes
  into that folder under the model's name, so the model is one of the run's artifacts; its
  record is kept beside the folders (``mlflow/models/<model id>.json``, this clone only).
- Params are text in MLflow: gitml's typed values are given back as ``str`` (``0.5`` → ``"0.5"``).

What gitml cannot do (traces, assessments, evaluation datasets, prompts, deleted experiments,
metrics or params added to a finished run …) raises MLflow's
:class:`mlflow.exceptions.MlflowNotImplementedException`, naming the operation.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlflow.entities import (
    Experiment as MlflowExperiment,
)
from mlflow.entities import (
    ExperimentTag,
    LifecycleStage,
    LoggedModel,
    LoggedModelStatus,
    Param,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.entities import (
    Metric as MlflowMetric,
)
from mlflow.entities import (
    Run as MlflowRun,
)
from mlflow.exceptions import MlflowException, MlflowNotImplementedException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking.abstract_store import AbstractStore

from gitml.core import active, store
from gitml.core.errors import ExperimentNotFoundError, GitmlError, RunNotFoundError
from gitml.core.filter import Group, like, parse_filter
from gitml.core.formats import iso_time, param_value, parse_time
from gitml.core.ids import RUN_ID_RE, check_key
from gitml.core.workspace import open_workspace
from gitml.interop.files import artifact_files, lay_out, record_staged, staged_folder
from gitml.tracking import experiments as exps
from gitml.tracking import query
from gitml.tracking.commit import assemble, finish_active, new_meta

SCHEME = "gitml"
log = logging.getLogger(__name__)
DEFAULT_EXPERIMENT_ID = "0"  # MLflow's fluent API starts runs in experiment "0" unless told otherwise
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
NOTE_TAG = "mlflow.note.content"
MODEL_HISTORY_TAG = "mlflow.log-model.history"


def repository_path(store_uri: str) -> Path:
    """The repository folder a ``gitml:`` URI names.

    ``gitml:///abs/path``, ``gitml://localhost/abs/path``, ``gitml:.`` and ``gitml:relative/path``
    (relative to the current directory); percent-escapes are decoded.

    Raises:
        MlflowException: another scheme, or a host other than ``localhost``.
    """
    parsed = urlparse(store_uri)
    if parsed.scheme != SCHEME:
        raise MlflowException(f"not a gitml URI: {store_uri!r}", error_code=INVALID_PARAMETER_VALUE)
    if parsed.netloc not in ("", "localhost"):
        raise MlflowException(f"{store_uri!r}: a gitml store is a local repository (gitml:///path or gitml:.)",
                              error_code=INVALID_PARAMETER_VALUE)
    path = unquote(parsed.path) or "."
    return Path(path).expanduser().resolve()


def _ms(iso: str | None) -> int | None:
    return None if iso is None else int(round(parse_time(iso) * 1000))


def _not_found(message: str) -> MlflowException:
    return MlflowException(message, error_code=RESOURCE_DOES_NOT_EXIST)


def _bad(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


class GitmlStore(AbstractStore):
    """MLflow's tracking store over a gitml repository (see the module docstring).

    Args:
        store_uri: ``gitml:///path``, ``gitml:.`` …
        artifact_uri: ignored: artifacts go to gitml's content store.

    Raises:
        MlflowException: the URI does not name a git repository.
    """

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__()
        self.root = repository_path(store_uri or "gitml:.")
        try:
            with open_workspace(self.root) as ws:
                self.gitml_dir = Path(ws.repo.gitml_dir)
        except GitmlError as exc:
            raise _bad(f"{store_uri}: {exc.message}") from None
        self.mlflow_dir = self.gitml_dir / "mlflow"
        self._lock = threading.RLock()
        self._open: dict[str, active.ActiveRun] = {}  # runs this process writes, kept open
        self._unfetchable: set[str] = set()  # committed runs whose missing artifacts could not be fetched
        self._experiment_ids: dict[str, str] = {}

    # --- experiments --------------------------------------------------------------------------

    def _default_name(self) -> str:
        with open_workspace(self.root) as ws:
            return exps.default_experiment(ws.repo) or _config_experiment(ws)

    def _experiment_name(self, experiment_id: str) -> str:
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            return self._default_name()
        return self._gitml_experiment(experiment_id).name

    def _gitml_experiment(self, experiment_id: str):
        try:
            return exps.get_experiment(str(experiment_id), repo=self.root)
        except (ExperimentNotFoundError, GitmlError):
            raise _not_found(f"No Experiment with id={experiment_id} exists") from None

    def _entity(self, exp) -> MlflowExperiment:
        tags = dict(exp.tags)
        if exp.description is not None:
            tags.setdefault(NOTE_TAG, exp.description)
        return MlflowExperiment(
            experiment_id=exp.experiment_id, name=exp.name,
            artifact_location=(self.mlflow_dir / "artifacts").as_uri(),
            lifecycle_stage=LifecycleStage.ACTIVE, tags=[ExperimentTag(k, v) for k, v in tags.items()],
            creation_time=_ms(exp.creation_time), last_update_time=_ms(exp.last_update_time))

    def _experiment_id(self, name: str) -> str:
        known = self._experiment_ids.get(name)
        if known is not None:  # an id never changes; a search over thousands of runs asks once per name
            return known
        found = exps.get_experiment_by_name(name, repo=self.root)
        if found is None:
            return exps.experiment_id_for(name)
        self._experiment_ids[name] = found.experiment_id
        return found.experiment_id

    def search_experiments(self, view_type=ViewType.ACTIVE_ONLY, max_results=1000, filter_string=None,
                           order_by=None, page_token=None):
        """MLflow's ``search_experiments``, over gitml's experiment records (and unrecorded ones)."""
        if view_type == ViewType.DELETED_ONLY:
            return PagedList([], None)
        found = exps.search_experiments(filter_string or None, order_by or None, None, repo=self.root)
        return _page(found, max_results, page_token, self._entity)

    def create_experiment(self, name, artifact_location=None, tags=None):
        """Record a new experiment; MLflow's ``artifact_location`` is refused (the content store)."""
        if artifact_location:
            raise MlflowNotImplementedException(
                "create_experiment(artifact_location=...) is not supported by the gitml tracking store: "
                "artifacts go to the content store and the remotes of gitml.yaml")
        try:
            return exps.create_experiment(name, tags={t.key: t.value for t in tags or []}, repo=self.root)
        except GitmlError as exc:
            if exps.get_experiment_by_name(name, repo=self.root) is not None:
                # another process made it first: MLflow's set_experiment looks it up again on this code
                raise MlflowException(exc.message, error_code=RESOURCE_ALREADY_EXISTS) from None
            raise _bad(exc.message) from None

    def get_experiment(self, experiment_id):
        """The experiment of that id (``"0"``: the repository's default experiment)."""
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            name = self._default_name()
            found = exps.get_experiment_by_name(name, repo=self.root)
            if found is None:  # not made yet: it exists once a run names it
                return MlflowExperiment(DEFAULT_EXPERIMENT_ID, name, (self.mlflow_dir / "artifacts").as_uri(),
                                        LifecycleStage.ACTIVE, [])
            return self._entity(found)
        return self._entity(self._gitml_experiment(experiment_id))

    def get_experiment_by_name(self, experiment_name):
        """The experiment of that name, or None."""
        found = exps.get_experiment_by_name(experiment_name, repo=self.root)
        return None if found is None else self._entity(found)

    def rename_experiment(self, experiment_id, new_name):
        """Rename an experiment (its runs are rewritten to carry the new name)."""
        try:
            exps.rename_experiment(self._experiment_name(experiment_id), new_name, repo=self.root)
        except GitmlError as exc:
            raise _bad(exc.message) from None

    def set_experiment_tag(self, experiment_id, tag):
        """Set one tag of an experiment (``mlflow.note.content`` is its description)."""
        try:
            exps.set_experiment_tag(tag.key, tag.value, self._experiment_name(experiment_id), repo=self.root)
        except GitmlError as exc:
            raise _bad(exc.message) from None

    def delete_experiment_tag(self, experiment_id, key):
        """Delete one tag of an experiment."""
        try:
            exps.delete_experiment_tag(key, self._experiment_name(experiment_id), repo=self.root)
        except GitmlError as exc:
            raise _bad(exc.message) from None

    # --- runs ---------------------------------------------------------------------------------

    def _artifact_dir(self, run_id: str) -> Path:
        return staged_folder(self.gitml_dir, run_id)

    def create_run(self, experiment_id, user_id, start_time, tags, run_name):
        """Start a gitml run in progress; ``mlflow.runName``/``mlflow.user`` tags name it."""
        tags = {t.key: t.value for t in tags or []}
        name = run_name or tags.pop(RUN_NAME_TAG, None)
        tags.pop(RUN_NAME_TAG, None)
        user = tags.pop(USER_TAG, None) or user_id or None
        experiment = self._experiment_name(experiment_id)
        with self._lock, open_workspace(self.root) as ws:
            try:
                meta, patch = new_meta(ws.repo, name, experiment, False, user=user)
                if start_time:
                    meta["start_time"] = iso_time(start_time / 1000)
                meta["command"] = meta.get("command") or "mlflow"
                handle = active.ActiveRun.create(ws.repo.gitml_dir, meta, patch)
            except GitmlError as exc:
                raise _bad(exc.message) from None
            for key, value in tags.items():
                handle.tag(key, str(value))
            self._open[handle.id] = handle
        self._artifact_dir(handle.id).mkdir(parents=True, exist_ok=True)
        return self.get_run(handle.id)

    def _handle(self, run_id: str) -> active.ActiveRun:
        with self._lock:
            handle = self._open.get(run_id)
            if handle is None:
                try:
                    handle = active.ActiveRun.reopen(self.gitml_dir, run_id)
                except (RunNotFoundError, GitmlError):
                    raise _not_found(f"Run '{run_id}' not found or not in progress") from None
                self._open[run_id] = handle
            return handle

    @staticmethod
    def _check_id(run_id: str) -> None:
        """A run id as MLflow gives them: 32 hex digits (gitml's prefixes are not MLflow's)."""
        if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
            raise _not_found(f"Run '{run_id}' not found")

    def _in_progress(self, run_id: str) -> bool:
        return run_id in self._open or (self.gitml_dir / active.ACTIVE_DIR / run_id).exists()

    def get_run(self, run_id):
        """The run, in progress or committed, as MLflow's ``Run`` (latest metric values)."""
        self._check_id(run_id)
        if self._in_progress(run_id):
            saved = active.load(self.gitml_dir / active.ACTIVE_DIR / run_id)
            run, _ = assemble(saved.meta, saved.log, "FINISHED", saved.patch)
            run.status, run.end_time = "RUNNING", None
            inputs = saved.log.inputs
        else:
            try:
                run = query.get_run(run_id, repo=self.root)
            except RunNotFoundError:
                raise _not_found(f"Run '{run_id}' not found") from None
            except GitmlError as exc:  # a record gitml cannot read: MLflow's error, not a traceback
                raise MlflowException(f"Run '{run_id}': {exc.message}") from None
            inputs = run.inputs
            self._materialize(run)
        return self._run_entity(run, inputs)

    def _run_entity(self, run, inputs) -> MlflowRun:
        info = RunInfo(
            run_id=run.id, experiment_id=self._experiment_id(run.experiment), user_id=run.user or "",
            status=run.status, start_time=_ms(run.start_time), end_time=_ms(run.end_time),
            lifecycle_stage=LifecycleStage.ACTIVE, artifact_uri=self._artifact_dir(run.id).as_uri(),
            run_name=run.name)
        metrics = [MlflowMetric(key, value, _ms(run.metric_info.get(key, {}).get("timestamp")) or 0,
                                int(run.metric_info.get(key, {}).get("step") or 0))
                   for key, value in run.metrics.items()]
        params = [Param(key, _param_text(value)) for key, value in run.params.items()]
        tags = {**run.tags, RUN_NAME_TAG: run.name}
        if run.user:
            tags.setdefault(USER_TAG, run.user)
        if run.source.get("commit"):
            tags.setdefault("mlflow.source.git.commit", run.source["commit"])
        if run.description is not None:
            tags.setdefault(NOTE_TAG, run.description)
        data = RunData(metrics=metrics, params=params, tags=[RunTag(k, v) for k, v in tags.items()])
        return MlflowRun(info, data, RunInputs(dataset_inputs=_dataset_inputs(inputs)))

    def _materialize(self, run) -> None:
        """Give a committed run's artifacts a folder MLflow's client can read (bytes held here)."""
        folder = self._artifact_dir(run.id)
        if folder.exists() or not run.artifacts:
            return
        found, missing = artifact_files(run, store.cache_dir(self.gitml_dir))
        if missing and run.id not in self._unfetchable:  # a clone that has not pulled them: as `gitml artifacts pull`
            from gitml.artifacts.transfer import fetch_to_cache

            try:
                fetch_to_cache([run.id], repo=self.root)
            except GitmlError as exc:  # the run's record still reads; its artifacts are what is here
                self._unfetchable.add(run.id)
                log.warning("gitml: the artifacts of run %s are not in this clone and were not fetched (%s); "
                            "`gitml artifacts pull %s` brings them", run.id, exc.message, run.id[:8])
            found, _ = artifact_files(run, store.cache_dir(self.gitml_dir))
        if not found:
            return
        tmp = folder.with_name(f".{run.id}.{uuid.uuid4().hex}")
        lay_out(found, tmp)
        try:
            os.rename(tmp, folder)
        except OSError:  # another reader made it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)

    def update_run_info(self, run_id, run_status, end_time, run_name):
        """End a run (FINISHED, FAILED, KILLED: commit it with its artifacts) or rename it."""
        status = RunStatus.to_string(run_status) if isinstance(run_status, int) else str(run_status)
        if status in ("RUNNING", "SCHEDULED"):
            if run_name:
                raise MlflowNotImplementedException(
                    "update_run_info(run_name=...) of a run in progress is not supported by the gitml tracking store")
            return self.get_run(run_id).info
        if not self._in_progress(run_id):
            raise MlflowNotImplementedException(
                f"update_run_info of the committed run {run_id} is not supported by the gitml tracking store")
        handle = self._handle(run_id)
        with self._lock:
            try:
                self._record_artifacts(handle)
            finally:
                handle.close()
                self._open.pop(run_id, None)
            with open_workspace(self.root) as ws:
                try:
                    finish_active(ws.repo, run_id, status)
                except GitmlError as exc:
                    raise MlflowException(exc.message) from None
        return self.get_run(run_id).info

    def _record_artifacts(self, handle: active.ActiveRun) -> None:
        record_staged(self.gitml_dir, handle)

    def delete_run(self, run_id):
        """Delete a committed run (gitml deletes it from the runs ref; there is no restore)."""
        try:
            query.delete_run(run_id, repo=self.root)
        except RunNotFoundError:
            raise _not_found(f"Run '{run_id}' not found") from None
        except GitmlError as exc:
            raise _bad(exc.message) from None

    def log_batch(self, run_id, metrics, params, tags):
        """Log metrics (every point), params and tags into a run in progress.

        On a committed run, only tags can change (``gitml runs tag``); anything else raises
        ``MlflowNotImplementedException``.
        """
        self._check_id(run_id)
        metrics, params, tags = _validated(metrics, params, tags)
        if not self._in_progress(run_id):
            if metrics or params:
                raise MlflowNotImplementedException(
                    "log_batch of metrics or params into the committed run "
                    f"{run_id} is not supported by the gitml tracking store")
            from gitml.tracking import edit

            for tag in tags:
                edit.set_tag(run_id, tag.key, tag.value, repo=self.root)
            return
        handle = self._handle(run_id)
        with self._lock:
            try:
                typed = [(param.key, param_value(param.key, param.value), param.value) for param in params]
                for key, value, text in typed:  # MLflow's rule, checked before anything of the batch is logged
                    if key in handle.params_so_far and handle.params_so_far[key] != value:
                        raise MlflowException(
                            f"Changing param values is not allowed. Param with key='{key}' was already logged "
                            f"with value='{_param_text(handle.params_so_far[key])}' for run ID='{run_id}'. "
                            f"Attempted logging new value '{text}'.", error_code=INVALID_PARAMETER_VALUE)
                for key, value, _ in typed:
                    handle.param(key, value)
                    handle.params_so_far[key] = value
                for metric in metrics:
                    handle.metric(metric.key, float(metric.value), int(metric.step or 0),
                                  (metric.timestamp or time.time() * 1000) / 1000)
                for tag in tags:
                    if tag.key == RUN_NAME_TAG:
                        continue  # the name is the run's, set when it started
                    handle.tag(tag.key, str(tag.value))
            except GitmlError as exc:
                raise _bad(exc.message) from None

    def set_tag(self, run_id, tag):
        """Set one tag of a run (in progress, or committed)."""
        self.log_batch(run_id, [], [], [tag])

    def delete_tag(self, run_id, key):
        """Delete a tag of a committed run (a run in progress keeps its tags until it ends)."""
        if self._in_progress(run_id):
            raise MlflowNotImplementedException(
                "delete_tag on a run in progress is not supported by the gitml tracking store")
        from gitml.tracking import edit

        try:
            edit.delete_tag(run_id, key, repo=self.root)
        except GitmlError as exc:
            raise _bad(exc.message) from None

    def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
        """Every point of one metric, in the order logged."""
        self._check_id(run_id)
        if self._in_progress(run_id):
            saved = active.load(self.gitml_dir / active.ACTIVE_DIR / run_id)
            points = [p for p in saved.log.metrics if p.key == metric_key]
        else:
            try:
                points = query.get_metric_history(run_id, metric_key, repo=self.root)
            except RunNotFoundError:
                raise _not_found(f"Run '{run_id}' not found") from None
        entities = [MlflowMetric(p.key, p.value, _ms(p.timestamp), p.step) for p in points]
        return _page(entities, max_results, page_token, lambda m: m)

    def _search_runs(self, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token):
        if run_view_type == ViewType.DELETED_ONLY:
            return [], None
        names = [self._experiment_name(e) for e in experiment_ids or []]
        offset = _offset(page_token)
        try:
            found = query.search_runs(filter_string or None, list(order_by or []) or None,
                                      experiment=names or None, limit=offset + max_results + 1, repo=self.root)
        except GitmlError as exc:
            raise _bad(exc.message) from None
        chosen = found[offset:offset + max_results]
        token = str(offset + max_results) if len(found) > offset + max_results else None
        return [self._run_entity(run, run.inputs) for run in chosen], token

    def log_inputs(self, run_id, datasets=None, models=None):
        """Record the datasets a run read (gitml's ``log_input``); model inputs are kept as tags."""
        handle = self._handle(run_id)
        with self._lock:
            for item in datasets or []:
                ds = item.dataset
                context = next((t.value for t in item.tags if t.key == "mlflow.data.context"), "") or "default"
                handle.input(context, ds.name, {"digest": ds.digest, "source_type": ds.source_type,
                                                "source": ds.source, "schema": ds.schema or None,
                                                "profile": ds.profile or None})

    def log_outputs(self, run_id, models):
        """Link logged models to the run that made them (kept in the models' records)."""
        for output in models or []:
            record = self._model_record(output.model_id)
            record.setdefault("outputs", [])
            if run_id not in record["outputs"]:
                record["outputs"].append(run_id)
            self._save_model_record(record)

    def record_logged_model(self, run_id, mlflow_model):
        """MLflow 2's model history: appended to the run's ``mlflow.log-model.history`` tag."""
        current = self.get_run(run_id).data.tags.get(MODEL_HISTORY_TAG)
        history = json.loads(current) if current else []
        history.append(mlflow_model.get_tags_dict())
        self.set_tag(run_id, RunTag(MODEL_HISTORY_TAG, json.dumps(history)))

    # --- logged models (MLflow 3) -------------------------------------------------------------

    def _model_path(self, model_id: str) -> Path:
        if not model_id.startswith("m-") or not all(c in "0123456789abcdef" for c in model_id[2:]):
            raise _bad(f"bad model id {model_id!r}")
        return self.mlflow_dir / "models" / f"{model_id}.json"

    def _model_record(self, model_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._model_path(model_id).read_text())
        except FileNotFoundError:
            raise _not_found(f"Logged model with ID '{model_id}' not found") from None

    def _save_model_record(self, record: dict[str, Any]) -> None:
        path = self._model_path(record["model_id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)

    def _model_entity(self, record: dict[str, Any]) -> LoggedModel:
        return LoggedModel(
            experiment_id=record["experiment_id"], model_id=record["model_id"], name=record["name"],
            artifact_location=record["artifact_location"], creation_timestamp=record["creation_timestamp"],
            last_updated_timestamp=record["last_updated_timestamp"], model_type=record.get("model_type"),
            source_run_id=record.get("source_run_id"), status=LoggedModelStatus(record["status"]),
            tags=dict(record.get("tags", {})), params=dict(record.get("params", {})))

    def create_logged_model(self, experiment_id, name=None, source_run_id=None, tags=None, params=None,
                            model_type=None):
        """A logged model; made by a run in progress, its files become that run's artifacts."""
        model_id = f"m-{uuid.uuid4().hex}"
        name = name or "model"
        if source_run_id and self._in_progress(source_run_id):
            location = self._artifact_dir(source_run_id) / name
            if location.exists():  # a second model of the same name in one run
                location = self._artifact_dir(source_run_id) / f"{name}-{model_id[2:10]}"
        else:
            location = self.mlflow_dir / "models" / model_id / "artifacts"
        location.mkdir(parents=True, exist_ok=True)
        now = int(time.time() * 1000)
        record = {"model_id": model_id, "experiment_id": str(experiment_id), "name": name,
                  "artifact_location": location.as_uri(), "creation_timestamp": now,
                  "last_updated_timestamp": now, "model_type": model_type, "source_run_id": source_run_id,
                  "status": LoggedModelStatus.PENDING.value,
                  "tags": {t.key: t.value for t in tags or []}, "params": {p.key: p.value for p in params or []}}
        self._save_model_record(record)
        return self._model_entity(record)

    def finalize_logged_model(self, model_id, status):
        """Mark a logged model READY (or FAILED)."""
        record = self._model_record(model_id)
        record["status"] = LoggedModelStatus(status.value if isinstance(status, LoggedModelStatus) else status).value
        record["last_updated_timestamp"] = int(time.time() * 1000)
        self._save_model_record(record)
        return self._model_entity(record)

    def get_logged_model(self, model_id, allow_deleted=False):
        """A logged model by id (``models:/m-…`` URIs resolve through it)."""
        return self._model_entity(self._model_record(model_id))

    def set_logged_model_tags(self, model_id, tags):
        """Set tags of a logged model."""
        record = self._model_record(model_id)
        record.setdefault("tags", {}).update({t.key: t.value for t in tags})
        self._save_model_record(record)

    def delete_logged_model_tag(self, model_id, key):
        """Delete a tag of a logged model."""
        record = self._model_record(model_id)
        if key not in record.get("tags", {}):
            raise _not_found(f"No tag with key {key!r} on logged model {model_id}")
        del record["tags"][key]
        self._save_model_record(record)

    def search_logged_models(self, experiment_ids, filter_string=None, datasets=None, max_results=None,
                             order_by=None, page_token=None):
        """Logged models of these experiments, newest first.

        ``filter_string`` takes MLflow's syntax over ``name``, ``model_id``, ``source_run_id``,
        ``status``, ``model_type``, ``tags.<key>`` and ``params.<key>``; ``datasets`` and
        ``order_by`` raise ``MlflowNotImplementedException``.
        """
        if datasets or order_by:
            raise MlflowNotImplementedException(
                "search_logged_models with datasets or order_by is not supported by the gitml tracking store")
        try:
            where = parse_filter(filter_string or None, {k: k for k in MODEL_FIELDS}, frozenset())
        except GitmlError as exc:
            raise _bad(exc.message) from None
        folder = self.mlflow_dir / "models"
        records = [json.loads(p.read_text()) for p in folder.glob("m-*.json")] if folder.is_dir() else []
        wanted = {str(e) for e in experiment_ids or []}
        records = [r for r in records if (not wanted or r["experiment_id"] in wanted)
                   and (where is None or _model_matches(where, r))]
        records.sort(key=lambda r: r["creation_timestamp"], reverse=True)
        return _page(records, max_results or 100, page_token, self._model_entity)


MODEL_FIELDS = ("name", "model_id", "source_run_id", "status", "model_type")


def _model_matches(node, record: dict[str, Any]) -> bool:
    """Whether a logged model's record satisfies a parsed filter (attributes, tags, params)."""
    if isinstance(node, Group):
        parts = (_model_matches(part, record) for part in node.parts)
        return all(parts) if node.joiner == "AND" else any(parts)
    if node.field == "attr":
        value = record.get(node.name)
    elif node.field in ("tag", "param"):
        value = record.get(f"{node.field}s", {}).get(node.name)
    else:
        raise _bad(f"logged models cannot be filtered on {node.field}s")
    if node.op == "NULL":
        return (value is None) != node.negate
    if value is None:
        return False
    value = str(value)
    texts = [v.value if v.kind in ("str", "time") else v.text for v in node.values]
    if node.op in ("LIKE", "ILIKE"):
        return like(texts[0], value, node.op == "ILIKE") != node.negate
    if node.op == "IN":
        return (value in texts) != node.negate
    return {"=": value == texts[0], "!=": value != texts[0], "<": value < texts[0], "<=": value <= texts[0],
            ">": value > texts[0], ">=": value >= texts[0]}[node.op]


def _validated(metrics, params, tags):
    """MLflow's own checks of a batch, then gitml's key rules.

    MLflow's stores make the first (``a//b`` is refused, a long tag value cut as MLflow cuts
    it); gitml's refuse a key such as ``../x``, which names no file of a run.
    """
    try:
        from mlflow.utils.validation import _validate_batch_log_data
    except ImportError:  # another MLflow 3.x layout: gitml's own checks still apply
        pass
    else:
        metrics, params, tags = _validate_batch_log_data(list(metrics), list(params), list(tags))
    try:
        for kind, items in (("metric key", metrics), ("param key", params), ("tag key", tags)):
            for item in items:
                check_key(item.key, kind)
    except GitmlError as exc:
        raise _bad(exc.message) from None
    return metrics, params, tags


def _config_experiment(ws) -> str:
    from gitml.core.config import load_config

    return load_config(ws.repo.root).experiment


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def _dataset_inputs(inputs: dict) -> list:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    out = []
    for context, named in (inputs or {}).items():
        for name, ds in named.items():
            out.append(DatasetInput(
                Dataset(name=name, digest=ds.get("digest") or "", source_type=ds.get("source_type") or "",
                        source=ds.get("source") or "", schema=ds.get("schema"), profile=ds.get("profile")),
                [InputTag("mlflow.data.context", context)]))
    return out


def _offset(page_token) -> int:
    if not page_token:
        return 0
    try:
        offset = int(page_token)
    except (TypeError, ValueError):
        raise _bad(f"bad page token {page_token!r}") from None
    if offset < 0:
        raise _bad(f"bad page token {page_token!r}")
    return offset


def _page(items: list, max_results, page_token, convert) -> PagedList:
    offset = _offset(page_token)
    size = len(items) if max_results is None else int(max_results)
    chosen = items[offset:offset + size]
    token = str(offset + size) if len(items) > offset + size else None
    return PagedList([convert(item) for item in chosen], token)


def _unsupported(name: str):
    def method(self, *args, **kwargs):
        raise MlflowNotImplementedException(f"{name} is not supported by the gitml tracking store")

    method.__name__ = name
    method.__doc__ = f"Not supported: raises ``MlflowNotImplementedException`` naming ``{name}``."
    return method


# Every operation of MLflow's AbstractStore that has no implementation there (abstract, or raising
# NotImplementedError) and none here
# (traces, assessments, datasets, deleted experiments …) raises MLflow's "not implemented" error
# naming itself, instead of the bare NotImplementedError("GitmlStore") MLflow's base class gives.
for _name, _member in inspect.getmembers(AbstractStore, inspect.isfunction):
    if _name.startswith("__") or _name in GitmlStore.__dict__:
        continue
    try:
        _body = inspect.getsource(_member)
    except (OSError, TypeError):
        continue
    if getattr(_member, "__isabstractmethod__", False) or "raise NotImplementedError" in _body:
        setattr(GitmlStore, _name, _unsupported(_name))
