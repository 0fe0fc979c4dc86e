#!/usr/bin/env python
"""Projects: ``gitml run`` against ``mlflow run`` on the same small project.

Run from the repository root (MLflow in its own virtualenv, as ``.ci/run`` installs it)::

    python bench/bench_projects.py --out bench/RESULTS-projects.md

(five to six minutes on 2 cores, most of it MLflow's; ``--reps`` timed invocations of each
command in the local-environment part, default 10; ``--env-reps`` timed invocations with a
cached environment, default 4; ``--calls`` timed in-process environment look-ups, default 200;
``--sweep-reps`` timed gitml sweeps of each kind, default 5; ``--mlflow-sweep-reps`` timed
rounds of MLflow's 16 runs, default 2; ``--mlflow-python``, default
``/tmp/gitml-ci-mlflow/bin/python``; ``--skip-env`` leaves out the environment part,
``--skip-sweeps`` the sweeps). It prints one Markdown report (``--out FILE`` writes it too): one row per
operation, each tool's median in milliseconds and MLflow / gitml (above 1: gitml is faster).

What is timed: every command is one whole process, from before ``subprocess.run`` starts it to
after it has exited (``time.perf_counter`` in this driver, output captured through pipes), so a
time includes the interpreter's start, imports, the tool's work, the child command it runs and
the commit or database writes after. The driver runs no tool code itself.

The projects, each a git repository (one commit) in a temporary directory:

- **local**: ``train.py`` parses ``--lr`` and ``--epochs``, opens a run with the tool's own API
  (``with gitml.start_run():`` / ``with mlflow.start_run():``), logs the two params and 10 points
  of a metric ``loss`` (``log_param`` twice, ``log_metric`` ten times). The descriptor declares
  ``main`` with ``lr`` (float, default 0.1) and ``epochs`` (int, default 10) and the command
  ``python train.py --lr {lr} --epochs {epochs}``: gitml's in ``gitml.yaml``'s ``project:``,
  MLflow's in an ``MLproject`` (MLflow does not check types: ``int`` is taken as text).
- **env**: ``check.py`` imports ``six`` and prints its version; a ``python_env.yaml`` asks for
  this Python (``python: 3.11.7`` here) and ``six==1.16.0`` (the host interpreters have 1.17.0,
  so the output shows which environment ran); the descriptor names it (``environment:`` /
  ``python_env:``) and the entry point ``main`` runs ``python check.py``. The script logs
  nothing, so MLflow's environment needs no mlflow in it; gitml installs its own runtime
  requirements (dulwich, pyyaml, ruamel.yaml, fsspec, click, tabulate, tqdm, semver) into every
  environment it builds, so that a script can call ``gitml.start_run()``.

The measurements, in this order:

1. **Local environment** (``--reps`` rounds after one untimed warm-up round, the four commands
   interleaved in each round, in the local project): ``python train.py --lr 0.1 --epochs 10``
   run directly with gitml's interpreter (the script opens and commits its own run);
   ``gitml run --env-manager local -P lr=0.1 -P epochs=10`` (the script joins the run gitml
   opened); the same script for MLflow run directly with MLflow's interpreter; and
   ``mlflow run . --env-manager local -P lr=0.1 -P epochs=10``. The overhead of each run command
   is its median minus the median of the direct run.
2. **Environments**, for ``uv`` and then ``virtualenv`` (``python -m venv`` and pip), gitml then
   MLflow, each tool with a package cache of its own (``UV_CACHE_DIR``, ``PIP_CACHE_DIR``):
   the run command once in a second copy of the env project (gitml) or with another
   ``MLFLOW_ENV_ROOT`` (MLflow): the first build, downloading from the package registry into the
   empty cache; once more in the measured place: a cold build from the now warm cache; then
   ``--env-reps`` times with the environment built, each after the command run directly with the
   environment's interpreter (``<env>/bin/python check.py``, one untimed warm-up first): cached
   minus direct is the run command's overhead with an environment. Before these,
   ``--env-manager local`` on the env project and ``python check.py`` in the host interpreter
   (``--env-reps`` each, after one warm-up). The host interpreters start slower than a fresh
   virtualenv's (their ``site-packages`` hold many packages and ``.pth`` files), which is why the
   direct command is timed in each environment. For MLflow ``--env-manager virtualenv`` also runs
   ``pyenv install --skip-existing 3.11.7`` before a build (this Python is installed, so it
   installs nothing).
3. **In-process environment look-up** (one worker process per tool, ``--calls`` calls after one
   warm-up, median): gitml's ``gitml.projects.env.prepare(spec, gitml_dir)`` with the spec made
   once, of an environment built by that same worker just before (its one cold
   ``prepare`` call, timed, warm package cache), and ``prepare(env_spec(load_project(root), m),
   gitml_dir)`` (reading the descriptor too); MLflow's equivalent of an environment ``mlflow run``
   built in step 2, the calls its local backend makes: ``_PythonEnv.from_yaml``,
   ``_get_virtualenv_name`` and ``_create_virtualenv`` (which returns at once when the
   environment's folder exists), with and without ``load_project`` first (private functions of
   MLflow 3.x).

4. **Sweeps** (``--sweep-reps`` gitml sweeps of each kind and ``--mlflow-sweep-reps`` MLflow
   rounds, interleaved, in a fresh copy of the local project per tool and kind, made once; a
   sweep that does not exit 0 is left out of the times and named in the notes): the 16-trial
   grid ``lr`` in 0.01, 0.05, 0.1, 0.5 times ``epochs`` in 5, 10, 20, 40, two trials at a time,
   each tool's wall time for the whole grid:
   ``gitml run -P lr=0.01,0.05,0.1,0.5 -P epochs=5,10,20,40 --jobs 2 --env-manager local
   --objective metrics.loss`` (one command); MLflow, which has no sweep command, as 16
   ``mlflow run . --env-manager local -P lr=… -P epochs=…`` processes started by a pool of 2
   threads in this driver (from before the first starts to after the last has exited; each
   process's own time kept too), into a sqlite store of its own whose schema an untimed worker
   made first (the setup of the local part's store, which that part's warm-up made). Then the same
   gitml command with ``--backend dask --scheduler tcp://127.0.0.1:<port>`` instead of ``--jobs 2``
   on a local Dask cluster this driver starts (``dask scheduler --host 127.0.0.1 --port <free>
   --no-dashboard`` and two ``dask worker <address> --nthreads 1 --no-dashboard``, each worker
   with a ``TMPDIR`` of its own, as on two machines; timed until
   ``distributed.Client.wait_for_workers(2)`` returns) and stops after; the first dask sweep is
   reported apart: on each worker its first trial initialises the clone of the project that the
   worker keeps in its temporary folder; the later ones find it.

Afterwards, untimed checks: every command exited 0; each store holds the expected runs (one per
direct run and one per run command), each with ``lr=0.1``, ``epochs=10`` and 10 points of
``loss``; each env-project run printed ``six 1.16.0`` (``1.17.0`` under ``local``); each gitml
sweep that exited 0 is a FINISHED parent run with 16 FINISHED trials linked to it
(``mlflow.parentRunId``), their (lr, epochs) pairs the grid, 10 points of ``loss`` each, and the
parent's ``best_run_id`` one of its trials with the lowest final loss (trials whose parent is not
on the runs ref, left by a sweep that did not finish, are counted apart); MLflow's sweep store
holds 16 runs per round, every pair of the grid once per round, FINISHED with 10 points each.

Environment of every process: ``_common.scrubbed_env`` (no ``GIT_*``/``MLFLOW_*``/``PYTHONPATH``
from the caller, ``HOME`` a temporary directory with a ``.gitconfig``, MLflow's telemetry off),
``PYTHONDONTWRITEBYTECODE`` removed and ``PYTHONPYCACHEPREFIX`` in the temporary directory (both
tools' bytecode is compiled by the warm-up runs and read after, as after an install), ``TMPDIR``
in the temporary directory (``mlflow run`` makes a directory there per run), ``PATH`` led by
this interpreter's folder (gitml: where its console script and uv are) or by MLflow's
virtualenv's ``bin`` and then that folder (MLflow: as when its virtualenv is activated), MLflow
with ``MLFLOW_TRACKING_URI=sqlite:///<tmp>/mlflow.db``. gitml is run through the console script
next to this interpreter (not a pyenv shim); the code it runs is the ``gitml/`` of this checkout's
HEAD, exported by ``git archive`` into the temporary directory and put on ``PYTHONPATH`` (ahead of
the editable install), so that edits in the work tree meanwhile do not change what is measured
(``--work-tree`` measures the work tree as it is instead).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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
    run_worker,
    scrubbed_env,
    timed,
)

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_PYTHON = "/tmp/gitml-ci-mlflow/bin/python"
MANAGERS = ("uv", "virtualenv")
LR, EPOCHS, POINTS = "0.1", "10", 10
REQUIREMENT = "six==1.16.0"
GRID = {"lr": ("0.01", "0.05", "0.1", "0.5"), "epochs": ("5", "10", "20", "40")}
TRIALS = len(GRID["lr"]) * len(GRID["epochs"])
JOBS = 2

TRAIN = '''\
import argparse

import {tool}

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
with {tool}.start_run():
    {tool}.log_param("lr", args.lr)
    {tool}.log_param("epochs", args.epochs)
    for step in range({points}):
        {tool}.log_metric("loss", round(1 / (1 + step * args.lr), 6), step=step)
'''
GITML_YAML = '''\
project:
  name: bench
  entry_points:
    main:
      parameters:
        lr: {type: float, default: 0.1}
        epochs: {type: int, default: 10}
      command: "python train.py --lr {lr} --epochs {epochs}"
'''
MLPROJECT = '''\
name: bench
entry_points:
  main:
    parameters:
      lr: {type: float, default: 0.1}
      epochs: {type: int, default: 10}
    command: "python train.py --lr {lr} --epochs {epochs}"
'''
CHECK = 'import six\n\nprint("six", six.__version__)\n'
PYTHON_ENV = f"python: \"{platform.python_version()}\"\ndependencies:\n  - {REQUIREMENT}\n"
GITML_ENV_YAML = '''\
project:
  name: bench-env
  environment: python_env.yaml
  entry_points:
    main: "python check.py"
'''
MLPROJECT_ENV = '''\
name: bench-env
python_env: python_env.yaml
entry_points:
  main:
    command: "python check.py"
'''


# ------------------------------------------------------------------------------------------------
# Workers: the in-process environment look-ups and the checks of the stores, one process each
# ------------------------------------------------------------------------------------------------
def w_gitml_prepare(spec: dict) -> dict:
    from gitml.projects.env import env_spec, prepare
    from gitml.projects.spec import load_project

    root = Path(spec["root"])

    def one(manager: str) -> dict:
        gitml_dir = Path(spec["gitml_dir"]) / manager
        env = env_spec(load_project(root), manager)
        t0 = time.perf_counter()
        built = prepare(env, gitml_dir)
        cold_ms = (time.perf_counter() - t0) * 1e3
        found: list = []
        cached = timed(lambda i: found.append(prepare(env, gitml_dir)), spec["calls"])
        whole = timed(lambda i: prepare(env_spec(load_project(root), manager), gitml_dir), spec["calls"])
        return {"cold_ms": cold_ms, "cold_built": built.built, "hash": env.hash, "cached": strip(cached),
                "whole": strip(whole), "cached_built": sum(e.built for e in found),
                "same_python": all(e.python == built.python for e in found)}

    return {manager: one(manager) for manager in spec["managers"]}


def w_mlflow_lookup(spec: dict) -> dict:
    from mlflow.projects._project_spec import load_project
    from mlflow.utils.environment import _PythonEnv
    from mlflow.utils.virtualenv import _create_virtualenv, _get_mlflow_virtualenv_root, _get_virtualenv_name

    root = Path(spec["root"])

    def one(manager: str) -> dict:
        os.environ["MLFLOW_ENV_ROOT"] = spec["env_roots"][manager]

        def lookup(path: Path) -> str:
            python_env = _PythonEnv.from_yaml(path)
            env_dir = Path(_get_mlflow_virtualenv_root()) / _get_virtualenv_name(python_env, root)
            if not env_dir.exists():
                raise RuntimeError(f"no environment at {env_dir}: mlflow run did not build it")
            return _create_virtualenv(local_model_path=root, python_env=python_env, env_dir=env_dir,
                                      env_manager=manager)

        found: list = []
        cached = timed(lambda i: found.append(lookup(root / "python_env.yaml")), spec["calls"])
        whole = timed(lambda i: lookup(Path(load_project(str(root)).env_config_path)), spec["calls"])
        return {"cached": strip(cached), "whole": strip(whole), "activate": found[-1], "distinct": len(set(found))}

    return {manager: one(manager) for manager in spec["managers"]}


def w_gitml_check(spec: dict) -> dict:
    import gitml

    runs = gitml.search_runs()
    rows = []
    for run in runs:
        points = [m.value for m in gitml.get_metric_history(run.id, "loss")]
        rows.append({"status": run.status, "project": run.entry_point is not None,
                     "params": {k: str(v) for k, v in run.params.items()}, "points": len(points)})
    return {"runs": rows, "file": gitml.__file__}


def w_mlflow_check(spec: dict) -> dict:
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    rows = []
    for run in mlflow.search_runs(search_all_experiments=True, output_format="list"):
        points = client.get_metric_history(run.info.run_id, "loss")
        rows.append({"status": run.info.status, "project": run.data.tags.get("mlflow.source.type") == "PROJECT",
                     "params": dict(run.data.params), "points": len(points)})
    return {"runs": rows}


def w_gitml_sweep_check(spec: dict) -> dict:
    import gitml

    rows = []
    for run in gitml.search_runs():
        rows.append({"id": run.id, "status": run.status, "params": {k: str(v) for k, v in run.params.items()},
                     "points": len(gitml.get_metric_history(run.id, "loss")), "loss": run.metrics.get("loss"),
                     "tags": {k: v for k, v in run.tags.items() if k in ("sweep", "mlflow.parentRunId", "best_run_id")},
                     "duration": (run.project or {}).get("duration"), "start": run.start_time, "end": run.end_time})
    return {"runs": rows}


def w_mlflow_init(spec: dict) -> dict:
    from mlflow.tracking import MlflowClient

    return {"experiments": len(MlflowClient().search_experiments())}  # the sqlite store's schema, made here


def strip(t: dict) -> dict:
    """A ``timed`` result without its list of times."""
    return {k: v for k, v in t.items() if k != "times"}


WORKERS = {"gitml_prepare": w_gitml_prepare, "mlflow_lookup": w_mlflow_lookup,
           "gitml_check": w_gitml_check, "mlflow_check": w_mlflow_check,
           "gitml_sweep_check": w_gitml_sweep_check, "mlflow_init": w_mlflow_init}


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
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-projects-"))
        self.home = bench_home(self.tmp)
        (self.tmp / "tmpdir").mkdir()
        here = str(Path(sys.executable).parent)
        base = scrubbed_env(self.home, PYTHONPYCACHEPREFIX=str(self.tmp / "pycache"), TMPDIR=str(self.tmp / "tmpdir"))
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        base["PATH"] = here + os.pathsep + base.get("PATH", "")
        self.head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                   text=True, check=True).stdout.strip()
        gitml_env = dict(base)
        if not args.work_tree:  # HEAD's gitml/, not whatever the work tree holds meanwhile
            src = self.tmp / "gitml-src"
            src.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD", "gitml"], capture_output=True,
                                     check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
            gitml_env["PYTHONPATH"] = str(src)
        self.gitml_bin = self._find_gitml(here)
        self.mlflow_bin = str(Path(args.mlflow_python).parent / "mlflow")
        self.env = {
            "gitml": dict(gitml_env, UV_CACHE_DIR=str(self.tmp / "cache" / "gitml-uv"),
                          PIP_CACHE_DIR=str(self.tmp / "cache" / "gitml-pip")),
            "mlflow": dict(base, PATH=str(Path(args.mlflow_python).parent) + os.pathsep + base["PATH"],
                           MLFLOW_TRACKING_URI=f"sqlite:///{self.tmp / 'mlflow.db'}",
                           UV_CACHE_DIR=str(self.tmp / "cache" / "mlflow-uv"),
                           PIP_CACHE_DIR=str(self.tmp / "cache" / "mlflow-pip")),
        }
        self.t_start = time.perf_counter()
        self.load = LoadSampler(every=5.0)
        self.samples: dict[str, list[float]] = {}
        self.outputs: dict[str, list[str]] = {}
        self.w: dict = {}
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.sweep_ran: dict[str, list[bool]] = {"local": [], "dask": []}  # each gitml sweep: exit 0?
        self.machine = machine_line(base, args.mlflow_python, ROOT, "" if args.work_tree else
                                    "; measured: HEAD's gitml/ exported by `git archive` onto PYTHONPATH")
        self.versions = self._versions(base)

    @staticmethod
    def _find_gitml(here: str) -> str:
        exe = Path(here) / "gitml"  # the console script next to this Python, not a pyenv shim
        if not exe.exists():
            sys.exit(f"no gitml console script at {exe}")
        return str(exe)

    def _versions(self, env: dict) -> str:
        def out(argv: list[str]) -> str:
            p = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else "?"

        uv = shutil.which("uv", path=env["PATH"])
        return (f"{out([uv, '--version']) if uv else 'no uv'} (`{uv}`), pip {_ensurepip_version()} in a new "
                f"`python -m venv`, {out(['pyenv', '--version'])}, bash {out(['bash', '-c', 'echo $BASH_VERSION'])}")

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def git(self, *argv: str, cwd: Path) -> None:
        subprocess.run(["git", *argv], cwd=cwd, env=self.env["gitml"], check=True, capture_output=True)

    def project(self, name: str, files: dict[str, str]) -> Path:
        root = self.tmp / name
        root.mkdir()
        for path, text in files.items():
            (root / path).write_text(text)
        self.git("init", "-q", "-b", "main", cwd=root)
        self.git("add", *files, cwd=root)
        self.git("commit", "-q", "-m", "the project", cwd=root)
        return root

    # -- timing ------------------------------------------------------------------------------------
    def cmd(self, key: str | None, tool: str, argv: list[str], cwd: Path, extra: dict | None = None) -> float | None:
        """Run one command, time it whole; keep the time under ``key`` (None: untimed warm-up)."""
        env = dict(self.env[tool], **(extra or {}))
        t0 = time.perf_counter()
        p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        ms = (time.perf_counter() - t0) * 1e3
        label = key or f"warm-up {' '.join(argv[-6:])}"
        self.outputs.setdefault(key or "warm-up", []).append(p.stdout)
        if p.returncode != 0:
            self.failures.append(f"{label}: exit {p.returncode}: `{failure_line(p)[:300]}`")
            self.log(f"{label} failed (exit {p.returncode}):\n{p.stdout[-1500:]}\n{p.stderr[-3000:]}")
            return None
        if key is not None:
            self.samples.setdefault(key, []).append(ms)
        return ms

    def median(self, key: str) -> float | None:
        s = self.samples.get(key)
        return statistics.median(s) if s else None

    def worker(self, name: str, tool: str, spec: dict, cwd: Path, extra: dict | None = None) -> dict | None:
        python = self.args.mlflow_python if tool == "mlflow" else sys.executable
        env = dict(self.env[tool], **(extra or {}))
        self.log(f"worker {name}")
        res, p = run_worker([python, str(Path(__file__).resolve()), "--worker", name, json.dumps(spec)],
                            env=env, cwd=cwd)
        if res is None:
            self.failures.append(f"worker {name} failed: `{failure_line(p)[:300]}`")
            self.log(f"{name} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
        return res

    # -- the measurements --------------------------------------------------------------------------
    def local_part(self) -> None:
        a = self.args
        g = self.project("local-gitml", {"train.py": TRAIN.format(tool="gitml", points=POINTS),
                                         "gitml.yaml": GITML_YAML})
        m = self.project("local-mlflow", {"train.py": TRAIN.format(tool="mlflow", points=POINTS),
                                          "MLproject": MLPROJECT})
        args = ["train.py", "--lr", LR, "--epochs", EPOCHS]
        params = ["-P", f"lr={LR}", "-P", f"epochs={EPOCHS}"]
        commands = [
            ("gitml direct", "gitml", [sys.executable, *args], g),
            ("gitml run", "gitml", [self.gitml_bin, "run", "--env-manager", "local", *params], g),
            ("mlflow direct", "mlflow", [self.args.mlflow_python, *args], m),
            ("mlflow run", "mlflow", [self.mlflow_bin, "run", ".", "--env-manager", "local", *params], m),
        ]
        for r in range(a.reps + 1):
            self.log(f"local round {r}/{a.reps}")
            for key, tool, argv, cwd in commands:
                self.cmd(key if r else None, tool, argv, cwd)
        self.w["gitml_check"] = self.worker("gitml_check", "gitml", {}, g)
        self.w["mlflow_check"] = self.worker("mlflow_check", "mlflow", {}, m)

    def env_part(self) -> None:
        a = self.args
        files = {"check.py": CHECK, "python_env.yaml": PYTHON_ENV}
        g = self.project("env-gitml", {**files, "gitml.yaml": GITML_ENV_YAML})
        g_prime = self.project("env-gitml-first", {**files, "gitml.yaml": GITML_ENV_YAML})
        m = self.project("env-mlflow", {**files, "MLproject": MLPROJECT_ENV})
        roots = {mgr: str(self.tmp / "mlflow-envs" / mgr) for mgr in MANAGERS}
        first_roots = {mgr: str(self.tmp / "mlflow-envs-first" / mgr) for mgr in MANAGERS}

        def gitml_run(manager: str) -> list[str]:
            return [self.gitml_bin, "run", "--env-manager", manager]

        def mlflow_run(manager: str) -> list[str]:
            return [self.mlflow_bin, "run", ".", "--env-manager", manager]

        check = ["check.py"]
        for r in range(a.env_reps + 1):  # the env project under local, and its command directly
            self.cmd("gitml env local direct" if r else None, "gitml", [sys.executable, *check], g)
            self.cmd("gitml env local" if r else None, "gitml", gitml_run("local"), g)
            self.cmd("mlflow env local direct" if r else None, "mlflow", [self.args.mlflow_python, *check], m)
            self.cmd("mlflow env local" if r else None, "mlflow", mlflow_run("local"), m)
        for manager in MANAGERS:
            self.log(f"gitml {manager}: first build, cold build, cached")
            self.cmd(f"gitml {manager} first", "gitml", gitml_run(manager), g_prime)
            self.cmd(f"gitml {manager} cold", "gitml", gitml_run(manager), g)
            python = self.gitml_env_python(g, manager)
            self.log(f"mlflow {manager}: first build, cold build")
            m_env = {"MLFLOW_ENV_ROOT": roots[manager]}
            self.cmd(f"mlflow {manager} first", "mlflow", mlflow_run(manager), m,
                     {"MLFLOW_ENV_ROOT": first_roots[manager]})
            self.cmd(f"mlflow {manager} cold", "mlflow", mlflow_run(manager), m, m_env)
            m_python = next(Path(roots[manager]).glob("*/bin/python"), None)
            self.log(f"{manager}: cached, and the command directly with the environment's interpreter")
            for r in range(a.env_reps + 1):
                if python:
                    self.cmd(f"gitml {manager} direct" if r else None, "gitml", [python, *check], g)
                if r:
                    self.cmd(f"gitml {manager} cached", "gitml", gitml_run(manager), g)
                if m_python:
                    self.cmd(f"mlflow {manager} direct" if r else None, "mlflow", [str(m_python), *check], m, m_env)
                if r:
                    self.cmd(f"mlflow {manager} cached", "mlflow", mlflow_run(manager), m, m_env)
        self.w["gitml_prepare"] = self.worker(
            "gitml_prepare", "gitml", {"root": str(g), "gitml_dir": str(self.tmp / "prepare-gitml-dir"),
                                       "calls": a.calls, "managers": list(MANAGERS)}, g)
        self.w["mlflow_lookup"] = self.worker(
            "mlflow_lookup", "mlflow", {"root": str(m), "env_roots": roots, "calls": a.calls,
                                        "managers": list(MANAGERS)}, m)

    def sweep_part(self) -> None:
        a = self.args
        g = self.project("sweep-gitml", {"train.py": TRAIN.format(tool="gitml", points=POINTS),
                                         "gitml.yaml": GITML_YAML})
        gd = self.project("sweep-gitml-dask", {"train.py": TRAIN.format(tool="gitml", points=POINTS),
                                               "gitml.yaml": GITML_YAML})
        m = self.project("sweep-mlflow", {"train.py": TRAIN.format(tool="mlflow", points=POINTS),
                                          "MLproject": MLPROJECT})
        m_env = {"MLFLOW_TRACKING_URI": f"sqlite:///{self.tmp / 'mlflow-sweep.db'}"}
        self.w["mlflow_sweep_init"] = self.worker("mlflow_init", "mlflow", {}, m, m_env)
        grid = ["-P", "lr=" + ",".join(GRID["lr"]), "-P", "epochs=" + ",".join(GRID["epochs"])]
        sweep = [self.gitml_bin, "run", *grid, "--env-manager", "local", "--objective", "metrics.loss"]
        for r in range(1, max(a.sweep_reps, a.mlflow_sweep_reps) + 1):
            self.log(f"sweeps round {r}: gitml --jobs {JOBS}, then MLflow's {TRIALS} runs")
            if r <= a.sweep_reps:
                self.sweep_ran["local"].append(
                    self.cmd("gitml sweep local", "gitml", [*sweep, "--jobs", str(JOBS)], g) is not None)
            if r <= a.mlflow_sweep_reps:
                self.mlflow_sweep(m, m_env)
        self.w["gitml_sweep_local"] = self.worker("gitml_sweep_check", "gitml", {}, g)
        self.w["mlflow_sweep_check"] = self.worker("mlflow_check", "mlflow", {}, m, m_env)
        procs, address = self.start_cluster()
        try:
            if address:
                for r in range(1, a.sweep_reps + 1):
                    self.log(f"dask sweep {r}/{a.sweep_reps}")
                    self.sweep_ran["dask"].append(self.cmd(
                        "gitml sweep dask first" if r == 1 else "gitml sweep dask again", "gitml",
                        [*sweep, "--backend", "dask", "--scheduler", address], gd) is not None)
        finally:
            self.stop_cluster(procs)
        self.w["gitml_sweep_dask"] = self.worker("gitml_sweep_check", "gitml", {}, gd)
        clones = sorted(p.relative_to(self.tmp).parts[0]
                        for p in self.tmp.glob("dask-worker-*/tmp/gitml-dask/*/repo/.git"))
        self.notes.append(f"Clones of the project the Dask workers kept in their temporary folders: {len(clones)} "
                          f"({', '.join(clones) or 'none'}).")

    def mlflow_sweep(self, root: Path, extra: dict) -> None:
        """The grid as ``TRIALS`` ``mlflow run`` processes, ``JOBS`` at a time, timed as a whole."""
        combos = [(lr, ep) for lr in GRID["lr"] for ep in GRID["epochs"]]

        def one(combo: tuple[str, str]) -> float | None:
            lr, ep = combo
            return self.cmd("mlflow sweep trial", "mlflow", [self.mlflow_bin, "run", ".", "--env-manager", "local",
                                                             "-P", f"lr={lr}", "-P", f"epochs={ep}"], root, extra)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=JOBS) as pool:
            done = list(pool.map(one, combos))
        ms = (time.perf_counter() - t0) * 1e3
        if all(d is not None for d in done):
            self.samples.setdefault("mlflow sweep", []).append(ms)
        else:
            self.failures.append(f"MLflow's sweep: {sum(d is None for d in done)} of {TRIALS} runs failed")

    def start_cluster(self) -> tuple[list[subprocess.Popen], str | None]:
        """``dask scheduler`` and two ``dask worker`` processes (each in a session of its own, logs in
        the temporary directory); returns them and the scheduler's address once both workers are in."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        address = f"tcp://127.0.0.1:{port}"
        dask = str(Path(sys.executable).parent / "dask")
        argvs = [[dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
        argvs += [[dask, "worker", address, "--nthreads", "1", "--no-dashboard"] for _ in range(2)]
        procs = []
        self.log(f"starting a Dask cluster at {address}")
        t0 = time.perf_counter()
        for i, argv in enumerate(argvs):
            name = "dask-scheduler" if i == 0 else f"dask-worker-{i}"
            folder = self.tmp / name
            (folder / "tmp").mkdir(parents=True)
            env = dict(self.env["gitml"], TMPDIR=str(folder / "tmp"))  # a worker's own temporary folder
            with open(folder / "log", "wb") as log:
                procs.append(subprocess.Popen(argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
        try:
            from distributed import Client

            with Client(address, timeout="30s") as client:
                client.wait_for_workers(2, timeout=120)
        except Exception as exc:  # noqa: BLE001 - whatever kept the cluster from starting is the failure
            self.failures.append(f"the Dask cluster did not start: {type(exc).__name__}: {exc}")
            for name in ("dask-scheduler", "dask-worker-1", "dask-worker-2"):
                self.log(f"{name}:\n{(self.tmp / name / 'log').read_text(errors='replace')[-2000:]}")
            return procs, None
        ms = (time.perf_counter() - t0) * 1e3
        self.notes.append(f"The local Dask cluster (`dask scheduler` and two `dask worker --nthreads 1`, Dask "
                          f"distributed {_version('distributed')}) took {fmt(ms)} ms from starting the processes "
                          "to `wait_for_workers(2)` returning (not in the sweep times).")
        return procs, address

    def stop_cluster(self, procs: list[subprocess.Popen]) -> None:
        """SIGTERM to the sessions ``start_cluster`` started (workers first), SIGKILL after 20 s."""
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.log("Dask cluster stopped")

    def gitml_env_python(self, repo: Path, manager: str) -> str | None:
        """The interpreter of the environment ``gitml run`` built in ``repo`` for ``manager``."""
        for ready in (repo / ".git" / "gitml" / "envs").glob("*/.gitml-ready"):
            if json.loads(ready.read_text())["spec"]["manager"] == manager:
                return str(ready.parent / "bin" / "python")
        self.failures.append(f"no {manager} environment found in {repo.name}'s .git/gitml/envs")
        return None

    def run(self) -> str:
        try:
            self.local_part()
            if not self.args.skip_env:
                self.env_part()
            if not self.args.skip_sweeps:
                self.sweep_part()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.report()

    # -- the report --------------------------------------------------------------------------------
    def wcell(self, worker: str, manager: str, part: str, what: str = "median_ms"):
        return (((self.w.get(worker) or {}).get(manager) or {}).get(part) or {}).get(what)

    def report(self) -> str:
        a = self.args
        med = self.median
        gd, gr, md, mr = med("gitml direct"), med("gitml run"), med("mlflow direct"), med("mlflow run")
        g_over = gr - gd if gr is not None and gd is not None else None
        m_over = mr - md if mr is not None and md is not None else None
        rows = [
            (f"`python train.py --lr {LR} --epochs {EPOCHS}` directly (the script opens its own run)", gd, md),
            ("`gitml run` / `mlflow run .`, `--env-manager local`", gr, mr),
            ("**overhead of the run command** (the two rows above: difference of the medians)", g_over, m_over),
        ]
        if not a.skip_env:
            gld, mld = med("gitml env local direct"), med("mlflow env local direct")
            gl, ml = med("gitml env local"), med("mlflow env local")
            rows += [
                ("env project: `python check.py` directly, host interpreter", gld, mld),
                ("env project, `--env-manager local`", gl, ml),
                ("— overhead of the run command (difference of the medians)", _minus(gl, gld), _minus(ml, mld)),
            ]
            for mgr in MANAGERS:
                gdir, mdir = med(f"gitml {mgr} direct"), med(f"mlflow {mgr} direct")
                gc, mc = med(f"gitml {mgr} cached"), med(f"mlflow {mgr} cached")
                rows += [
                    (f"env project: `python check.py` directly with the `{mgr}` environment's interpreter", gdir, mdir),
                    (f"env project, `--env-manager {mgr}`, environment cached", gc, mc),
                    (f"— overhead of the run command with the cached `{mgr}` environment", _minus(gc, gdir),
                     _minus(mc, mdir)),
                    (f"in-process look-up of the built `{mgr}` environment (`prepare(spec, dir)` / MLflow's "
                     "three calls)", self.wcell("gitml_prepare", mgr, "cached"),
                     self.wcell("mlflow_lookup", mgr, "cached")),
                    ("— the same, reading the descriptor first (`load_project` + `env_spec`)",
                     self.wcell("gitml_prepare", mgr, "whole"), self.wcell("mlflow_lookup", mgr, "whole")),
                    (f"env project, `--env-manager {mgr}`, cold build (package cache warm)",
                     med(f"gitml {mgr} cold"), med(f"mlflow {mgr} cold")),
                    (f"env project, `--env-manager {mgr}`, first build (empty package cache: downloads)",
                     med(f"gitml {mgr} first"), med(f"mlflow {mgr} first")),
                    (f"`prepare(spec, dir)` cold build of the `{mgr}` environment, in-process (package cache warm)",
                     ((self.w.get("gitml_prepare") or {}).get(mgr) or {}).get("cold_ms"), None),
                ]
        if not a.skip_sweeps:
            ms = med("mlflow sweep")
            per = _per_trial
            grid = f"lr={','.join(GRID['lr'])} -P epochs={','.join(GRID['epochs'])}"
            rows += [
                (f"**{TRIALS}-trial grid sweep, {JOBS} at a time**, `--env-manager local`: `gitml run -P {grid} "
                 f"--jobs {JOBS}` / {TRIALS} `mlflow run . -P …` from a pool of {JOBS} threads (wall time)",
                 med("gitml sweep local"), ms),
                ("— per trial (wall / 16)", per(med("gitml sweep local")), per(ms)),
                ("the same grid on a local Dask cluster (2 workers, 1 thread each), first sweep: each worker "
                 "clones the project / MLflow as above", med("gitml sweep dask first"), ms),
                ("— per trial (wall / 16)", per(med("gitml sweep dask first")), per(ms)),
            ]
            if a.sweep_reps > 1:
                rows += [
                    ("the same on the Dask cluster, later sweeps (the workers' clones kept) / MLflow as above",
                     med("gitml sweep dask again"), ms),
                    ("— per trial (wall / 16)", per(med("gitml sweep dask again")), per(ms)),
                ]
        sweep_args = f" --sweep-reps {a.sweep_reps} --mlflow-sweep-reps {a.mlflow_sweep_reps}"
        sweeps = (f", {a.sweep_reps} gitml sweeps of each kind (those that exited 0; the first Dask sweep on its "
                  f"own) and {a.mlflow_sweep_reps} rounds of MLflow runs")
        lines = [
            "# Projects: `gitml run` against `mlflow run`",
            "",
            f"`python bench/bench_projects.py --reps {a.reps} --env-reps {a.env_reps} --calls {a.calls}"
            f"{' --skip-sweeps' if a.skip_sweeps else sweep_args}"
            f"{' --skip-env' if a.skip_env else ''}{' --work-tree' if a.work_tree else ''}"
            f"{'' if a.mlflow_python == MLFLOW_PYTHON else f' --mlflow-python {a.mlflow_python}'}`",
            "",
            self.machine,
            "",
            f"Also: {self.versions}.",
            "",
            f"CPU: {cpu_model()}. 1-minute load average {self.load.start[0]:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end.",
            "",
            f"Each command timed whole, process start to exit; times in ms, medians ({a.reps} runs after one "
            f"warm-up for the local rows, {a.env_reps} for the cached-environment rows, one run for the cold and "
            f"first builds, {a.calls} calls after one warm-up in-process"
            f"{'' if a.skip_sweeps else sweeps})"
            "; MLflow / gitml above 1 means gitml is faster. MLflow: sqlite tracking store.",
            "",
            "| operation | gitml [ms] | MLflow [ms] | MLflow / gitml |",
            "| --- | ---: | ---: | ---: |",
        ]
        for label, g, m in rows:
            lines.append(f"| {label} | {fmt(g)} | {fmt(m)} | {fmt_ratio(m, g)} |")
        lines += ["", "Notes:", ""]
        for note in self.checks() + self.ranges() + self.failures + self.notes:
            lines.append(f"- {note}")
        lines += ["", self.load.summary(time.perf_counter() - self.t_start), ""]
        return "\n".join(lines)

    def ranges(self) -> list[str]:
        parts = []
        for key, s in self.samples.items():
            if len(s) > 1:
                parts.append(f"{key} {fmt(min(s))}–{fmt(max(s))}")
        out = ["Range (min–max ms) of the timed runs: " + ", ".join(parts) + "."] if parts else []
        for worker in ("gitml_prepare", "mlflow_lookup"):
            for mgr in MANAGERS:
                for part in ("cached", "whole"):
                    first = self.wcell(worker, mgr, part, "first_ms")
                    if first is not None:
                        out.append(f"{worker} {mgr} {part}: first (warm-up) call {fmt(first)} ms, timed calls "
                                   f"{fmt(self.wcell(worker, mgr, part, 'min_ms'))}–"
                                   f"{fmt(self.wcell(worker, mgr, part, 'max_ms'))} ms.")
        return out

    def checks(self) -> list[str]:
        a, out = self.args, []
        want = a.reps + 1
        for tool in ("gitml", "mlflow"):
            runs = (self.w.get(f"{tool}_check") or {}).get("runs")
            if runs is None:
                continue
            project = sum(r["project"] for r in runs)
            good = sum(r["status"] == "FINISHED" and r["params"] == {"lr": LR, "epochs": EPOCHS}
                       and r["points"] == POINTS for r in runs)
            ok = len(runs) == 2 * want and project == want and good == len(runs)
            out.append(f"{tool}'s store after the local part: {len(runs)} runs ({project} made by the run command, "
                       f"{len(runs) - project} by the direct script; expected {want} each), {good} FINISHED with "
                       f"lr={LR}, epochs={EPOCHS} and {POINTS} points of loss: {'**ok**' if ok else '**not as expected**'}.")
        if (self.w.get("gitml_check") or {}).get("file"):
            out.append(f"gitml imported from `{self.w['gitml_check']['file'].replace(str(self.tmp), '<tmp>')}`.")
        if not a.skip_env:
            sixes = {}
            for key, outs in self.outputs.items():
                if key.startswith(("gitml env", "mlflow env", "gitml uv", "gitml virtualenv", "mlflow uv",
                                   "mlflow virtualenv")):
                    sixes[key] = sorted({line.split()[1] for o in outs for line in o.splitlines()
                                         if line.startswith("six ")})
            bad = {k: v for k, v in sixes.items() if v != (["1.17.0"] if " local" in k else ["1.16.0"])}
            out.append("Env project: every run (and direct command) printed `six 1.16.0` in its environment and "
                       f"`six 1.17.0` under `local`: {'**yes**' if sixes and not bad else f'**no**: {bad}'}.")
            gp = self.w.get("gitml_prepare") or {}
            for mgr in MANAGERS:
                r = gp.get(mgr)
                if r:
                    out.append(f"`prepare` ({mgr}): the first call built the environment: {r['cold_built']}; the "
                               f"{a.calls + 1} cached calls built it again: {r['cached_built']} times; same "
                               f"interpreter every time: {r['same_python']}.")
            ml = self.w.get("mlflow_lookup") or {}
            for mgr in MANAGERS:
                r = ml.get(mgr)
                if r:
                    out.append(f"MLflow's look-up ({mgr}) returned `{r['activate'].split('/')[-3]}/…/activate`, the "
                               f"same every call: {r['distinct'] == 1}.")
        if not a.skip_sweeps:
            out += self.sweep_checks()
        return out

    def sweep_checks(self) -> list[str]:
        a, out = self.args, []
        grid = sorted((lr, ep) for lr in GRID["lr"] for ep in GRID["epochs"])
        for key, what, ran in (("gitml_sweep_local", f"`--jobs {JOBS}`", self.sweep_ran["local"]),
                               ("gitml_sweep_dask", "`--backend dask`", self.sweep_ran["dask"])):
            if ran:
                bad = ", ".join(_nth(i + 1) for i, ok in enumerate(ran) if not ok)
                out.append(f"gitml {what} sweeps that exited 0: {sum(ran)} of {len(ran)}"
                           + (f" (not the {bad}: see below)." if bad else "."))
            runs = (self.w.get(key) or {}).get("runs")
            if runs is None:
                continue
            want = sum(ran)
            parents = [r for r in runs if "mlflow.parentRunId" not in r["tags"]]
            ids = {r["id"] for r in parents}
            trials = [r for r in runs if r["tags"].get("mlflow.parentRunId") in ids]
            orphans = [r for r in runs if "mlflow.parentRunId" in r["tags"] and r not in trials]
            good_parents, durations = 0, []
            for parent in parents:
                kids = [r for r in trials if r["tags"]["mlflow.parentRunId"] == parent["id"]]
                pairs = sorted((r["params"].get("lr"), r["params"].get("epochs")) for r in kids)
                fine = all(r["status"] == "FINISHED" and r["points"] == POINTS
                           and r["tags"].get("sweep") == parent["tags"].get("sweep") for r in kids)
                best = next((r for r in kids if r["id"] == parent["tags"].get("best_run_id")), None)
                lowest = min((r["loss"] for r in kids if r["loss"] is not None), default=None)
                if (parent["status"] == "FINISHED" and len(kids) == TRIALS and pairs == grid and fine
                        and best is not None and best["loss"] == lowest):
                    good_parents += 1
                durations += [r["duration"] for r in kids if r["duration"] is not None]
            ok = len(parents) == want and good_parents == want and len(trials) == TRIALS * want
            out.append(f"gitml's store after the {what} sweeps: {len(parents)} parent runs and {len(trials)} trials "
                       f"of theirs (expected {want} and {TRIALS * want}); parents FINISHED with {TRIALS} FINISHED "
                       f"trials each, the grid's {TRIALS} (lr, epochs) pairs, {POINTS} points of loss each, "
                       f"`best_run_id` a trial with the lowest loss: {good_parents}: "
                       f"{'**ok**' if ok else '**not as expected**'}; trials whose parent is not on the runs ref "
                       f"(a sweep that did not finish): {len(orphans)}.")
            if durations:
                out.append(f"gitml {what} trials: the command's own duration as the run records it "
                           f"(`project.duration`), median {fmt(statistics.median(durations) * 1e3)} ms "
                           f"({fmt(min(durations) * 1e3)}–{fmt(max(durations) * 1e3)}).")
        runs = (self.w.get("mlflow_sweep_check") or {}).get("runs")
        if runs is not None:
            n = a.mlflow_sweep_reps
            pairs = sorted((r["params"].get("lr"), r["params"].get("epochs")) for r in runs)
            good = sum(r["status"] == "FINISHED" and r["project"] and r["points"] == POINTS for r in runs)
            ok = len(runs) == TRIALS * n and pairs == sorted(grid * n) and good == len(runs)
            out.append(f"MLflow's sweep store: {len(runs)} runs (expected {TRIALS * n}), every pair of the "
                       f"grid {n} times: {pairs == sorted(grid * n)}, {good} FINISHED project "
                       f"runs with {POINTS} points of loss: {'**ok**' if ok else '**not as expected**'}.")
        trial = self.samples.get("mlflow sweep trial")
        if trial:
            out.append(f"MLflow's sweep: each `mlflow run` process, {JOBS} running at once, median "
                       f"{fmt(statistics.median(trial))} ms ({fmt(min(trial))}–{fmt(max(trial))}), against "
                       f"{fmt(self.median('mlflow run'))} ms alone (local part).")
        return out


def _nth(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _per_trial(ms):
    return ms / TRIALS if ms is not None else None


def _minus(x, y):
    return x - y if x is not None and y is not None else None


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _ensurepip_version() -> str:
    import ensurepip

    return ensurepip.version()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10, help="timed runs of each local command (default 10)")
    ap.add_argument("--env-reps", type=int, default=4, help="timed runs with a cached environment (default 4)")
    ap.add_argument("--calls", type=int, default=200, help="timed in-process environment look-ups (default 200)")
    ap.add_argument("--work-tree", action="store_true",
                    help="measure the work tree's gitml/ as it is (default: HEAD's, exported)")
    ap.add_argument("--sweep-reps", type=int, default=5, help="timed gitml sweeps of each kind (default 5)")
    ap.add_argument("--mlflow-sweep-reps", type=int, default=2,
                    help="timed rounds of MLflow's 16 runs (default 2)")
    ap.add_argument("--skip-env", action="store_true", help="leave out the environment part")
    ap.add_argument("--skip-sweeps", action="store_true", help="leave out the sweeps")
    ap.add_argument("--mlflow-python", default=MLFLOW_PYTHON, help=f"MLflow's interpreter (default {MLFLOW_PYTHON})")
    ap.add_argument("--out", type=Path, help="write the report to this file too")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)
    if min(args.reps, args.env_reps, args.calls, args.sweep_reps, args.mlflow_sweep_reps) < 1:
        ap.error("--reps, --env-reps, --calls, --sweep-reps and --mlflow-sweep-reps must be at least 1")
    report = Bench(args).run()
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
