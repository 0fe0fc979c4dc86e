"""Produce a real MLflow store for tests/test_import_mlflow.py: run in MLflow's own virtualenv.

``python mlflow_stores.py TRACKING_URI WORKDIR COMMIT OUT.json``: logs, through MLflow's own
client, the runs the import test expects (an experiment with a description and a tag, a parent
run with a metric history, params, a 5,000-character tag, a folder and a file as artifacts and
an sklearn model, a nested child run with NaN and infinite points, a deleted run, an older run in
a second experiment), registers the model with an alias, then writes what MLflow itself reads
back (every run's info, params, tags and full metric histories, the registry) to OUT.json: the
oracle the imported records are compared with.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

T0 = 1_790_000_000_000  # 2026-09-21, milliseconds


def main(uri: str, workdir: str, commit: str, out: str) -> None:
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow import MlflowClient

    work = Path(workdir)
    os.chdir(work)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    exp_id = client.create_experiment("churn", tags={"team": "growth", "mlflow.note.content": "Who leaves."})
    parent = client.create_run(exp_id, start_time=T0, run_name="parent",
                               tags={"mlflow.user": "ada", "mlflow.source.name": "train.py",
                                     "mlflow.source.git.commit": commit, "mlflow.source.type": "LOCAL"})
    pid = parent.info.run_id
    client.log_param(pid, "lr", "0.1")
    client.log_param(pid, "layers", "[64, 32]")
    for step in range(5):
        client.log_metric(pid, "loss", 1.0 / (step + 1), timestamp=T0 + 100 * step, step=step)
    client.log_metric(pid, "accuracy", 0.91, timestamp=T0 + 900, step=0)
    client.set_tag(pid, "long", "x" * 5000)
    client.set_tag(pid, "team", "growth")
    files = work / "payload"
    (files / "data" / "sub").mkdir(parents=True, exist_ok=True)
    (files / "data" / "a.csv").write_text("a,b\n1,2\n")
    (files / "data" / "sub" / "b.txt").write_text("nested\n")
    (files / "notes.txt").write_text("a file artifact\n")
    client.log_artifacts(pid, str(files / "data"), "data")
    client.log_artifact(pid, str(files / "notes.txt"))
    with mlflow.start_run(run_id=pid):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        mlflow.sklearn.log_model(model, name="model")
        child = client.create_run(exp_id, start_time=T0 + 50, run_name="child",
                                  tags={"mlflow.parentRunId": pid, "mlflow.user": "ada"})
    cid = child.info.run_id
    for step, value in enumerate([0.5, float("nan"), float("inf"), float("-inf"), 0.75]):
        client.log_metric(cid, "acc", value, timestamp=T0 + 60 + step, step=step)
    client.set_terminated(cid, "FINISHED", end_time=T0 + 70)
    client.set_terminated(pid, "FINISHED", end_time=T0 + 1000)
    gone = client.create_run(exp_id, start_time=T0 + 2000, run_name="gone")
    client.set_terminated(gone.info.run_id, "FAILED", end_time=T0 + 2001)
    client.delete_run(gone.info.run_id)
    other_id = client.create_experiment("other")
    old = client.create_run(other_id, start_time=T0 - 86_400_000 * 30, run_name="old")
    client.log_metric(old.info.run_id, "rmse", 3.5, timestamp=T0 - 86_400_000 * 30, step=0)
    client.set_terminated(old.info.run_id, "KILLED", end_time=T0 - 86_400_000 * 30 + 5)

    version = mlflow.register_model(f"runs:/{pid}/model", "churn-model")
    client.set_registered_model_alias("churn-model", "champion", version.version)

    runs = {}
    for run_id in (pid, cid, gone.info.run_id, old.info.run_id):
        run = client.get_run(run_id)
        runs[run_id] = {
            "name": run.info.run_name, "experiment_id": run.info.experiment_id, "status": run.info.status,
            "start_time": run.info.start_time, "end_time": run.info.end_time, "user": run.info.user_id,
            "lifecycle_stage": run.info.lifecycle_stage, "params": run.data.params, "tags": run.data.tags,
            "metrics": {key: [[repr(m.value), m.step, m.timestamp] for m in client.get_metric_history(run_id, key)]
                        for key in run.data.metrics},
        }
    out_doc = {"parent": pid, "child": cid, "deleted": gone.info.run_id, "old": old.info.run_id,
               "experiments": {"churn": exp_id, "other": other_id}, "runs": runs,
               "version": {"model": "churn-model", "version": int(version.version), "alias": "champion"}}
    Path(out).write_text(json.dumps(out_doc, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:5])
