#!/usr/bin/env python
"""Diff benchmark: ``gitml diff main feature`` versus ``dvc metrics diff`` + ``dvc params diff``.

Run ``python bench/bench_diff.py`` (full: 100,000 runs over 10,000 commits, about 10 minutes on
2 cores) or ``python bench/bench_diff.py --quick`` (10,000 runs over 1,000 commits). It prints a
Markdown report (``--out FILE`` writes it too): absolute figures and ratios DVC / gitml (above 1
means gitml is faster), goals marked met or not met, and where gitml's time goes.

Scenario:

* a git history of N commits on ``main`` (built with ``git fast-import``) and a ``feature`` branch
  of 3 commits forked 2 commits before main's tip. Every commit changes ``train.py``,
  ``params.yaml`` (10 params) and ``metrics.json`` (10 metrics);
* gitml: R runs on ``refs/gitml/runs`` (10 params, 10 metrics each), spread round-robin over all
  commits starting with the two tips, each run holding exactly its commit's params.yaml /
  metrics.json values; preloaded with ``gitml.tracking.commit.write_runs`` in batches;
  ``gitml.yaml`` declares goals for two metrics so the diff computes verdicts;
* DVC: a repository with the same history (plus ``dvc.yaml`` naming params.yaml and metrics.json
  and a ``.dvc/``), so ``main`` and ``feature`` carry the same values as gitml's runs there;
* a small variant of both (3 commits on main, 1 on feature forked at main~1, one run per commit).

Measures (wall time of whole processes, median of ``--reps``, default 5):

* gitml warm: ``gitml diff main feature`` with the index up to date (after one untimed run);
* gitml cold: the same with ``.git/gitml/index.sqlite*`` deleted before each run (includes the
  index rebuild); ``gitml index rebuild`` is timed on its own too;
* DVC warm: ``dvc metrics diff main feature`` + ``dvc params diff main feature`` (the sum per
  repetition), after one untimed run of each;
* DVC cold: the same with ``.dvc/tmp`` and DVC's site cache dir (``core.site_cache_dir``, set in
  ``.dvc/config.local`` to a folder of the benchmark) deleted before each command;
* floors: ``python -c pass``, ``gitml --version``, ``dvc --version``;
* where gitml's time goes: per-phase timings of an instrumented in-process run (fresh process
  each time), ``python -X importtime`` of the modules the command imports, and a cProfile dump of
  one warm and one cold ``gitml diff`` (``python -m cProfile -o F -m gitml diff main feature``).

Every command runs with a scrubbed environment: no ``GIT_*``/``DVC_*`` variables from the caller,
``HOME`` a folder holding a ``.gitconfig``, DVC analytics off. Working folders go under
``--workdir`` (default /var/tmp, where file creation is fast).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import Profiler, cpu_model, typical_params

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "BENCH_RESULT "
N_PARAMS, N_METRICS = 10, 10
FEATURE_COMMITS, FORK_BACK = 3, 2
SMALL_SHAPE = (3, 1, 1)  # small repos: 3 commits on main, 1 on feature forked at main~1
EXPERIMENT = "bench"
BASE_TIME = 1_700_000_000
MODES = {
    "full": {"runs": 100_000, "commits": 10_000, "chunk": 10_000},
    "quick": {"runs": 10_000, "commits": 1_000, "chunk": 5_000},
}
GOAL_WARM_S = 0.3
# What the instrumented diff times: (module, attribute, label, depth); depth 2 rows are parts of
# the depth 1 row above them. The git row cuts across the others.
PHASES = (
    ("gitml.core.gitrepo", "GitRepo.__init__", "open repository (dulwich)", 1),
    ("gitml.diff.compare", "load_config_at", "read gitml.yaml at side A (imports yaml)", 1),
    ("gitml.core.index", "Index.nearest_finished_runs", "find each side's runs (maps while the index is behind)", 1),
    ("gitml.core.runsref", "runs_of_commits", "commits/ map: run ids of the walked commits", 2),
    ("gitml.core.index", "_read_and_parse", "read and parse those runs", 2),
    ("gitml.core.index", "open_index", "open index, bring it up to date with the runs ref", 2),
    ("gitml.core.index", "_insert", "SQLite inserts", 2),
    ("gitml.diff.compare", "build_rows", "build rows", 1),
    ("gitml.cli.diff", "_render", "render table (imports tabulate)", 1),
    ("gitml.core.gitrepo", "GitRepo._git", "git subprocesses, across the above (rev-parse, rev-list …)", 1),
)
GITML_YAML = """\
metrics_files: [metrics.json]
metrics:
  m0: max
  m1: {direction: min, tolerance: 0.01}
