#!/usr/bin/env python
"""Search benchmark (issue 18): gitml versus MLflow answering the same searches on the same runs.

Run ``python bench/bench_search.py`` (full: 2,000 runs, about 10 minutes on 2 cores) or
``python bench/bench_search.py --quick`` (300 runs, about 3 minutes). It prints a Markdown
report: one row per search with the warm median of each tool in ms, the runs each returned, the
ratio MLflow / gitml (above 1 means gitml is faster), and gitml's parse + compile time alone.

How the work is kept the same:

- One deterministic dataset (``run_spec``): N runs in experiment ``bench``, each with 6 params
  (2 strings, 2 ints, 2 floats), 5 metrics, 3 tags, a user, a status (FINISHED, FAILED or
  KILLED) and its own start and end time (distinct, in epoch milliseconds), logged into gitml,
  into MLflow's sqlite store and (unless ``--no-file-store``) into MLflow's file store.
- gitml is loaded with its bulk path (``gitml.tracking.commit.write_runs``, the same run
  records the API writes, 500 runs a commit); MLflow with ``MlflowClient`` (``create_run`` with
  the start time and tags, one ``log_batch``, ``set_terminated`` with the status and end time).
  Loading is not what is compared; its time is printed for information.
- The searches (``searches``) use only syntax MLflow accepts, so both tools run the same
  strings. Each search runs once untimed, then ``--reps`` times (5) timed; the median is
  reported. gitml: ``gitml.search_runs(filter, order_by, experiment="bench", limit, repo)``;
  MLflow: ``MlflowClient.search_runs([experiment id], filter, max_results, order_by)`` with
  ``max_results`` the limit or 50,000 (all runs, one page).
- The run names each tool returns, in order, are compared: a different count, different runs or
  a different order is reported under "Disagreements", never hidden.

Every measurement runs in its own Python process (``--worker``): gitml's in this interpreter,
MLflow's in MLflow's own virtualenv (``--mlflow-python``, default ``/tmp/gitml-ci-mlflow/bin/python``),
so the two never share imports or caches. Stores live in a fresh temporary directory, and the
environment is scrubbed: no ``GIT_*``/``MLFLOW_*`` variables from the caller, ``HOME`` a temporary
directory with a ``.gitconfig``, MLflow telemetry off, ``MLFLOW_ALLOW_FILE_STORE=true``.

Also measured (gitml only): the first search in a fresh process right after loading (it builds
the query index), ``gitml.core.filter.compile_query`` alone per search (µs), and the wall time of
``gitml runs list -f ...`` for two filters (median of 5 after one warm-up).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
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
EXPERIMENT = "bench"
USER = "Bench User"
MLFLOW_PYTHON = "/tmp/gitml-ci-mlflow/bin/python"
ALL = 50_000  # MLflow's largest page: "every run" in one call
BASE_MS = 1_780_000_000_000  # 2026-05-28T20:26:40Z, the first run's start time
STEP_MS = 60_000  # one run a minute (plus a jitter below one second): distinct start times

MODES = {
    "full": {"n": 2_000, "reps": 5, "compile_loops": 300},
    "quick": {"n": 300, "reps": 5, "compile_loops": 100},
}

TEAMS = ["vision", "nlp", "tabular", "growth", "graph"]
MODELS = ["rf", "gbm", "mlp", "svm"]
OPTIMIZERS = ["adam", "sgd", "adamw", "lbfgs"]


# ------------------------------------------------------------------------------------------------
# The dataset and the searches (shared by the driver and every worker, in both interpreters)
# ------------------------------------------------------------------------------------------------
def start_ms(i: int) -> int:
    """Run ``i``'s start time in epoch milliseconds (strictly increasing with ``i``)."""
    return BASE_MS + i * STEP_MS + (i * 7919) % 1000


