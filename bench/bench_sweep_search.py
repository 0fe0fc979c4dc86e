#!/usr/bin/env python
"""First search after a sweep (issue 12, item 3): gitml now, gitml before, and MLflow.

Run ``python bench/bench_sweep_search.py`` (300 runs a sweep, plus 1,000 for gitml; about
2 minutes on 2 cores) or ``--no-large`` for the 300-run sweeps only. It
prints a Markdown report: per sweep, the mean and p95 cost of one run in ms, then the first and
the second search in a fresh process, in ms, with ratios.

What is measured:

- A sweep: N runs in experiment ``sweep``, each with 10 params (4 strings, 3 ints, 3 floats),
  10 metrics and 3 tags (``run_spec``), logged one by one through the public API, each run
  timed from its first call to its commit. gitml: ``gitml.commit_run(name, experiment, params,
  metrics, tags)`` or the fluent ``start_run`` / ``log_params`` / ``log_metrics`` /
  ``set_tags`` / ``end_run``, in a fresh git repository whose query index exists before the
  sweep (one ``gitml.search_runs`` ran first, as after any earlier look at the runs). MLflow:
  the fluent ``mlflow.start_run`` / ``log_params`` / ``log_metrics`` / ``set_tags`` /
  ``end_run`` into a sqlite store and into a file store (``MLFLOW_ALLOW_FILE_STORE=true``).
- Then, in a new process (the notebook or shell a user opens after the sweep), the same search
  twice, timed: ``filter "metrics.m1 > 0.05"``, ``order by "metrics.m2 DESC"``, all runs.
  gitml: ``gitml.search_runs(filter, order_by, experiment, repo)``. MLflow:
  ``MlflowClient(uri).search_runs([experiment id], filter_string, max_results=50_000,
  order_by=[...])`` (the client, not ``mlflow.search_runs``, so no pandas DataFrame is built);
  opening the store (``MlflowClient`` plus ``get_experiment_by_name``) is timed apart, as is
  importing gitml's modules (``IMPORTS``) before its first search. The runs
  each tool returns, in order, are compared.
- "gitml before" is the same worker importing the code of 026c878, the commit before the writer
  kept the index current (9e8ba9e): a ``git worktree`` of it in a temporary directory, put first
  on ``PYTHONPATH``; each worker reports the ``gitml.__file__`` it imported, and whether the
  index's recorded tip equals the runs ref's tip after the sweep.

Every measurement runs in its own Python process (``--worker``): gitml's in this interpreter,
MLflow's in MLflow's own virtualenv (``--mlflow-python``, default ``/tmp/gitml-ci-mlflow/bin/python``).
Stores live in a fresh temporary directory, and the environment is scrubbed: no
``GIT_*``/``MLFLOW_*``/``PYTHONPATH`` variables from the caller, ``HOME`` a temporary directory
with a ``.gitconfig``, MLflow telemetry off.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    LoadSampler,
    bench_home,
    emit_result,
    failure_line,
    fmt,
    fmt_ratio,
    machine_line,
    run_worker,
    scrubbed_env,
)

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "026c878"  # the commit before 9e8ba9e (the writer keeps the index current)
EXPERIMENT = "sweep"
USER = "Bench User"
MLFLOW_PYTHON = "/tmp/gitml-ci-mlflow/bin/python"
ALL = 50_000  # MLflow's largest page: every run in one call
FILTER = "metrics.m1 > 0.05"
ORDER = "metrics.m2 DESC"

# Imported, untimed, before the first gitml search: what the search times is reading the index
# (and, before 9e8ba9e, bringing it up to the ref), not Python loading modules. MLflow's
# counterpart is opening the store, timed apart too.
IMPORTS = ["gitml.api", "gitml.tracking.query", "gitml.core.index", "gitml.core.filter",
           "gitml.core.workspace", "gitml.core.runsref", "gitml.core.gitrepo"]

MODELS = ["rf", "gbm", "mlp", "svm"]
OPTIMIZERS = ["adam", "sgd", "adamw", "lbfgs"]


# ------------------------------------------------------------------------------------------------
# The dataset (shared by the driver and every worker, in both interpreters)
# ------------------------------------------------------------------------------------------------
def run_spec(i: int) -> dict:
    """Run ``i`` of the sweep: 10 params, 10 metrics, 3 tags, the same for every tool."""
    rnd = random.Random(i)
    params = {
        "model": rnd.choice(MODELS),
        "optimizer": rnd.choice(OPTIMIZERS),
        "scheduler": rnd.choice(["cosine", "step", "none"]),
        "dataset": f"shard-{i % 7}",
        "seed": i,
        "batch": rnd.choice([16, 32, 64, 128, 256]),
        "epochs": rnd.randint(5, 50),
        "lr": round(10 ** rnd.uniform(-4, -1), 6),
        "dropout": round(rnd.uniform(0, 0.5), 3),
        "wd": round(10 ** rnd.uniform(-6, -2), 8),
    }
    metrics = {f"m{j}": rnd.random() for j in range(10)}
    tags = {"team": rnd.choice(["vision", "nlp", "tabular"]), "stage": "sweep", "note": f"grid-{i % 13}"}
    return {"name": f"run-{i}", "params": params, "metrics": metrics, "tags": tags}


def _stats(times: list[float]) -> dict:
    ms = sorted(t * 1e3 for t in times)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]  # nearest rank, 0-based ceil(0.95 n) - 1
    return {"n": len(ms), "mean": statistics.mean(ms), "p95": p95, "median": statistics.median(ms),
            "total_s": sum(ms) / 1e3}


# ------------------------------------------------------------------------------------------------
# Workers: one process per measurement
# ------------------------------------------------------------------------------------------------
def _index_state(repo: str) -> dict:
    """The runs ref's tip and the tip the query index records (read with git and sqlite3)."""
    ref = subprocess.run(["git", "-C", repo, "rev-parse", "-q", "--verify", "refs/gitml/runs"],
                         capture_output=True, text=True, check=False).stdout.strip()
    idx = Path(repo) / ".git" / "gitml" / "index.sqlite"
    tip = None
    if idx.exists():
        conn = sqlite3.connect(f"file:{idx}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'tip'").fetchone()
            tip = row[0] if row else None
        finally:
            conn.close()
    return {"ref": ref, "index_exists": idx.exists(), "index_tip": tip, "current": bool(ref) and tip == ref}


