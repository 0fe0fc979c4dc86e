"""gitml export mlflow and gitml import mlflow against MLflow copying the same runs itself.

The peer: what a team does without gitml to move runs between two MLflow stores (the way
mlflow-export-import copies them, through MLflow's client): for each run of store A, create it
in store B, log its params, tags and every metric point in batches, end it. Same runs, same
machine, one process each, in-process timings (MLflow's import is not counted):

1. ``export``: gitml's ``export_mlflow`` of a repository's N runs into a new sqlite store A
   (in MLflow's virtualenv, where gitml is installed too);
2. ``mlflow copy``: MLflow's client copying A's N runs into a new sqlite store B;

Each destination's schema is made before its clock starts (MLflow's alembic set-up, about 2 s).
3. ``import``: gitml's ``import_mlflow`` of A into a fresh repository (gitml's environment, no MLflow).

Usage::

    python bench/bench_export.py [--runs 300] [--points 50] [--out bench/RESULTS-export.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import bench_home, cpu_model, scrubbed_env  # noqa: E402

MLFLOW_PYTHON = os.environ.get("GITML_MLFLOW", "/tmp/gitml-ci-mlflow/bin/python")

MAKE = """
import sys, time, gitml
repo, runs, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(runs):
    with gitml.start_run(name=f"run-{i}", experiment="bench", repo=repo):
        gitml.log_params({f"p{k}": k * 0.5 + i for k in range(5)})
        gitml.set_tags({"team": "ml", "i": str(i)})
        for step in range(points):
            for k in range(5):
                gitml.log_metric(f"m{k}", 1.0 / (step + 1 + k), step=step)
"""

PREPARE = """
import os, sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
root = os.path.join(os.path.dirname(sys.argv[2][len("sqlite:///"):]), "mlartifacts")
SqlAlchemyStore(sys.argv[2], root)  # the destination's schema is made before the clock starts
"""

EXPORT = PREPARE + """
import json, time
from gitml.interop.exporter import export_mlflow
t = time.perf_counter()
s = export_mlflow(sys.argv[2], repo=sys.argv[1])
print("RESULT " + json.dumps({"seconds": time.perf_counter() - t, "runs": s.runs, "points": s.points}))
"""

COPY = PREPARE + """
import json, time
from mlflow import MlflowClient
from mlflow.entities import Param
src, dst = MlflowClient(sys.argv[1]), MlflowClient(sys.argv[2])
t = time.perf_counter()
runs = points = 0
for exp in src.search_experiments():
    target = dst.get_experiment_by_name(exp.name)
    exp_id = target.experiment_id if target else dst.create_experiment(exp.name)
    for run in src.search_runs([exp.experiment_id], max_results=50000):
        new = dst.create_run(exp_id, start_time=run.info.start_time, run_name=run.info.run_name,
                             tags={k: v for k, v in run.data.tags.items() if k != "mlflow.runName"})
        history = [m for key in run.data.metrics for m in src.get_metric_history(run.info.run_id, key)]
        for i in range(0, len(history), 1000):
            dst.log_batch(new.info.run_id, metrics=history[i:i + 1000])
        dst.log_batch(new.info.run_id, params=[Param(k, v) for k, v in run.data.params.items()])
        dst.set_terminated(new.info.run_id, run.info.status, run.info.end_time)
        runs += 1
        points += len(history)
print("RESULT " + json.dumps({"seconds": time.perf_counter() - t, "runs": runs, "points": points}))
"""

IMPORT = """
import json, sys, time
from gitml.interop.importer import import_mlflow
t = time.perf_counter()
s = import_mlflow(sys.argv[2], registry=False, repo=sys.argv[1])
print("RESULT " + json.dumps({"seconds": time.perf_counter() - t, "runs": s.imported, "points": s.points}))
"""


def _run(python: str, script: str, args: list[str], env: dict, cwd: Path) -> dict:
    proc = subprocess.run([python, "-c", textwrap.dedent(script), *args], env=env, cwd=cwd,
                          capture_output=True, text=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit((proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1])
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--points", type=int, default=50, help="steps per metric (5 metrics)")
    ap.add_argument("--mlflow-python", default=MLFLOW_PYTHON)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-export-"))
    env = scrubbed_env(bench_home(tmp))
    env.pop("MLFLOW_TRACKING_URI", None)
    repo, fresh = tmp / "repo", tmp / "fresh"
    for path in (repo, fresh):
        path.mkdir()
        for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "init"]):
            subprocess.run(cmd, cwd=path, env=env, check=True)
    load0 = os.getloadavg()[0]
    subprocess.run([sys.executable, "-c", MAKE, str(repo), str(args.runs), str(args.points)], env=env, check=True)
    a, b = f"sqlite:///{tmp / 'a.db'}", f"sqlite:///{tmp / 'b.db'}"
    results = {
        "export": _run(args.mlflow_python, EXPORT, [str(repo), a], env, tmp),
        "mlflow copy": _run(args.mlflow_python, COPY, [a, b], env, tmp),
        "import": _run(sys.executable, IMPORT, [str(fresh), a], env, tmp),
    }
    copy = results["mlflow copy"]["seconds"]
    rows = [f"| {name} | {r['runs']:,} | {r['points']:,} | {r['seconds']:.2f} | {r['runs'] / r['seconds']:,.0f} | "
            f"{copy / r['seconds']:.1f}× |" for name, r in results.items()]
    report = "\n".join([
        "# gitml export / import mlflow against MLflow copying the same runs",
        "",
        f"`python bench/bench_export.py --runs {args.runs} --points {args.points}`",
        "",
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({cpu_model()}), 1-minute load {load0:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end. {args.runs} runs, 5 params, 2 tags, 5 metrics × {args.points} points "
        "each; sqlite stores; one process per row, timed in-process.",
        "",
        "| operation | runs | metric points | seconds | runs/s | MLflow copy / this |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
    ])
    print(report)
    if args.out:
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
