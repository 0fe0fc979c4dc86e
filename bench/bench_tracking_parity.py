#!/usr/bin/env python
"""Tracking parity: gitml against MLflow 3.x on the MLflow-style calls beyond params and metrics.

Run from the repository root (MLflow in its own virtualenv, as ``.ci/run`` installs it)::

    python bench/bench_tracking_parity.py --out bench/RESULTS-tracking-parity.md

(about 1-2 minutes on 2 cores; ``--reps`` timed calls per operation, default 20; ``--fit-reps``
timed fits, default 5; ``--mlflow-python``, default ``/tmp/gitml-ci-mlflow/bin/python``;
``--profile DIR`` writes a cProfile dump of every timed operation of every worker to DIR). It
prints one Markdown report (``--out FILE`` writes it too): one row per operation, the median of
each tool in milliseconds, and MLflow / gitml (above 1: gitml is faster).

Stores: gitml in a fresh ``git init`` repository in a temporary directory with one empty commit,
the workers running from that directory (gitml finds its repository from the current
directory); MLflow with the sqlite tracking store ``sqlite:///<tmp>/mlflow.db`` and an
experiment whose artifact location is a local folder in the same temporary directory (created
with ``mlflow.create_experiment(..., artifact_location=<tmp>/mlartifacts as a file: URI)``), the
workers running from that directory. Every worker is its own Python process: gitml's in this
interpreter (``PYTHONPATH`` at this checkout), MLflow's in MLflow's interpreter, so the two never
share imports or caches. The environment is scrubbed for both (``_common.scrubbed_env``: no
``GIT_*``/``MLFLOW_*``/``PYTHONPATH`` from the caller, ``HOME`` a temporary directory with a
``.gitconfig``, ``MLFLOW_DISABLE_TELEMETRY=true``). MLflow needs no other environment variable for
any of this.

What is measured (times with ``time.perf_counter`` around each call; the tracking store's setup,
experiment creation and imports are outside every timed section):

1. **In one run**, each operation once untimed (a warm-up), then ``--reps`` timed calls, the
   median reported, all inside one active run (gitml ``gitml.start_run()``, MLflow
   ``mlflow.start_run()``):

   - ``log_dict(d, "cfg.json")`` and ``log_dict(d, "cfg.yaml")``, ``d`` a small nested dict
     (``CONFIG``), the same name each call (the file is replaced);
   - ``log_text(TEXT, "notes.md")`` (about 300 characters);
   - ``log_table(df, "preds.json")`` with a 100-row pandas DataFrame (an int, a float and a
     string column), the same name each call: **both tools append**, so the table grows by 100
     rows a call (MLflow lists the run's artifacts, downloads the file to a temporary folder, reads
     it into pandas, concatenates, writes it back and re-reads the run for its
     ``mlflow.loggedArtifacts`` tag; gitml rewrites the table from its record of the run). The
     last call writes ``100 * (reps + 1)`` rows; both tables' row counts are checked at the end;
   - ``log_image(a, "img.png")``, ``a`` one 64x64x3 ``uint8`` numpy array (random, seeded, the
     same each call), written as PNG by Pillow in both tools;
   - ``log_input`` of a 1,000-row DataFrame (an int, a float and a string column): gitml
     ``gitml.log_input(df, "training")``; MLflow ``mlflow.log_input(mlflow.data.from_pandas(df),
     context="training")`` timed as one expression, since gitml's call hashes the frame and
     MLflow's ``from_pandas`` is where MLflow hashes it (its share is given in the notes). The
     same frame each call: both keep one dataset per digest and context.

   Then ``end_run`` of that run is timed once (gitml commits the run and its files to the runs
   ref there; MLflow only sets the run's status), shown as its own row.
2. **Changing a finished run**: ``--reps`` tags, each with a new key (after one warm-up tag), on a
   run that has ended (10 params, 10 metrics, 3 tags): gitml ``gitml.set_tag(f"k{i}", "v",
   run_id=RUN)`` with no active run (one commit on the runs ref each); MLflow
   ``MlflowClient().set_tag(RUN, f"k{i}", "v")`` with one client made before the timed calls.
3. **get_metric_history** of a finished run that logged 1,000 points of ``loss`` (steps 0-999):
   gitml ``gitml.get_metric_history(RUN, "loss")``; MLflow
   ``MlflowClient().get_metric_history(RUN, "loss")`` (one client, made before). The points are
   logged untimed (gitml with ``log_metric`` in a run, MLflow with one ``log_batch`` of 1,000
   ``Metric`` entities, its batch maximum); both answers are checked to hold the same 1,000
   (step, value) pairs. One warm-up call, median of ``--reps``.
4. **scikit-learn autolog**: wall time of ``LogisticRegression(max_iter=300).fit(X, y)`` on iris
   (``load_iris(return_X_y=True, as_frame=True)``), each tool in three processes of its own
   interpreter: a **baseline** with no autolog (the tracking tool not even imported), one warm-up
   fit then the median of ``--fit-reps``; and **with autolog on** (gitml ``import gitml.sklearn;
   gitml.sklearn.autolog()``, MLflow ``mlflow.sklearn.autolog()``, both with their defaults and
   no active run, so every fit makes, logs and ends its own run): the first fit in the process
   is its own row, then the median of ``--fit-reps`` more. The defaults differ a little: both
   log params, training metrics, the dataset and the fitted model with its signature; gitml also
   saves an input example (MLflow's ``log_input_examples`` defaults to False); MLflow infers the
   model's pip requirements (in a subprocess) where gitml writes them from the versions it
   imported, keeps the model as an MLflow 3 logged model, and also logs ``estimator.html`` and a
   ``training_confusion_matrix.png`` (drawn with matplotlib) to the run. What each tool's last
   autolog run recorded is given in the notes; a row gives autolog's own cost per fit (the
   autolog median less the same tool's baseline median).

BLAS threads: every worker of both tools runs with ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``
and ``MKL_NUM_THREADS`` set to ``--blas-threads`` (default 1; 0 leaves them unset). On this
2-core machine shared with other jobs, OpenBLAS's default 2 threads spin-wait on each other
inside scipy's L-BFGS-B, and the same iris fit took 27 ms or 100-900 ms from one fit to the
next in either interpreter (with no tracking tool imported); one thread gives 27-35 ms in both,
so that the fit rows measure the tools rather than the scheduler.

The workers alternate tools (gitml's log worker, MLflow's, then the fits) so that a change in a
shared machine's load falls on both; the 1-minute load average is given at the start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    LoadSampler,
    bench_home,
    cpu_model,
    emit_result,
    failure_line,
    fmt,
    fmt_ratio,
    machine_line,
    prof_path,
    run_worker,
    scrubbed_env,
    timed,
)

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_PYTHON = "/tmp/gitml-ci-mlflow/bin/python"
EXPERIMENT = "bench"
CONFIG = {
    "model": {"kind": "logreg", "C": 1.0, "penalty": "l2", "max_iter": 300},
    "data": {"path": "data/train.csv", "columns": ["age", "plan", "tenure"], "test_size": 0.2},
    "seed": 42,
    "tags": ["baseline", "v1"],
}
TEXT = (
    "# Notes\n\nTried a deeper tree; the loss kept falling until epoch 40, then the validation\n"
    "accuracy flattened. Next: class weights, and a smaller learning rate after epoch 30.\n\n"
    "- data: train.csv (2026-05 snapshot)\n- features: age, plan, tenure\n"
)
HISTORY_POINTS = 1_000
OPS = ("log_dict_json", "log_dict_yaml", "log_text", "log_table", "log_image", "log_input")


# ------------------------------------------------------------------------------------------------
# Shared by both tools' workers (stdlib, numpy and pandas only)
# ------------------------------------------------------------------------------------------------
def frame(rows: int, seed: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "score": rng.random(rows),
            "label": rng.choice(["churn", "stay", "unknown"], rows),
        }
    )


def image():
    import numpy as np

    return np.random.default_rng(7).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)


def loss_values() -> list[float]:
    return [1.0 / (1 + 0.01 * i) for i in range(HISTORY_POINTS)]


def fit_worker(spec: dict, tool: str, setup) -> dict:
    """Fits of LogisticRegression on iris: ``setup()`` (None for the baseline) turns autolog on."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    if setup is not None:
        setup()

    def fit(_i):
        LogisticRegression(max_iter=300).fit(X, y)

    return timed(fit, spec["fit_reps"], prof_path(spec, tool, f"fit-{spec['mode']}"))