def w_gitml_sweep(spec: dict) -> dict:
    """A search first (the index exists), then N runs through the public API, each timed."""
    import gitml

    repo, n, api = spec["repo"], spec["n"], spec["api"]
    os.chdir(repo)  # as a training script run from the repository: repo=None everywhere
    t0 = time.perf_counter()
    pre = gitml.search_runs(experiment=EXPERIMENT)
    pre_s = time.perf_counter() - t0
    before = _index_state(repo)
    times = []
    for i in range(n):
        r = run_spec(i)
        t0 = time.perf_counter()
        if api == "commit_run":
            gitml.commit_run(name=r["name"], experiment=EXPERIMENT, params=r["params"],
                             metrics=r["metrics"], tags=r["tags"])
        else:
            gitml.start_run(name=r["name"], experiment=EXPERIMENT)
            gitml.log_params(r["params"])
            gitml.log_metrics(r["metrics"])
            gitml.set_tags(r["tags"])
            gitml.end_run()
        times.append(time.perf_counter() - t0)
    return {"gitml_file": gitml.__file__, "pre_search_s": pre_s, "pre_count": len(pre),
            "index_before": before, "index_after": _index_state(repo), "runs": _stats(times)}


def _first_and_second(call) -> tuple[list[str], float, float]:
    """Call ``call`` twice, timing each: (the first call's answer, first s, second s)."""
    t0 = time.perf_counter()
    names = call()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    call()
    return names, first, time.perf_counter() - t0


