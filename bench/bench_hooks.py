#!/usr/bin/env python
"""Pre-push hook benchmark: what gitml's hook adds to a ``git push``, next to git-lfs's hook.

Run ``python bench/bench_hooks.py`` (about 2 minutes on 2 cores) or ``--quick`` (5 pushes per
figure instead of 11). It prints a Markdown report: push wall times, the hook's added time, the
bare hook commands, and where the time of gitml's hook goes. On a loaded machine, ``--rounds N``
repeats everything N times in fresh repositories and pools the samples before taking medians.

Every figure is a real ``git push`` (the ``git`` CLI, a subprocess) of a branch with one new small
commit to a local bare repository; each push is a fresh commit. The hook's added time is the
median push *with* the hook minus the median of the same push in the same repository with
``--no-verify`` (git skips the pre-push hook), the two interleaved push by push so that load
drifts hit both alike. All scenarios are measured round-robin, rotating the order every round.

Scenarios (each its own repository and bare remote under a fresh directory in /var/tmp):

1. no hook at all;
2. git-lfs's pre-push hook (``git lfs install --local``; the repository tracks nothing with LFS);
3. gitml's hook (``gitml hooks install``) in a repository with no gitml runs: the fast path;
4. gitml's hook in a repository with 1,000 runs on ``refs/gitml/runs`` (preloaded with
   ``gitml.tracking.commit.write_runs``), none made from the pushed commit; the untimed warm-up
   push builds the query index, as the first command after a clone would;
5. gitml's hook on ``git push origin refs/gitml/runs`` carrying one new run (``gitml commit-run
   -a``) whose artifact was uploaded beforehand (``gitml artifacts push``, untimed) to a
   local-folder artifact remote (``gitml remote add store /var/tmp/... --default``).

3c. scenario 3's repository and pushes with a ``gitml`` on PATH whose interpreter is a fresh venv's
   (no ``.pth`` files at start-up; gitml and its dependencies via PYTHONPATH): an estimate of the
   start-up of a regular ``pip install gitml``, without this site-packages' editable-install
   finder and its other ``.pth`` hooks. Its ``--no-verify`` baseline is scenario 3's.

Then, 21 times each and interleaved round-robin, the bare commands a hook runs, fed git's ``<local ref> <local sha> <remote ref>
<remote sha>`` line on stdin for one new unpushed commit (scenario 5: the last runs-ref commit):
``gitml hooks pre-push origin URL``, ``git lfs pre-push origin URL``, the installed shims
(``sh .git/hooks/pre-push``), and baselines: ``python -c pass`` (the interpreter the ``gitml``
console script runs), ``python -S -c pass`` (no ``site``), the ``git rev-parse`` the fast path
spawns, and — when ``gitml`` on the caller's PATH is a pyenv shim — the fast path through it.

Where the time goes: a phase worker (``python -c``, same interpreter, same stdin) times
``import gitml.cli``, ``import gitml.hooks``, ``_nothing_to_check``, ``import gitml.hooks.prepush``
and ``check_push`` in process; wall minus in-process time is interpreter start-up and exit.
``--profile DIR`` also writes ``-X importtime`` output and a cProfile dump (plus its top-40 text)
of the bare gitml command in each gitml scenario.

The hook runs through the interpreter a user's would: the ``gitml`` console script next to
``sys.executable`` is put first on PATH. Environment: no ``GIT_*`` or ``PYTHON*`` variables from
the caller; ``HOME`` is a temporary directory with a ``.gitconfig`` holding a user name and e-mail;
``PYTHONPYCACHEPREFIX`` points into the temporary directory, so bytecode is cached as after a pip
install without writing into the source tree (one extra row times the fast path with the caller's
environment, e.g. ``PYTHONDONTWRITEBYTECODE=1``, where uncached modules compile on every run).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_model

ROOT = Path(__file__).resolve().parents[1]
ZERO = "0" * 40
GOAL_MS = 60.0  # issue 6: the hook adds under 60 ms when nothing relevant is pushed
BIN = Path(sys.executable).parent
GITML = BIN / "gitml"

SCENARIOS = {
    "s1": "no hook",
    "s2": "git-lfs pre-push hook (repo tracks nothing with LFS)",
    "s3": "gitml hook, repo with no gitml runs (fast path)",
    "s4": "gitml hook, 1,000 runs on refs/gitml/runs, none from the pushed commit",
    "s5": "gitml hook, push refs/gitml/runs: 1 new run, artifact already on the artifact remote",
}

PHASES = r"""
import sys, time
t0 = time.perf_counter()
import gitml.cli
t1 = time.perf_counter()
import gitml.hooks as h
t2 = time.perf_counter()
text = sys.stdin.read()
fast = h._nothing_to_check(text)
t3 = time.perf_counter()
ok = True
t4 = t3
if not fast:
    from gitml.hooks import prepush as p
    t4 = time.perf_counter()
    ok = p.check_push(sys.argv[1], p.parse_lines(text)).ok
