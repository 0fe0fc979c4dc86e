#!/usr/bin/env python
"""Tracking benchmark: gitml versus MLflow on the same work.

Run ``python bench/bench_tracking.py`` (full, about 20 minutes on 2 cores) or
``python bench/bench_tracking.py --quick`` (a smoke run of about 2 minutes). It prints a Markdown
table of absolute figures and ratios (MLflow / gitml: above 1 means gitml is faster).

Every measurement runs in its own Python process (``--worker``), so the two tools' imports and
caches never meet, against a store in a fresh temporary directory, with a scrubbed environment: no
``GIT_*``/``MLFLOW_*`` variables from the caller, ``HOME`` set to a temporary directory holding a
``.gitconfig`` with a user name and e-mail, MLflow telemetry off.

Scenarios:

1. create runs (10 params, 10 metrics, 3 tags each) through the Python API: per-run cost on an
   empty store, with 10,000 runs already stored, and (gitml only) with 100,000 runs on the ref;
2. 10,000 ``log_metric`` calls in one run: per-call cost, and the cost of ``end_run`` after them;
3. search 10,000 runs (``metrics.m0 > 0.5``, order ``metrics.m1 DESC``): gitml cold (index
   deleted), first call in a fresh process, and warm; MLflow first call and warm; then (gitml only)
   ``gitml runs list`` wall time at 100,000 runs and ``gitml index rebuild`` throughput;
4. ``gitml --help`` versus ``mlflow --help`` wall time (median of 5);
4b. (``--only runcost``) one run side by side: gitml at 0 and at 100,000 runs on the ref, MLflow's
   file and sqlite stores (``--mlflow-python``), taking turns; and one run's objects written
   loose or as one pack under git's ``core.fsync`` settings;
5. storage after 10,000 runs: ``git count-objects -v`` and the size of ``.git`` (per run), next to
   the size of MLflow's store for the same runs.

``--profile DIR`` writes a cProfile dump of every worker's timed section to DIR.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import platform
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
    Profiler,
    bench_home,
    cpu_model,
    emit_result,
    failure_line,
    fmt_ratio,
    run_worker,
    scrubbed_env,
    typical_params,
)

ROOT = Path(__file__).resolve().parents[1]
N_PARAMS, N_METRICS, N_TAGS = 10, 10, 3
FILTER = "metrics.m0 > 0.5"
ORDER = "metrics.m1 DESC"
EXPERIMENT = "bench"

# Sizes per mode. ``fill`` is the store size for search/storage, ``big`` the gitml preload.
MODES = {
    "full": {"n": 1000, "fill": 10_000, "fill_file": 1_000, "big": 100_000, "log_metric": 10_000, "reps": 5,
             "runcost_n": 600, "runcost_rounds": 6},
    "quick": {"n": 100, "fill": 500, "fill_file": 500, "big": 10_000, "log_metric": 2_000, "reps": 3,
              "runcost_n": 60, "runcost_rounds": 3},
}

GOALS = {
    "run": 4.0,  # ms per run, flat to 100,000 runs
    "log_metric": 20.0,  # us per call
    "search_warm": 50.0,  # ms, 10,000 runs
    "runs_list": 0.5,  # s at 100,000 runs, warm
    "rebuild": 20_000.0,  # runs/s
    "help": 150.0,  # ms
}


# ------------------------------------------------------------------------------------------------
# Shared helpers (used by driver and workers)
# ------------------------------------------------------------------------------------------------
def run_payload(i: int) -> tuple[dict, dict, dict]:
    """Deterministic params/metrics/tags for run ``i`` (the same for both tools)."""
    rnd = random.Random(i)
    params = typical_params(rnd)
    assert len(params) == N_PARAMS
    metrics = {f"m{j}": rnd.random() for j in range(N_METRICS)}
    tags = {"team": rnd.choice(["vision", "nlp", "tabular"]), "stage": "dev", "note": f"sweep-{i % 17}"}
    assert len(tags) == N_TAGS
    return params, metrics, tags


def summarize(times: list[float]) -> dict:
    if not times:
        return {"count": 0}
    s = sorted(times)
    return {
        "count": len(s),
        "total": sum(s),
        "mean": sum(s) / len(s),
        "p50": s[len(s) // 2],
        "p95": s[min(len(s) - 1, int(len(s) * 0.95))],
        "max": s[-1],
    }


def index_files(repo: str) -> list[Path]:
    """gitml's query index (DESIGN.md: <git-common-dir>/gitml/index.sqlite) and its sidecars."""
    git_dir = Path(repo) / ".git"
    base = git_dir / "gitml"
    return [
        base / n for n in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "index.sqlite-journal")
    ]


# ------------------------------------------------------------------------------------------------
# Workers: one process per measurement
# ------------------------------------------------------------------------------------------------
def _import_timed(name: str):
    t0 = time.perf_counter()
    mod = __import__(name)
    return mod, time.perf_counter() - t0


def w_gitml_create(spec: dict) -> dict:
    gitml, t_import = _import_timed("gitml")
    repo, n, offset = spec["repo"], spec["n"], spec.get("offset", 0)
    if spec.get("warmup"):
        p, m, t = run_payload(10**9)
        with gitml.start_run(name="warmup", experiment=EXPERIMENT, repo=repo):
            gitml.log_params(p)
            gitml.log_metrics(m)
            gitml.set_tags(t)
    payloads = [run_payload(offset + i) for i in range(n)]
    times = []
    pc = time.perf_counter
    with Profiler(spec.get("profile")):
        for i, (p, m, t) in enumerate(payloads):
            t0 = pc()
            with gitml.start_run(name=f"run-{offset + i}", experiment=EXPERIMENT, repo=repo):
                gitml.log_params(p)
                gitml.log_metrics(m)
                gitml.set_tags(t)
            times.append(pc() - t0)
    return {"import_s": t_import, "runs": summarize(times), **({"times": times} if spec.get("raw") else {})}


def _mlflow_setup(uri: str):
    mlflow, t_import = _import_timed("mlflow")
    t0 = time.perf_counter()
    mlflow.set_tracking_uri(uri)
    exp = mlflow.set_experiment(EXPERIMENT)
    return mlflow, exp, t_import, time.perf_counter() - t0


