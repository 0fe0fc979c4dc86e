#!/usr/bin/env python
"""``gitml import mlflow`` from a sqlite store of 10,000 runs (issue 16).

Run from the repository root (MLflow in its own virtualenv, as ``.ci/run`` installs it)::

    python bench/bench_import.py --out bench/RESULTS-import.md

(``--runs`` default 10000, ``--params`` 10, ``--metrics`` 10, ``--points`` 100 per metric;
``--gc`` also measures ``.git`` after ``git gc --aggressive``, a quarter of an hour more;
``--mlflow-python`` default ``/tmp/gitml-ci-mlflow/bin/python``; ``--profile FILE`` writes a
cProfile dump of the import.) It prints one Markdown report (``--out FILE`` writes it too).

The store: MLflow itself creates the empty sqlite schema and one experiment (one MLflow process,
``MlflowClient.create_experiment``), then this script writes the runs straight into MLflow's
tables with :mod:`sqlite3` (``runs``, ``params``, ``tags``, ``metrics``, ``latest_metrics``,
rows exactly as MLflow's sqlalchemy store writes them: status text, times in ms, ``is_nan``),
because logging 10 million points through MLflow's client would take hours. Each run has the
params ``p0`` … ``p9``, the tags MLflow sets (``mlflow.runName``, ``mlflow.user``,
``mlflow.source.name``, ``mlflow.source.type``), and metrics ``m0`` … ``m9`` with points at
steps 0 … 99, one millisecond apart. No artifacts.

The import: ``python -m gitml import mlflow sqlite:///… --json`` in a fresh ``git init``
repository with one commit, timed from the outside (wall time, process start included), with
its default reader processes (one per core, ``--jobs``). Reported: runs/s, metric points/s, the
size of ``.git`` after (``du`` of the folder, apparent bytes) per run and against the sqlite
file's size, a second import's time (it writes nothing), the same import with ``--jobs 1`` into
another fresh repository (read in the writing process: what reader processes gain), and the floor: how long Python's
``sqlite3`` takes just to fetch every point row, which bounds any Python importer of this
store. ``git fsck`` checks the result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LoadSampler, bench_home, machine_line, scrubbed_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_790_000_000_000

MAKE_SCHEMA = """
import sys
from mlflow import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
print(client.create_experiment("bench"))
"""


def build_store(db: Path, mlflow_python: str, env: dict, runs: int, params: int, metrics: int, points: int) -> float:
    """MLflow's empty schema and experiment, then ``runs`` runs written row by row; returns seconds."""
    started = time.perf_counter()
    proc = subprocess.run([mlflow_python, "-c", MAKE_SCHEMA, f"sqlite:///{db}"], env=env, cwd=db.parent,
                          capture_output=True, text=True, check=True)  # MLflow's ./mlruns lands beside the db
    exp_id = int(proc.stdout.strip().splitlines()[-1])
    rng = random.Random(16)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    artifacts = db.parent / "mlruns" / str(exp_id)
    for n in range(runs):
        run_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        start = T0 + n * 1000
        name = f"run-{n}"
        conn.execute("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                     "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     (run_id, name, "UNKNOWN", "", "", "bench", "FINISHED", start, start + points + 10, "",
                      "active", str(artifacts / run_id / "artifacts"), exp_id))
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)",
                         [(f"p{i}", str(rng.choice([0.1, 0.01, 32, 64, "adam", "sgd"])), run_id)
                          for i in range(params)])
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)",
                         [("mlflow.runName", name, run_id), ("mlflow.user", "bench", run_id),
                          ("mlflow.source.name", "train.py", run_id), ("mlflow.source.type", "LOCAL", run_id)])
        rows = []
        for m in range(metrics):
            value = rng.random()
            for step in range(points):
                value *= 0.99 + rng.random() * 0.015
                rows.append((f"m{m}", value, start + step, run_id, step, 0))
        conn.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)",
                         rows)
        conn.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                         "VALUES (?,?,?,?,?,?)",
                         [(key, value, stamp, step, 0, run_id) for key, value, stamp, _, step, _ in rows[points - 1::points]])
        if n % 1000 == 999:
            conn.commit()
    conn.commit()
    conn.close()
    return time.perf_counter() - started


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fetch_floor(db: Path) -> float:
    """Seconds Python's :mod:`sqlite3` takes to fetch every metric point, run by run, as the importer asks.

    Nothing is formatted or written: no importer in Python that reads the store through
    :mod:`sqlite3` can read it faster than this, in one process.
    """
    from gitml.interop.mlflow_store import _POINTS

    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    ids = [row[0] for row in conn.execute("SELECT run_uuid FROM runs ORDER BY run_uuid")]
    started = time.perf_counter()
    for run_id in ids:
        conn.execute(_POINTS, (run_id,)).fetchall()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--params", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--mlflow-python", default="/tmp/gitml-ci-mlflow/bin/python")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--gc", action="store_true", help="also measure .git after `git gc --aggressive` (slow)")
    args = parser.parse_args()
    sampler = LoadSampler()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        tmp_path = Path(tmp)
        home = bench_home(tmp_path)
        env = scrubbed_env(home, PYTHONPATH=str(ROOT))
        db = tmp_path / "store" / "mlflow.db"
        db.parent.mkdir()
        build = build_store(db, args.mlflow_python, env, args.runs, args.params, args.metrics, args.points)
        repo = tmp_path / "repo"
        repo.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, env=env, check=True)
        git_before = du(repo / ".git")
        cmd = [sys.executable, "-m", "gitml", "import", "mlflow", f"sqlite:///{db}", "--json"]
        if args.profile:
            cmd = [sys.executable, "-m", "cProfile", "-o", str(Path(args.profile).resolve()), "-m", "gitml",
                   *cmd[3:]]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
        first = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"import failed: {proc.stderr.strip()[-500:]}")
        summary = json.loads(proc.stdout)
        started = time.perf_counter()
        again = subprocess.run([sys.executable, "-m", "gitml", "import", "mlflow", f"sqlite:///{db}", "--json"],
                               cwd=repo, env=env, capture_output=True, text=True, check=True)
        second = time.perf_counter() - started
        again_summary = json.loads(again.stdout)
        serial_repo = tmp_path / "serial"
        serial_repo.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=serial_repo, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=serial_repo, env=env, check=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gitml", "import", "mlflow", f"sqlite:///{db}", "--json", "--jobs", "1"],
                       cwd=serial_repo, env=env, capture_output=True, text=True, check=True)
        serial = time.perf_counter() - started
        shutil.rmtree(serial_repo)
        fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, env=env, capture_output=True, text=True)
        git_after = du(repo / ".git")
        git_gc = None
        if args.gc:  # a quarter of an hour for 10,000 runs on 2 cores
            subprocess.run(["git", "gc", "-q", "--aggressive"], cwd=repo, env=env, check=True)
            git_gc = du(repo / ".git")
        db_size = db.stat().st_size
        floor = fetch_floor(db)
        machine = machine_line(env, args.mlflow_python, ROOT)
    runs = summary["imported"]
    rate = runs / first
    lines = [
        "# MLflow import: 10,000 runs from sqlite (issue 16)",
        "",
        f"`python bench/bench_import.py --runs {args.runs} --params {args.params} --metrics {args.metrics} "
        f"--points {args.points}`",
        "",
        machine,
        "",
        f"The store: {args.runs} runs, {args.params} params, 4 tags and {args.metrics} metrics x {args.points} "
        f"points each ({summary['points']:,} points), MLflow's sqlite schema (made by MLflow), rows written "
        f"directly ({build:.0f} s). sqlite file: {db_size / 2**20:.1f} MiB.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| runs imported | {runs:,} in {len(summary['commits'])} commits |",
        f"| wall time, `gitml import mlflow sqlite:///…` (default: one reader process per core) | {first:.1f} s |",
        f"| **runs/s** | **{rate:,.0f}** |",
        f"| metric points/s | {summary['points'] / first:,.0f} |",
        f"| the same import read in this process only (`--jobs 1`) | {serial:.1f} s, {runs / serial:,.0f} runs/s "
        f"(reader processes: {serial / first:.2f}x) |",
        f"| second import (writes nothing) | {second:.1f} s, {again_summary['unchanged']:,} unchanged, "
        f"{again_summary['imported']} imported |",
        f"| `.git` after the import | {(git_after - git_before) / 2**20:.1f} MiB, "
        f"{(git_after - git_before) / runs / 1024:.1f} KiB/run |",
        *([f"| `.git` after `git gc --aggressive` | {(git_gc - git_before) / 2**20:.1f} MiB, "
           f"{(git_gc - git_before) / runs / 1024:.1f} KiB/run |"] if git_gc is not None else []),
        f"| sqlite file | {db_size / 2**20:.1f} MiB, {db_size / runs / 1024:.1f} KiB/run |",
        f"| `.git` / sqlite | {(git_after - git_before) / db_size:.2f}"
        + (f" (after gc {(git_gc - git_before) / db_size:.2f})" if git_gc is not None else "") + " |",
        f"| reading the points alone: Python's `sqlite3` fetching every row, nothing else (one process) | "
        f"{floor:.1f} s, **{runs / floor:,.0f} runs/s** |",
        f"| `git fsck --strict` | {'clean' if fsck.returncode == 0 else 'FAILED: ' + fsck.stderr.strip()[:200]} |",
        "",
        f"Goal: at least 2,000 runs/s: **{'met' if rate >= 2000 else 'not met'}**. The import reads the store in "
        f"one process per core (`--jobs`, default) while it writes in this one; fetching the rows alone caps "
        f"one reading process at {runs / floor:,.0f} runs/s, and {os.cpu_count()} of them at "
        f"{runs / floor * (os.cpu_count() or 1):,.0f} runs/s with nothing else to do.",
        "",
        sampler.summary(time.perf_counter() - began),
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