t5 = time.perf_counter()
n = len(sys.modules)
dul = sum(1 for m in sys.modules if m.split(".")[0] == "dulwich")
import json
print(json.dumps({"cli": t1 - t0, "hooks": t2 - t1, "nothing": t3 - t2, "prepush": t4 - t3,
                  "check": t5 - t4, "total": t5 - t0, "fast": fast, "ok": ok, "modules": n,
                  "dulwich_modules": dul}))
"""

# What the fast path has to do, with nothing but the standard library: a floor for a Python hook.
FLOOR = r"""
import os, subprocess, sys
for line in sys.stdin.read().splitlines():
    parts = line.split()
    if len(parts) == 4 and (parts[2].startswith("refs/gitml/") or parts[2].startswith("refs/tags/")):
        sys.exit(3)
out = subprocess.run(["git", "rev-parse", "--git-common-dir", "--show-toplevel"], capture_output=True, text=True)
common, top = (out.stdout.splitlines() + ["", ""])[:2]
common = os.path.join(top, common)
if os.path.exists(os.path.join(common, "refs", "gitml", "runs")):
    sys.exit(3)
try:
    with open(os.path.join(common, "packed-refs")) as f:
        if " refs/gitml/runs\n" in f.read():
            sys.exit(3)
except FileNotFoundError:
    pass
try:
    with open(os.path.join(top, "gitml.yaml")) as f:
        sys.exit(3 if "gates" in f.read() else 0)
except FileNotFoundError:
    sys.exit(0)