def w_mlflow_create(spec: dict) -> dict:
    mlflow, _exp, t_import, t_setup = _mlflow_setup(spec["uri"])
    n, offset = spec["n"], spec.get("offset", 0)
    if spec.get("warmup"):
        p, m, t = run_payload(10**9)
        with mlflow.start_run(run_name="warmup"):
            mlflow.log_params(p)
            mlflow.log_metrics(m)
            mlflow.set_tags(t)
    if spec.get("client"):
        return {"import_s": t_import, "runs": _mlflow_fill(mlflow, _exp.experiment_id, n, offset)}
    payloads = [run_payload(offset + i) for i in range(n)]
    times = []
    pc = time.perf_counter
    with Profiler(spec.get("profile")):
        for i, (p, m, t) in enumerate(payloads):
            t0 = pc()
            with mlflow.start_run(run_name=f"run-{offset + i}"):
                mlflow.log_params(p)
                mlflow.log_metrics(m)
                mlflow.set_tags(t)
            times.append(pc() - t0)
    return {"import_s": t_import, "setup_s": t_setup, "runs": summarize(times),
            **({"times": times} if spec.get("raw") else {})}


def _mlflow_fill(mlflow, experiment_id: str, n: int, offset: int) -> dict:
    """Fill a store fast (3 client calls a run instead of 5): not a timed scenario."""
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow.MlflowClient()
    times = []
    for i in range(offset, offset + n):
        t0 = time.perf_counter()
        p, m, t = run_payload(i)
        now = int(time.time() * 1000)
        run = client.create_run(experiment_id, run_name=f"run-{i}", tags=t)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in m.items()],
            params=[Param(k, str(v)) for k, v in p.items()],
            tags=[RunTag("mlflow.runName", f"run-{i}")],
        )
        client.set_terminated(run.info.run_id)
        times.append(time.perf_counter() - t0)
    return summarize(times)


def _log_metric_loop(log_metric, n: int, profile: str | None) -> float:
    rnd = random.Random(0)
    values = [rnd.random() for _ in range(n)]
    pc = time.perf_counter
    with Profiler(profile):
        t0 = pc()
        for i, v in enumerate(values):
            log_metric("loss", v, step=i)
        return pc() - t0


def w_gitml_log_metric(spec: dict) -> dict:
    import gitml

    n = spec["n"]
    run = gitml.start_run(name="log-metric", experiment=EXPERIMENT, repo=spec["repo"])
    with run:
        loop = _log_metric_loop(gitml.log_metric, n, spec.get("profile"))
        t0 = time.perf_counter()
    t_end = time.perf_counter() - t0
    got = gitml.get_run(run.id, repo=spec["repo"])
    return {"n": n, "loop_s": loop, "per_call_s": loop / n, "end_s": t_end, "check": _metric_check(got)}


def _metric_check(run) -> str:
    try:
        return repr(run.metrics.get("loss"))[:80]
    except Exception as e:  # noqa: BLE001 - informational only
        return f"unreadable: {e!r}"


def w_mlflow_log_metric(spec: dict) -> dict:
    mlflow, _exp, _ti, _ts = _mlflow_setup(spec["uri"])
    n = spec["n"]
    with mlflow.start_run(run_name="log-metric"):
        loop = _log_metric_loop(mlflow.log_metric, n, spec.get("profile"))
        t0 = time.perf_counter()
    t_end = time.perf_counter() - t0
    return {"n": n, "loop_s": loop, "per_call_s": loop / n, "end_s": t_end}


def _timed_calls(fn, reps: int, max_total: float = 20.0) -> tuple[float, list[float], int]:
    """First call, then up to ``reps`` more (stopping once ``max_total`` seconds are spent)."""
    t0 = time.perf_counter()
    res = fn()
    first = time.perf_counter() - t0
    warm, spent = [], first
    for k in range(reps):
        if k and spent > max_total:  # always one warm call, however slow the first was
            break
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        warm.append(dt)
        spent += dt
    return first, warm, len(res)


def w_gitml_search(spec: dict) -> dict:
    repo = spec["repo"]
    removed = []
    if spec.get("cold"):
        for f in index_files(repo):
            if f.exists():
                f.unlink()
                removed.append(f.name)
    import gitml

    def call():
        return gitml.search_runs(filter=FILTER, order_by=[ORDER], repo=repo)

    with Profiler(spec.get("profile")):
        first, warm, count = _timed_calls(call, spec["reps"])
    res = call()
    try:
        m0 = [_value(r.metrics["m0"]) for r in res[:50]]
        m1 = [_value(r.metrics["m1"]) for r in res[:50]]
        ok = all(v > 0.5 for v in m0) and all(a >= b for a, b in itertools.pairwise(m1))
    except Exception as e:  # noqa: BLE001 - informational only
        ok = f"unchecked: {e!r}"
    return {
        "first_s": first,
        "warm": summarize(warm),
        "count": count,
        "removed_index": removed,
        "order_ok": ok,
    }


def _value(m):
    """A metric as gitml returns it: a number, or a mapping/object carrying ``value``."""
    if isinstance(m, dict):
        return m["value"]
    return getattr(m, "value", m)


def w_mlflow_search(spec: dict) -> dict:
    mlflow, exp, _ti, _ts = _mlflow_setup(spec["uri"])

    def call():
        return mlflow.search_runs(
            experiment_ids=[exp.experiment_id],
            filter_string=FILTER,
            order_by=[ORDER],
            output_format="list",
            max_results=100_000,
        )

    with Profiler(spec.get("profile")):
        first, warm, count = _timed_calls(call, spec["reps"])
    return {"first_s": first, "warm": summarize(warm), "count": count}