"""
DVC_YAML = "params:\n  - params.yaml\nmetrics:\n  - metrics.json\n"
DVC_CONFIG = "[core]\n    analytics = false\n    autostage = false\n"


# ------------------------------------------------------------------------------------------------
# Shared helpers
# ------------------------------------------------------------------------------------------------
def commit_payload(c: int) -> tuple[dict, dict]:
    """Deterministic params and metrics of commit number ``c`` (its params.yaml / metrics.json)."""
    rnd = random.Random(c)
    params = typical_params(rnd)
    metrics = {f"m{j}": round(rnd.random(), 6) for j in range(N_METRICS)}
    assert len(params) == N_PARAMS and len(metrics) == N_METRICS
    return params, metrics


def params_yaml(params: dict) -> str:
    return "".join(f"{k}: {v}\n" for k, v in params.items())


def metrics_json(metrics: dict) -> str:
    return json.dumps(metrics, indent=2) + "\n"


def history_stream(n_main: int, n_feature: int, fork_back: int, flavour: str) -> bytes:
    """A ``git fast-import`` stream: ``n_main`` commits on main, ``n_feature`` on feature.

    Marks 1..n_main are main's commits, n_main+1.. feature's; commit number ``c`` (its mark
    minus 1) carries ``commit_payload(c)``. ``flavour`` is ``gitml`` (adds gitml.yaml) or ``dvc``
    (adds dvc.yaml and .dvc/).
    """
    out = []

    def data(text: str) -> None:
        raw = text.encode()
        out.append(b"data %d\n" % len(raw) + raw + b"\n")

    def commit(ref: str, mark: int, parent: int | None, first: bool) -> None:
        c = mark - 1
        params, metrics = commit_payload(c)
        out.append(
            f"commit {ref}\nmark :{mark}\n"
            f"committer Bench User <bench@example.com> {BASE_TIME + c * 60} +0000\n".encode()
        )
        data(f"train step {c}\n")
        if parent is not None:
            out.append(f"from :{parent}\n".encode())
        files = {
            "train.py": f"# version {c}\nprint('train')\n",
            "params.yaml": params_yaml(params),
            "metrics.json": metrics_json(metrics),
        }
        if first:
            if flavour == "gitml":
                files["gitml.yaml"] = GITML_YAML
            else:
                files.update(
                    {
                        "dvc.yaml": DVC_YAML,
                        ".dvc/config": DVC_CONFIG,
                        ".dvc/.gitignore": "/config.local\n/tmp\n/cache\n",
                        ".dvcignore": "",
                    }
                )
        for path, text in files.items():
            out.append(f"M 100644 inline {path}\n".encode())
            data(text)
        out.append(b"\n")

    for mark in range(1, n_main + 1):
        commit("refs/heads/main", mark, mark - 1 if mark > 1 else None, mark == 1)
    fork = n_main - fork_back
    for k in range(n_feature):
        mark = n_main + 1 + k
        commit("refs/heads/feature", mark, fork if k == 0 else mark - 1, False)
    return b"".join(out)


# ------------------------------------------------------------------------------------------------
# Workers (one process each)
# ------------------------------------------------------------------------------------------------
def w_preload(spec: dict) -> dict:
    """Commit the runs: run i goes to commit ``order[i % len(order)]``, batches of ``chunk``."""
    import gitml
    from gitml.core import formats
    from gitml.core.gitrepo import GitRepo
    from gitml.core.ids import new_run_id
    from gitml.tracking.commit import write_runs

    order = json.loads(Path(spec["commits_file"]).read_text())  # [[sha, branch, c], ...]
    n, chunk = spec["runs"], spec["chunk"]
    payloads: dict[int, tuple[dict, dict]] = {}
    t0 = time.perf_counter()
    with Profiler(spec.get("profile")), GitRepo(spec["repo"]) as g:
        for start in range(0, n, chunk):
            batch = []
            for i in range(start, min(start + chunk, n)):
                sha, branch, c = order[i % len(order)]
                if c not in payloads:
                    p, m = commit_payload(c)
                    payloads[c] = (
                        {k: formats.param_value(k, v) for k, v in p.items()},
                        {k: formats.metric_value(k, v) for k, v in m.items()},
                    )
                params, metrics = payloads[c]
                begin, end = formats.iso_time(BASE_TIME + i), formats.iso_time(BASE_TIME + i + 30)
                run = formats.Run(
                    id=new_run_id(),
                    name=f"run-{i}",
                    experiment=EXPERIMENT,
                    status="FINISHED",
                    start_time=begin,
                    end_time=end,
                    updated=end,
                    user="Bench User",
                    source={"commit": sha, "branch": branch, "dirty": False, "remote": None},
                    command="python train.py",
                    gitml_version=gitml.__version__,
                    params=dict(params),
                    metrics=dict(metrics),
                    metric_info={k: {"step": 0, "timestamp": end} for k in metrics},
                )
                batch.append((run, []))
            write_runs(g, batch, f"import {len(batch)} runs")
    return {"runs": n, "s": time.perf_counter() - t0}


def w_phases(spec: dict) -> dict:
    """One ``gitml diff`` in this process, with the main steps timed by wrapping them."""
    import importlib

    # importlib, not `import a.b as c`: gitml.cli's `main` and gitml.diff's `compare` attributes
    # are functions that shadow the modules of the same name.
    if spec.get("cold"):
        for suffix in ("", "-wal", "-shm"):
            Path(".git/gitml/index.sqlite" + suffix).unlink(missing_ok=True)
    t_start = time.perf_counter()
    climain = importlib.import_module("gitml.cli.main")
    t_cli = time.perf_counter()
    for module in sorted({m for m, *_ in PHASES}):
        importlib.import_module(module)
    t_imports = time.perf_counter()
    acc: dict[str, list[float]] = {}

    def wrap(owner, name: str, label: str) -> None:
        fn = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                acc.setdefault(label, []).append(time.perf_counter() - t0)

        setattr(owner, name, timed)

    for module, attr, label, _depth in PHASES:
        owner = sys.modules[module]
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, name):  # a phase the code no longer has shows as not timed
            wrap(owner, name, label)
    import io
    from contextlib import redirect_stdout

    code = 0
    t0 = time.perf_counter()
    with redirect_stdout(io.StringIO()) as buf:
        try:
            climain.main(["diff", "main", "feature"])
        except SystemExit as exc:
            code = exc.code or 0
    t_run = time.perf_counter() - t0
    return {
        "exit": code,
        "lines": len(buf.getvalue().splitlines()),
        "import gitml.cli.main (click)": t_cli - t_start,
        "import diff modules (dulwich, sqlite3 …)": t_imports - t_cli,
        "command total (in process)": t_run,
        "phases": {k: [sum(v), len(v)] for k, v in acc.items()},
        "in_process_total": time.perf_counter() - t_start,
    }


WORKERS = {"preload": w_preload, "phases": w_phases}


def worker_main(name: str, spec_json: str) -> int:
    spec = json.loads(spec_json)
    os.chdir(spec.get("cwd", os.getcwd()))
    res = WORKERS[name](spec)
    sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.mode = "quick" if args.quick else "full"
        cfg = dict(MODES[self.mode])
        if args.runs:
            cfg["runs"] = args.runs
        if args.commits:
            cfg["commits"] = args.commits
        self.cfg = cfg
        self.reps = args.reps
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-diffbench-", dir=args.workdir))
        self.home = self.tmp / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Bench User\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n"
        )
        self.env = self._env()
        self.dvc = self._find_dvc()
        self.gitml = self._find_gitml()
        self.prof_dir = self.tmp / "profiles"
        self.prof_dir.mkdir()
        self.r: dict = {}
        self.notes: list[str] = []
        self.loads: list[tuple[str, float]] = []
        self.sections: list[tuple[str, float, float]] = []
        self.seen: list[tuple[float, set[str]]] = []
        threading.Thread(target=self._watch, daemon=True).start()
        self.t_start = time.perf_counter()

    # -- environment -----------------------------------------------------------------------------
    def _env(self) -> dict:
        # PYTHONDONTWRITEBYTECODE is dropped too: users' processes read and write .pyc files.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("GIT_", "DVC_", "PYTHONPATH", "XDG_CONFIG_HOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
            )
        }
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            DVC_NO_ANALYTICS="1",
            DO_NOT_TRACK="1",
        )
        return env

    def _find_dvc(self) -> str | None:
        for cand in (self.args.dvc, "/var/tmp/dvcenv/bin/dvc", "/var/tmp/dvcenv-diff/bin/dvc"):
            if cand and Path(cand).exists():
                return cand
        return None

    def _find_gitml(self) -> list[str]:
        # The console script next to this Python (what pip installs), not a version-manager shim.
        exe = Path(sys.executable).parent / "gitml"
        if exe.exists():
            return [str(exe)]
        found = shutil.which("gitml", path=self.env.get("PATH"))
        return [found] if found else [sys.executable, "-m", "gitml"]

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    def load(self, label: str) -> None:
        self.loads.append((label, os.getloadavg()[0]))

    @contextlib.contextmanager
    def section(self, label: str):
        """Time-box a measure; the report names other heavy processes seen during it."""
        self.load(label)
        t0 = time.time()
        try:
            yield
        finally:
            self.sections.append((label, t0, time.time()))

    def _watch(self) -> None:
        """Every 5 s, note other benchmark or test processes (``--busy-pattern``) on the machine."""
        mine = str(os.getpid())
        while True:
            p = subprocess.run(
                ["pgrep", "-af", self.args.busy_pattern], capture_output=True, text=True, check=False
            )
            found = set()
            for line in p.stdout.splitlines():
                pid, _, cmd = line.partition(" ")
                if pid == mine or "bench_diff.py" in cmd or "pgrep" in cmd:
                    continue
                m = re.search(self.args.busy_pattern, cmd)
                found.add(m.group(0) if m else cmd[:40])
            self.seen.append((time.time(), found))
            time.sleep(5)

    def contention(self) -> list[str]:
        lines = []
        for label, t0, t1 in self.sections:
            others = set().union(*[f for t, f in self.seen if t0 - 5 <= t <= t1 + 5] or [set()])
            if others:
                lines.append(f"{label}: {', '.join(sorted(others))}")
        return lines

    def run(self, argv: list[str], cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
        p = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, check=False, **kw)
        if check and p.returncode != 0:
            err = p.stderr.decode(errors="replace") if isinstance(p.stderr, bytes) else p.stderr
            raise RuntimeError(f"{' '.join(map(str, argv))} failed ({p.returncode}): {err[-2000:]}")
        return p

    def worker(self, name: str, spec: dict, cwd: Path) -> dict:
        spec = dict(spec, cwd=str(cwd))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, json.dumps(spec)]
        p = subprocess.run(cmd, env=self.env, cwd=cwd, capture_output=True, text=True, check=False)
        for line in reversed(p.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])
        raise RuntimeError(f"worker {name} failed ({p.returncode}): {p.stderr[-3000:]}")

    def wall(self, argv: list[str], cwd: Path, before=None) -> float:
        if before:
            before()
        t0 = time.perf_counter()
        p = subprocess.run(
            argv, cwd=cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
        return dt

    def timed(self, argvs: list[list[str]], cwd: Path, warmup: bool, before=None) -> dict:
        """Median over reps of the summed wall time of ``argvs`` (run one after another)."""
        if warmup:
            for argv in argvs:
                self.wall(argv, cwd, before)
        sums, parts = [], [[] for _ in argvs]
        for _ in range(self.reps):
            total = 0.0
            for k, argv in enumerate(argvs):
                dt = self.wall(argv, cwd, before)
                parts[k].append(dt)
                total += dt
            sums.append(total)
        return {
            "median": statistics.median(sums),
            "min": min(sums),
            "max": max(sums),
            "all": sums,
            "parts": [statistics.median(p) for p in parts],
        }

    # -- repositories ----------------------------------------------------------------------------
    def build_history(
        self, name: str, flavour: str, n_main: int, n_feature: int, fork_back: int
    ) -> tuple[Path, list[list]]:
        """A repo from a fast-import stream; returns it and ``[[sha, branch, c], ...]``, tips first."""
        repo = self.tmp / name
        repo.mkdir()
        self.run(["git", "init", "-q", "-b", "main"], repo)
        stream = history_stream(n_main, n_feature, fork_back, flavour)
        marks = self.tmp / f"{name}.marks"
        t0 = time.perf_counter()
        self.run(["git", "fast-import", "--quiet", f"--export-marks={marks}"], repo, input=stream)
        self.run(["git", "checkout", "-q", "-f", "main"], repo)
        took = time.perf_counter() - t0
        sha_of = {}
        for line in marks.read_text().splitlines():
            mark, sha = line.split()
            sha_of[int(mark[1:])] = sha
        commits = [[sha_of[m], "main" if m <= n_main else "feature", m - 1] for m in sorted(sha_of)]
        main_tip, feature_tip = commits[n_main - 1], commits[-1]
        rest = [c for c in commits if c is not main_tip and c is not feature_tip]
        count = int(self.run(["git", "rev-list", "--count", "main"], repo, text=True).stdout)
        assert count == n_main, (count, n_main)
        self.log(f"{name}: {len(commits)} commits via fast-import in {took:.1f}s")
        return repo, [main_tip, feature_tip, *rest]

    def dvc_repo(self, name: str, shape: tuple[int, int, int]) -> Path:
        repo, _ = self.build_history(name, "dvc", *shape)
        site = self.tmp / f"{name}-site-cache"
        (repo / ".dvc" / "config.local").write_text(f"[core]\n    site_cache_dir = {site}\n")
        self.dvc_site[repo] = site
        return repo

    # -- scenarios -------------------------------------------------------------------------------
    def gitml_side(self, key: str, n_runs: int, chunk: int) -> Path:
        repo, order = self.build_history(f"gitml-{key}", "gitml", *self.shape[key])
        commits_file = self.tmp / f"gitml-{key}-commits.json"
        commits_file.write_text(json.dumps(order))
        self.log(f"gitml {key}: preloading {n_runs:,} runs over {len(order):,} commits")
        pre = self.worker(
            "preload",
            {"repo": str(repo), "runs": n_runs, "chunk": chunk, "commits_file": str(commits_file)},
            repo,
        )
        self.r[("gitml", key, "preload")] = pre
        self.r[("gitml", key, "commits")] = len(order)
        self.r[("gitml", key, "runs")] = n_runs
        self.log(f"gitml {key}: preload took {pre['s']:.1f}s")
        diff = [*self.gitml, "diff", "main", "feature"]
        self.run([*self.gitml, "index", "rebuild"], repo)  # warm: the index is at the ref's tip
        first = self.run(diff, repo, text=True)  # the output is checked below
        self.r[("gitml", key, "output")] = first.stdout
        if "run " not in first.stdout or "changed" in first.stdout and "no param" in first.stdout:
            self.notes.append(f"gitml {key}: unexpected diff output")
        self.check_gitml_output(key, first.stdout)

        def drop_index() -> None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                (repo / ".git" / "gitml" / f"index.sqlite{suffix}").unlink(missing_ok=True)

        self.log(f"gitml {key}: diff warm")
        with self.section(f"gitml {key} warm"):
            self.r[("gitml", key, "warm")] = self.timed([diff], repo, warmup=True)
        self.log(f"gitml {key}: diff cold")
        with self.section(f"gitml {key} cold"):
            self.r[("gitml", key, "cold")] = self.timed([diff], repo, warmup=False, before=drop_index)
        listing = [*self.gitml, "runs", "list"]
        self.log(f"gitml {key}: runs list cold (no index: the started/ map)")
        with self.section(f"gitml {key} list cold"):
            self.r[("gitml", key, "list cold")] = self.timed([listing], repo, warmup=False, before=drop_index)
        self.log(f"gitml {key}: index rebuild")
        with self.section(f"gitml {key} index rebuild"):
            self.r[("gitml", key, "rebuild")] = self.timed(
                [[*self.gitml, "index", "rebuild"]], repo, warmup=False
            )
        return repo

    def check_gitml_output(self, key: str, out: str) -> None:
        """The diff must name both tips and show the changed params and metrics."""
        p_main, m_main = commit_payload(self.main_c[key])
        p_feat, m_feat = commit_payload(self.feature_c[key])
        changed = [k for k in p_main if p_main[k] != p_feat[k]] + [
            k for k in m_main if m_main[k] != m_feat[k]
        ]
        missing = [k for k in changed if f" {k} " not in out]
        if missing:
            self.notes.append(f"gitml {key}: diff output lacks changed keys {missing}")
        self.r[("gitml", key, "changed_keys")] = len(changed)

    def dvc_side(self, key: str) -> None:
        if not self.dvc:
            return
        repo = self.dvc_repo(f"dvc-{key}", self.shape[key])
        m = [self.dvc, "metrics", "diff", "main", "feature"]
        p = [self.dvc, "params", "diff", "main", "feature"]
        out_m = self.run(m, repo, text=True).stdout
        out_p = self.run(p, repo, text=True).stdout
        self.r[("dvc", key, "output")] = out_m + "\n" + out_p
        rows = sum(
            1 for line in (out_m + out_p).splitlines() if line.strip() and not line.startswith(("Path", "-"))
        )
        self.r[("dvc", key, "rows")] = rows
        if "m0" not in out_m or "lr" not in out_p:
            self.notes.append(f"dvc {key}: diff output lacks m0 or lr: {out_m[:200]!r} {out_p[:200]!r}")
        site = self.dvc_site[repo]

        def drop_caches() -> None:
            shutil.rmtree(repo / ".dvc" / "tmp", ignore_errors=True)
            shutil.rmtree(site, ignore_errors=True)

        self.log(f"dvc {key}: metrics diff + params diff warm")
        with self.section(f"dvc {key} warm"):
            self.r[("dvc", key, "warm")] = self.timed([m, p], repo, warmup=True)
        self.log(f"dvc {key}: metrics diff + params diff cold")
        with self.section(f"dvc {key} cold"):
            self.r[("dvc", key, "cold")] = self.timed([m, p], repo, warmup=False, before=drop_caches)

    def floors(self) -> None:
        self.log("floors: python -c pass, gitml --version, dvc --version")
        self.r["python"] = self.timed([[sys.executable, "-c", "pass"]], self.tmp, warmup=True)
        self.r["gitml_version"] = self.timed([[*self.gitml, "--version"]], self.tmp, warmup=True)
        if self.dvc:
            self.r["dvc_version"] = self.timed([[self.dvc, "--version"]], self.tmp, warmup=True)
        shim = shutil.which("gitml", path=os.environ.get("PATH"))
        if shim and Path(shim).resolve() != Path(self.gitml[0]).resolve():
            self.r["gitml_shim"] = (shim, self.timed([[shim, "--version"]], self.tmp, warmup=True))

    def where_time_goes(self, repo: Path) -> None:
        self.log("gitml: per-phase timings, importtime, cProfile")
        # A slow cold diff is already timed 5 times whole; one instrumented run shows its parts.
        cold = self.r.get(("gitml", "big", "cold"))
        self.phase_reps = {"warm": self.reps, "cold": 1 if cold and cold["median"] > 10 else self.reps}
        for state in ("warm", "cold"):
            with self.section(f"instrumented diff {state}"):
                self.r[("phases", state)] = self.phases(repo, state == "cold", self.phase_reps[state])
        # Import time per module (top entries by cumulative time).
        p = self.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-c",
                "import gitml.cli.main, gitml.cli.diff, gitml.diff, yaml, tabulate",
            ],
            repo,
            text=True,
        )
        entries = []
        for line in p.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _self_us, cum_us, name = line.split(":", 1)[1].split("|")
            depth = (len(name) - len(name.lstrip())) // 2
            entries.append((int(cum_us), depth, name.strip()))
        self.r["importtime"] = entries
        # cProfile dumps: warm and cold.
        for label, drop in (("warm", False), ("cold", True)):
            if drop:
                for suffix in ("", "-wal", "-shm"):
                    (repo / ".git" / "gitml" / f"index.sqlite{suffix}").unlink(missing_ok=True)
            out = self.prof_dir / f"diff-{label}.prof"
            self.run(
                [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "gitml", "diff", "main", "feature"],
                repo,
            )
            self.r[("profile", label)] = (str(out), self.top_functions(out))

    def phases(self, repo: Path, cold: bool, reps: int) -> dict:
        runs = [self.worker("phases", {"cold": cold}, repo) for _ in range(reps)]
        if any(r["exit"] for r in runs):
            self.notes.append(f"instrumented diff exited {runs[0]['exit']}")
        keys = [
            "import gitml.cli.main (click)",
            "import diff modules (dulwich, sqlite3 …)",
            "command total (in process)",
            "in_process_total",
        ]
        agg = {k: statistics.median(r[k] for r in runs) for k in keys}
        labels = list(runs[0]["phases"])
        agg["phases"] = {
            lab: (statistics.median(r["phases"].get(lab, [0, 0])[0] for r in runs), runs[0]["phases"][lab][1])
            for lab in labels
        }
        return agg

    @staticmethod
    def top_functions(path: Path, n: int = 16) -> list[tuple[float, float, int, str]]:
        """Top entries by cumulative time, without the frames that wrap everything.

        The first row is all imports (importlib's ``_find_and_load``, counted once at the top).
        """
        import pstats

        st = pstats.Stats(str(path))
        rows, imports = [], 0.0
        wrappers = ("<frozen", "<string>", "runpy", "click/core.py", "__main__.py", "cli/main.py")
        for (file, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():
            if func == "_find_and_load" and "importlib" in file:
                imports = max(imports, ct)
            if file == "~" and func in (
                "<built-in method builtins.exec>",
                "<built-in method builtins.__import__>",
            ):
                continue
            if any(w in file for w in wrappers):
                continue
            where = f"{'/'.join(Path(file).parts[-2:])}:{line}({func})" if line else func
            rows.append((ct, tt, nc, where))
        rows.sort(reverse=True)
        return [(imports, 0.0, 0, "all imports (importlib _find_and_load)"), *rows[:n]]

    def wait_idle(self) -> None:
        pattern = self.args.wait_idle
        if not pattern:
            return
        deadline = time.time() + 40 * 60
        while time.time() < deadline:
            p = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
            pids = [x for x in p.stdout.split() if int(x) != os.getpid()]
            if not pids:
                return
            self.log(f"waiting: {pattern!r} still running ({' '.join(pids)})")
            time.sleep(60)
        self.notes.append(f"other benchmarks ({pattern}) were still running after 40 minutes of waiting")

    def compile_gitml(self) -> None:
        """Fresh .pyc files for gitml, as an install (or a first run) leaves them.

        Without this, in an environment with PYTHONDONTWRITEBYTECODE=1 and stale or missing
        ``__pycache__`` files, every timed process would compile gitml from source.
        """
        code = "import gitml, os; print(os.path.dirname(gitml.__file__))"
        pkg = self.run([sys.executable, "-c", code], self.tmp, text=True).stdout.strip()
        self.run([sys.executable, "-m", "compileall", "-q", pkg], self.tmp)
        rev = self.run(["git", "rev-parse", "--short", "HEAD"], ROOT, check=False, text=True).stdout.strip()
        dirty = self.run(["git", "status", "--porcelain", "--", "gitml"], ROOT, check=False, text=True).stdout
        self.r["gitml_rev"] = f"{rev}{' with uncommitted changes under gitml/' if dirty.strip() else ''}"

    def run_all(self) -> None:
        self.wait_idle()
        self.compile_gitml()
        self.dvc_site: dict[Path, Path] = {}
        n_commits, n_runs, chunk = self.cfg["commits"], self.cfg["runs"], self.cfg["chunk"]
        # (commits on main, commits on feature, how far back from main's tip feature forks)
        self.shape = {"big": (n_commits, FEATURE_COMMITS, FORK_BACK), "small": SMALL_SHAPE}
        self.main_c = {k: m - 1 for k, (m, _f, _b) in self.shape.items()}
        self.feature_c = {k: m + f - 1 for k, (m, f, _b) in self.shape.items()}
        if not self.dvc:
            self.notes.append(
                "DVC not found (/var/tmp/dvcenv/bin/dvc, /var/tmp/dvcenv-diff/bin/dvc "
                "or --dvc): the DVC columns are empty"
            )
        self.floors()
        big = self.gitml_side("big", n_runs, chunk)
        self.dvc_side("big")
        self.gitml_side("small", sum(SMALL_SHAPE[:2]), 100)
        self.dvc_side("small")
        self.where_time_goes(big)
        self.r["elapsed"] = time.perf_counter() - self.t_start

    # -- report ----------------------------------------------------------------------------------
    def g(self, *key):
        return self.r.get(key if len(key) > 1 else key[0])

    def report(self) -> str:
        cfg, reps = self.cfg, self.reps
        out = ["# Benchmark: `gitml diff` versus `dvc metrics diff` + `dvc params diff`", ""]
        cmd = "python bench/bench_diff.py" + (" --quick" if self.mode == "quick" else "")
        mode = f"{self.mode} mode"
        if self.args.runs or self.args.commits:
            cmd += f" --runs {cfg['runs']} --commits {cfg['commits']}"
            mode = "custom sizes"
        if reps != 5:
            cmd += f" --reps {reps}"
        out += [
            f"Command: `{cmd}` ({mode}, {reps} repetitions, {self.r.get('elapsed', 0) / 60:.1f} min in all).",
            "",
            f"Machine: {self.machine_line()} gitml at commit {self.r.get('gitml_rev', '?')}.",
            "",
        ]
        gb = self.r.get(("gitml", "big", "runs"))
        out += [
            f"Repository: {cfg['commits']:,} commits on `main` (git fast-import), `feature` = "
            f"{FEATURE_COMMITS} commits forked {FORK_BACK} commits before main's tip; "
            f"{gb:,} runs on `refs/gitml/runs` (10 params, 10 metrics each) spread over "
            f"{self.g('gitml', 'big', 'commits'):,} commits, tips included "
            f"(preload: {self.g('gitml', 'big', 'preload')['s']:.0f} s with `write_runs`, "
            f"batches of {cfg['chunk']:,}). Both tips differ in "
            f"{self.g('gitml', 'big', 'changed_keys')} of 20 keys. The DVC repository has the same history and the "
            "same params.yaml / metrics.json at every commit. Small repos: "
            f"{SMALL_SHAPE[0]} commits on main, {SMALL_SHAPE[1]} on feature, one run per commit.",
            "",
        ]

        def cell(x):
            return "—" if x is None else f"{x:.3f}" if x < 10 else f"{x:.1f}"

        def ratio(dvc, gitml):
            if dvc is None or not gitml:
                return ""
            return f"{dvc / gitml:.1f}×"

        def med(*key):
            v = self.r.get(key)
            return None if v is None else v["median"]

        gw, gc = med("gitml", "big", "warm"), med("gitml", "big", "cold")
        dw, dc = med("dvc", "big", "warm"), med("dvc", "big", "cold")
        sgw, sgc = med("gitml", "small", "warm"), med("gitml", "small", "cold")
        sdw, sdc = med("dvc", "small", "warm"), med("dvc", "small", "cold")
        rb = med("gitml", "big", "rebuild")

        def goal(ok: bool | None, text: str) -> str:
            if ok is None:
                return text + ": not measured"
            return text + (": met" if ok else ": **not met**")

        out += [
            "Wall time of whole processes in seconds, median of "
            f"{reps}; ratio = DVC / gitml (above 1: gitml is faster).",
            "",
            "| measure | gitml (s) | DVC (s) | DVC / gitml | goal |",
            "|---|---:|---:|---:|---|",
            f"| big repo, warm (gitml index up to date) | {cell(gw)} | {cell(dw)} | {ratio(dw, gw)} | "
            f"{goal(None if gw is None else gw < GOAL_WARM_S, f'gitml < {GOAL_WARM_S} s')}; "
            f"{goal(None if dw is None or gw is None else gw < dw, 'faster than DVC')} |",
            f"| big repo, cold (no gitml index, as in a fresh clone) | {cell(gc)} | {cell(dc)} | "
            f"{ratio(dc, gc)} | {goal(None if gc is None else gc <= 1.0, 'gitml ≤ 1 s')}; "
            f"{goal(None if dc is None or gc is None else gc < dc, 'faster than DVC')} |",
            f"| big repo, `gitml runs list` with no index (newest 50) | {cell(med('gitml', 'big', 'list cold'))} "
            f"| | | {goal(None if med('gitml', 'big', 'list cold') is None else med('gitml', 'big', 'list cold') <= 1.0, 'gitml ≤ 1 s')} |",
            f"| small repo, warm | {cell(sgw)} | {cell(sdw)} | {ratio(sdw, sgw)} | "
            f"{goal(None if sgw is None else sgw < GOAL_WARM_S, f'gitml < {GOAL_WARM_S} s')}; "
            f"{goal(None if sdw is None or sgw is None else sgw < sdw, 'faster than DVC')} |",
            f"| small repo, cold | {cell(sgc)} | {cell(sdc)} | {ratio(sdc, sgc)} | "
            f"{goal(None if sdc is None or sgc is None else sgc < sdc, 'faster than DVC')} |",
            f"| `gitml index rebuild`, {gb:,} runs (process) | {cell(rb)} | | | {gb / rb:,.0f} runs/s |"
            if rb
            else "| `gitml index rebuild` | — | | | |",
            f"| cold − warm, big repo (what having no index costs) | {cell(gc - gw)} | | | |"
            if gc and gw
            else "",
        ]
        for key in ("big", "small"):
            for state in ("warm", "cold"):
                v = self.r.get(("dvc", key, state))
                if v:
                    out.append(
                        f"| of which `dvc metrics diff` / `dvc params diff`, {key} {state} | | "
                        f"{cell(v['parts'][0])} / {cell(v['parts'][1])} | | |"
                    )
        floor_rows = [
            ("`python -c pass`", self.r.get("python"), None),
            ("`gitml --version`", self.r.get("gitml_version"), None),
            ("`dvc --version`", None, self.r.get("dvc_version")),
        ]
        for label, gv, dv in floor_rows:
            out.append(
                f"| floor: {label} | {cell(gv['median']) if gv else ''} | "
                f"{cell(dv['median']) if dv else ''} | | |"
            )
        out.append("")
        spread = []
        for key in (
            ("gitml", "big", "warm"),
            ("gitml", "big", "cold"),
            ("dvc", "big", "warm"),
            ("dvc", "big", "cold"),
        ):
            v = self.r.get(key)
            if v:
                spread.append(f"{key[0]} {key[2]} {cell(v['min'])}–{cell(v['max'])}")
        if spread:
            out += ["Spread (min–max, big repo): " + ", ".join(spread) + ".", ""]
        if "gitml_shim" in self.r:
            shim, v = self.r["gitml_shim"]
            out += [
                f"gitml is timed through its console script `{self.gitml[0]}`; through the pyenv shim "
                f"`{shim}` a process costs more (`gitml --version`: {cell(v['median'])} s against "
                f"{cell(self.r['gitml_version']['median'])} s).",
                "",
            ]
        # Where the time goes.
        pw, pc = self.r.get(("phases", "warm")), self.r.get(("phases", "cold"))
        if pw and pc:
            out += [
                "## Where gitml's time goes (big repo)",
                "",
                "An instrumented `gitml diff main feature` in a fresh process (median of "
                f"{self.phase_reps['warm']} warm, {self.phase_reps['cold']} cold), "
                "index up to date (warm) or deleted first (cold). Indented phases are parts of the command; "
                "stdlib modules the harness had already imported (json, subprocess …) are not in the "
                "import rows. The whole-process row is the uninstrumented median of the first table.",
                "",
                "| phase | warm ms | cold ms | calls (warm / cold) |",
                "|---|---:|---:|---:|",
                f"| interpreter start and exit (`python -c pass`) | {self.r['python']['median'] * 1000:.0f} | | |",
            ]
            for k in (
                "import gitml.cli.main (click)",
                "import diff modules (dulwich, sqlite3 …)",
                "command total (in process)",
            ):
                out.append(f"| {k} | {pw[k] * 1000:.1f} | {pc[k] * 1000:.1f} | |")
            parts = [p[2] for p in PHASES if p[3] == 2 and p[1] != "run_from_doc"]
            parent = next(p[2] for p in PHASES if p[1] == "open_index")

            def rest(ph: dict) -> float:
                return ph["phases"].get(parent, (0, 0))[0] - sum(
                    ph["phases"].get(x, (0, 0))[0] for x in parts
                )

            for _m, _a, lab, depth in PHASES:
                (sw, nw), (sc, nc) = pw["phases"].get(lab, (0.0, 0)), pc["phases"].get(lab, (0.0, 0))
                calls = f"{nw:,}" if nw == nc else f"{nw:,} / {nc:,}"
                out.append(f"| {'&nbsp;' * 2 * depth}{lab} | {sw * 1000:.1f} | {sc * 1000:.1f} | {calls} |")
                if lab.startswith("SQLite inserts"):
                    out.append(
                        f"| &nbsp;&nbsp;&nbsp;&nbsp;rest: connect, schema, DROP/CREATE INDEX, COMMIT … | "
                        f"{rest(pw) * 1000:.1f} | {rest(pc) * 1000:.1f} | |"
                    )
            out.append(
                f"| whole process (first table) | {gw * 1000:.0f} | {gc * 1000:.0f} | |" if gw and gc else ""
            )
            out.append("")
            skip = ("site", "encodings", "gitml")
            imp = sorted(
                e for e in self.r.get("importtime", []) if "." not in e[2] and not e[2].startswith(skip)
            )[::-1][:10]
            mine = sum(e[0] for e in self.r.get("importtime", []) if e[1] == 0 and e[2].startswith("gitml"))
            if imp:
                out += [
                    "Largest packages imported (`python -X importtime`, cumulative, where first imported; "
                    f"gitml.cli.main, gitml.cli.diff and gitml.diff with all they import: {mine / 1000:.0f} ms): "
                    + ", ".join(f"{name} {cum / 1000:.0f} ms" for cum, _d, name in imp)
                    + ".",
                    "",
                ]
        for label in ("warm", "cold"):
            prof = self.r.get(("profile", label))
            if prof:
                out += [
                    f"cProfile, {label} (`python -m cProfile -o diff-{label}.prof -m gitml diff main feature`;"
                    " top by cumulative time):",
                    "",
                    "```",
                ]
                out += [
                    f"{ct * 1000:9.1f} ms cum {tt * 1000:8.1f} ms self {nc:8d} calls  {where}"
                    for ct, tt, nc, where in prof[1]
                ]
                out += ["```", ""]
        # Outputs, for the record.
        out_g = self.r.get(("gitml", "big", "output"))
        if out_g:
            out += ["`gitml diff main feature` output (big repo):", "", "```", out_g.rstrip(), "```", ""]
        out_d = self.r.get(("dvc", "big", "output"))
        if out_d:
            out += [
                "`dvc metrics diff main feature` and `dvc params diff main feature` output (big repo):",
                "",
                "```",
                out_d.rstrip(),
                "```",
                "",
            ]
        if self.loads:
            out += [
                "Load average (1 min) when each section started: "
                + ", ".join(f"{lab} {v:.2f}" for lab, v in self.loads)
                + ".",
                "",
            ]
        busy = self.contention()
        if busy:
            out += [
                "Other processes were running during some measures (2 cores shared; "
                f"`pgrep -f '{self.args.busy_pattern}'` every 5 s), so those figures are inflated: "
                + "; ".join(busy)
                + ".",
                "",
            ]
        else:
            out += [f"No other process matching `{self.args.busy_pattern}` ran during the measures.", ""]
        if self.notes:
            out += ["Notes:", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(out)

    def machine_line(self) -> str:
        cpu = cpu_model()
        code = (
            "import importlib.metadata as m\nfor p in ('dulwich', 'click'):\n    print(p, m.version(p))\n"
            "import gitml; print('gitml', gitml.__version__)\n"
        )
        vers = [
            v for v in self.run([sys.executable, "-c", code], self.tmp, text=True).stdout.split("\n") if v
        ]
        git_v = self.run(["git", "--version"], self.tmp, text=True).stdout.strip()
        dvc_v = (
            f", DVC {self.run([self.dvc, '--version'], self.tmp, text=True).stdout.strip()}"
            if self.dvc
            else ""
        )
        return (
            f"{_dt.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
            f"Python {platform.python_version()}, {', '.join(vers)}, {git_v}{dvc_v}."
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 runs over 1,000 commits")
    ap.add_argument("--runs", type=int, help="override the number of runs")
    ap.add_argument("--commits", type=int, help="override the number of commits on main")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per measure (default 5)")
    ap.add_argument("--workdir", default="/var/tmp", help="parent of the working folder (default /var/tmp)")
    ap.add_argument("--dvc", help="path of the dvc executable (default: /var/tmp/dvcenv/bin/dvc)")
    ap.add_argument(
        "--wait-idle",
        metavar="PATTERN",
        help="first wait (up to 40 min) until `pgrep -f PATTERN` finds nothing",
    )
    ap.add_argument(
        "--busy-pattern",
        default=r"bench_(tracking|artifacts|registry|hooks|sync)|pytest",
        help="processes whose presence during a measure the report flags",
    )
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)
    bench = Bench(args)
    try:
        bench.run_all()
        text = bench.report()
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n")
    finally:
        if args.keep:
            print(f"kept {bench.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(bench.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
