"""Run searches through real MLflow: the oracle of tests/test_search_mlflow.py.

This script runs in MLflow's own virtualenv (``GITML_MLFLOW`` names its Python), never in
gitml's: ``python mlflow_oracle.py SPEC.json OUT.json WORKDIR``. The spec holds the runs to log
(``runs``) and the searches to make (``searches``, each ``{"filter", "order_by"}``); the answer
holds, per store (``sqlite``, ``file``), one entry per search: ``{"runs": [names in MLflow's
order]}`` or ``{"error": "<MLflow's message>"}``.

Each run is logged with ``MlflowClient`` exactly as given: its start time, end time and status,
the ``mlflow.user`` tag (MLflow's user id), every param (as the text ``str(value)`` that
MLflow's ``log_param`` stores), every metric point with its step and timestamp, and its tags.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def log_runs(client, experiment_id: str, runs: list[dict]) -> None:
    """Log ``runs`` (the spec's shape) into the experiment."""
    for spec in runs:
        # The user id comes from the mlflow.user tag at creation; the other tags are set after
        # it, as a script sets them (an mlflow.runName tag then renames the run).
        user = spec["tags"].get("mlflow.user", spec["user"])
        run = client.create_run(experiment_id, start_time=spec["start_time"], tags={"mlflow.user": user},
                                run_name=spec["name"])
        run_id = run.info.run_id
        for key, value in spec["tags"].items():
            client.set_tag(run_id, key, value)
        for key, value in spec["params"].items():
            client.log_param(run_id, key, value)
        for key, points in spec["metrics"].items():
            for value, step, timestamp in points:
                client.log_metric(run_id, key, value, timestamp=timestamp, step=step)
        client.set_terminated(run_id, spec["status"], end_time=spec["end_time"])


def search(client, experiment_id: str, spec: dict) -> dict:
    """One search's answer: the run names in order, or MLflow's error message."""
    from mlflow.exceptions import MlflowException

    try:
        runs = client.search_runs([experiment_id], filter_string=spec["filter"] or "",
                                  order_by=spec["order_by"] or None, max_results=1000)
    except MlflowException as exc:
        return {"error": exc.message.splitlines()[0][:300]}
    return {"runs": [r.info.run_name for r in runs]}


def main(spec_path: str, out_path: str, workdir: str) -> None:
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    spec = json.loads(Path(spec_path).read_text())
    root = Path(workdir).resolve()
    stores = {"sqlite": f"sqlite:///{root / 'mlflow.db'}", "file": (root / "mlruns").as_uri()}
    answer = {}
    for store, uri in stores.items():
        client = MlflowClient(tracking_uri=uri)
        experiment_id = client.create_experiment("differential")
        log_runs(client, experiment_id, spec["runs"])
        answer[store] = [search(client, experiment_id, s) for s in spec["searches"]]
    Path(out_path).write_text(json.dumps(answer))


if __name__ == "__main__":
    main(*sys.argv[1:4])