# ------------------------------------------------------------------------------------------------
# gitml workers
# ------------------------------------------------------------------------------------------------
def w_gitml_log(spec: dict) -> dict:
    import gitml
    from gitml.artifacts import materialize

    reps, out = spec["reps"], {}
    small, big, img = frame(100, 1), frame(1_000, 2), image()
    calls = {
        "log_dict_json": lambda i: gitml.log_dict(CONFIG, "cfg.json"),
        "log_dict_yaml": lambda i: gitml.log_dict(CONFIG, "cfg.yaml"),
        "log_text": lambda i: gitml.log_text(TEXT, "notes.md"),
        "log_table": lambda i: gitml.log_table(small, "preds.json"),
        "log_image": lambda i: gitml.log_image(img, "img.png"),
        "log_input": lambda i: gitml.log_input(big, "training"),
    }
    run = gitml.start_run(name="parity", experiment=EXPERIMENT)
    for op, fn in calls.items():
        out[op] = timed(fn, reps, prof_path(spec, "gitml", op))
    t0 = time.perf_counter()
    gitml.end_run()
    out["end_run"] = {"median_ms": (time.perf_counter() - t0) * 1e3}
    got = gitml.get_run(run.id)
    out["artifacts"] = sorted(got.artifacts)
    out["table_rows"] = len(json.loads(materialize(f"runs:/{run.id}/preds.json").read_text())["data"])
    out["inputs"] = {ctx: len(v) for ctx, v in got.inputs.items()}

    # 2. set_tag on a finished run
    with gitml.start_run(name="finished", experiment=EXPERIMENT) as done:
        gitml.log_params({f"p{j}": j for j in range(10)})
        gitml.log_metrics({f"m{j}": j / 10 for j in range(10)})
        gitml.set_tags({"team": "bench", "stage": "dev", "note": "parity"})
    out["set_tag"] = timed(lambda i: gitml.set_tag(f"k{i}", "v", run_id=done.id), reps,
                           prof_path(spec, "gitml", "set_tag"))
    out["tags_after"] = len(gitml.get_run(done.id).tags)

    # 3. get_metric_history, 1,000 points
    with gitml.start_run(name="history", experiment=EXPERIMENT) as hist:
        for step, v in enumerate(loss_values()):
            gitml.log_metric("loss", v, step=step)
    out["history"] = timed(lambda i: gitml.get_metric_history(hist.id, "loss"), reps,
                           prof_path(spec, "gitml", "history"))
    points = gitml.get_metric_history(hist.id, "loss")
    out["history_points"] = [[p.step, p.value] for p in points]
    return out