def run_spec(i: int) -> dict:
    """Run ``i`` of the dataset, the same for every tool."""
    rnd = random.Random(i)
    params = {
        "model": rnd.choice(MODELS),
        "optimizer": rnd.choice(OPTIMIZERS),
        "p0": rnd.randint(1, 12),  # an int param: MLflow orders params as text ("10" < "2")
        "batch": rnd.choice([16, 32, 64, 128, 256]),
        "lr": round(10 ** rnd.uniform(-4, -1), 5),
        "dropout": round(rnd.uniform(0, 0.5), 3),
    }
    metrics = {f"m{j}": rnd.random() for j in range(5)}
    tags = {"team": rnd.choice(TEAMS), "stage": rnd.choice(["dev", "prod"]), "note": f"sweep-{i % 17}"}
    if i % 10 == 7:
        status = "FAILED"
    elif i % 23 == 5:
        status = "KILLED"
    else:
        status = "FINISHED"
    start = start_ms(i)
    return {
        "name": f"run-{i}",
        "params": params,
        "metrics": metrics,
        "tags": tags,
        "status": status,
        "start_time": start,
        "end_time": start + 1_000 + rnd.randint(0, 50_000),
    }


def searches(n: int) -> list[dict]:
    """The fixed list of searches: MLflow syntax only, so both tools run the same strings."""
    mid, q1, q3 = start_ms(n // 2), start_ms(n // 4), start_ms(3 * n // 4)
    s = [
        ("", [], None),
        ("metrics.m0 > 0.5", [], None),
        ("metrics.m0 > 0.5", ["metrics.m1 DESC"], None),
        ("metrics.m0 > 0.99", [], None),
        ("metrics.m3 <= 0.1 AND metrics.m4 > 0.9", [], None),
        ("params.model = 'rf'", [], None),
        ("params.model = 'rf' AND metrics.m1 < 0.3", [], None),
        ("params.model != 'rf'", [], None),
        ("params.p0 = '3'", [], None),
        ("params.batch = '64' AND params.optimizer != 'adam'", [], None),
        ("params.model LIKE '%m%' AND tags.stage = 'prod'", [], None),
        ("tags.team LIKE 'gr%'", [], None),
        ("tags.team ILIKE '%VIS%'", [], None),
        ("tags.note = 'sweep-3'", [], None),
        ("tags.mlflow.runName = 'run-42'", [], None),
        ("attributes.status != 'FINISHED'", [], None),
        ("attributes.status = 'FAILED' AND metrics.m2 >= 0.9", [], None),
        (f"attributes.start_time > {mid}", [], None),
        (f"attributes.start_time >= {q1} AND attributes.start_time < {q3}", [], None),
        ("attributes.run_name LIKE 'run-1%'", [], None),
        ("", ["metrics.m1 DESC"], None),
        ("", ["metrics.m1 DESC"], 100),
        ("", ["params.p0"], None),
        ("", ["tags.mlflow.runName"], None),
        ("params.model = 'gbm'", ["metrics.m0 ASC", "params.lr DESC"], None),
        ("attributes.status = 'FINISHED'", ["attributes.start_time DESC"], 50),
    ]
    return [{"filter": f, "order_by": o, "limit": lim} for f, o, lim in s]


def label(search: dict) -> str:
    """A search as one Markdown cell."""
    parts = [f"`{search['filter']}`" if search["filter"] else "(no filter)"]
    if search["order_by"]:
        parts.append("order " + ", ".join(f"`{k}`" for k in search["order_by"]))
    if search["limit"]:
        parts.append(f"limit {search['limit']}")
    return ", ".join(parts)


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


def _timed(call, reps: int, max_total: float) -> tuple[list[str], list[float]]:
    """One untimed call (its run names are the answer), then up to ``reps`` timed calls.

    Stops early once ``max_total`` seconds of timed calls are spent (always at least one).
    """
    names = call()
    times: list[float] = []
    while len(times) < reps and (not times or sum(times) < max_total):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return names, times


# ------------------------------------------------------------------------------------------------
# Workers: one process per measurement
# ------------------------------------------------------------------------------------------------
def w_gitml_load(spec: dict) -> dict:
    """Put the dataset on the runs ref with gitml's bulk path (write_runs, 500 runs a commit)."""
    import gitml
    from gitml.core import formats
    from gitml.core.gitrepo import GitRepo
    from gitml.tracking.commit import write_runs

    def iso(ms: int) -> str:
        return formats.iso_time(ms / 1000)

    n, chunk = spec["n"], 500
    t0 = time.perf_counter()
    with GitRepo(spec["repo"]) as repo:
        for lo in range(0, n, chunk):
            batch = []
            for i in range(lo, min(lo + chunk, n)):
                r = run_spec(i)
                start, end = iso(r["start_time"]), iso(r["end_time"])
                run = formats.Run(
                    id=f"{i:08x}" + "b" * 24,
                    name=r["name"],
                    experiment=EXPERIMENT,
                    status=r["status"],
                    start_time=start,
                    end_time=end,
                    updated=end,
                    user=USER,
                    gitml_version=gitml.__version__,
                    params={k: formats.param_value(k, v) for k, v in r["params"].items()},
                    metrics={k: formats.metric_value(k, v) for k, v in r["metrics"].items()},
                    metric_info={k: {"step": 0, "timestamp": start} for k in r["metrics"]},
                    tags=dict(r["tags"]),
                )
                batch.append((run, []))
            write_runs(repo, batch, f"bench: import {len(batch)} runs")
    return {"s": time.perf_counter() - t0, "n": n, "how": "gitml.tracking.commit.write_runs, 500 runs a commit"}


def w_gitml_search(spec: dict) -> dict:
    """Every search in one fresh process, after a first call that builds the query index."""
    import gitml
    from gitml.core.filter import compile_query

    repo, reps, max_total = spec["repo"], spec["reps"], spec["max_total"]

    def caller(s):
        def call():
            runs = gitml.search_runs(
                filter=s["filter"] or None,
                order_by=s["order_by"] or None,
                experiment=EXPERIMENT,
                limit=s["limit"],
                repo=repo,
            )
            return [r.name for r in runs]

        return call

    t0 = time.perf_counter()
    first = caller({"filter": "", "order_by": [], "limit": 1})()
    first_s = time.perf_counter() - t0
    out = []
    for s in spec["searches"]:
        try:
            names, times = _timed(caller(s), reps, max_total)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            out.append({"error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        out.append({"names": names, "times": times})
    # parse + compile alone: `loops` calls per search, best of 5 rounds (µs per call)
    loops = spec["compile_loops"]
    compile_us = []
    for s in spec["searches"]:
        rounds = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(loops):
                compile_query(s["filter"] or None, s["order_by"] or None, EXPERIMENT, s["limit"])
            rounds.append((time.perf_counter() - t0) / loops * 1e6)
        compile_us.append(min(rounds))
    return {"first_s": first_s, "first_count": len(first), "results": out, "compile_us": compile_us}


def w_mlflow_load(spec: dict) -> dict:
    """Log the dataset with MlflowClient: create_run, one log_batch, set_terminated per run."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(tracking_uri=spec["uri"])
    exp_id = client.create_experiment(EXPERIMENT)
    t0 = time.perf_counter()
    for i in range(spec["n"]):
        r = run_spec(i)
        tags = {"mlflow.user": USER, **r["tags"]}
        run = client.create_run(exp_id, start_time=r["start_time"], tags=tags, run_name=r["name"])
        rid = run.info.run_id
        client.log_batch(
            rid,
            metrics=[Metric(k, v, r["start_time"], 0) for k, v in r["metrics"].items()],
            params=[Param(k, str(v)) for k, v in r["params"].items()],
            tags=[RunTag("mlflow.runName", r["name"])],
        )
        client.set_terminated(rid, r["status"], end_time=r["end_time"])
    return {"s": time.perf_counter() - t0, "n": spec["n"], "how": "MlflowClient, 3 calls a run"}


def w_mlflow_search(spec: dict) -> dict:
    """Every search in one fresh MLflow process."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=spec["uri"])
    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    reps, max_total = spec["reps"], spec["max_total"]

    def caller(s):
        def call():
            runs = client.search_runs(
                [exp_id],
                filter_string=s["filter"],
                max_results=s["limit"] or ALL,
                order_by=s["order_by"] or None,
            )
            return [r.info.run_name for r in runs]

        return call

    out = []
    for s in spec["searches"]:
        try:
            names, times = _timed(caller(s), reps, max_total)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            out.append({"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]})
            continue
        out.append({"names": names, "times": times})
    return {"results": out}


WORKERS = {
    "gitml_load": w_gitml_load,
    "gitml_search": w_gitml_search,
    "mlflow_load": w_mlflow_load,
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
        self.mode = "quick" if args.quick else "full"
        self.cfg = dict(MODES[self.mode])
        if args.n:
            self.cfg["n"] = args.n
        self.n = self.cfg["n"]
        self.searches = searches(self.n)
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-search-", dir=args.tmpdir))
        self.home = bench_home(self.tmp, USER)
        self.env = scrubbed_env(self.home)
        self.mlflow_python = args.mlflow_python
        self.stores = ["sqlite"] if args.no_file_store else ["sqlite", "file"]
        self.t_start = time.perf_counter()
        self.load = LoadSampler()
        self.r: dict = {}
        self.notes: list[str] = []
        # before the run: the tree the workers import
        self.machine = machine_line(self.env, self.mlflow_python, ROOT)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def log(self, msg: str) -> None:
        print(f"[{self.elapsed():7.1f}s] {msg}", file=sys.stderr, flush=True)

    def worker(self, name: str, spec: dict, cwd: Path) -> dict | None:
        """Run a worker in its own process: MLflow's in MLflow's Python, gitml's in this one."""
        mlflow = name.startswith("mlflow")
        python = self.mlflow_python if mlflow else sys.executable
        env = dict(self.env) if mlflow else dict(self.env, PYTHONPATH=str(ROOT))
        spec_path = self.tmp / f"spec-{name}-{len(self.r)}.json"
        spec_path.write_text(json.dumps(spec))
        cmd = [python, str(Path(__file__).resolve()), "--worker", name, str(spec_path)]
        res, p = run_worker(cmd, env=env, cwd=cwd)
        if res is None:
            self.notes.append(f"worker {name} failed: `{failure_line(p)[:300]}`")
            self.log(f"worker {name} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
        return res

    def git(self, *argv: str, cwd: Path) -> None:
        subprocess.run(["git", *argv], cwd=cwd, env=self.env, check=True, capture_output=True)

    def cli_wall(self, argv: list[str], cwd: Path, reps: int = 5) -> dict:
        """Median wall time of a command over ``reps`` runs after one untimed warm-up run."""
        env = dict(self.env, PYTHONPATH=str(ROOT))
        p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
            self.notes.append(f"`{' '.join(argv[1:])}` failed: `{err[:300]}`")
            return {"error": err}
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times.append(time.perf_counter() - t0)
        return {"median": statistics.median(times), "min": min(times), "lines": len(p.stdout.splitlines())}

    def gitml_cmd(self) -> list[str]:
        return [sys.executable, "-m", "gitml"]

    def run(self) -> None:
        self.log(f"mode {self.mode}, {self.n} runs, {len(self.searches)} searches, temp dir {self.tmp}")
        try:
            base = {"n": self.n, "searches": self.searches, "reps": self.cfg["reps"]}
            # gitml
            repo = self.tmp / "gitml-repo"
            repo.mkdir()
            self.git("init", "-q", "-b", "main", cwd=repo)
            (repo / "train.py").write_text("print('train')\n")
            self.git("add", "train.py", cwd=repo)
            self.git("commit", "-q", "-m", "init", cwd=repo)
            self.log(f"gitml: loading {self.n} runs")
            self.r[("gitml", "load")] = self.worker("gitml_load", dict(base, repo=str(repo)), repo)
            self.log("gitml: searches")
            self.r[("gitml", "search")] = self.worker(
                "gitml_search",
                dict(base, repo=str(repo), max_total=30.0, compile_loops=self.cfg["compile_loops"]),
                repo,
            )
            self.log("gitml: runs list -f (CLI)")
            for key, argv in self.cli_searches():
                self.r[("gitml", key)] = self.cli_wall([*self.gitml_cmd(), "runs", "list", *argv], repo)
            # MLflow
            for kind in self.stores:
                d = self.tmp / f"mlflow-{kind}"
                d.mkdir()
                uri = f"sqlite:///{d / 'mlflow.db'}" if kind == "sqlite" else (d / "mlruns").as_uri()
                tool = f"mlflow-{kind}"
                self.log(f"{tool}: loading {self.n} runs")
                self.r[(tool, "load")] = self.worker("mlflow_load", dict(base, uri=uri), d)
                if self.r[(tool, "load")] is None:
                    continue
                self.log(f"{tool}: searches")
                # The file store reads every run's files on every search: it gets fewer timed calls.
                max_total = 30.0 if kind == "sqlite" else 10.0
                self.r[(tool, "search")] = self.worker("mlflow_search", dict(base, uri=uri, max_total=max_total), d)
        finally:
            if not self.args.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)
        print(self.report())

    def cli_searches(self) -> list[tuple[str, list[str]]]:
        return [
            ("cli_1", ["-f", "metrics.m0 > 0.5", "-o", "metrics.m1 DESC"]),
            ("cli_2", ["-f", "params.model = 'rf' AND metrics.m1 < 0.3"]),
        ]

    # -- report ----------------------------------------------------------------------------------
    def results(self, tool: str) -> list[dict]:
        res = self.r.get((tool, "search")) or {}
        return res.get("results") or [{} for _ in self.searches]

    def report(self) -> str:
        tools = ["gitml", *(f"mlflow-{k}" for k in self.stores)]
        res = {t: self.results(t) for t in tools}
        g = res["gitml"]
        compile_us = (self.r.get(("gitml", "search")) or {}).get("compile_us") or [None] * len(self.searches)
        has_file = "mlflow-file" in tools

        head = ["#", "search", "runs (gitml / sqlite" + (" / file)" if has_file else ")"), "gitml [ms]",
                "MLflow sqlite [ms]"]
        if has_file:
            head.append("MLflow file [ms]")
        head.append("sqlite / gitml")
        if has_file:
            head.append("file / gitml")
        head.append("gitml compile [µs]")
        out = [f"### Search benchmark ({self.mode} mode, {self.n:,} runs)\n", self.machine + "\n"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---:", "---", "---"] + ["---:"] * (len(head) - 3)) + "|")

        disagreements: list[str] = []
        ratios = {t: [] for t in tools[1:]}
        sums = {t: 0.0 for t in tools}
        complete = {t: True for t in tools}
        for k, s in enumerate(self.searches):
            counts, medians = [], {}
            for t in tools:
                e = res[t][k] if k < len(res[t]) else {}
                if "names" in e:
                    counts.append(f"{len(e['names']):,}")
                    medians[t] = _median_ms(e["times"])
                    sums[t] += medians[t]
                else:
                    counts.append("error" if "error" in e else "—")
                    complete[t] = False
            cells = [str(k + 1), label(s), " / ".join(counts), fmt(medians.get("gitml"))]
            cells += [fmt(medians.get(t)) for t in tools[1:]]
            for t in tools[1:]:
                if t in medians and "gitml" in medians:
                    ratios[t].append(medians[t] / medians["gitml"])
                cells.append(fmt_ratio(medians.get(t), medians.get("gitml")))
            cells.append(fmt(compile_us[k]))
            out.append("| " + " | ".join(cells) + " |")
            for t in tools[1:]:
                why = compare(g[k] if k < len(g) else {}, res[t][k] if k < len(res[t]) else {})
                if why:
                    disagreements.append(f"#{k + 1} {label(s)}: gitml vs {t}: {why}")

        # summary rows
        cells = ["", f"**sum of the {len(self.searches)} medians**", ""]
        cells += [fmt(sums[t]) if complete[t] else "—" for t in tools]
        for t in tools[1:]:
            cells.append(fmt_ratio(sums[t], sums["gitml"]) if complete[t] and complete["gitml"] else "")
        valid = [c for c in compile_us if c is not None]
        cells.append(f"mean {fmt(statistics.mean(valid))}" if valid else "—")
        out.append("| " + " | ".join(cells) + " |")
        cells = ["", "**geometric mean of the ratios**", ""] + [""] * len(tools)
        for t in tools[1:]:
            cells.append(f"{geomean(ratios[t]):.1f}×" if ratios[t] else "")
        cells.append("")
        out.append("| " + " | ".join(cells) + " |")

        out.append(
            f"\nWarm medians: each search ran once untimed, then {self.cfg['reps']} times timed in the same "
            "process (fewer where the timed calls passed 30 s, or 10 s on MLflow's file store)."
        )
        for t in tools:
            calls = [len(e["times"]) for e in res[t] if "times" in e]
            if calls and min(calls) < self.cfg["reps"]:
                short = sum(c < self.cfg["reps"] for c in calls)
                out.append(
                    f"{t}: {short} of {len(calls)} searches got fewer timed calls ({min(calls)}–{max(calls)})."
                )

        out.append("\n#### Disagreements between gitml and MLflow\n")
        if disagreements:
            out.extend(f"- {d}" for d in disagreements)
        else:
            out.append(
                "None: every search returned the same runs in the same order in gitml and in every MLflow store."
            )

        out.append("\n#### Also measured\n")
        gs = self.r.get(("gitml", "search")) or {}
        if "first_s" in gs:
            out.append(
                f"- gitml's first search in a fresh process right after loading (it builds the query index "
                f"for {self.n:,} runs): {gs['first_s'] * 1e3:,.0f} ms."
            )
        for key, argv in self.cli_searches():
            c = self.r.get(("gitml", key)) or {}
            if "median" in c:
                shown = " ".join(f'"{a}"' if " " in a else a for a in argv)
                out.append(
                    f"- `gitml runs list {shown}` (default limit 50; {c['lines']} lines of output): "
                    f"{c['median'] * 1e3:.0f} ms wall, median of 5 (min {c['min'] * 1e3:.0f})."
                )
        for t in tools:
            ld = self.r.get((t, "load"))
            if ld:
                out.append(
                    f"- {t}: loading {ld['n']:,} runs ({ld['how']}) took {ld['s']:.1f} s "
                    f"({ld['s'] / ld['n'] * 1e3:.1f} ms a run; not a like-for-like comparison)."
                )
        if self.notes:
            out.append("\nNotes:\n" + "\n".join(f"- {x}" for x in self.notes))
        out.append("\n" + self.load.summary(self.elapsed()))
        return "\n".join(out)


def compare(a: dict, b: dict) -> str | None:
    """Why two answers differ (count, runs, order or an error), or None when they agree."""
    if "error" in a or "error" in b:
        if "error" in a and "error" in b:
            return None
        side, e = ("gitml", a) if "error" in a else ("MLflow", b)
        return f"{side} raised `{e['error']}`"
    if "names" not in a or "names" not in b:
        return None  # a worker failed: reported in the notes
    x, y = a["names"], b["names"]
    if x == y:
        return None
    if len(x) != len(y):
        only_g = sorted(set(x) - set(y), key=_run_no)
        only_m = sorted(set(y) - set(x), key=_run_no)
        return (
            f"**{len(x):,} vs {len(y):,} runs**; only in gitml: {_few(only_g)}; only in MLflow: {_few(only_m)}"
        )
    if set(x) != set(y):
        return f"same count ({len(x):,}), **different runs**: only in gitml {_few(sorted(set(x) - set(y)))}"
    k = next(i for i, (p, q) in enumerate(zip(x, y, strict=True)) if p != q)
    return (
        f"same {len(x):,} runs, **different order** from position {k + 1}: gitml "
        f"{', '.join(x[k : k + 3])} …, MLflow {', '.join(y[k : k + 3])} …"
    )


def _run_no(name: str) -> int:
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _few(names: list[str], k: int = 5) -> str:
    if not names:
        return "none"
    more = f" … (+{len(names) - k})" if len(names) > k else ""
    return ", ".join(names[:k]) + more


def geomean(xs: list[float]) -> float:
    return statistics.geometric_mean(xs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 runs instead of 2,000: about 3 minutes")
    ap.add_argument("--n", type=int, help="number of runs (overrides the mode's)")
    ap.add_argument("--no-file-store", action="store_true", help="MLflow's sqlite store only")
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