def w_gitml_search(spec: dict) -> dict:
    """The first and the second search in a fresh process (gitml's modules imported beforehand)."""
    import importlib

    t0 = time.perf_counter()
    import gitml

    for mod in IMPORTS:
        importlib.import_module(mod)
    import_s = time.perf_counter() - t0

    def call():
        runs = gitml.search_runs(filter=FILTER, order_by=ORDER, experiment=EXPERIMENT, repo=spec["repo"])
        return [r.name for r in runs]

    names, first, second = _first_and_second(call)
    return {"gitml_file": gitml.__file__, "import_s": import_s, "first_s": first, "second_s": second,
            "names": names}


def w_mlflow_sweep(spec: dict) -> dict:
    """N runs through MLflow's fluent API, each timed."""
    import mlflow

    mlflow.set_tracking_uri(spec["uri"])
    mlflow.set_experiment(EXPERIMENT)
    times = []
    for i in range(spec["n"]):
        r = run_spec(i)
        t0 = time.perf_counter()
        mlflow.start_run(run_name=r["name"])
        mlflow.log_params(r["params"])
        mlflow.log_metrics(r["metrics"])
        mlflow.set_tags(r["tags"])
        mlflow.end_run()
        times.append(time.perf_counter() - t0)
    return {"runs": _stats(times)}


def w_mlflow_search(spec: dict) -> dict:
    """Open the store, then the first and the second search in a fresh MLflow process."""
    from mlflow import MlflowClient

    t0 = time.perf_counter()
    client = MlflowClient(tracking_uri=spec["uri"])
    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    open_s = time.perf_counter() - t0

    def call():
        runs = client.search_runs([exp_id], filter_string=FILTER, max_results=ALL, order_by=[ORDER])
        return [r.info.run_name for r in runs]

    names, first, second = _first_and_second(call)
    return {"open_s": open_s, "first_s": first, "second_s": second, "names": names}


WORKERS = {
    "gitml_sweep": w_gitml_sweep,
    "gitml_search": w_gitml_search,
    "mlflow_sweep": w_mlflow_sweep,
    "mlflow_search": w_mlflow_search,
}