def w_gitml_fit(spec: dict) -> dict:
    def setup():
        import gitml.sklearn

        gitml.sklearn.autolog()

    res = fit_worker(spec, "gitml", setup if spec["mode"] == "autolog" else None)
    if spec["mode"] == "autolog":
        import gitml

        runs = gitml.search_runs()
        res["runs"] = len(runs)
        last = max(runs, key=lambda r: r.start_time)
        res["recorded"] = {"params": len(last.params), "metrics": len(last.metrics), "tags": len(last.tags),
                           "artifacts": sorted({a.split("/")[0] for a in last.artifacts}), "inputs": sum(len(v) for v in last.inputs.values())}
    return res


# ------------------------------------------------------------------------------------------------
# MLflow workers
# ------------------------------------------------------------------------------------------------
def mlflow_setup(spec: dict) -> None:
    import mlflow

    mlflow.set_tracking_uri(spec["uri"])
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=spec["artifacts"])
    mlflow.set_experiment(EXPERIMENT)


def w_mlflow_log(spec: dict) -> dict:
    import mlflow
    import mlflow.artifacts
    import mlflow.data
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    mlflow_setup(spec)
    reps, out = spec["reps"], {}
    small, big, img = frame(100, 1), frame(1_000, 2), image()
    calls = {
        "log_dict_json": lambda i: mlflow.log_dict(CONFIG, "cfg.json"),
        "log_dict_yaml": lambda i: mlflow.log_dict(CONFIG, "cfg.yaml"),
        "log_text": lambda i: mlflow.log_text(TEXT, "notes.md"),
        "log_table": lambda i: mlflow.log_table(small, "preds.json"),
        "log_image": lambda i: mlflow.log_image(img, "img.png"),
        "log_input": lambda i: mlflow.log_input(mlflow.data.from_pandas(big), context="training"),
    }
    client = MlflowClient()
    run = mlflow.start_run(run_name="parity")
    run_id = run.info.run_id
    for op, fn in calls.items():
        out[op] = timed(fn, reps, prof_path(spec, "mlflow", op))
    # from_pandas alone (its share of the log_input row): the dataset, its digest and schema
    out["from_pandas"] = timed(lambda i: mlflow.data.from_pandas(big), reps)
    t0 = time.perf_counter()
    mlflow.end_run()
    out["end_run"] = {"median_ms": (time.perf_counter() - t0) * 1e3}
    out["artifacts"] = sorted(f.path for f in client.list_artifacts(run_id))
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="preds.json")
    out["table_rows"] = len(json.loads(Path(local).read_text())["data"])
    inputs = client.get_run(run_id).inputs.dataset_inputs
    out["inputs"] = {"training": sum(1 for d in inputs for t in d.tags if t.value == "training")}

    # 2. set_tag on a finished run
    with mlflow.start_run(run_name="finished") as done:
        mlflow.log_params({f"p{j}": j for j in range(10)})
        mlflow.log_metrics({f"m{j}": j / 10 for j in range(10)})
        mlflow.set_tags({"team": "bench", "stage": "dev", "note": "parity"})
    done_id = done.info.run_id
    out["set_tag"] = timed(lambda i: client.set_tag(done_id, f"k{i}", "v"), reps,
                           prof_path(spec, "mlflow", "set_tag"))
    out["tags_after"] = len({k for k in client.get_run(done_id).data.tags if not k.startswith("mlflow.")})

    # 3. get_metric_history, 1,000 points (logged in one batch: untimed)
    with mlflow.start_run(run_name="history") as hist:
        now = int(time.time() * 1000)
        client.log_batch(hist.info.run_id,
                         metrics=[Metric("loss", v, now + step, step) for step, v in enumerate(loss_values())])
    hist_id = hist.info.run_id
    out["history"] = timed(lambda i: client.get_metric_history(hist_id, "loss"), reps,
                           prof_path(spec, "mlflow", "history"))
    points = sorted(client.get_metric_history(hist_id, "loss"), key=lambda m: m.step)
    out["history_points"] = [[m.step, m.value] for m in points]
    return out


