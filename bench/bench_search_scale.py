#!/usr/bin/env python
"""One search over 10,000 runs, gitml versus MLflow's sqlite store (issue 12, item 5).

Run ``python bench/bench_search_scale.py`` (10,000 runs; loading MLflow takes most of the ~5
minutes) or ``--n N``. The dataset and loaders are bench_search.py's. The search is
``metrics.m0 > 0.5`` ordered by ``metrics.m1 DESC`` (about half the runs match), run warm
(after one untimed call) ``--reps`` times in one fresh process per tool, median reported:

- gitml, ids: ``gitml.search_runs(...)`` and the id of every run found: what a caller that
  pages, counts or picks a few pays (runs decode on first use);
- gitml, every run read: the same, then each run's name and its ``m1`` value: every run
  decoded, the work MLflow always does;
- gitml, ``max_results=100``;
- MLflow: ``MlflowClient.search_runs([exp], filter, max_results=50000, order_by)``, each run's
  name read; and with ``max_results=100``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import bench_search as bs
from _common import bench_home, emit_result, fmt_ratio, machine_line, run_worker, scrubbed_env

FILTER, ORDER = "metrics.m0 > 0.5", ["metrics.m1 DESC"]


def _median_ms(call, reps: int) -> tuple[float, int]:
    found = call()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1e3, found


def w_gitml(spec: dict) -> dict:
    """The gitml variants in one process, the index built first (untimed)."""
    import gitml
    from gitml.core.workspace import open_workspace

    with open_workspace(spec["repo"]) as ws:
        ws.index.count()

        def ids(limit=None):
            return lambda: len([r.id for r in gitml.search_runs(FILTER, ORDER, repo=ws, max_results=limit)])

        def full():
            return len([(r.name, r.metrics["m1"]) for r in gitml.search_runs(FILTER, ORDER, repo=ws)])

        out = {}
        for label, call in (("ids", ids()), ("full", full), ("top100", ids(100))):
            out[label] = _median_ms(call, spec["reps"])
    return out


def w_mlflow(spec: dict) -> dict:
    """MLflow's client over its sqlite store."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=spec["uri"])
    exp = client.get_experiment_by_name(bs.EXPERIMENT).experiment_id

    def call(limit):
        return lambda: len([r.info.run_name for r in client.search_runs([exp], FILTER, max_results=limit,
                                                                          order_by=ORDER)])

    return {"full": _median_ms(call(50_000), spec["reps"]), "top100": _median_ms(call(100), spec["reps"])}


WORKERS = {"gitml": w_gitml, "mlflow": w_mlflow, "gitml_load": bs.w_gitml_load, "mlflow_load": bs.w_mlflow_load}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--mlflow-python", default="/tmp/gitml-ci-mlflow/bin/python")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        emit_result(WORKERS[args.worker[0]](json.loads(Path(args.worker[1]).read_text())))
        return 0
    root = Path(tempfile.mkdtemp(prefix="gitml-search-scale-", dir="/var/tmp"))
    env = scrubbed_env(bench_home(root), MLFLOW_ALLOW_FILE_STORE="true")
    here = Path(__file__).resolve()

    def worker(python: str, name: str, spec: dict) -> dict:
        path = root / f"{name}.json"
        path.write_text(json.dumps(spec))
        res, proc = run_worker([python, str(here), "--worker", name, str(path)], env=env, cwd=here.parent)
        if res is None:
            sys.exit(f"{name} failed: {proc.stderr.strip()[-800:]}")
        return res

    repo = root / "gitml"
    repo.mkdir()
    import subprocess

    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    print(f"loading {args.n:,} runs into gitml and MLflow (sqlite) ...", file=sys.stderr)
    worker(sys.executable, "gitml_load", {"repo": str(repo), "n": args.n})
    uri = f"sqlite:///{root}/mlflow.db"
    worker(args.mlflow_python, "mlflow_load", {"uri": uri, "n": args.n})
    g = worker(sys.executable, "gitml", {"repo": str(repo), "reps": args.reps})
    m = worker(args.mlflow_python, "mlflow", {"uri": uri, "reps": args.reps})
    print(machine_line(env, args.mlflow_python, here.parent.parent))
    print(f"\n{args.n:,} runs; `{FILTER}` ordered by `{ORDER[0]}`; {g['ids'][1]:,} runs match; median of "
          f"{args.reps} warm calls, ms.\n")
    print("| what | gitml (ms) | MLflow sqlite (ms) | MLflow / gitml |")
    print("|---|---:|---:|---:|")
    print(f"| search, ids of every run found | {g['ids'][0]:.1f} | | |")
    print(f"| search, every run read (name, m1) | {g['full'][0]:.1f} | {m['full'][0]:.1f} | "
          f"{fmt_ratio(m['full'][0], g['full'][0])} |")
    print(f"| search, max_results=100 | {g['top100'][0]:.1f} | {m['top100'][0]:.1f} | "
          f"{fmt_ratio(m['top100'][0], g['top100'][0])} |")
    assert g["full"][1] == m["full"][1], (g, m)  # the same number of runs found
    return 0


if __name__ == "__main__":
    sys.exit(main())