def worker_main(name: str, spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    emit_result(WORKERS[name](spec))
    return 0


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.n = args.n
        self.n_large = None if args.no_large else args.n_large
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-sweep-", dir=args.tmpdir))
        self.home = bench_home(self.tmp, USER)
        self.env = scrubbed_env(self.home)
        self.mlflow_python = args.mlflow_python
        self.before_tree = self.tmp / f"gitml-{BEFORE}"
        self.t_start = time.perf_counter()
        self.load = LoadSampler()
        self.rows: list[dict] = []
        self.notes: list[str] = []
        self.machine = machine_line(self.env, self.mlflow_python, ROOT, f"; before: {BEFORE}")

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def log(self, msg: str) -> None:
        print(f"[{self.elapsed():7.1f}s] {msg}", file=sys.stderr, flush=True)

    def worker(self, name: str, spec: dict, cwd: Path, code: Path | None = None) -> dict | None:
        """Run a worker in its own process: MLflow's in MLflow's Python, gitml's with ``code`` first on the path."""
        mlflow = name.startswith("mlflow")
        python = self.mlflow_python if mlflow else sys.executable
        env = dict(self.env) if mlflow else dict(self.env, PYTHONPATH=str(code or ROOT))
        spec_path = self.tmp / f"spec-{name}-{len(self.rows)}-{time.monotonic_ns()}.json"
        spec_path.write_text(json.dumps(spec))
        cmd = [python, str(Path(__file__).resolve()), "--worker", name, str(spec_path)]
        res, p = run_worker(cmd, env=env, cwd=cwd)
        if res is None:
            self.notes.append(f"worker {name} failed: `{failure_line(p)[:300]}`")
            self.log(f"worker {name} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
        return res

    def git(self, *argv: str, cwd: Path) -> None:
        subprocess.run(["git", *argv], cwd=cwd, env=self.env, check=True, capture_output=True)

    def new_repo(self, label: str) -> Path:
        repo = self.tmp / label
        repo.mkdir()
        self.git("init", "-q", "-b", "main", cwd=repo)
        (repo / "train.py").write_text("print('train')\n")
        self.git("add", "train.py", cwd=repo)
        self.git("commit", "-q", "-m", "init", cwd=repo)
        return repo

    def gitml_case(self, version: str, api: str, n: int) -> None:
        code = ROOT if version == "now" else self.before_tree
        label = f"gitml-{version}-{api}-{n}"
        repo = self.new_repo(label)
        self.log(f"{label}: sweep")
        sweep = self.worker("gitml_sweep", {"repo": str(repo), "n": n, "api": api}, repo, code)
        self.log(f"{label}: searches")
        search = self.worker("gitml_search", {"repo": str(repo)}, repo, code) if sweep else None
        self.rows.append({"tool": "gitml", "version": version, "api": api, "n": n, "code": str(code),
                          "sweep": sweep, "search": search})

    def mlflow_case(self, kind: str, n: int) -> None:
        d = self.tmp / f"mlflow-{kind}-{n}"
        d.mkdir()
        uri = f"sqlite:///{d / 'mlflow.db'}" if kind == "sqlite" else (d / "mlruns").as_uri()
        self.log(f"mlflow-{kind}: sweep")
        sweep = self.worker("mlflow_sweep", {"uri": uri, "n": n}, d)
        self.log(f"mlflow-{kind}: searches")
        search = self.worker("mlflow_search", {"uri": uri}, d) if sweep else None
        self.rows.append({"tool": "mlflow", "version": kind, "api": "fluent", "n": n, "sweep": sweep,
                          "search": search})

    def run(self) -> None:
        self.log(f"{self.n} runs a sweep (gitml commit_run also {self.n_large}), temp dir {self.tmp}")
        worktree = False
        try:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(self.before_tree), BEFORE],
                           check=True, capture_output=True)
            worktree = True
            for version in ("now", "before"):
                for api in ("commit_run", "fluent"):
                    self.gitml_case(version, api, self.n)
            for kind in ("sqlite", "file"):
                self.mlflow_case(kind, self.n)
            if self.n_large:
                for version in ("now", "before"):
                    for api in ("commit_run", "fluent"):
                        self.gitml_case(version, api, self.n_large)
        finally:
            if worktree:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(self.before_tree)],
                               check=False, capture_output=True)
            if not self.args.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)
        print(self.report())

    # -- report ----------------------------------------------------------------------------------
    def name(self, row: dict) -> str:
        if row["tool"] == "mlflow":
            return f"MLflow {row['version']} store, fluent"
        who = "gitml now (9e8ba9e+)" if row["version"] == "now" else f"gitml before ({BEFORE})"
        api = "`commit_run`" if row["api"] == "commit_run" else "fluent"
        return f"{who}, {api}"

    def report(self) -> str:
        out = [f"### First search after a sweep ({self.n:,} runs; gitml also "
               f"{self.n_large:,})\n" if self.n_large else f"### First search after a sweep ({self.n:,} runs)\n",
               self.machine + "\n",
               f"Search: filter `{FILTER}`, order `{ORDER}`, all runs, in a fresh process after the sweep. "
               "Ratios: this row / gitml now with the same N and API (gitml rows) or / gitml now "
               "`commit_run` (MLflow rows); above 1 means gitml now is faster.\n"]
        head = ["sweep", "N", "per run mean [ms]", "per run p95 [ms]", "sweep total [s]", "first search [ms]",
                "second search [ms]", "runs found", "first search / now", "per run / now"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|---|" + "|".join(["---:"] * (len(head) - 1)) + "|")

        def ref_row(row):
            api = row["api"] if row["tool"] == "gitml" else "commit_run"
            for r in self.rows:
                if r["tool"] == "gitml" and r["version"] == "now" and r["api"] == api and r["n"] == row["n"]:
                    return r
            return None

        for row in self.rows:
            sw, se = row["sweep"] or {}, row["search"] or {}
            runs = sw.get("runs") or {}
            cells = [self.name(row), f"{row['n']:,}", fmt(runs.get("mean")), fmt(runs.get("p95")),
                     f"{runs['total_s']:.1f}" if runs else "—",
                     fmt(se["first_s"] * 1e3) if "first_s" in se else "—",
                     fmt(se["second_s"] * 1e3) if "second_s" in se else "—",
                     f"{len(se['names']):,}" if "names" in se else "—"]
            ref = ref_row(row)
            if ref is not None and ref is not row and ref["search"] and se:
                cells.append(fmt_ratio(se["first_s"], ref["search"]["first_s"]))
            else:
                cells.append("")
            if ref is not None and ref is not row and ref["sweep"] and runs:
                cells.append(fmt_ratio(runs["mean"], ref["sweep"]["runs"]["mean"]))
            else:
                cells.append("")
            out.append("| " + " | ".join(cells) + " |")

        out.append("\n#### Checks\n")
        for row in self.rows:
            sw, se = row["sweep"] or {}, row["search"] or {}
            if row["tool"] == "gitml":
                if not sw:
                    continue
                after = sw["index_after"]
                files = {sw.get("gitml_file"), se.get("gitml_file")}
                out.append(
                    f"- {self.name(row)}, N={row['n']:,}: imported {', '.join(sorted(str(f) for f in files))}; "
                    f"search before the sweep {sw['pre_search_s'] * 1e3:.0f} ms ({sw['pre_count']} runs, index "
                    f"{'created' if sw['index_before']['index_exists'] else 'absent'}); after the sweep the "
                    f"index is {'at the runs ref tip' if after['current'] else 'behind the runs ref tip'} "
                    f"(index tip {(after['index_tip'] or 'empty')[:10]}, ref {after['ref'][:10]}); "
                    f"importing gitml's modules before the first search {se.get('import_s', 0) * 1e3:.0f} ms, "
                    "not counted in it."
                )
            elif se:
                out.append(f"- {self.name(row)}: opening the store (`MlflowClient` + `get_experiment_by_name`) "
                           f"{se['open_s'] * 1e3:.0f} ms, not counted in the first search.")
        base = {r["n"]: r["search"]["names"] for r in self.rows
                if r["search"] and r["tool"] == "gitml" and r["version"] == "now" and r["api"] == "commit_run"}
        disagree = []
        for row in self.rows:
            se = row["search"] or {}
            if "names" in se and row["n"] in base and se["names"] != base[row["n"]]:
                same = set(se["names"]) == set(base[row["n"]])
                disagree.append(f"{self.name(row)} N={row['n']}: "
                                f"{'same runs, different order' if same else 'different runs'}")
        out.append("- Answers: " + ("; ".join(disagree) if disagree else
                                    "every search returned the same runs in the same order as gitml now "
                                    "`commit_run` with the same N."))
        if self.notes:
            out.append("\nNotes:\n" + "\n".join(f"- {x}" for x in self.notes))
        out.append("\n" + self.load.summary(self.elapsed()))
        return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="runs a sweep (default 300)")
    ap.add_argument("--n-large", type=int, default=1000, help="the larger gitml sweeps (default 1000)")
    ap.add_argument("--no-large", action="store_true", help="skip the larger gitml sweep")
    ap.add_argument(
        "--mlflow-python", default=MLFLOW_PYTHON, help=f"the Python of MLflow's virtualenv (default {MLFLOW_PYTHON})"
    )
    ap.add_argument("--tmpdir", metavar="DIR", help="where the temporary stores go (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary stores")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)
    Bench(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