def w_mlflow_fit(spec: dict) -> dict:
    def setup():
        import mlflow.sklearn

        mlflow_setup(spec)
        mlflow.sklearn.autolog()

    res = fit_worker(spec, "mlflow", setup if spec["mode"] == "autolog" else None)
    if spec["mode"] == "autolog":
        import mlflow

        runs = mlflow.search_runs(experiment_names=[EXPERIMENT], output_format="list", order_by=["start_time DESC"])
        res["runs"] = len(runs)
        last = runs[0]
        client = mlflow.MlflowClient()
        inputs = last.inputs.dataset_inputs if last.inputs else []
        res["recorded"] = {
            "params": len(last.data.params),
            "metrics": len(last.data.metrics),
            "tags": len([k for k in last.data.tags if not k.startswith("mlflow.")]),
            "artifacts": sorted(f.path for f in client.list_artifacts(last.info.run_id)),
            "inputs": len(inputs),
            "logged_models": len(mlflow.search_logged_models(experiment_ids=[last.info.experiment_id],
                                                              output_format="list")),
        }
    return res


WORKERS = {
    "gitml_log": w_gitml_log,
    "mlflow_log": w_mlflow_log,
    "gitml_fit": w_gitml_fit,
    "mlflow_fit": w_mlflow_fit,
}


