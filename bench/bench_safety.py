#!/usr/bin/env python
"""Safety benchmark: what treating runs as hostile (issue 9) costs, old code against new.

Run ``python bench/bench_safety.py`` (full, about 5 minutes on 2 cores) or
``python bench/bench_safety.py --quick`` (about 1/10 of the sizes). It prints a Markdown table
of absolute figures and ratios (new / old: above 1 means the hardened code is slower).

OLD is gitml at ``--old-rev`` (default 4d1bd56, the last commit before the hardening), checked
out with ``git worktree add --detach`` into the benchmark's folder; NEW is this working tree.
Each side runs as its own processes with ``PYTHONPATH`` set to its tree, so ``python -m gitml``
and ``import gitml`` load that side's code (the script checks ``gitml.__file__``). Both sides
measure the same repositories, built once with NEW's bulk writer
(``gitml.tracking.commit.write_runs``), and the timed runs alternate OLD/NEW so that a slow
spell hits both alike.

Cases:

1. ``gitml index rebuild`` on a runs ref of 20,000 runs (5 params, 3 metrics, 1 tag, 1 file
   artifact entry each): runs/s;
2. incremental catch-up: 150 runs committed one by one with ``gitml.commit_run`` in one
   process (no query in between; their per-run cost is reported too), then the first
   ``gitml.search_runs()``, against a warm second call;
3. ``gitml commit-run -a FILE`` (a fresh 1 MB file each time) as a CLI process, median of 20;
4. ``gitml runs show ID`` as a CLI process, median of 20;
5. ``gitml pull`` of 2,000 new runs from a bare remote into a clone, fast-forward and with
   local runs of the clone's own (a merge), against ``git fetch`` of the same ref (the floor).

Before measuring, the script waits until ``pgrep -f PATTERN`` (``--wait-idle``, default
``pytest``) finds nothing, and waits again before each case; the report gives the load average.
Every command runs with a scrubbed environment (no ``GIT_*``; ``HOME`` a folder holding a
``.gitconfig``), and both trees are byte-compiled first, as an installed gitml would be.
MLflow, the peer of the tracking benchmark, is included only when it is already installed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
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

from _common import cpu_model

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "BENCH_RESULT "
EXPERIMENT = "bench"
BASE_TIME = 1_700_000_000
OLD_REV = "4d1bd56"
SIDES = ("old", "new")
MODES = {
    "full": {
        "runs": 20_000,
        "chunk": 5_000,
        "catchup": 150,
        "catchup_reps": 3,
        "cli_reps": 20,
        "rebuild_reps": 3,
        "pull": 2_000,
        "pull_base": 1_000,
        "pull_local": 10,
        "pull_reps": 5,
        "artifact_mb": 1,
    },
    "quick": {
        "runs": 2_000,
        "chunk": 1_000,
        "catchup": 15,
        "catchup_reps": 2,
        "cli_reps": 5,
        "rebuild_reps": 2,
        "pull": 200,
        "pull_base": 100,
        "pull_local": 10,
        "pull_reps": 3,
        "artifact_mb": 1,
    },
}


# ------------------------------------------------------------------------------------------------
# Workers: one process each, importing whichever gitml PYTHONPATH points at
# ------------------------------------------------------------------------------------------------
def run_payload(i: int) -> tuple[dict, dict, dict, dict]:
    """Deterministic params, metrics, tag and artifact entry of run ``i``."""
    rnd = random.Random(i)
    params = {
        "lr": round(10 ** rnd.uniform(-5, -1), 7),
        "batch_size": rnd.choice([16, 32, 64, 128, 256]),
        "optimizer": rnd.choice(["adam", "sgd", "adamw"]),
        "epochs": rnd.randint(1, 100),
        "model": rnd.choice(["resnet18", "vit-b16", "mlp", "gbm"]),
    }
    metrics = {"accuracy": rnd.random(), "loss": rnd.random() * 3, "f1": rnd.random()}
    tags = {"team": rnd.choice(["vision", "nlp", "tabular"])}
    artifacts = {
        "model.pkl": {
            "kind": "file",
            "sha256": hashlib.sha256(f"model-{i}".encode()).hexdigest(),
            "size": 1_000_000 + i,
        }
    }
    return params, metrics, tags, artifacts


def w_preload(spec: dict) -> dict:
    """Put ``n`` runs on the ref with ``write_runs``, ``chunk`` runs per commit."""
    import gitml
    from gitml.core import formats
    from gitml.core.gitrepo import GitRepo
    from gitml.core.ids import new_run_id
    from gitml.tracking.commit import write_runs

    n, offset, chunk = spec["n"], spec["offset"], spec["chunk"]
    ids: list[str] = []
    t0 = time.perf_counter()
    with GitRepo(spec["repo"]) as repo:
        head = repo.git("rev-parse", "HEAD").decode().strip()
        for start in range(offset, offset + n, chunk):
            batch = []
            for i in range(start, min(start + chunk, offset + n)):
                p, m, t, a = run_payload(i)
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
                    source={"commit": head, "branch": "main", "dirty": False, "remote": None},
                    command="python train.py",
                    gitml_version=gitml.__version__,
                    params={k: formats.param_value(k, v) for k, v in p.items()},
                    metrics={k: formats.metric_value(k, v) for k, v in m.items()},
                    metric_info={k: {"step": 0, "timestamp": end} for k in m},
                    tags=t,
                    artifacts=a,
                )
                batch.append((run, []))
                if len(ids) < 3:
                    ids.append(run.id)
            write_runs(repo, batch, f"import {len(batch)} runs")
    return {"s": time.perf_counter() - t0, "n": n, "ids": ids}


def w_catchup(spec: dict) -> dict:
    """Commit ``n`` runs one by one with ``commit_run``, then time the first ``search_runs()``."""
    import gitml

    repo, n, offset = spec["repo"], spec["n"], spec["offset"]
    payloads = [run_payload(offset + i) for i in range(n)]
    commits = []
    for i, (p, m, t, _a) in enumerate(payloads):
        t0 = time.perf_counter()
        gitml.commit_run(name=f"late-{i}", experiment=EXPERIMENT, params=p, metrics=m, tags=t, repo=repo)
        commits.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    count = len(gitml.search_runs(repo=repo))
    first = time.perf_counter() - t0
    warm = []
    for _ in range(3):
        t0 = time.perf_counter()
        gitml.search_runs(repo=repo)
        warm.append(time.perf_counter() - t0)
    return {"commit_run": commits, "first": first, "warm": warm, "count": count, "file": gitml.__file__}


WORKERS = {"preload": w_preload, "catchup": w_catchup}


def worker_main(name: str, spec_json: str) -> int:
    res = WORKERS[name](json.loads(spec_json))
    sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
def _short(cmd: str) -> str:
    """A process named by its program and the test file it runs, if any (not its whole command line)."""
    words = cmd.split()
    name = Path(words[0]).name if words else "?"
    tests = [w for w in words if w.startswith("tests/")][:1]
    return " ".join([name, *("-m pytest" for w in words[1:3] if w == "pytest"), *tests])


def med(values: list[float]) -> float:
    return statistics.median(values)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.mode = "quick" if args.quick else "full"
        self.cfg = dict(MODES[self.mode])
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-safetybench-", dir=args.workdir))
        self.home = self.tmp / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Bench User\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n"
        )
        self.base_env = self._env()
        self.worktree = self.tmp / "old-tree"
        self.roots = {"old": self.worktree, "new": self.tmp / "new-tree"}
        self.r: dict = {}
        self.notes: list[str] = []
        self.loads: dict[str, float] = {}
        self.samples: list[float] = []
        self.seen: set[str] = set()
        self.busy_log: list[tuple[float, list[str]]] = []
        self.measuring = False
        self.t_start = time.perf_counter()
        threading.Thread(target=self._watch, daemon=True).start()

    # -- environment -----------------------------------------------------------------------------
    def _env(self) -> dict:
        drop = ("GIT_", "PYTHONPATH", "XDG_CONFIG_HOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "MLFLOW_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"), GIT_CONFIG_NOSYSTEM="1")
        return env

    def env(self, side: str | None) -> dict:
        return self.base_env if side is None else dict(self.base_env, PYTHONPATH=str(self.roots[side]))

    def gitml(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "gitml", *args]

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    def _busy(self) -> list[str]:
        if not self.args.wait_idle:
            return []
        p = subprocess.run(["pgrep", "-af", self.args.wait_idle], capture_output=True, text=True, check=False)
        mine = str(os.getpid())
        return [line for line in p.stdout.splitlines() if line.split(" ", 1)[0] != mine]

    def quiet(self) -> float:
        """Wait until no process matches ``--wait-idle``; return the seconds waited."""
        waited = 0.0
        while self._busy():
            if waited == 0:
                self.log(f"waiting: a process matches {self.args.wait_idle!r}")
            time.sleep(20)
            waited += 20
        if waited:
            time.sleep(10)  # let the load of what just finished drain a little
        return waited

    def wait_idle(self, label: str) -> None:
        """Wait for a quiet machine before a case, then note the load average."""
        waited = self.quiet()
        if waited:
            self.notes.append(f"waited {waited:.0f} s for a quiet machine before case {label}")
        self.loads[label] = os.getloadavg()[0]
        self.measuring = True

    def _watch(self) -> None:
        """Every 2 s while measuring: sample the load and log processes matching ``--wait-idle``."""
        while True:
            if self.measuring:
                self.samples.append(os.getloadavg()[0])
                found = [_short(line.split(" ", 1)[1]) for line in self._busy() if " " in line]
                if found:
                    self.busy_log.append((time.time(), found))
            time.sleep(2)

    def disturbed(self, t0: float, t1: float) -> list[str]:
        return sorted({n for t, names in self.busy_log if t0 - 2 <= t <= t1 + 2 for n in names})

    def run(self, argv: list, cwd: Path, side: str | None = None, **kw) -> subprocess.CompletedProcess:
        p = subprocess.run(
            argv, cwd=cwd, env=self.env(side), capture_output=True, text=True, check=False, **kw
        )
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} failed ({p.returncode}): {p.stderr[-2000:]}")
        return p

    def wall(self, argv: list, cwd: Path, side: str | None = None) -> tuple[float, str]:
        t0 = time.perf_counter()
        p = subprocess.run(argv, cwd=cwd, env=self.env(side), capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} failed ({p.returncode}): {p.stderr[-2000:]}")
        return dt, p.stdout

    def worker(self, name: str, spec: dict, side: str) -> dict:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, json.dumps(spec)]
        p = subprocess.run(cmd, env=self.env(side), cwd=self.tmp, capture_output=True, text=True, check=False)
        for line in reversed(p.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])
        raise RuntimeError(f"worker {name} ({side}) failed ({p.returncode}): {p.stderr[-3000:]}")

    def alternate(self, label: str, reps: int, fn, sides: tuple[str, ...] = SIDES) -> dict[str, list[float]]:
        """``fn(side, k)`` -> seconds, ``reps`` times per side, the sides taking turns first.

        Each round (one measure per side) starts on a quiet machine; a round during which a
        process matching ``--wait-idle`` appeared is thrown away and run again (up to ``reps``
        extra rounds), so every figure kept was taken with no test run alongside it.
        """
        out: dict[str, list[float]] = {s: [] for s in sides}
        k = redone = 0
        while k < reps:
            self.quiet()
            t0 = time.time()
            got = {side: fn(side, k + redone) for side in (sides if k % 2 == 0 else sides[::-1])}
            others = self.disturbed(t0, time.time())
            if others and redone < max(reps, 3):
                redone += 1
                self.seen.update(others)
                continue
            if others:
                self.notes.append(f"{label}: a round kept although {', '.join(others)} ran during it")
            for side, dt in got.items():
                out[side].append(dt)
            k += 1
        if redone:
            self.notes.append(
                f"{label}: {redone} round(s) run again because a test process started during them"
            )
        return out

    # -- setup -----------------------------------------------------------------------------------
    def setup_trees(self) -> None:
        self.run(["git", "worktree", "add", "--detach", str(self.worktree), self.args.old_rev], ROOT)
        self.r["old_rev"] = self.run(["git", "rev-parse", "--short", "HEAD"], self.worktree).stdout.strip()
        # NEW: the working tree's package as it is now, copied, so that commits and edits landing
        # in the working tree while the benchmark runs cannot change what is measured.
        self.r["new_rev"] = self.run(["git", "rev-parse", "--short", "HEAD"], ROOT).stdout.strip()
        self.r["new_dirty"] = self.dirty()
        shutil.copytree(
            ROOT / "gitml", self.roots["new"] / "gitml", ignore=shutil.ignore_patterns("__pycache__")
        )
        for side in SIDES:
            where = self.run([sys.executable, "-c", "import gitml; print(gitml.__file__)"], self.tmp, side)
            got = Path(where.stdout.strip()).resolve()
            want = (self.roots[side] / "gitml" / "__init__.py").resolve()
            if got != want:
                raise RuntimeError(f"{side}: import gitml loads {got}, not {want}")
            self.r[("file", side)] = str(got)
            # What an installed gitml has: .pyc files (the caller may set PYTHONDONTWRITEBYTECODE).
            self.run([sys.executable, "-m", "compileall", "-q", str(self.roots[side] / "gitml")], self.tmp)
        self.log(
            f"OLD {self.r['old_rev']} at {self.worktree}, NEW {self.r['new_rev']} (+ edits) copied from {ROOT}"
        )

    def dirty(self) -> list[str]:
        out = self.run(["git", "status", "--porcelain", "--", "gitml"], ROOT).stdout
        return [line[3:] for line in out.splitlines()]

    def remove_tree(self) -> None:
        if self.worktree.exists():
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(self.worktree)],
                cwd=ROOT,
                capture_output=True,
                check=False,
            )

    def new_repo(self, name: str) -> Path:
        repo = self.tmp / name
        repo.mkdir()
        self.run(["git", "init", "-q", "-b", "main"], repo)
        (repo / "train.py").write_text("print('train')\n")
        (repo / ".git" / "info" / "exclude").write_text("*.bin\n")
        self.run(["git", "add", "train.py"], repo)
        self.run(["git", "commit", "-qm", "code"], repo)
        return repo

    def preload(self, repo: Path, n: int, offset: int, chunk: int) -> dict:
        return self.worker("preload", {"repo": str(repo), "n": n, "offset": offset, "chunk": chunk}, "new")

    def copy(self, src: Path, name: str) -> Path:
        dst = self.tmp / name
        if dst.exists():
            shutil.rmtree(dst)
        self.run(["cp", "-a", str(src), str(dst)], self.tmp)
        return dst

    # -- cases -----------------------------------------------------------------------------------
    def case_rebuild(self) -> Path:
        n = self.cfg["runs"]
        big = self.new_repo("big")
        self.log(f"preloading {n:,} runs")
        pre = self.preload(big, n, 0, self.cfg["chunk"])
        self.r["preload"] = pre
        self.log(f"preload took {pre['s']:.1f} s")
        self.wait_idle("1 index rebuild")

        def one(side: str, _k: int) -> float:
            dt, out = self.wall(self.gitml("index", "rebuild"), big, side)
            if str(n) not in out.replace(",", ""):
                self.notes.append(f"{side} index rebuild printed {out.strip()!r}, expected {n}")
            return dt

        self.gitml_check(big)
        self.r["rebuild"] = self.alternate("1 index rebuild", self.cfg["rebuild_reps"], one)
        return big

    def gitml_check(self, repo: Path) -> None:
        """Both sides read the same runs from the preloaded ref."""
        for side in SIDES:
            p = self.run(self.gitml("runs", "list", "-n", "0", "--json"), repo, side)
            try:
                count = len(json.loads(p.stdout))
            except ValueError:
                count = -1
            self.r[("listed", side)] = count

    def case_catchup(self, big: Path) -> dict[str, Path]:
        repos: dict[str, Path] = {}
        n = self.cfg["catchup"]

        def one(side: str, _k: int) -> dict:
            # Untimed: a fresh copy of the big repository with an up-to-date index.
            repos[side] = self.copy(big, f"catchup-{side}")
            self.run(self.gitml("index", "rebuild"), repos[side], side)
            self.log(f"{side}: {n} commit_run calls, then search_runs()")
            res = self.worker("catchup", {"repo": str(repos[side]), "n": n, "offset": 10**6}, side)
            if res["count"] != self.cfg["runs"] + n:
                self.notes.append(
                    f"{side}: search_runs() found {res['count']} runs, expected {self.cfg['runs'] + n}"
                )
            return res

        self.wait_idle("2 catch-up")
        self.r["catchup"] = self.alternate("2 catch-up", self.cfg["catchup_reps"], one)
        return repos

    def case_commit_cli(self) -> None:
        repos = {side: self.new_repo(f"commit-{side}") for side in SIDES}
        size = self.cfg["artifact_mb"] << 20
        self.wait_idle("3 commit-run")

        def one(side: str, k: int) -> float:
            art = repos[side] / "model.bin"
            art.write_bytes(os.urandom(size))  # a new object each time: really stored
            argv = self.gitml(
                "commit-run", "-n", f"cli-{k}", "-p", "lr=0.1", "-m", "acc=0.9", "-a", "model.bin"
            )
            return self.wall(argv, repos[side], side)[0]

        for side in SIDES:
            one(side, -1)  # warm-up
        self.r["commit_cli"] = self.alternate("3 commit-run", self.cfg["cli_reps"], one)
        self.r["version"] = self.alternate(
            "3 --version",
            self.cfg["cli_reps"],
            lambda side, _k: self.wall(self.gitml("--version"), self.tmp, side)[0],
        )

    def case_show(self, repos: dict[str, Path], run_id: str) -> None:
        self.wait_idle("4 runs show")
        for side in SIDES:
            out = self.wall(self.gitml("runs", "show", run_id), repos[side], side)[1]
            if run_id not in out:
                self.notes.append(f"{side}: runs show output lacks the run id")

        self.r["show"] = self.alternate(
            "4 runs show",
            self.cfg["cli_reps"],
            lambda side, _k: self.wall(self.gitml("runs", "show", run_id), repos[side], side)[0],
        )

    def case_pull(self) -> None:
        cfg = self.cfg
        team = self.tmp / "team.git"
        self.run(["git", "init", "-q", "--bare", "-b", "main", str(team)], self.tmp)
        src = self.new_repo("pull-src")
        self.run(["git", "remote", "add", "origin", str(team)], src)
        self.preload(src, cfg["pull_base"], 2 * 10**6, cfg["pull_base"])
        self.run(["git", "push", "-q", "origin", "main", "refs/gitml/runs:refs/gitml/runs"], src)
        ff = self.tmp / "clone-ff"
        self.run(["git", "clone", "-q", str(team), str(ff)], self.tmp)
        self.run(["git", "fetch", "-q", "origin", "refs/gitml/runs:refs/gitml/runs"], ff)
        div = self.copy(ff, "clone-diverged")
        self.preload(div, cfg["pull_local"], 3 * 10**6, cfg["pull_local"])
        self.log(f"pull: {cfg['pull']:,} new runs on the remote (100 a commit)")
        self.preload(src, cfg["pull"], 4 * 10**6, 100)
        self.run(["git", "push", "-q", "origin", "refs/gitml/runs:refs/gitml/runs"], src)
        self.wait_idle("5 pull")

        def pull(template: Path):
            def one(side: str, _k: int) -> float:
                work = self.copy(template, "clone-work")
                dt, out = self.wall(self.gitml("pull", "origin"), work, side)
                m = re.search(r"(\d+) run\(s\) merged", out)
                if not m or int(m.group(1)) != cfg["pull"]:
                    self.notes.append(f"{side} pull into {template.name} printed {out.strip()!r}")
                return dt

            return one

        def fetch(_side: str, _k: int) -> float:
            work = self.copy(ff, "clone-work")
            spec = "refs/gitml/runs*:refs/gitml/remotes/origin/runs*"
            return self.wall(["git", "fetch", "--no-tags", "--no-write-fetch-head", "origin", spec], work)[0]

        self.r["pull_ff"] = self.alternate("5 pull fast-forward", cfg["pull_reps"], pull(ff))
        self.r["pull_div"] = self.alternate("5 pull merge", cfg["pull_reps"], pull(div))
        self.r["fetch"] = self.alternate("5 git fetch", cfg["pull_reps"], fetch, sides=("git",))

    def run_all(self) -> None:
        try:
            subprocess.run(
                [sys.executable, "-c", "import mlflow"], env=self.base_env, capture_output=True, check=True
            )
            self.notes.append(
                "MLflow is installed but has no counterpart here: this compares gitml with itself"
            )
        except subprocess.CalledProcessError:
            self.notes.append(
                "MLflow is not installed here (not installed for this benchmark), so no peer column"
            )
        self.setup_trees()
        big = self.case_rebuild()
        run_id = self.r["preload"]["ids"][0]
        repos = self.case_catchup(big)
        self.case_commit_cli()
        self.case_show(repos, run_id)
        self.case_pull()
        self.measuring = False
        head = self.run(["git", "rev-parse", "--short", "HEAD"], ROOT).stdout.strip()
        if head != self.r["new_rev"]:
            self.notes.append(
                f"the working tree moved from {self.r['new_rev']} to {head} during the run; "
                f"NEW is the copy taken at the start ({self.r['new_rev']})"
            )
        after = self.dirty()
        if after != self.r["new_dirty"]:
            self.notes.append(
                f"uncommitted files under gitml/ changed during the run: {self.r['new_dirty']} -> {after}"
            )
        self.r["elapsed"] = time.perf_counter() - self.t_start

    # -- report ----------------------------------------------------------------------------------
    def report(self) -> str:
        cfg, r = self.cfg, self.r
        cmd = "python bench/bench_safety.py" + (" --quick" if self.mode == "quick" else "")
        if self.args.old_rev != OLD_REV:
            cmd += f" --old-rev {self.args.old_rev}"
        dirty = r.get("new_dirty") or []
        out = [
            "# Safety checks (issue 9): old code against new",
            "",
            f"Command: `{cmd}` ({self.mode} mode, {r.get('elapsed', 0) / 60:.1f} min in all).",
            "",
            f"Machine: {self.machine_line()}",
            "",
            f"OLD = `{r['old_rev']}` (a `git worktree`, imported from {r[('file', 'old')]}); NEW = the "
            f"working tree's `gitml/` at `{r['new_rev']}`"
            + (f" with uncommitted changes to {', '.join(dirty)}" if dirty else ", nothing uncommitted")
            + f", copied at the start (imported from {r[('file', 'new')]}).",
            "",
            "Wall time; median over the repetitions (OLD and NEW alternating); ratio = NEW / OLD.",
            "",
            "| case | measure | OLD | NEW | NEW / OLD |",
            "|---|---|---:|---:|---:|",
        ]

        def row(case: str, what: str, old: float, new: float, unit: str = "s", scale: float = 1.0) -> None:
            f = (
                (lambda v: f"{v * scale:,.0f}")
                if unit in ("ms", "runs/s")
                else (lambda v: f"{v * scale:.3f}")
            )
            out.append(f"| {case} | {what} ({unit}) | {f(old)} | {f(new)} | {new / old:.2f}× |")

        n = cfg["runs"]
        rb = r["rebuild"]
        row("1", f"`gitml index rebuild`, {n:,} runs", med(rb["old"]), med(rb["new"]))
        out.append(
            f"| 1 | same, throughput (runs/s) | {n / med(rb['old']):,.0f} | {n / med(rb['new']):,.0f} | "
            f"{med(rb['old']) / med(rb['new']):.2f}× |"
        )
        k, rounds = cfg["catchup"], cfg["catchup_reps"]
        cu = {side: r["catchup"][side] for side in SIDES}

        def per_side(fn) -> list[float]:
            return [med([fn(res) for res in cu[side]]) for side in SIDES]

        row(
            "2",
            f"`gitml.commit_run` in process, per run (median of {k * rounds})",
            *[med([t for res in cu[side] for t in res["commit_run"]]) for side in SIDES],
            "ms",
            1e3,
        )
        row(
            "2",
            f"first `search_runs()` after {k} new runs, {n + k:,} returned (median of {rounds})",
            *per_side(lambda res: res["first"]),
        )
        row("2", "warm `search_runs()`, same process", *per_side(lambda res: med(res["warm"])))
        row(
            "2",
            f"catch-up of {k} runs (first − warm)",
            *per_side(lambda res: res["first"] - med(res["warm"])),
            "ms",
            1e3,
        )
        reps = cfg["cli_reps"]
        row(
            "3",
            f"`gitml commit-run -a` 1 MB file, process (median of {reps})",
            med(r["commit_cli"]["old"]),
            med(r["commit_cli"]["new"]),
            "ms",
            1e3,
        )
        row(
            "3/4",
            f"floor: `gitml --version` (median of {reps})",
            med(r["version"]["old"]),
            med(r["version"]["new"]),
            "ms",
            1e3,
        )
        row(
            "4",
            f"`gitml runs show ID`, {n + k:,} runs (median of {reps})",
            med(r["show"]["old"]),
            med(r["show"]["new"]),
            "ms",
            1e3,
        )
        p = cfg["pull"]
        fetch = med(r["fetch"]["git"])
        row(
            "5",
            f"`gitml pull`, {p:,} new runs, fast-forward (median of {cfg['pull_reps']})",
            med(r["pull_ff"]["old"]),
            med(r["pull_ff"]["new"]),
        )
        row(
            "5",
            f"`gitml pull`, {p:,} new runs, {cfg['pull_local']} local runs (merge)",
            med(r["pull_div"]["old"]),
            med(r["pull_div"]["new"]),
        )
        out.append(f"| 5 | floor: `git fetch` of the same ref (s) | {fetch:.3f} | {fetch:.3f} | |")
        out.append(
            f"| 5 | (pull − fetch) / incoming runs, fast-forward, process start included (ms) | "
            f"{(med(r['pull_ff']['old']) - fetch) / p * 1e3:.2f} | {(med(r['pull_ff']['new']) - fetch) / p * 1e3:.2f} | |"
        )
        out.append("")
        spread = []
        for key, label, scale in (
            ("rebuild", "rebuild s", 1),
            ("commit_cli", "commit-run ms", 1e3),
            ("show", "runs show ms", 1e3),
            ("pull_ff", "pull ff s", 1),
            ("pull_div", "pull merge s", 1),
        ):
            v = r[key]
            spread.append(
                f"{label} OLD {min(v['old']) * scale:.3g}–{max(v['old']) * scale:.3g}, "
                f"NEW {min(v['new']) * scale:.3g}–{max(v['new']) * scale:.3g}"
            )
        out += ["Spread (min–max): " + "; ".join(spread) + ".", ""]
        out += [
            f"Data: {n:,} runs (5 params, 3 metrics, 1 tag, 1 file artifact entry each) written with "
            f"`write_runs`, {cfg['chunk']:,} a commit ({r['preload']['s']:.1f} s); both sides list "
            f"{r[('listed', 'old')]:,} / {r[('listed', 'new')]:,} runs. Pull: a bare remote with "
            f"{cfg['pull_base']:,} runs the clone already has, then {p:,} new ones in commits of 100.",
            "",
            "Load average (1 min) at the start of each case: "
            + ", ".join(f"{k} {v:.2f}" for k, v in self.loads.items())
            + (
                f"; mean {statistics.mean(self.samples):.2f}, max {max(self.samples):.2f} while measuring"
                if self.samples
                else ""
            )
            + " (2 cores; the benchmark itself keeps about 1 busy).",
            "",
        ]
        if self.args.wait_idle:
            out += [
                f"Processes matching `{self.args.wait_idle}` seen while measuring: "
                + (", ".join(sorted(self.seen)) if self.seen else "none")
                + ".",
                "",
            ]
        if self.notes:
            out += ["Notes:", ""] + [f"- {x}" for x in self.notes] + [""]
        return "\n".join(out)

    def machine_line(self) -> str:
        cpu = cpu_model()
        code = "import importlib.metadata as m\nfor p in ('dulwich', 'click', 'PyYAML'):\n    print(p, m.version(p))\n"
        vers = [v for v in self.run([sys.executable, "-c", code], self.tmp).stdout.split("\n") if v]
        git_v = self.run(["git", "--version"], self.tmp).stdout.strip()
        return (
            f"{_dt.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
            f"Python {platform.python_version()}, {', '.join(vers)}, {git_v}."
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="about 1/10 of the sizes")
    ap.add_argument("--old-rev", default=OLD_REV, help=f"the OLD side's commit (default {OLD_REV})")
    ap.add_argument("--workdir", default="/var/tmp", help="parent of the working folder (default /var/tmp)")
    ap.add_argument(
        "--wait-idle",
        default="pytest",
        metavar="PATTERN",
        help="wait before each case until `pgrep -f PATTERN` finds nothing ('' to skip; default pytest)",
    )
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--keep", action="store_true", help="keep the working folder (the worktree is removed)")
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
        bench.remove_tree()
        if args.keep:
            print(f"kept {bench.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(bench.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