def w_gitml_preload(spec: dict) -> dict:
    """Put ``n`` runs on the ref in batches of ``chunk`` runs per commit.

    Uses ``gitml.tracking.commit_run_batch`` when gitml has it. Otherwise it builds each run's
    files with gitml's own serialiser (``gitml.core.formats.run_files``) and commits a batch of run
    trees with ``gitml.core.runsref.commit_runs``: the same objects the API writes, one commit
    per batch (the import path DESIGN.md describes), so that a large ref takes seconds, not hours.
    """
    import inspect

    import gitml.tracking as tr

    n, offset, chunk = spec["n"], spec.get("offset", 0), spec.get("chunk", 10_000)
    fn = getattr(tr, "commit_run_batch", None)
    t0 = time.perf_counter()
    with Profiler(spec.get("profile")):
        if fn is not None:
            how = f"gitml.tracking.commit_run_batch{inspect.signature(fn)}"
            kwargs = {"repo": spec["repo"]} if "repo" in inspect.signature(fn).parameters else {}
            for start in range(offset, offset + n, chunk):
                records = []
                for i in range(start, min(start + chunk, offset + n)):
                    p, m, t = run_payload(i)
                    records.append(
                        {"name": f"run-{i}", "experiment": EXPERIMENT, "params": p, "metrics": m, "tags": t}
                    )
                fn(records, **kwargs)
        else:
            how = _preload_internal(spec["repo"], n, offset, chunk)
    return {"how": how, "n": n, "s": time.perf_counter() - t0}


def _preload_internal(repo_path: str, n: int, offset: int, chunk: int) -> str:
    import uuid

    import gitml
    from gitml.core import formats, runsref
    from gitml.core.gitrepo import GitRepo
    from gitml.tracking import commit

    write_runs = getattr(commit, "write_runs", None)
    with GitRepo(repo_path) as repo:
        for start in range(offset, offset + n, chunk):
            runs = []
            for i in range(start, min(start + chunk, offset + n)):
                p, m, t = run_payload(i)
                now = formats.iso_time(time.time())
                runs.append(
                    formats.Run(
                        id=uuid.uuid4().hex,
                        name=f"run-{i}",
                        experiment=EXPERIMENT,
                        status="FINISHED",
                        start_time=now,
                        end_time=now,
                        updated=now,
                        user="Bench User",
                        gitml_version=gitml.__version__,
                        params={k: formats.param_value(k, v) for k, v in p.items()},
                        metrics={k: formats.metric_value(k, v) for k, v in m.items()},
                        metric_info={k: {"step": 0, "timestamp": now} for k in m},
                        tags={k: str(v) for k, v in t.items()},
                    )
                )
            if write_runs is not None:
                write_runs(repo, [(run, []) for run in runs], f"import {len(runs)} runs")
            else:
                changes = {run.id: runsref.write_run_tree(repo, formats.run_files(run)) for run in runs}
                runsref.commit_runs(repo, changes, f"import {len(changes)} runs")
    if write_runs is not None:
        return f"gitml.tracking.commit.write_runs, {chunk:,} runs per commit"
    return f"gitml.core.runsref.commit_runs, {chunk:,} runs per commit"


def w_gitml_objects(spec: dict) -> dict:
    """Writing one run's objects loose or as one pack, under git's fsync settings.

    The objects are those ``commit_run`` writes for a run of this benchmark on an empty ref (its
    files, its folder tree, a shard tree, ``runs/``, the lookup maps' trees, the root tree and
    the commit); each rep writes fresh ones (a different run id) into ``spec["repo"]``, through
    gitml's own two ways of writing them.
    """
    import uuid

    import gitml
    from gitml.core import formats, fsync, runsref
    from gitml.core.gitrepo import GitRepo

    out = {}
    with GitRepo(spec["repo"]) as repo:
        for setting in ("default", "none", "committed"):
            plan = fsync.fsync_plan(None if setting == "default" else setting)
            for how in ("loose", "pack"):
                times = []
                for i in range(spec["reps"]):
                    p, m, t = run_payload(i)
                    now = formats.iso_time(time.time())
                    run = formats.Run(id=uuid.uuid4().hex, name=f"o{i}", experiment=EXPERIMENT, status="FINISHED",
                                      start_time=now, end_time=now, updated=now, user="Bench User",
                                      gitml_version=gitml.__version__,
                                      params={k: formats.param_value(k, v) for k, v in p.items()},
                                      metrics={k: formats.metric_value(k, v) for k, v in m.items()},
                                      metric_info={k: {"step": 0, "timestamp": now} for k in m}, tags=t)
                    repo._pending = {}
                    folder = runsref.write_run_tree(repo, formats.run_files(run))
                    # what a run's commit writes: its folder, shard, runs/, the lookup maps, root, commit
                    root = runsref.apply_changes(repo, None, {run.id: folder},
                                                 hints={folder: ("ab" * 20, run.start_time)})
                    repo.write_commit(root, [], f"run {run.id}")
                    objects, repo._pending = repo._pending, None
                    t0 = time.perf_counter()
                    if how == "pack":
                        repo._write_pack(objects, plan)
                    else:
                        for key, obj in objects.items():
                            repo._write_loose(key.decode(), obj, plan)
                        if plan.loose:
                            from gitml.core.packfile import flush_folder

                            for fan in {key[:2].decode() for key in objects}:
                                flush_folder(os.path.join(repo.common_dir, "objects", fan))
                    times.append(time.perf_counter() - t0)
                out[f"{setting}/{how}"] = {"objects": len(objects), **summarize(times)}
    return out


WORKERS = {
    "gitml_objects": w_gitml_objects,
    "gitml_create": w_gitml_create,
    "mlflow_create": w_mlflow_create,
    "gitml_log_metric": w_gitml_log_metric,
    "mlflow_log_metric": w_mlflow_log_metric,
    "gitml_search": w_gitml_search,
    "mlflow_search": w_mlflow_search,
    "gitml_preload": w_gitml_preload,
}