def worker_main(name: str, spec_json: str) -> int:
    import warnings

    warnings.filterwarnings("ignore")  # MLflow's and scikit-learn's advice would bury the result line
    emit_result(WORKERS[name](json.loads(spec_json)))
    return 0


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-parity-"))
        self.home = bench_home(self.tmp)
        threads = {} if args.blas_threads == 0 else {
            v: str(args.blas_threads) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        self.env = scrubbed_env(self.home, **threads)
        self.t_start = time.perf_counter()
        self.load = LoadSampler(every=5.0)
        self.r: dict = {}
        self.notes: list[str] = []
        self.machine = machine_line(self.env, args.mlflow_python, ROOT)

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def git(self, *argv: str, cwd: Path) -> None:
        subprocess.run(["git", *argv], cwd=cwd, env=self.env, check=True, capture_output=True)

    def gitml_repo(self, name: str) -> Path:
        repo = self.tmp / name
        repo.mkdir()
        self.git("init", "-q", "-b", "main", cwd=repo)
        self.git("commit", "-q", "--allow-empty", "-m", "init", cwd=repo)
        return repo

    def mlflow_store(self, name: str) -> tuple[Path, dict]:
        d = self.tmp / name
        d.mkdir()
        return d, {"uri": f"sqlite:///{d / 'mlflow.db'}", "artifacts": (d / "mlartifacts").as_uri()}

    def worker(self, name: str, spec: dict, cwd: Path) -> dict | None:
        mlflow = name.startswith("mlflow")
        python = self.args.mlflow_python if mlflow else sys.executable
        env = dict(self.env) if mlflow else dict(self.env, PYTHONPATH=str(ROOT))
        spec = dict(spec, reps=self.args.reps, fit_reps=self.args.fit_reps,
                    profile=str(self.args.profile.resolve()) if self.args.profile else None)
        self.log(f"{name} {spec.get('mode', '')}")
        res, p = run_worker([python, str(Path(__file__).resolve()), "--worker", name, json.dumps(spec)],
                            env=env, cwd=cwd)
        if res is None:
            self.notes.append(f"worker {name} {spec.get('mode', '')} failed: `{failure_line(p)[:300]}`")
            self.log(f"{name} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
        return res

    def run(self) -> str:
        if self.args.profile:
            self.args.profile.mkdir(parents=True, exist_ok=True)
        try:
            self.r["gitml", "log"] = self.worker("gitml_log", {}, self.gitml_repo("gitml-log"))
            d, spec = self.mlflow_store("mlflow-log")
            self.r["mlflow", "log"] = self.worker("mlflow_log", spec, d)
            for mode in ("baseline", "autolog"):
                self.r["gitml", mode] = self.worker("gitml_fit", {"mode": mode}, self.gitml_repo(f"gitml-{mode}"))
                d, spec = self.mlflow_store(f"mlflow-{mode}")
                self.r["mlflow", mode] = self.worker("mlflow_fit", dict(spec, mode=mode), d)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.report()

    def get(self, tool: str, part: str, *keys):
        v = self.r.get((tool, part))
        for k in keys:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v

    def report(self) -> str:
        a = self.args
        n = a.reps
        rows = [
            ("log", "log_dict_json", f'`log_dict(d, "cfg.json")`, median of {n}'),
            ("log", "log_dict_yaml", f'`log_dict(d, "cfg.yaml")`, median of {n}'),
            ("log", "log_text", f'`log_text(text, "notes.md")`, median of {n}'),
            ("log", "log_table", f'`log_table(100-row DataFrame, "preds.json")`, appending, median of {n}'),
            ("log", "log_image", f'`log_image(64x64x3 uint8 array, "img.png")`, median of {n}'),
            ("log", "log_input", f"`log_input` of a 1,000-row DataFrame, context training, median of {n}"),
            ("log", "end_run", "`end_run` of that run (one sample)"),
            ("log", "set_tag", f"`set_tag` on a finished run, a new key each call, median of {n}"),
            ("log", "history", f'`get_metric_history(run, "loss")`, {HISTORY_POINTS:,} points, median of {n}'),
            ("baseline", None, f"`LogisticRegression(max_iter=300).fit` on iris, no autolog, median of {a.fit_reps}"),
            ("autolog", "first", "same fit with autolog on, the first in the process"),
            ("autolog", None, f"same fit with autolog on, median of {a.fit_reps} more"),
            ("autolog", "overhead", "autolog's cost per fit: the median above less the baseline median"),
        ]
        lines = [
            "# Tracking parity: gitml against MLflow",
            "",
            f"`python bench/bench_tracking_parity.py --reps {a.reps} --fit-reps {a.fit_reps} "
            f"--blas-threads {a.blas_threads}"
            f"{'' if a.mlflow_python == MLFLOW_PYTHON else f' --mlflow-python {a.mlflow_python}'}`",
            "",
            self.machine,
            "",
            f"CPU: {cpu_model()}. 1-minute load average {self.load.start[0]:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end.",
            "",
            "MLflow: sqlite tracking store, local artifact folder. gitml: a fresh git repository. "
            "Each tool in its own Python process; times in ms (one warm-up call first, except `end_run` "
            "and the first autolog fit); MLflow / gitml above 1 means gitml is faster. "
            + (f"BLAS threads: {a.blas_threads} in every worker." if a.blas_threads else
               "BLAS threads: the libraries' default."),
            "",
            "| operation | gitml [ms] | MLflow [ms] | MLflow / gitml |",
            "| --- | ---: | ---: | ---: |",
        ]
        for part, op, label in rows:
            if op == "overhead":
                g, m = (self.get(t, "autolog", "median_ms") for t in ("gitml", "mlflow"))
                gb, mb = (self.get(t, "baseline", "median_ms") for t in ("gitml", "mlflow"))
                g = None if g is None or gb is None else g - gb
                m = None if m is None or mb is None else m - mb
            elif op == "first":
                g, m = self.get("gitml", part, "first_ms"), self.get("mlflow", part, "first_ms")
            elif op is None:
                g, m = self.get("gitml", part, "median_ms"), self.get("mlflow", part, "median_ms")
            else:
                g, m = self.get("gitml", part, op, "median_ms"), self.get("mlflow", part, op, "median_ms")
            lines.append(f"| {label} | {fmt(g)} | {fmt(m)} | {fmt_ratio(m, g)} |")
        lines += ["", "Notes:", ""]
        for note in self.checks():
            lines.append(f"- {note}")
        for note in self.notes:
            lines.append(f"- {note}")
        lines += ["", self.load.summary(time.perf_counter() - self.t_start,
                                        f"{os.cpu_count()} cores; the benchmark keeps ~1 busy"), ""]
        return "\n".join(lines)

    def checks(self) -> list[str]:
        """Whether both tools did the same work, and the details the table leaves out."""
        out = []
        g, m = self.r.get(("gitml", "log")) or {}, self.r.get(("mlflow", "log")) or {}
        if g and m:
            want = 100 * (self.args.reps + 1)
            out.append(f"`preds.json` after the appends: gitml {g['table_rows']:,} rows, MLflow {m['table_rows']:,} "
                       f"(expected {want:,} for both).")
            out.append(f"Files of the logging run: gitml {g['artifacts']}, MLflow {m['artifacts']}; datasets in "
                       f"context training: gitml {g['inputs'].get('training')}, MLflow {m['inputs'].get('training')}.")
            same = g["history_points"] == m["history_points"]
            out.append(f"`get_metric_history`: gitml {len(g['history_points']):,} points, MLflow "
                       f"{len(m['history_points']):,}; the same (step, value) pairs: {'yes' if same else '**no**'}.")
            out.append(f"Non-system tags on the finished run after the tagging: gitml {g['tags_after']}, MLflow "
                       f"{m['tags_after']} (3 + 1 warm-up + {self.args.reps}).")
            fp, li = m["from_pandas"]["median_ms"], m["log_input"]["median_ms"]
            out.append(f"MLflow's `log_input` row: `mlflow.data.from_pandas(df)` alone takes {fmt(fp)} ms of the "
                       f"{fmt(li)} ms.")
            spread = ", ".join(
                f"{op} {fmt(g[op]['min_ms'])}–{fmt(g[op]['max_ms'])} / {fmt(m[op]['min_ms'])}–{fmt(m[op]['max_ms'])}"
                for op in (*OPS, "set_tag", "history")
            )
            out.append(f"Range (min–max ms) of the timed calls, gitml / MLflow: {spread}.")
        ga, ma = self.r.get(("gitml", "autolog")) or {}, self.r.get(("mlflow", "autolog")) or {}
        if ga and ma:
            out.append(f"Autolog: runs made, gitml {ga['runs']}, MLflow {ma['runs']} (expected "
                       f"{self.args.fit_reps + 1}); the last run recorded, gitml {ga['recorded']}, MLflow "
                       f"{ma['recorded']} (MLflow 3 keeps the model as a logged model, outside the run's files).")
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20, help="timed calls per operation (default 20)")
    ap.add_argument("--fit-reps", type=int, default=5, help="timed fits per autolog setting (default 5)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OPENBLAS/OMP/MKL_NUM_THREADS for every worker (default 1; 0: leave unset)")
    ap.add_argument("--mlflow-python", default=MLFLOW_PYTHON, help=f"MLflow's interpreter (default {MLFLOW_PYTHON})")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="write cProfile dumps of the timed sections to DIR")
    ap.add_argument("--out", type=Path, help="write the report to this file too")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)
    report = Bench(args).run()
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