"""


# ---------------------------------------------------------------- plumbing

class Bench:
    def __init__(self, work: Path, reps: int, profile: Path | None, bare_reps: int = 21) -> None:
        self.work = work
        self.reps = reps
        self.bare_reps = bare_reps
        self.profile = profile
        home = work / "home"
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = Bench User\n\temail = bench@example.com\n"
                                         "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PYTHON"))}
        env["HOME"] = str(home)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env["GIT_TERMINAL_PROMPT"] = "0"
        # Bytecode is cached as after a pip install, but outside the source tree.
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        env.pop("GITML_SKIP_HOOKS", None)
        self.env = env
        self.clean_env: dict | None = None
        self.repos: dict[str, Path] = {}
        self.remotes: dict[str, Path] = {}
        self.counter = 0
        self.results: dict = {"push": {}, "bare": {}, "phases": {}, "warmup": {}}

    def run(self, cmd, cwd, input: str | None = None, check: bool = True, env=None) -> subprocess.CompletedProcess:
        out = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, text=True, env=env or self.env)
        if check and out.returncode != 0:
            raise RuntimeError(f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def timed(self, cmd, cwd, input: str | None = None, env=None) -> float:
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, text=True, env=env or self.env)
        dt = time.perf_counter() - t0
        if out.returncode != 0:
            raise RuntimeError(f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return dt

    def git(self, repo: Path, *args: str) -> str:
        return self.run(["git", *args], repo).stdout.strip()

    # ------------------------------------------------------------ setup

    def new_repo(self, key: str) -> Path:
        remote = self.work / f"{key}-remote.git"
        repo = self.work / key
        self.run(["git", "init", "-q", "--bare", str(remote)], self.work)
        self.run(["git", "init", "-q", str(repo)], self.work)
        (repo / "README.md").write_text(f"# {key}\n")
        (repo / "train.py").write_text("print('train')\n")
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "-m", "initial")
        self.git(repo, "remote", "add", "origin", str(remote))
        self.git(repo, "push", "-q", "-u", "origin", "main")
        self.repos[key], self.remotes[key] = repo, remote
        return repo

    def setup(self, n_runs: int) -> None:
        for key in SCENARIOS:
            self.new_repo(key)
        self.run(["git", "lfs", "install", "--local"], self.repos["s2"])
        for key in ("s3", "s4", "s5"):
            self.run([str(GITML), "hooks", "install"], self.repos[key])
        t0 = time.perf_counter()
        self.preload(self.repos["s4"], n_runs)
        self.results["preload_s"] = time.perf_counter() - t0
        store = self.work / "artifact-store"
        store.mkdir()
        self.run([str(GITML), "remote", "add", "store", str(store), "--default"], self.repos["s5"])
        self.clean_start()
        # the first run and the first runs-ref push are setup, not measured
        self.new_run(self.repos["s5"])
        self.git(self.repos["s5"], "push", "-q", "origin", "refs/gitml/runs")

    def clean_start(self) -> None:
        """A ``gitml`` on PATH run by a fresh venv's interpreter: no ``.pth`` file at start-up.

        This site-packages runs three ``.pth`` files at every start (gitml's editable-install
        finder, setuptools' distutils shim, and a CA-bundle hook of this sandbox that imports
        certifi); a regular ``pip install gitml`` runs none of them. gitml and its dependencies come
        from PYTHONPATH (entries there are not scanned for ``.pth`` files).
        """
        import site
        import sysconfig

        venv = self.work / "clean-venv"
        self.run([os.path.realpath(sys.executable), "-m", "venv", "--without-pip", str(venv)], self.work)
        bindir = self.work / "clean-bin"
        bindir.mkdir()
        script = bindir / "gitml"
        script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom gitml.cli import main\n"
                          "sys.exit(main())\n")
        script.chmod(0o755)
        env = dict(self.env)
        env["PATH"] = f"{bindir}{os.pathsep}{self.env['PATH']}"
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"], *site.getsitepackages()])
        self.clean_env = env
        self.clean_python = str(venv / "bin" / "python")
        self.run([str(script), "hooks", "pre-push", "origin", "x"], self.repos["s3"], "", env=env)
        which = self.run(["sh", "-c", "command -v gitml"], self.repos["s3"], env=env).stdout.strip()
        if which != str(script):
            raise RuntimeError(f"clean gitml not first on PATH: {which}")

    def preload(self, repo: Path, n: int) -> None:
        code = (
            "import sys, gitml\n"
            "from gitml.core import formats\n"
            "from gitml.core.gitrepo import GitRepo\n"
            "from gitml.core.ids import new_run_id\n"
            "from gitml.tracking.commit import write_runs\n"
            "path, n, sha = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n"
            "batch = []\n"
            "for i in range(n):\n"
            "    t = formats.iso_time(1.7e9 + i)\n"
            "    batch.append((formats.Run(id=new_run_id(), name=f'run-{i}', experiment='bench',\n"
            "        status='FINISHED', start_time=t, end_time=t, updated=t, user='Bench User',\n"
            "        source={'commit': sha, 'branch': 'main', 'dirty': False, 'remote': None},\n"
            "        command='python train.py', gitml_version=gitml.__version__,\n"
            "        params={'lr': 0.01 * (i % 10), 'depth': i % 7},\n"
            "        metrics={'acc': (i % 100) / 100.0, 'loss': 1.0 / (1 + i)},\n"
            "        metric_info={'acc': {'step': 0, 'timestamp': t}, 'loss': {'step': 0, 'timestamp': t}}), []))\n"
            "with GitRepo(path) as g:\n"
            "    write_runs(g, batch, f'import {n} runs')\n"
        )
        # source commit: the initial commit, already on the remote, so never among the pushed ones
        sha = self.git(repo, "rev-parse", "HEAD")
        self.run([sys.executable, "-c", code, str(repo), str(n), sha], repo)
        count = self.git(repo, "ls-tree", "-r", "--name-only", "refs/gitml/runs").count("run.yaml")
        if count != n:
            raise RuntimeError(f"preload wrote {count} runs, expected {n}")

    def fresh_commit(self, repo: Path) -> str:
        self.counter += 1
        (repo / "notes.txt").write_text(f"change {self.counter}\n")
        self.git(repo, "add", "notes.txt")
        self.git(repo, "commit", "-q", "-m", f"change {self.counter}")
        return self.git(repo, "rev-parse", "HEAD")

    def new_run(self, repo: Path) -> str:
        """A new run with a new artifact, whose bytes are then uploaded (untimed)."""
        self.counter += 1
        (repo / "model.bin").write_bytes(os.urandom(2048) + str(self.counter).encode())
        run_id = self.run([str(GITML), "commit-run", "-n", f"r{self.counter}", "-m", "acc=0.9",
                           "-a", "model.bin"], repo).stdout.strip().splitlines()[-1]
        self.run([str(GITML), "artifacts", "push", run_id], repo)
        return run_id

    # ------------------------------------------------------------ timed pushes

    def push_once(self, key: str, verify: bool) -> float:
        env = self.clean_env if key == "s3c" else None
        key = key[:2]
        repo = self.repos[key]
        if key == "s5":
            self.new_run(repo)
            cmd = ["git", "push", "-q", "origin", "refs/gitml/runs"]
        else:
            self.fresh_commit(repo)
            cmd = ["git", "push", "-q", "origin", "main"]
        if not verify:
            cmd.insert(2, "--no-verify")
        return self.timed(cmd, repo, env=env)

    def pushes(self) -> None:
        plan = [("s1", True)] + [(k, v) for k in ("s2", "s3", "s4", "s5") for v in (True, False)] + [("s3c", True)]
        for key, verify in plan:  # warm-up: caches, the s4 query index
            self.results["warmup"][f"{key}-{'hook' if verify else 'no-verify'}"] = self.push_once(key, verify)
        times: dict[str, list[float]] = {f"{k}-{'hook' if v else 'no-verify'}": [] for k, v in plan}
        for rep in range(self.reps):
            shift = rep % len(plan)
            for key, verify in plan[shift:] + plan[:shift]:
                times[f"{key}-{'hook' if verify else 'no-verify'}"].append(self.push_once(key, verify))
            print(f"  round {rep + 1}/{self.reps} done", file=sys.stderr)
        self.results["push"] = times

    # ------------------------------------------------------------ bare commands

    def hook_line(self, key: str) -> str:
        repo = self.repos[key]
        if key == "s5":
            tip = self.git(repo, "rev-parse", "refs/gitml/runs")
            return f"refs/gitml/runs {tip} refs/gitml/runs {self.git(repo, 'rev-parse', tip + '^')}\n"
        base = self.git(repo, "rev-parse", "origin/main")
        head = self.fresh_commit(repo)  # one new commit, left unpushed
        return f"refs/heads/main {head} refs/heads/main {base}\n"

    def add(self, name: str, cmd, cwd, input=None, env=None, kind: str = "bare") -> None:
        self.jobs.append((name, kind, cmd, cwd, input, env))

    def bare(self) -> None:
        """Register the bare commands and phase workers; :meth:`measure` times them interleaved."""
        self.jobs: list = []
        lines = {k: self.hook_line(k) for k in ("s2", "s3", "s4", "s5")}
        self.results["lines"] = lines
        py = os.path.realpath(sys.executable)
        s3 = self.repos["s3"]
        self.add("python -c pass", [py, "-c", "pass"], s3)
        self.add("python -S -c pass", [py, "-S", "-c", "pass"], s3)
        self.add("python -I -S -c pass", [py, "-I", "-S", "-c", "pass"], s3)
        self.add("git rev-parse --git-common-dir --show-toplevel",
                 ["git", "rev-parse", "--git-common-dir", "--show-toplevel"], s3)
        self.add("sh -c true", ["sh", "-c", "true"], s3)
        for key in ("s2", "s3", "s4", "s5"):
            repo, url = self.repos[key], str(self.remotes[key])
            tool = ["git", "lfs"] if key == "s2" else [str(GITML), "hooks"]
            cmd = [*tool, "pre-push", "origin", url]
            self.add(f"{key} bare", cmd, repo, lines[key])
            self.add(f"{key} shim", ["sh", str(repo / ".git" / "hooks" / "pre-push"), "origin", url], repo, lines[key])
        url3 = str(self.remotes["s3"])
        self.add("s3 bare, clean start-up", ["gitml", "hooks", "pre-push", "origin", url3], s3, lines["s3"],
                 self.clean_env)
        self.add("python -c pass, clean start-up", [self.clean_python, "-c", "pass"], s3, None, self.clean_env)
        caller = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        caller.update(HOME=self.env["HOME"], PATH=self.env["PATH"])
        self.add("s3 bare, caller env", [str(GITML), "hooks", "pre-push", "origin", url3], s3, lines["s3"], caller)
        self.results["caller_dont_write_bytecode"] = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
        for label, python, env in (("", py, self.env), (", fresh-venv start-up", self.clean_python, self.clean_env)):
            self.add(f"minimal fast path{label}", [python, "-c", FLOOR], s3, lines["s3"], env)
        shim = _pyenv_shim()
        if shim:
            env = dict(self.env)
            env["PATH"] = f"{Path(shim).parent}{os.pathsep}{os.environ.get('PATH', '')}"
            env["PYENV_ROOT"] = os.environ.get("PYENV_ROOT") or str(Path(shim).parents[1])
            self.add("s3 bare via pyenv shim", [shim, "hooks", "pre-push", "origin", url3], s3, lines["s3"], env)
            self.results["pyenv_shim"] = shim

    def phases(self) -> None:
        variants = [(k, k, os.path.realpath(sys.executable), None) for k in ("s3", "s4", "s5")]
        variants.append(("s3c", "s3", self.clean_python, self.clean_env))
        for label, key, python, env in variants:
            self.add(label, [python, "-c", PHASES, "origin"], self.repos[key], self.results["lines"][key], env,
                     kind="phases")

    def measure(self) -> None:
        """Every registered command, ``bare_reps`` times, round-robin with the order rotated each round."""
        for _name, _kind, cmd, cwd, input, env in self.jobs:  # warm-up
            self.run(cmd, cwd, input, env=env)
        for rep in range(self.bare_reps):
            shift = rep % len(self.jobs)
            for name, kind, cmd, cwd, input, env in self.jobs[shift:] + self.jobs[:shift]:
                t0 = time.perf_counter()
                out = self.run(cmd, cwd, input, env=env)
                wall = time.perf_counter() - t0
                if kind == "phases":
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                    row["wall"] = wall
                    self.results["phases"].setdefault(name, []).append(row)
                else:
                    self.results["bare"].setdefault(name, []).append(wall)

    def profiles(self) -> None:
        if self.profile is None:
            return
        self.profile.mkdir(parents=True, exist_ok=True)
        py = os.path.realpath(sys.executable)
        for key in ("s3", "s4", "s5"):
            repo, url, line = self.repos[key], str(self.remotes[key]), self.results["lines"][key]
            out = self.run([py, "-X", "importtime", str(GITML), "hooks", "pre-push", "origin", url], repo, line)
            (self.profile / f"importtime-{key}.txt").write_text(out.stderr)
            prof = self.profile / f"hook-{key}.prof"
            self.run([py, "-m", "cProfile", "-o", str(prof), str(GITML), "hooks", "pre-push", "origin", url], repo, line)
            top = self.run([py, "-c", "import pstats, sys; pstats.Stats(sys.argv[1]).sort_stats('cumulative')"
                            ".print_stats(40)", str(prof)], repo).stdout
            (self.profile / f"hook-{key}.txt").write_text(top)


# ---------------------------------------------------------------- report

def ms(values) -> float:
    return statistics.median(values) * 1000


def importtime_summary(path: Path) -> list[tuple[str, float]]:
    """Top-level imports (cumulative ms) from ``-X importtime`` output."""
    rows = []
    for line in path.read_text().splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cum_us, name = line[len("import time:"):].split("|")
        if name.startswith(" ") and not name.startswith("  "):  # one space: imported by __main__
            rows.append((name.strip(), int(cum_us) / 1000))
    return rows


def report(b: Bench, meta: dict) -> str:
    r = b.results
    push, bare = r["push"], r["bare"]
    names = dict(SCENARIOS)
    names["s4"] = names["s4"].replace("1,000", f"{meta['runs']:,}")
    names["s3c"] = ("gitml hook, fast path as in 3, interpreter started without this machine's `.pth` files "
                    "(estimate for a regular install)")
    py, py_clean = ms(bare["python -c pass"]), ms(bare["python -c pass, clean start-up"])
    out = [
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}  ",
        f"Machine: {meta['machine']}  ",
        f"Load average (1/5/15 min) at the start / end of each round: {'; '.join(r['loads'])}  ",
        f"gitml measured: `{meta['gitml_source']}` (repository at {meta['commit']})  ",
        f"git {meta['git']}, {meta['lfs']}, Python {platform.python_version()}, `gitml` = `{GITML}`; "
        f"medians of {b.reps * meta['rounds']} pushes per figure ({meta['rounds']} round(s) of {b.reps}, fresh "
        f"repositories each round), each a fresh commit; bare commands: medians of {b.bare_reps * meta['rounds']} "
        f"runs, interleaved; {meta['runs']:,} runs preloaded in scenario 4.\n",
        "| # | scenario | push with hook (ms) | same push, `--no-verify` (ms) | hook adds (ms) "
        "| bare hook command (ms) | Python start-up, `python -c pass` (ms) | hook adds minus start-up (ms) "
        "| goal: < 60 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
        f"| 1 | {names['s1']} | {ms(push['s1-hook']):.0f} | — | — | — | — | — | |",
    ]
    for key in ("s2", "s3", "s3c", "s4", "s5"):
        hook, nv = ms(push[f"{key}-hook"]), ms(push[f"{key[:2]}-no-verify"])
        added = hook - nv
        bare_key = "s3 bare, clean start-up" if key == "s3c" else f"{key} bare"
        start = None if key == "s2" else (py_clean if key == "s3c" else py)
        if key == "s2":
            goal = "reference (Go binary)"
        elif key in ("s3", "s3c"):
            goal = "**met**" if added < GOAL_MS else "**not met**"
        else:
            goal = "n/a: something to check"
        out.append(f"| {key[1:]} | {names[key]} | {hook:.0f} | {nv:.0f} | {added:+.0f} | {ms(bare[bare_key]):.0f} | "
                   f"{'—' if start is None else f'{start:.0f}'} | {'—' if start is None else f'{added - start:+.0f}'} "
                   f"| {goal} |")
    out += ["", "Bare commands, fed git's stdin line for one new unpushed commit (median ms):", "",
            "| command | ms |", "|---|---:|"]
    rows = [
        ("`python -c pass` (the interpreter of the `gitml` console script)", "python -c pass"),
        ("`python -S -c pass` (no `site`, so no `.pth` files)", "python -S -c pass"),
        ("`python -I -S -c pass`", "python -I -S -c pass"),
        ("`python -c pass` in a fresh venv (no `.pth` files)", "python -c pass, clean start-up"),
        ("`sh -c true`", "sh -c true"),
        ("`git rev-parse --git-common-dir --show-toplevel` (spawned by the fast path)",
         "git rev-parse --git-common-dir --show-toplevel"),
        ("`git lfs pre-push origin URL` (scenario 2)", "s2 bare"),
        ("`sh .git/hooks/pre-push origin URL`, git-lfs's hook (scenario 2)", "s2 shim"),
        ("`gitml hooks pre-push origin URL` (scenario 3, fast path)", "s3 bare"),
        ("`sh .git/hooks/pre-push origin URL`, gitml's hook (scenario 3)", "s3 shim"),
        ("`gitml hooks pre-push origin URL`, fresh-venv start-up (scenario 3)", "s3 bare, clean start-up"),
        ("`gitml hooks pre-push origin URL` with the caller's environment, "
         f"PYTHONDONTWRITEBYTECODE={r.get('caller_dont_write_bytecode') or '(unset)'} (scenario 3)", "s3 bare, caller env"),
        ("floor: `python -c` doing only the fast path's work with the standard library (scenario 3)",
         "minimal fast path"),
        ("floor, fresh-venv start-up (scenario 3)", "minimal fast path, fresh-venv start-up"),
        ("`gitml hooks pre-push origin URL` (scenario 4)", "s4 bare"),
        ("`sh .git/hooks/pre-push origin URL` (scenario 4)", "s4 shim"),
        ("`gitml hooks pre-push origin URL` (scenario 5)", "s5 bare"),
        ("`sh .git/hooks/pre-push origin URL` (scenario 5)", "s5 shim"),
    ]
    if "s3 bare via pyenv shim" in bare:
        rows.append((f"`gitml hooks pre-push origin URL` through the pyenv shim `{r['pyenv_shim']}` (scenario 3)",
                     "s3 bare via pyenv shim"))
    out += [f"| {label} | {ms(bare[key]):.1f} |" for label, key in rows]
    out += ["", "gitml's hook in process (`python -c` doing what `gitml hooks pre-push` does, same stdin; fresh "
            "process each time; median ms; start-up+exit = wall − in-process total):", "",
            "| scenario | wall | start-up+exit | `import gitml.cli` | `import gitml.hooks` "
            "| `_nothing_to_check(text)` | `import gitml.hooks.prepush` | `check_push` "
            "| modules loaded (of them dulwich) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, prow in r["phases"].items():
        med = {k: ms([row[k] for row in prow]) for k in ("wall", "cli", "hooks", "prepush", "nothing", "check")}
        startup = ms([row["wall"] - row["total"] for row in prow])
        label = "3, fresh-venv start-up" if key == "s3c" else key[1:]
        out.append(f"| {label} | {med['wall']:.0f} | {startup:.0f} | {med['cli']:.1f} | {med['hooks']:.1f} | "
                   f"{med['nothing']:.1f} | {med['prepush']:.1f} | {med['check']:.1f} | "
                   f"{prow[0]['modules']} ({prow[0]['dulwich_modules']}) |")
    warm = r["warmup"]
    out += ["", f"Untimed warm-up pushes with the hook (median over rounds): scenario 4 {ms(warm['s4-hook']):.0f} ms "
            f"(builds the query index), scenario 5 {ms(warm['s5-hook']):.0f} ms. Preloading the runs took "
            f"{statistics.median(r['preload_s']):.1f} s."]
    if b.profile is not None:
        out.append("")
        for key in ("s3", "s4", "s5"):
            top = sorted(importtime_summary(b.profile / f"importtime-{key}.txt"), key=lambda x: -x[1])[:7]
            out.append(f"`-X importtime`, scenario {key[1]}, top-level imports (cumulative ms): "
                       + ", ".join(f"{n} {t:.1f}" for n, t in top) + "  ")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 pushes per figure instead of 11, 200 runs")
    ap.add_argument("--reps", type=int, help="pushes per figure (default 11)")
    ap.add_argument("--bare-reps", type=int, help="runs of each bare command (default 21, interleaved)")
    ap.add_argument("--runs", type=int, help="runs preloaded in scenario 4 (default 1000)")
    ap.add_argument("--workdir", default="/var/tmp", help="where the temporary repositories go")
    ap.add_argument("--profile", type=Path, help="write -X importtime and cProfile output of the bare hook here")
    ap.add_argument("--markdown", type=Path, help="also write the report here")
    ap.add_argument("--json", type=Path, help="write the raw timings here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary repositories")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat everything N times (fresh repositories) and pool the samples (for a loaded machine)")
    args = ap.parse_args()
    reps = args.reps or (5 if args.quick else 11)
    n_runs = args.runs or (200 if args.quick else 1000)
    if shutil.which("git-lfs") is None:
        sys.exit("git-lfs is not installed (apt-get install -y git-lfs)")
    if not GITML.exists():
        sys.exit(f"no gitml console script at {GITML}")
    meta = {
        "command": " ".join(["python", "bench/bench_hooks.py", *sys.argv[1:]]),
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, {_cpu()}",
        "runs": n_runs,
        "rounds": args.rounds,
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[-1],
        "lfs": subprocess.run(["git", "lfs", "version"], capture_output=True, text=True).stdout.split()[0],
        "commit": subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                                 capture_output=True, text=True).stdout.strip(),
    }
    bare_reps = args.bare_reps or (9 if args.quick else 21)
    pooled: dict = {"push": {}, "bare": {}, "phases": {}, "warmup": {}, "preload_s": [], "loads": []}
    last = None
    for rnd in range(args.rounds):
        work = Path(tempfile.mkdtemp(prefix="bench-hooks-", dir=args.workdir))
        b = Bench(work, reps, args.profile if rnd == 0 else None, bare_reps)
        source = _gitml_source(b.env)
        meta.setdefault("gitml_source", source)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        try:
            print(f"round {rnd + 1}/{args.rounds}: setup in {work} ({n_runs} runs in scenario 4)", file=sys.stderr)
            b.setup(n_runs)
            print("pushes", file=sys.stderr)
            b.pushes()
            print("bare commands and phases", file=sys.stderr)
            b.bare()
            b.phases()
            b.measure()
            b.profiles()
            source_after = _gitml_source(b.env)  # before the clean-up: it would recreate the pycache prefix
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        if source_after != source or source != meta["gitml_source"].split(" (")[0]:
            meta["gitml_source"] += " (CHANGED during the run: results are mixed)"
        pooled["loads"].append(f"{load} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        pooled["preload_s"].append(b.results["preload_s"])
        for part in ("push", "bare", "phases", "warmup"):
            for key, values in b.results[part].items():
                pooled[part].setdefault(key, []).extend(values if isinstance(values, list) else [values])
        for key in ("lines", "caller_dont_write_bytecode", "pyenv_shim"):
            if key in b.results:
                pooled[key] = b.results[key]
        last = b
    last.results = pooled
    last.profile = args.profile
    text = report(last, meta)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "reps": reps, "bare_reps": bare_reps, **pooled}, indent=1))


def _gitml_source(env: dict) -> str:
    """Where the ``gitml`` console script's interpreter imports gitml from (an editable install moves)."""
    out = subprocess.run([os.path.realpath(sys.executable), "-c", "import gitml; print(gitml.__file__)"],
                         capture_output=True, text=True, env=env, cwd="/")
    return str(Path(out.stdout.strip()).parent) if out.returncode == 0 else f"? ({out.stderr.strip()[-200:]})"


def _pyenv_shim() -> str | None:
    """``gitml`` as a pyenv user's PATH finds it (a shim), if there is one."""
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(entry, "gitml")
        if entry.rstrip("/").endswith("shims") and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _cpu() -> str:
    return cpu_model(platform.processor() or "unknown CPU")


if __name__ == "__main__":
    main()