def worker_main(name: str, spec_json: str) -> int:
    spec = json.loads(spec_json)
    os.chdir(spec.get("cwd", os.getcwd()))
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
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-", dir=args.tmpdir))
        self.home = bench_home(self.tmp)
        self.env = self._env()
        self.t_start = time.perf_counter()
        self.load = LoadSampler()
        self.budget_s = args.budget_min * 60
        self.r: dict = {}
        self.baselines: dict[Path, tuple[int, int]] = {}
        self.notes: list[str] = []
        self.profile_dir = Path(args.profile).resolve() if args.profile else None
        if self.profile_dir:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
        self.gitml_ok, self.gitml_why = self._probe_gitml()
        self.mlflow_python = args.mlflow_python

    # -- environment -----------------------------------------------------------------------------
    def _env(self) -> dict:
        # One environment for both tools (MLflow runs in this interpreter): VIRTUAL_ENV is kept.
        return scrubbed_env(
            self.home, drop=("GIT_", "MLFLOW_", "PYTHONPATH", "XDG_CONFIG_HOME"), PYTHONPATH=str(ROOT)
        )

    def _probe_gitml(self) -> tuple[bool, str]:
        code = "import gitml; assert callable(gitml.start_run); print(getattr(gitml, '__version__', '?'))"
        p = subprocess.run(
            [sys.executable, "-c", code],
            env=self.env,
            capture_output=True,
            text=True,
            cwd=self.tmp,
            check=False,
        )
        if p.returncode != 0:
            return False, (p.stderr.strip().splitlines() or ["import failed"])[-1]
        return True, p.stdout.strip()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def log(self, msg: str) -> None:
        print(f"[{self.elapsed():7.1f}s] {msg}", file=sys.stderr, flush=True)

    def git(self, *argv: str, cwd: Path) -> str:
        return subprocess.run(
            ["git", *argv], cwd=cwd, env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def new_repo(self, name: str) -> Path:
        repo = self.tmp / name
        repo.mkdir()
        self.git("init", "-q", "-b", "main", cwd=repo)
        (repo / "train.py").write_text("print('train')\n")
        self.git("add", "train.py", cwd=repo)
        self.git("commit", "-q", "-m", "init", cwd=repo)
        self.baselines[repo] = dir_size(repo / ".git")
        return repo

    def new_mlflow(self, name: str, kind: str) -> tuple[str, Path]:
        d = self.tmp / name
        d.mkdir()
        if kind == "file":
            return f"file:{d / 'mlruns'}", d
        return f"sqlite:///{d / 'mlflow.db'}", d

    def worker(self, name: str, spec: dict, cwd: Path, tag: str = "", python: str | None = None) -> dict | None:
        spec = dict(spec, cwd=str(cwd))
        if self.profile_dir and tag:
            spec["profile"] = str(self.profile_dir / f"{tag}.prof")
        cmd = [python or sys.executable, str(Path(__file__).resolve()), "--worker", name, json.dumps(spec)]
        res, p = run_worker(cmd, env=self.env, cwd=cwd)
        if res is None:
            self.notes.append(f"{tag or name} failed: `{failure_line(p)[:300]}`")
            self.log(f"worker {name} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
        return res

    def cli_wall(self, argv: list[str], cwd: Path, reps: int = 5, warmup: bool = True) -> dict:
        """Median wall time of a command over ``reps`` runs, after one untimed warm-up run.

        Without ``warmup`` the first run (whose output is kept to count lines) is timed as well.
        """
        t0 = time.perf_counter()
        p = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, text=True, check=False)
        first = time.perf_counter() - t0
        if p.returncode != 0:
            err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
            self.notes.append(f"`{' '.join(argv[-3:])}` failed: `{err[:300]}`")
            return {"error": err}
        times = [] if warmup else [first]
        while len(times) < reps:
            t0 = time.perf_counter()
            subprocess.run(
                argv, cwd=cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
            )
            times.append(time.perf_counter() - t0)
        return {
            "median": statistics.median(times),
            "min": min(times),
            "reps": len(times),
            "lines": len(p.stdout.splitlines()),
        }

    def gitml_cmd(self) -> list[str]:
        exe = shutil.which("gitml", path=self.env.get("PATH"))
        return [exe] if exe else [sys.executable, "-m", "gitml"]

    # -- scenarios -------------------------------------------------------------------------------
    def scenario_runs_and_search(self) -> None:
        n, fill, reps = self.cfg["n"], self.cfg["fill"], self.cfg["reps"]
        stores = []
        if self.gitml_ok:
            stores.append(("gitml", self.new_repo("gitml-runs")))
        for kind in ("sqlite", "file"):
            uri, d = self.new_mlflow(f"mlflow-{kind}-runs", kind)
            stores.append((f"mlflow-{kind}", (uri, d)))

        for tool, store in stores:
            create = "gitml_create" if tool == "gitml" else "mlflow_create"
            base = {"repo": str(store)} if tool == "gitml" else {"uri": store[0]}
            cwd = store if tool == "gitml" else store[1]
            self.log(f"{tool}: {n} runs on an empty store")
            res = self.worker(create, dict(base, n=n, warmup=True), cwd, f"{tool}-create-empty")
            self.r[(tool, "create_empty")] = res
            if res is None:
                continue
            # Fill up to `fill` runs (1 warm-up + n already there); cap MLflow by the time budget.
            # MLflow's file store slows down as it grows (~75 ms a run past a few thousand runs,
            # ~230 ms at 10,000 on this machine), so it is filled to `fill_file` only.
            target = self.cfg["fill_file"] if tool == "mlflow-file" else fill
            per_run = res["runs"]["mean"]
            remaining = self.budget_s - self.elapsed()
            if tool != "gitml" and per_run * (target - n) > remaining * 0.35:
                cut = max(n, int(remaining * 0.35 / per_run) // 1000 * 1000)
                self.notes.append(
                    f"{tool}: store filled to {cut:,} runs instead of {target:,} for the time budget"
                )
                target = cut
            todo = target - n - 1
            if todo > 0:
                self.log(f"{tool}: filling to {target} runs ({todo} more, ~{per_run * todo:.0f}s)")
                fr = self.worker(create, dict(base, n=todo, offset=n, client=True), cwd, "")
                self.r[(tool, "fill")] = fr
            self.r[(tool, "store_runs")] = target
            # Search.
            if tool == "gitml":
                self.log("gitml: search cold (index deleted)")
                self.r[(tool, "search_cold")] = self.worker(
                    "gitml_search", dict(base, cold=True, reps=reps), cwd, "gitml-search-cold"
                )
                self.log("gitml: search, fresh process with index present")
                self.r[(tool, "search")] = self.worker(
                    "gitml_search", dict(base, cold=False, reps=reps), cwd, "gitml-search-warm"
                )
                self.cli_measures(store, target, "fill")
            else:
                self.log(f"{tool}: search")
                self.r[(tool, "search")] = self.worker(
                    "mlflow_search", dict(base, reps=reps), cwd, f"{tool}-search"
                )
            # Storage after `target` runs (and one search, so gitml's index exists).
            self.r[(tool, "storage")] = self.storage(tool, store, target)
            # n more runs with `target` runs already stored.
            self.log(f"{tool}: {n} runs with {target} runs stored")
            self.r[(tool, "create_filled")] = self.worker(
                create, dict(base, n=n, warmup=False, offset=target), cwd, f"{tool}-create-filled"
            )

    def storage(self, tool: str, store, runs: int) -> dict:
        """Bytes the store takes per run: apparent size and disk usage (4 KiB blocks count)."""
        if tool == "gitml":
            out = self.git("count-objects", "-v", cwd=store)
            co = dict(line.split(": ", 1) for line in out.strip().splitlines())
            apparent, disk = dir_size(store / ".git")
            base_a, base_d = self.baselines[store]
            index = [f for f in index_files(str(store)) if f.exists()]
            index_bytes = sum(f.stat().st_size for f in index)
            index_disk = sum(f.stat().st_blocks * 512 for f in index)
            # The query index is a rebuildable cache: reported on its own row.
            apparent, disk = apparent - base_a - index_bytes, disk - base_d - index_disk
        else:
            co, index_bytes = None, 0
            apparent, disk = dir_size(store[1])
        return {
            "runs": runs,
            "count_objects": co,
            "bytes": apparent,
            "disk": disk,
            "index_bytes": index_bytes,
            "index_per_run": index_bytes / runs if tool == "gitml" else None,
            "per_run": apparent / runs,
            "disk_per_run": disk / runs,
        }

    def scenario_big(self) -> None:
        """gitml with `big` runs on the ref: per-run cost, runs list, index rebuild."""
        if not self.gitml_ok:
            return
        big, n = self.cfg["big"], self.cfg["n"]
        remaining = self.budget_s - self.elapsed()
        # The batch preload costs ~1.5 ms a run here; keep it and what follows inside the budget.
        if big * 0.002 > remaining * 0.5:
            big = max(10_000, int(remaining * 0.5 / 0.002) // 10_000 * 10_000)
            self.notes.append(
                f"gitml large ref cut to {big:,} runs (not {self.cfg['big']:,}) for the time budget"
            )
        repo = self.new_repo("gitml-big")
        self.log(f"gitml: preloading {big} runs in batches")
        pre = self.worker("gitml_preload", {"repo": str(repo), "n": big}, repo, "gitml-preload")
        if pre is None:
            if self.mode == "quick":
                self.notes.append("gitml batch preload failed: the large-ref measures are skipped in --quick")
                return
            per_run = self.g("gitml", "create_filled", "runs", "mean", default=0.01)
            remaining = self.budget_s - self.elapsed()
            if per_run * big > remaining * 0.8:
                big = max(10_000, int(remaining * 0.8 / per_run) // 10_000 * 10_000)
                self.notes.append(
                    f"batch preload failed: preloaded {big:,} runs through the API "
                    f"(not {self.cfg['big']:,}) to stay in the time budget"
                )
            shutil.rmtree(repo)
            repo = self.new_repo("gitml-big")
            self.log(f"gitml: preloading {big} runs through the API")
            res = self.worker("gitml_create", {"repo": str(repo), "n": big, "offset": 0}, repo, "")
            if res is None:
                return
            pre = {"how": "the API, one run at a time", "n": big, "s": res["runs"]["total"]}
        self.r[("gitml", "big_preload")] = pre
        self.r[("gitml", "big_runs")] = big
        self.log(f"gitml: {n} runs with {big} runs stored")
        self.r[("gitml", "create_big")] = self.worker(
            "gitml_create",
            {"repo": str(repo), "n": n, "warmup": True, "offset": big},
            repo,
            "gitml-create-big",
        )
        self.cli_measures(repo, big + n + 1, "big")

    def cli_measures(self, repo: Path, total: int, key: str) -> None:
        """`gitml index rebuild` throughput and `gitml runs list` wall time on ``repo``."""
        cmd = self.gitml_cmd()
        self.log(f"gitml: index rebuild and runs list at {total} runs")
        rebuild = []
        while len(rebuild) < (3 if self.mode == "full" else 1) and sum(rebuild) < 20:
            t0 = time.perf_counter()
            p = subprocess.run(
                [*cmd, "index", "rebuild"],
                cwd=repo,
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            )
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                err = (p.stderr.strip().splitlines() or ["?"])[-1]
                self.notes.append(f"`gitml index rebuild` failed: `{err}`")
                break
            rebuild.append(dt)
        if rebuild:
            self.r[("gitml", f"rebuild_{key}")] = {"s": statistics.median(rebuild), "runs": total}
        self.r[("gitml", f"runs_list_{key}")] = dict(self.cli_wall([*cmd, "runs", "list"], repo), runs=total)
        few = 1 if total > 20_000 else 3
        self.r[("gitml", f"runs_list_all_{key}")] = dict(
            self.cli_wall([*cmd, "runs", "list", "--limit", str(total)], repo, few, warmup=False), runs=total
        )

    def scenario_runcost(self) -> None:
        """One run (10 params, 10 metrics, 3 tags): gitml at 0 and at `big` runs on the ref, MLflow's
        file and sqlite stores, side by side: the stores take turns, `rounds` times, so that a
        change in the machine's load falls on all of them alike."""
        n, rounds = self.cfg["runcost_n"], self.cfg["runcost_rounds"]
        stores: list[tuple[str, object]] = []
        if self.gitml_ok:
            stores.append(("gitml", self.new_repo("gitml-cost-0")))
            for big in self.runcost_refs():
                big_repo = self.new_repo(f"gitml-cost-{big}")
                self.log(f"gitml: preloading {big:,} runs in batches")
                pre = self.worker("gitml_preload", {"repo": str(big_repo), "n": big}, big_repo,
                                  f"gitml-cost-preload-{big}")
                if pre is not None:
                    # What `git gc --auto` does to a repository that grew this big: one pack.
                    self.git("gc", "-q", cwd=big_repo)
                    self.r[("runcost", "preload", big)] = pre
                    stores.append((f"gitml@{big // 1000}k", big_repo))
            # The preloads leave ~100 MB of packs to write back: let the disk settle, or that
            # writeback slows the file operations of the first rounds.
            os.sync()
            self.log("gitml: writing one run's objects, loose or as one pack")
            self.r[("runcost", "objects")] = self.worker(
                "gitml_objects", {"repo": str(self.new_repo("gitml-objects")), "reps": 200},
                self.tmp, "gitml-objects")
        for kind in ("file", "sqlite"):
            stores.append((f"mlflow-{kind}", self.new_mlflow(f"mlflow-{kind}-cost", kind)))
        times: dict[str, list[float]] = {name: [] for name, _ in stores}
        rounds_p50: dict[str, list[float]] = {}
        per = max(1, n // rounds)
        for r in range(rounds):
            # Each round starts with another store: what one store leaves the disk to do (sqlite's
            # flushes, a `git gc --auto`) falls on each of the others in turn.
            for name, store in stores[r % len(stores):] + stores[:r % len(stores)]:
                self.log(f"round {r + 1}/{rounds}: {name}, {per} runs")
                if name.startswith("gitml"):
                    spec = {"repo": str(store), "n": per, "offset": 10**6 + r * per, "warmup": True, "raw": True}
                    res = self.worker("gitml_create", spec, store, f"{name}-cost-{r}")
                else:
                    uri, d = store
                    spec = {"uri": uri, "n": per, "offset": r * per, "warmup": True, "raw": True}
                    res = self.worker("mlflow_create", spec, d, f"{name}-cost-{r}", python=self.mlflow_python)
                if res is not None:
                    times[name] += res["times"]
                    rounds_p50.setdefault(name, []).append(summarize(res["times"])["p50"])
        self.r[("runcost", "times")] = {k: summarize(v) for k, v in times.items()}
        self.r[("runcost", "rounds")] = rounds_p50

    def runcost_refs(self) -> list[int]:
        """The sizes of the big refs gitml writes on in runcost: ``--runcost-refs``, else the mode's."""
        if self.args.runcost_refs:
            return [int(x) for x in self.args.runcost_refs.split(",") if x.strip()]
        return [self.cfg["big"]]

    def runcost_report(self) -> str:
        """The one-run table: gitml, MLflow file and sqlite stores, ratios."""
        stats = self.r.get(("runcost", "times"))
        if not stats:
            return ""
        n, rounds = self.cfg["runcost_n"], self.cfg["runcost_rounds"]
        lines = [f"### One run (10 params, 10 metrics, 3 tags): `with start_run()` + log_params + log_metrics "
                 f"+ set_tags, {n:,} runs per store in {rounds} alternating rounds [ms/run]", "",
                 "| store | runs on it | median | mean | p95 | MLflow file / this (median) | "
                 "MLflow sqlite / this (median) |", "|---|---|---|---|---|---|---|"]
        file_med = stats.get("mlflow-file", {}).get("p50")
        sql_med = stats.get("mlflow-sqlite", {}).get("p50")
        for name, st in stats.items():
            if not st.get("count"):
                continue
            on = f"{int(name.split('@')[1][:-1]) * 1000:,}" if "@" in name else "0 (+ the runs of earlier rounds)"
            lines.append(f"| {name} | {on} | {fmt(st['p50'] * 1e3)} | {fmt(st['mean'] * 1e3)} | "
                         f"{fmt(st['p95'] * 1e3)} | {fmt_ratio(file_med, st['p50'])} | {fmt_ratio(sql_med, st['p50'])} |")
        by_round = self.r.get(("runcost", "rounds")) or {}
        if by_round:
            lines += ["", "Median of each round, in order [ms]: " + "; ".join(
                f"{name} " + " ".join(fmt(v * 1e3) for v in meds) for name, meds in by_round.items()) + "."]
        objects = self.r.get(("runcost", "objects"))
        if objects:
            lines += ["", "### Writing one run's objects: loose files or one pack, per git's core.fsync [ms]", "",
                      "| core.fsync | objects | loose: median | pack: median | loose: mean | pack: mean |",
                      "|---|---|---|---|---|---|"]
            for setting in ("default", "none", "committed"):
                lo, pk = objects.get(f"{setting}/loose", {}), objects.get(f"{setting}/pack", {})
                lines.append(f"| {setting} | {lo.get('objects', '?')} | {fmt(lo.get('p50', 0) * 1e3)} | "
                             f"{fmt(pk.get('p50', 0) * 1e3)} | {fmt(lo.get('mean', 0) * 1e3)} | "
                             f"{fmt(pk.get('mean', 0) * 1e3)} |")
        for big in self.runcost_refs():
            pre = self.r.get(("runcost", "preload", big))
            if pre:
                lines += ["", f"The {big:,}-run ref was written with {pre['how']} in {pre['s']:.0f} s, then `git gc`."]
        return "\n".join(lines)

    def scenario_log_metric(self) -> None:
        k = self.cfg["log_metric"]
        if self.gitml_ok:
            repo = self.new_repo("gitml-logm")
            self.log(f"gitml: {k} log_metric calls")
            self.r[("gitml", "log_metric")] = self.worker(
                "gitml_log_metric", {"repo": str(repo), "n": k}, repo, "gitml-log-metric"
            )
        for kind in ("file", "sqlite"):
            uri, d = self.new_mlflow(f"mlflow-{kind}-logm", kind)
            self.log(f"mlflow-{kind}: {k} log_metric calls")
            self.r[(f"mlflow-{kind}", "log_metric")] = self.worker(
                "mlflow_log_metric", {"uri": uri, "n": k}, d, f"mlflow-{kind}-log-metric"
            )

    def scenario_help(self) -> None:
        d = self.tmp / "help"
        d.mkdir()
        if self.gitml_ok:
            self.r[("gitml", "help")] = self.cli_wall([*self.gitml_cmd(), "--help"], d)
        mlflow_exe = shutil.which("mlflow", path=self.env.get("PATH")) or "mlflow"
        self.r[("mlflow", "help")] = self.cli_wall([mlflow_exe, "--help"], d)

    def run(self) -> None:
        self.log(
            f"mode {self.mode}, temp dir {self.tmp}, gitml: {'ok ' + self.gitml_why if self.gitml_ok else 'NOT importable: ' + self.gitml_why}"
        )
        if not self.gitml_ok:
            self.notes.append(f"gitml not importable (`{self.gitml_why}`): gitml columns are empty")
        try:
            scenarios = {
                "help": self.scenario_help,
                "log_metric": self.scenario_log_metric,
                "runs": self.scenario_runs_and_search,
                "big": self.scenario_big,
                "runcost": self.scenario_runcost,
            }
            for name, fn in scenarios.items():
                if not self.args.only or name in self.args.only.split(","):
                    fn()
        finally:
            if not self.args.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)
        only = set(self.args.only.split(",")) if self.args.only else None
        if only != {"runcost"}:
            print(self.report())
        print(self.runcost_report())

    # -- report ----------------------------------------------------------------------------------
    def g(self, tool: str, key: str, *path, default=None):
        v = self.r.get((tool, key))
        for p in path:
            if not isinstance(v, dict):
                return default
            v = v.get(p)
        return default if v is None else v

    def report(self) -> str:
        n = self.cfg["n"]
        G, F, S = "gitml", "mlflow-file", "mlflow-sqlite"
        rows: list[tuple] = []

        def ms(x):
            return None if x is None else x * 1e3

        def us(x):
            return None if x is None else x * 1e6

        def stored(tool):
            return self.r.get((tool, "store_runs"))

        # 1. create runs
        rows.append(
            (
                f"create a run (10 params, 10 metrics, 3 tags), empty store, mean of {n:,} [ms/run]",
                ms(self.g(G, "create_empty", "runs", "mean")),
                ms(self.g(F, "create_empty", "runs", "mean")),
                ms(self.g(S, "create_empty", "runs", "mean")),
                "run",
                True,
            )
        )
        rows.append(
            (
                "  same, p95 [ms/run]",
                ms(self.g(G, "create_empty", "runs", "p95")),
                ms(self.g(F, "create_empty", "runs", "p95")),
                ms(self.g(S, "create_empty", "runs", "p95")),
                None,
                True,
            )
        )
        lbl = "/".join(f"{stored(t):,}" for t in (G, F, S) if stored(t))
        rows.append(
            (
                f"create a run with {lbl} runs stored (gitml/file/sqlite), mean of {n:,} [ms/run]",
                ms(self.g(G, "create_filled", "runs", "mean")),
                ms(self.g(F, "create_filled", "runs", "mean")),
                ms(self.g(S, "create_filled", "runs", "mean")),
                "run",
                True,
            )
        )
        if self.r.get((G, "big_runs")):
            rows.append(
                (
                    f"create a run with {self.r[(G, 'big_runs')]:,} runs on the ref, mean of {n:,} [ms/run]",
                    ms(self.g(G, "create_big", "runs", "mean")),
                    None,
                    None,
                    "run",
                    True,
                )
            )
        # 2. log_metric
        k = self.cfg["log_metric"]
        rows.append(
            (
                f"log_metric, {k:,} calls in one run [us/call]",
                us(self.g(G, "log_metric", "per_call_s")),
                us(self.g(F, "log_metric", "per_call_s")),
                us(self.g(S, "log_metric", "per_call_s")),
                "log_metric",
                True,
            )
        )
        rows.append(
            (
                f"  end_run after those {k:,} points [ms]",
                ms(self.g(G, "log_metric", "end_s")),
                ms(self.g(F, "log_metric", "end_s")),
                ms(self.g(S, "log_metric", "end_s")),
                None,
                True,
            )
        )
        # 3. search
        lbl = "/".join(f"{stored(t):,}" for t in (G, F, S) if stored(t))
        rows.append(
            (
                f"search {lbl} runs (`{FILTER}`, `{ORDER}`), warm median [ms]",
                ms(self.g(G, "search", "warm", "p50")),
                ms(self.g(F, "search", "warm", "p50")),
                ms(self.g(S, "search", "warm", "p50")),
                "search_warm",
                True,
            )
        )
        rows.append(
            (
                "  same, first call in a fresh process (gitml: index present) [ms]",
                ms(self.g(G, "search", "first_s")),
                ms(self.g(F, "search", "first_s")),
                ms(self.g(S, "search", "first_s")),
                None,
                True,
            )
        )
        rows.append(
            (
                "  same, gitml cold (index file deleted) [ms]",
                ms(self.g(G, "search_cold", "first_s")),
                None,
                None,
                None,
                True,
            )
        )
        cnt = [self.g(t, "search", "count") for t in (G, F, S)]
        rows.append(("  runs matched", *cnt, None, False))
        # gitml only: runs list / rebuild, at the filled store and at the big ref
        for key in ("fill", "big"):
            rl = self.r.get((G, f"runs_list_{key}")) or {}
            total = rl.get("runs")
            if not total:
                continue
            goal = "runs_list" if key == "big" else None
            rows.append(
                (
                    f"`gitml runs list` at {total:,} runs, warm, median of 5 [s]",
                    rl.get("median"),
                    None,
                    None,
                    goal,
                    False,
                )
            )
            rows.append(
                (
                    f"  `gitml runs list --limit {total}` (all rows), median of "
                    f"{self.g(G, f'runs_list_all_{key}', 'reps', default='?')} [s]",
                    self.g(G, f"runs_list_all_{key}", "median"),
                    None,
                    None,
                    None,
                    False,
                )
            )
            rb = self.r.get((G, f"rebuild_{key}"))
            label = f"`gitml index rebuild` at {total:,} runs [runs/s]"
            if rb:
                label += f" (wall {rb['s']:.2f} s)"
            rows.append((label, rb and rb["runs"] / rb["s"], None, None, "rebuild", False))
        # 4. help
        mh = ms(self.g("mlflow", "help", "median"))
        rows.append(
            ("`--help` wall time, median of 5 [ms]", ms(self.g(G, "help", "median")), mh, mh, "help", True)
        )
        # storage
        lbl = "/".join(f"{stored(t):,}" for t in (G, F, S) if stored(t))
        for what, key in (("apparent size", "per_run"), ("on disk, 4 KiB blocks", "disk_per_run")):
            rows.append(
                (
                    f"store size per run after {lbl} runs (gitml: `.git` without the index), {what} [bytes/run]",
                    self.g(G, "storage", key),
                    self.g(F, "storage", key),
                    self.g(S, "storage", key),
                    None,
                    True,
                )
            )

        out = []
        out.append(f"### Tracking benchmark ({self.mode} mode)\n")
        out.append(self.machine_line() + "\n")
        out.append(
            "| measure | gitml | MLflow file | MLflow sqlite | file / gitml | sqlite / gitml | goal (gitml) |"
        )
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for label, gv, fv, sv, goal, ratio in rows:
            if gv is None and fv is None and sv is None and goal is None:
                continue
            cells = [label, fmt(gv), fmt(fv), fmt(sv)]
            cells.append(fmt_ratio(fv, gv) if ratio else "")
            cells.append(fmt_ratio(sv, gv) if ratio else "")
            cells.append(goal_cell(goal, gv))
            out.append("| " + " | ".join(cells) + " |")
        co = self.g(G, "storage", "count_objects")
        if co:
            st = self.r[(G, "storage")]
            rows_note = (
                f"\ngitml's query index (index.sqlite and its WAL, a rebuildable cache) after {st['runs']:,} runs: "
                f"{st['index_bytes'] / 2**20:.1f} MiB = {st['index_per_run']:,.0f} bytes per run."
            )
            out.append(rows_note)
            out.append(
                f"\nStorage after {st['runs']:,} gitml runs created one by one through the API: "
                f"`git count-objects -v` says count {co.get('count')} loose objects ({co.get('size')} KiB on disk), "
                f"in-pack {co.get('in-pack')} ({co.get('size-pack')} KiB), packs {co.get('packs')}; "
                f"`.git` without the index grew by {st['bytes'] / 2**20:.1f} MiB apparent / "
                f"{st['disk'] / 2**20:.1f} MiB on disk = {st['per_run']:,.0f} / {st['disk_per_run']:,.0f} bytes per run."
            )
        for t in (F, S):
            st = self.r.get((t, "storage"))
            if st:
                out.append(
                    f"\n{t} store after {st['runs']:,} runs: {st['bytes'] / 2**20:.1f} MiB apparent / "
                    f"{st['disk'] / 2**20:.1f} MiB on disk = {st['per_run']:,.0f} / {st['disk_per_run']:,.0f} bytes per run."
                )
        for t in (G, F, S):
            imp = self.g(t, "create_empty", "import_s")
            if imp is not None:
                out.append(f"\n{t}: `import` took {imp * 1e3:.0f} ms in the create worker.")
        pre = self.r.get((G, "big_preload"))
        if pre:
            out.append(f"\ngitml preload of {pre['n']:,} runs with `{pre['how']}`: {pre['s']:.1f} s.")
        if self.notes:
            out.append("\nNotes:\n" + "\n".join(f"- {x}" for x in self.notes))
        out.append("\n" + self.load.summary(self.elapsed(), "2 cores; the benchmark itself keeps ~1 busy"))
        return "\n".join(out)

    def machine_line(self) -> str:
        cpu = cpu_model()
        code = (
            "import importlib.metadata as m\n"
            "for p in ('mlflow', 'dulwich'):\n"
            "    print(p, m.version(p))\n"
            "try:\n"
            "    import gitml; print('gitml', getattr(gitml, '__version__', '?'))\n"
            "except Exception:\n"
            "    print('gitml (not importable)')\n"
        )
        vers = subprocess.run(
            [sys.executable, "-c", code], env=self.env, capture_output=True, text=True, check=False
        ).stdout.split("\n")
        git_v = subprocess.run(
            ["git", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        return (
            f"{_dt.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
            f"Python {platform.python_version()}, {', '.join(v for v in vers if v)}, {git_v}."
        )


def dir_size(path: Path) -> tuple[int, int]:
    """(apparent bytes, bytes on disk) of every file under ``path``."""
    apparent = disk = 0
    for dp, _dn, fn in os.walk(path):
        for f in fn:
            try:
                st = os.lstat(os.path.join(dp, f))
            except OSError:
                continue
            apparent += st.st_size
            disk += st.st_blocks * 512
    return apparent, disk


def fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, int):
        return f"{v:,}"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def goal_cell(goal: str | None, v) -> str:
    if goal is None:
        return ""
    target = GOALS[goal]
    text = {
        "run": f"≤ {target:g} ms",
        "log_metric": f"≤ {target:g} us",
        "search_warm": f"≤ {target:g} ms",
        "runs_list": f"≤ {target:g} s",
        "rebuild": f"≥ {target:,.0f} runs/s",
        "help": f"≤ {target:g} ms",
    }[goal]
    if v is None:
        return text + ": not measured"
    met = v >= target if goal == "rebuild" else v <= target
    return text + (": met" if met else ": **not met**")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke run of ~2 minutes")
    ap.add_argument(
        "--budget-min",
        type=float,
        default=25.0,
        help="time budget; MLflow fill and the no-batch gitml preload shrink to fit (default 25)",
    )
    ap.add_argument("--profile", metavar="DIR", help="write cProfile dumps of the timed sections to DIR")
    ap.add_argument("--only", metavar="LIST", help="comma-separated subset of help,log_metric,runs,big,runcost")
    ap.add_argument("--mlflow-python", metavar="PYTHON", default=sys.executable,
                    help="the interpreter with MLflow installed, for MLflow's workers in runcost (default: this one)")
    ap.add_argument("--runcost-refs", metavar="LIST",
                    help="runcost: sizes of the refs gitml also writes on, e.g. 10000,100000 (default: the mode's)")
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
