#!/usr/bin/env python
"""Experiments as objects: gitml against MLflow 3.x on MLflow's experiment calls.

Run from the repository root (MLflow in its own virtualenv, as ``.ci/run`` installs it)::

    python bench/bench_experiments.py --out bench/RESULTS-experiments.md

(about a minute on 2 cores; ``--reps`` timed calls per operation, default 20; ``--runs`` finished
runs in the experiment that is renamed, default 100; ``--experiments`` experiments present,
default 100; ``--mlflow-python``, default ``/tmp/gitml-ci-mlflow/bin/python``; ``--profile DIR``
writes a cProfile dump of every timed operation of both workers to DIR). It prints one Markdown
report (``--out FILE`` writes it too): one row per operation, the median of each tool in
milliseconds, and MLflow / gitml (above 1: gitml is faster).

Stores: gitml in a fresh ``git init`` repository in a temporary directory with one empty commit,
its worker running from that directory (gitml finds its repository from the current directory);
MLflow with the sqlite tracking store ``sqlite:///<tmp>/mlflow.db`` (its default artifact root,
unused: no run logs a file), its worker running from that directory. Each tool's worker is one
Python process of its own interpreter: gitml's this one with ``PYTHONPATH`` at this checkout,
MLflow's MLflow's virtualenv, so the two share no imports or caches. The environment is
scrubbed for both (``_common.scrubbed_env``: no ``GIT_*``/``MLFLOW_*``/``PYTHONPATH`` from the
caller, ``HOME`` a temporary directory with a ``.gitconfig``, ``MLFLOW_DISABLE_TELEMETRY=true``).

The same work in both workers, in this order:

1. **Set-up, untimed**: ``--experiments`` experiments ``exp-000``, ``exp-001``, … made with
   ``create_experiment(name, tags=...)``, the even-numbered ones with the tag ``team=ml`` (half of
   them), the others with none; then ``--runs`` finished runs in ``exp-000``, each with 2 params
   and 1 metric (gitml ``gitml.commit_run(name=..., experiment="exp-000", params=...,
   metrics=...)``, one commit each; MLflow ``mlflow.start_run(experiment_id=...)``,
   ``log_params``, ``log_metrics``, ``end_run``). The set-up's wall times are in the notes.
2. **Timed**, each operation one untimed warm-up call then ``--reps`` timed calls
   (``time.perf_counter`` around the call alone), the median reported:

   - ``set_experiment("exp-010")``, an experiment that exists (neither tool writes: checked,
     gitml's runs ref and MLflow's experiment count and ``last_update_time`` are the same after);
   - ``get_experiment_by_name(name)``, a different one of the experiments each call;
   - ``search_experiments(filter_string="tags.team = 'ml'")`` (half match), and
     ``search_experiments()`` with no filter (every experiment; MLflow's store also holds its
     ``Default`` experiment, so it answers one more): both fluent calls, MLflow's fetching every
     page;
   - ``set_experiment_tag`` on ``exp-020``, a new key each call (``k0``, ``k1``, …): gitml
     ``gitml.set_experiment_tag(key, "v", experiment=ID)``, MLflow
     ``MlflowClient().set_experiment_tag(ID, key, "v")`` (one client, made before);
   - ``rename_experiment`` of ``exp-030``, which has no runs, to a new name each call (gitml
     ``gitml.rename_experiment(ID, new)``, MLflow ``MlflowClient().rename_experiment(ID, new)``):
     the cost of the record alone;
   - ``rename_experiment`` of ``exp-000``, holding the ``--runs`` finished runs, to a new name
     each call. MLflow's runs refer to their experiment by id, so it updates one row; gitml's
     runs carry the experiment's name in their ``run.yaml``, so it rewrites every one of them,
     in the same commit as the record. gitml's query index (a cache) is not told of the
     rewritten runs, so each gitml call also brings it up to date with the runs the call before
     rewrote: the median is that steady state, as a script renaming in a loop sees it;
   - ``create_experiment(name)`` of a new name each call (gitml ``gitml.create_experiment``,
     MLflow ``mlflow.create_experiment``), last, so that the reads above see exactly
     ``--experiments`` experiments.

3. **Checked, untimed**: each worker lists its experiments (name, non-``mlflow.`` tags, number of
   runs) and the driver compares the two lists (MLflow's ``Default`` aside): the report says
   whether they are the same.

Ids are given to both tools where MLflow takes an id (tagging, renaming); gitml takes a name or
an id there. The workers run one after the other (gitml's first); the 1-minute load average is
given at the start and end.
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
FILTER = "tags.team = 'ml'"
SET_TARGET, TAG_TARGET, EMPTY_RENAMED, RUNS_HOLDER = 10, 20, 30, 0
# the report's rows: (key, label with {reps}, {runs}, {experiments} filled in)
ROWS = (
    ("create", "`create_experiment` of a new name"),
    ("set", "`set_experiment` of an existing experiment (no write)"),
    ("by_name", "`get_experiment_by_name`, {experiments} experiments present"),
    ("search_filter", "`search_experiments(\"tags.team = 'ml'\")`, {half} of {experiments} match"),
    ("search_all", "`search_experiments()`, no filter, {experiments} experiments"),
    ("set_tag", "`set_experiment_tag`, a new key each call"),
    ("rename_runs", "`rename_experiment` of an experiment holding {runs} finished runs"),
    ("rename_empty", "`rename_experiment` of an experiment with no runs"),
)


def exp_name(i: int) -> str:
    return f"exp-{i:03d}"


def exp_tags(i: int) -> dict:
    return {"team": "ml"} if i % 2 == 0 else {}


def run_values(j: int) -> tuple[dict, dict]:
    return {"lr": round(0.001 * (j + 1), 6), "seed": j}, {"loss": round(1.0 / (j + 2), 6)}


# ------------------------------------------------------------------------------------------------
# Worker: the same sequence for both tools, each tool's calls given by an adapter
# ------------------------------------------------------------------------------------------------
def measure(spec: dict, tool: str, t) -> dict:
    """The set-up, the timed operations and the final listing, with ``t`` the tool's calls."""
    n, runs, reps = spec["experiments"], spec["runs"], spec["reps"]
    out: dict = {"setup": {}, "checks": {}}

    t0 = time.perf_counter()
    ids = [t.create(exp_name(i), exp_tags(i)) for i in range(n)]
    out["setup"]["experiments_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for j in range(runs):
        t.add_run(ids[RUNS_HOLDER], exp_name(RUNS_HOLDER), j)
    out["setup"]["runs_s"] = time.perf_counter() - t0

    def op(key: str, fn) -> None:
        out[key] = timed(fn, reps, prof_path(spec, tool, key))

    before = t.write_marker(ids[SET_TARGET])
    op("set", lambda i: t.set(exp_name(SET_TARGET)))
    out["checks"]["set_wrote"] = t.write_marker(ids[SET_TARGET]) != before

    found: list = []
    op("by_name", lambda i: found.append(t.by_name(exp_name((i * 37) % n))))
    out["checks"]["by_name_found"] = sum(1 for e in found if e is not None)
    answers: dict = {}
    op("search_filter", lambda i: answers.__setitem__("filter", t.search(FILTER)))
    op("search_all", lambda i: answers.__setitem__("all", t.search(None)))
    out["checks"]["search_filter_count"] = len(answers["filter"])
    out["checks"]["search_all_count"] = len(answers["all"])

    op("set_tag", lambda i: t.set_tag(ids[TAG_TARGET], f"k{i}", "v"))
    op("rename_empty", lambda i: t.rename(ids[EMPTY_RENAMED], f"{exp_name(EMPTY_RENAMED)}-renamed-{i}"))
    op("rename_runs", lambda i: t.rename(ids[RUNS_HOLDER], f"{exp_name(RUNS_HOLDER)}-renamed-{i}"))
    op("create", lambda i: t.create(f"new-{i:03d}", {}))

    out["listing"] = sorted(t.listing())
    return out


class GitmlCalls:
    def __init__(self):
        import gitml

        self.g = gitml

    def create(self, name: str, tags: dict) -> str:
        return self.g.create_experiment(name, tags=tags or None)

    def add_run(self, exp_id: str, name: str, j: int) -> None:
        params, metrics = run_values(j)
        self.g.commit_run(name=f"run-{j:03d}", experiment=name, params=params, metrics=metrics)

    def set(self, name: str):
        return self.g.set_experiment(name)

    def by_name(self, name: str):
        return self.g.get_experiment_by_name(name)

    def search(self, filter_string: str | None) -> list:
        return self.g.search_experiments(filter_string)

    def set_tag(self, exp_id: str, key: str, value: str) -> None:
        self.g.set_experiment_tag(key, value, experiment=exp_id)

    def rename(self, exp_id: str, new_name: str) -> None:
        self.g.rename_experiment(exp_id, new_name)

    def write_marker(self, exp_id: str):
        from gitml.core.runsref import RUNS_REF

        return subprocess.run(["git", "rev-parse", RUNS_REF], capture_output=True, text=True,
                              check=True).stdout.strip()

    def listing(self) -> list:
        return [[e.name, sorted(e.tags.items()), e.run_count] for e in self.g.search_experiments()]


class MlflowCalls:
    def __init__(self, uri: str):
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(uri)
        self.m = mlflow
        self.client = MlflowClient()

    def create(self, name: str, tags: dict) -> str:
        return self.m.create_experiment(name, tags=tags or None)

    def add_run(self, exp_id: str, name: str, j: int) -> None:
        params, metrics = run_values(j)
        self.m.start_run(experiment_id=exp_id, run_name=f"run-{j:03d}")
        self.m.log_params(params)
        self.m.log_metrics(metrics)
        self.m.end_run()

    def set(self, name: str):
        return self.m.set_experiment(name)

    def by_name(self, name: str):
        return self.m.get_experiment_by_name(name)

    def search(self, filter_string: str | None) -> list:
        return self.m.search_experiments(filter_string=filter_string)

    def set_tag(self, exp_id: str, key: str, value: str) -> None:
        self.client.set_experiment_tag(exp_id, key, value)

    def rename(self, exp_id: str, new_name: str) -> None:
        self.client.rename_experiment(exp_id, new_name)

    def write_marker(self, exp_id: str):
        exp = self.client.get_experiment(exp_id)
        return len(self.m.search_experiments()), exp.last_update_time, sorted(exp.tags.items())

    def listing(self) -> list:
        exps = self.m.search_experiments()
        counts: dict = {}
        for run in self.client.search_runs([e.experiment_id for e in exps], max_results=50_000):
            counts[run.info.experiment_id] = counts.get(run.info.experiment_id, 0) + 1
        return [[e.name, sorted((k, v) for k, v in e.tags.items() if not k.startswith("mlflow.")),
                 counts.get(e.experiment_id, 0)] for e in exps]


def w_gitml(spec: dict) -> dict:
    return measure(spec, "gitml", GitmlCalls())


def w_mlflow(spec: dict) -> dict:
    return measure(spec, "mlflow", MlflowCalls(spec["uri"]))


WORKERS = {"gitml": w_gitml, "mlflow": w_mlflow}


def worker_main(name: str, spec_json: str) -> int:
    import warnings

    warnings.filterwarnings("ignore")  # MLflow's advice would bury the result line
    emit_result(WORKERS[name](json.loads(spec_json)))
    return 0


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-experiments-"))
        self.home = bench_home(self.tmp)
        self.env = scrubbed_env(self.home)
        self.t_start = time.perf_counter()
        self.load = LoadSampler(every=5.0)
        self.r: dict = {}
        self.notes: list[str] = []
        self.machine = machine_line(self.env, args.mlflow_python, ROOT)

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def git(self, *argv: str, cwd: Path) -> None:
        subprocess.run(["git", *argv], cwd=cwd, env=self.env, check=True, capture_output=True)

    def worker(self, name: str, spec: dict, cwd: Path) -> dict | None:
        mlflow = name == "mlflow"
        python = self.args.mlflow_python if mlflow else sys.executable
        env = dict(self.env) if mlflow else dict(self.env, PYTHONPATH=str(ROOT))
        a = self.args
        spec = dict(spec, reps=a.reps, runs=a.runs, experiments=a.experiments,
                    profile=str(a.profile.resolve()) if a.profile else None)
        self.log(name)
        res, p = run_worker([python, str(Path(__file__).resolve()), "--worker", name, json.dumps(spec)],
                            env=env, cwd=cwd)
        if res is None:
            self.notes.append(f"worker {name} failed: `{failure_line(p)[:300]}`")
            self.log(f"{name} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
        return res

    def run(self) -> str:
        if self.args.profile:
            self.args.profile.mkdir(parents=True, exist_ok=True)
        try:
            repo = self.tmp / "gitml"
            repo.mkdir()
            self.git("init", "-q", "-b", "main", cwd=repo)
            self.git("commit", "-q", "--allow-empty", "-m", "init", cwd=repo)
            self.r["gitml"] = self.worker("gitml", {}, repo)
            store = self.tmp / "mlflow"
            store.mkdir()
            self.r["mlflow"] = self.worker("mlflow", {"uri": f"sqlite:///{store / 'mlflow.db'}"}, store)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.report()

    def cell(self, tool: str, key: str, what: str = "median_ms"):
        return ((self.r.get(tool) or {}).get(key) or {}).get(what)

    def report(self) -> str:
        a = self.args
        fill = {"experiments": a.experiments, "half": (a.experiments + 1) // 2, "runs": a.runs}
        lines = [
            "# Experiments as objects: gitml against MLflow",
            "",
            f"`python bench/bench_experiments.py --reps {a.reps} --runs {a.runs} --experiments {a.experiments}"
            f"{'' if a.mlflow_python == MLFLOW_PYTHON else f' --mlflow-python {a.mlflow_python}'}`",
            "",
            self.machine,
            "",
            f"CPU: {cpu_model()}. 1-minute load average {self.load.start[0]:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end.",
            "",
            "MLflow: sqlite tracking store. gitml: a fresh git repository. Each tool in its own Python "
            f"process; times in ms, the median of {a.reps} calls after one warm-up call; MLflow / gitml "
            "above 1 means gitml is faster.",
            "",
            "| operation | gitml [ms] | MLflow [ms] | MLflow / gitml |",
            "| --- | ---: | ---: | ---: |",
        ]
        for key, label in ROWS:
            g, m = self.cell("gitml", key), self.cell("mlflow", key)
            lines.append(f"| {label.format(**fill)} | {fmt(g)} | {fmt(m)} | {fmt_ratio(m, g)} |")
        lines += ["", "Notes:", ""]
        for note in self.checks():
            lines.append(f"- {note}")
        for note in self.notes:
            lines.append(f"- {note}")
        lines += ["", self.load.summary(time.perf_counter() - self.t_start), ""]
        return "\n".join(lines)

    def checks(self) -> list[str]:
        """Whether both tools did the same work and hold the same experiments, and the details."""
        g, m = self.r.get("gitml") or {}, self.r.get("mlflow") or {}
        if not (g and m):
            return []
        a, out = self.args, []
        gl = g["listing"]
        ml = [e for e in m["listing"] if e[0] != "Default"]
        same = gl == ml
        runs = {e[0]: e[2] for e in gl if e[2]}, {e[0]: e[2] for e in ml if e[2]}
        tagged = sum(1 for e in gl if e[1]), sum(1 for e in ml if e[1])
        out.append(
            f"The stores at the end: gitml {len(gl)} experiments, MLflow {len(ml)} (and its `Default`, "
            f"{len(m['listing']) - len(ml)} more); with tags, gitml {tagged[0]}, MLflow {tagged[1]}; runs by "
            f"experiment, gitml {runs[0]}, MLflow {runs[1]}. Names, tags and run counts of every "
            f"experiment the same in both: {'**yes**' if same else '**no**'}."
            + ("" if same else f" Only gitml: {[e for e in gl if e not in ml][:5]}; only MLflow: "
                               f"{[e for e in ml if e not in gl][:5]}.")
        )
        gc, mc = g["checks"], m["checks"]
        out.append(
            f"`set_experiment` of an existing experiment wrote something: gitml "
            f"{'yes' if gc['set_wrote'] else 'no'} (its runs ref unmoved), MLflow "
            f"{'yes' if mc['set_wrote'] else 'no'} (experiment count, `last_update_time` and tags unchanged)."
        )
        out.append(
            f"Answers: `get_experiment_by_name` found {gc['by_name_found']} of {a.reps + 1} calls (gitml), "
            f"{mc['by_name_found']} (MLflow); the filtered search {gc['search_filter_count']} / "
            f"{mc['search_filter_count']} experiments, the unfiltered {gc['search_all_count']} / "
            f"{mc['search_all_count']} (MLflow's `Default` included)."
        )
        gs, ms = g["setup"], m["setup"]
        out.append(
            f"Set-up, untimed in the table: {a.experiments} `create_experiment` calls took gitml "
            f"{gs['experiments_s']:.1f} s, MLflow {ms['experiments_s']:.1f} s; {a.runs} finished runs "
            f"(`commit_run` / `start_run`…`end_run`), gitml {gs['runs_s']:.1f} s, MLflow {ms['runs_s']:.1f} s."
        )
        out.append(
            "Warm-up call (the first, untimed), gitml / MLflow: "
            + ", ".join(f"{key} {fmt(self.cell('gitml', key, 'first_ms'))} / {fmt(self.cell('mlflow', key, 'first_ms'))}"
                        for key, _ in ROWS)
            + "."
        )
        out.append(
            "Range (min–max ms) of the timed calls, gitml / MLflow: "
            + ", ".join(f"{key} {fmt(self.cell('gitml', key, 'min_ms'))}–{fmt(self.cell('gitml', key, 'max_ms'))}"
                        f" / {fmt(self.cell('mlflow', key, 'min_ms'))}–{fmt(self.cell('mlflow', key, 'max_ms'))}"
                        for key, _ in ROWS)
            + "."
        )
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20, help="timed calls per operation (default 20)")
    ap.add_argument("--runs", type=int, default=100, help="finished runs in the renamed experiment (default 100)")
    ap.add_argument("--experiments", type=int, default=100,
                    help="experiments made before the timed calls (default 100; at least 31)")
    ap.add_argument("--mlflow-python", default=MLFLOW_PYTHON, help=f"MLflow's interpreter (default {MLFLOW_PYTHON})")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="write cProfile dumps of the timed sections to DIR")
    ap.add_argument("--out", type=Path, help="write the report to this file too")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)
    if args.experiments <= EMPTY_RENAMED:
        ap.error(f"--experiments must be more than {EMPTY_RENAMED}")
    report = Bench(args).run()
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
