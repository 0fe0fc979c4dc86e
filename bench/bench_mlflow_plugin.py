"""MLflow's client writing to gitml (the ``gitml:`` tracking-store plugin) against MLflow's own stores.

The same MLflow script runs in MLflow's virtualenv against three tracking URIs: ``gitml:`` (a
git repository), ``sqlite:///`` (MLflow's database store, its default since 3.x) and a file
store (``file:``, deprecated by MLflow but still common). Each worker process times, in-process:

- ``start_run``, 10 params, ``--points`` × 5 metric points logged one ``log_metric`` call at a
  time, a 1 KiB text artifact, ``end_run``: the whole run;
- ``log_metric`` alone (median of the calls above);
- ``search_runs`` of the runs made so far with a metric filter;
- ``get_metric_history`` of one metric.

``--runs`` runs per store, each its own process call (MLflow's import is not counted: it is the
same for all three). Medians are reported. Usage::

    python bench/bench_mlflow_plugin.py [--runs 5] [--points 200] [--out bench/RESULTS-mlflow-plugin.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import bench_home, cpu_model, scrubbed_env  # noqa: E402

MLFLOW_PYTHON = os.environ.get("GITML_MLFLOW", "/tmp/gitml-ci-mlflow/bin/python")

WORKER = """
import json, statistics, sys, time
import mlflow
uri, points = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(uri)
mlflow.set_experiment("bench")
client = mlflow.MlflowClient()
calls = []
start = time.perf_counter()
with mlflow.start_run() as run:
    mlflow.log_params({f"p{i}": i * 0.5 for i in range(10)})
    for step in range(points):
        for k in range(5):
            t = time.perf_counter()
            mlflow.log_metric(f"m{k}", 1.0 / (step + 1 + k), step=step)
            calls.append(time.perf_counter() - t)
    mlflow.log_text("x" * 1024, "notes/a.txt")
whole = time.perf_counter() - start
t = time.perf_counter()
found = mlflow.search_runs(filter_string="metrics.m0 < 1", output_format="list")
search = time.perf_counter() - t
t = time.perf_counter()
history = client.get_metric_history(run.info.run_id, "m0")
hist = time.perf_counter() - t
assert len(history) == points and len(found) >= 1
print("RESULT " + json.dumps({"run": whole, "log_metric": statistics.median(calls), "search": search,
                              "history": hist, "found": len(found)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--mlflow-python", default=MLFLOW_PYTHON)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-plugin-"))
    home = bench_home(tmp)
    env = scrubbed_env(home)
    env.pop("MLFLOW_TRACKING_URI", None)
    repo = tmp / "repo"
    repo.mkdir()
    for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True)
    stores = {"gitml": f"gitml://{repo}", "sqlite": f"sqlite:///{tmp / 'mlflow.db'}",
              "file": (tmp / "mlruns").as_uri()}
    script = tmp / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    results: dict[str, list[dict]] = {name: [] for name in stores}
    load0 = os.getloadavg()[0]
    for rep in range(args.runs + 1):  # the first round creates each store's schema: not timed
        for name, uri in stores.items():
            proc = subprocess.run([args.mlflow_python, str(script), uri, str(args.points)], cwd=tmp, env=env,
                                  capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{name}: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
            if rep:
                results[name].append(json.loads(line[len("RESULT "):]))
            print(f"[{name} {rep}/{args.runs}]", file=sys.stderr)
    git_bytes = sum(f.stat().st_size for f in (repo / ".git").rglob("*") if f.is_file())
    rows = []
    for key, label, unit in [("run", f"one run: 10 params, {args.points * 5} log_metric calls, a text artifact",
                              1000), ("log_metric", "`log_metric`, one call (median)", 1e6),
                             ("search", "`search_runs(\"metrics.m0 < 1\")`", 1000),
                             ("history", f"`get_metric_history` ({args.points} points)", 1000)]:
        med = {name: statistics.median(r[key] for r in results[name]) * unit for name in stores}
        u = "µs" if unit == 1e6 else "ms"
        rows.append(f"| {label} [{u}] | {med['gitml']:,.1f} | {med['sqlite']:,.1f} | {med['file']:,.1f} | "
                    f"{med['sqlite'] / med['gitml']:.2f}× | {med['file'] / med['gitml']:.2f}× |")
    version = subprocess.run([args.mlflow_python, "-c", "import mlflow; print(mlflow.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    report = "\n".join([
        "# MLflow's client on gitml's tracking-store plugin",
        "",
        f"`python bench/bench_mlflow_plugin.py --runs {args.runs} --points {args.points}`",
        "",
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({cpu_model()}), MLflow {version}, "
        f"1-minute load {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end. Medians of {args.runs} "
        "runs per store (each a process; one untimed round first); a ratio above 1 means gitml is faster.",
        "",
        "| operation | gitml: | sqlite: | file: | sqlite / gitml | file / gitml |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"The git repository after {args.runs + 1} runs: {git_bytes / 1024:,.0f} KiB in `.git`.",
    ])
    print(report)
    if args.out:
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
