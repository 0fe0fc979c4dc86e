#!/usr/bin/env python
"""The Workspace seam (issue 10): what the restructuring cost, before against after, same work.

Run ``python bench/bench_seam.py`` (about 1.6 minutes on 2 cores when the machine is quiet, at
most about 5 when it is not; ``--reps`` sets the samples per figure, default 21) or ``--quick``
(7 samples, 500 runs). It prints a Markdown report and writes it to ``--out`` when given.

BEFORE is gitml at ``--before`` (default 8bf9537, the last commit before the issue 10 work) and
AFTER is ``--after`` (default ``HEAD`` of this repository, resolved once at start). Each side's
``gitml/`` is extracted with ``git archive REV gitml | tar -x`` into the benchmark's folder, so
uncommitted edits in this working tree are not measured. Every command runs as its own process
of this interpreter with ``PYTHONPATH`` set to that side's tree; ``PYTHONPATH`` comes before the
editable install's finder, and the script checks ``gitml.__file__`` on each side before
measuring. ``gitml`` is the console script next to ``sys.executable`` (not a pyenv shim), run as
``python <script>`` so ``-X importtime`` can be added.

Bytecode: ``PYTHONDONTWRITEBYTECODE`` (set in some sandboxes) is removed from the environment,
both trees are byte-compiled first, and every command runs twice untimed on each side, so
imports read cached bytecode as after ``pip install``.

The repository is built once, with AFTER's code: ``--runs`` runs (4 params, 3 metrics, 1 tag)
put on ``refs/gitml/runs`` by the bulk writer (``write_runs``, ``--chunk`` runs per ref commit),
one in ten made from the tip of branch ``feature``, the rest from ``main``; then 10 runs with a
100 KB artifact each, committed with ``gitml commit-run -a``; model ``churn`` registered from
three of them (v0.0.1–v0.0.3) with v0.0.2 in stage ``prod``; an artifact remote that is a local
folder (``gitml remote add store DIR --default``) to which ``gitml artifacts push`` uploaded
everything. The repository is then copied (``cp -a``) once per side: the query index's schema
changed between the two sides (2 → 3), and one shared copy would rebuild it on every switch.
Each side builds its own index in the untimed warm-up. The pre-push hook runs in a separate
plain repository with no gitml refs.

Cases (wall time of the whole process, median of ``--reps``; BEFORE and AFTER alternate and the
order of all commands in a round rotates, so a slow spell hits every command alike):

1. ``gitml --help``; ``python -c "import gitml"``;
2. ``gitml runs list``; ``gitml runs list --filter "metrics.acc > 0.5" --order-by "metrics.acc DESC"``;
3. ``gitml commit-run -m acc=0.5`` (one run per call; measured last, after every read);
4. ``gitml registry which churn@prod``; ``gitml artifacts get models:/churn@prod -o OUT`` (a
   fresh OUT outside the repository each call; the artifact is in the local cache);
5. ``gitml hooks pre-push origin URL`` fed ``refs/heads/main SHA refs/heads/main SHA2`` in the
   plain repository: the fast path, which must import no dulwich (checked on both sides);
6. ``gitml diff main feature``.

Quiet rounds: a round (every command once per side) runs when no process matches ``pgrep -f
pytest`` (``--wait-idle``), waiting at most ``--max-wait`` seconds over the whole run; a round
during which one appeared (sampled every second) is thrown away and run again, up to half as
many extra rounds. The report counts both, with the load average seen.

Floors, measured in the same rounds: ``python -c pass`` (this interpreter's start-up),
``git status`` and ``git rev-parse HEAD`` in the big repository (a command that starts git),
``git diff --stat main feature``.

Where the time goes: each gitml command then runs ``--profiles`` times per side (alternating)
with ``-X importtime``; the report gives the modules loaded, the dulwich modules among them,
the import time of everything imported after start-up (top-level entries from the first
``gitml`` import on), the top-level imports whose median cumulative time moved most, and the
modules only one side loads (with their self times).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

from _common import cpu_model

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GITML = BIN / "gitml"
RESULT_PREFIX = "BENCH_RESULT "
BASE_TIME = 1_700_000_000
SIDES = ("before", "after")


# ------------------------------------------------------------------------------------------------
# Worker: runs inside AFTER's tree, to preload the runs ref
# ------------------------------------------------------------------------------------------------
def w_preload(spec: dict) -> dict:
    """Put ``n`` runs on the runs ref with the bulk writer, ``chunk`` runs per ref commit."""
    import gitml
    from gitml.core import formats
    from gitml.core.gitrepo import GitRepo
    from gitml.core.ids import new_run_id
    from gitml.tracking.commit import write_runs

    n, chunk = spec["n"], spec["chunk"]
    t0 = time.perf_counter()
    with GitRepo(spec["repo"]) as repo:
        for start in range(0, n, chunk):
            batch = []
            for i in range(start, min(start + chunk, n)):
                rnd = random.Random(i)
                branch = "feature" if i % 10 == 0 else "main"
                begin, end = formats.iso_time(BASE_TIME + 60 * i), formats.iso_time(BASE_TIME + 60 * i + 30)
                params = {
                    "lr": round(10 ** rnd.uniform(-4, -1), 6),
                    "depth": rnd.randint(2, 12),
                    "n_estimators": rnd.choice([100, 200, 400]),
                    "model": rnd.choice(["rf", "gbm", "mlp"]),
                }
                metrics = {"acc": rnd.random(), "loss": rnd.random() * 2, "f1": rnd.random()}
                run = formats.Run(
                    id=new_run_id(),
                    name=f"run-{i}",
                    experiment="churn",
                    status="FINISHED",
                    start_time=begin,
                    end_time=end,
                    updated=end,
                    user="Bench User",
                    source={"commit": spec[branch], "branch": branch, "dirty": False, "remote": None},
                    command="python train.py",
                    gitml_version=gitml.__version__,
                    params={k: formats.param_value(k, v) for k, v in params.items()},
                    metrics={k: formats.metric_value(k, v) for k, v in metrics.items()},
                    metric_info={k: {"step": 0, "timestamp": end} for k in metrics},
                    tags={"team": rnd.choice(["retention", "growth"])},
                )
                batch.append((run, []))
            write_runs(repo, batch, f"import {len(batch)} runs")
    return {"s": time.perf_counter() - t0, "n": n, "file": gitml.__file__}


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-seambench-", dir=args.workdir))
        self.home = self.tmp / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Bench User\n\temail = bench@example.com\n"
            "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
        )
        drop = ("GIT_", "PYTHON", "XDG_CONFIG_HOME", "VIRTUAL_ENV")
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        self.base_env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_TERMINAL_PROMPT="0",
            COLUMNS="120",
        )
        self.revs: dict[str, str] = {}
        self.trees: dict[str, Path] = {}
        self.repos: dict[str, Path] = {}
        self.notes: list[str] = []
        self.loads: list[float] = []
        self.samples: dict[tuple, list] = {}
        self.flag = False
        self.waited = 0.0
        self.kept_disturbed = 0
        self.redone: dict[str, int] = {}
        self.t_start = time.perf_counter()
        threading.Thread(target=self._watch, daemon=True).start()

    # -- plumbing --------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def env(self, side: str | None) -> dict:
        return self.base_env if side is None else dict(self.base_env, PYTHONPATH=str(self.trees[side]))

    def run(self, argv: list, cwd: Path, side: str | None = None, stdin: str | None = None,
            ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        p = subprocess.run([str(a) for a in argv], cwd=cwd, env=self.env(side), input=stdin,
                           capture_output=True, text=True, check=False)
        if p.returncode not in ok:
            raise RuntimeError(f"{' '.join(map(str, argv))} ({side}) failed ({p.returncode}): {p.stderr[-2000:]}")
        return p

    def git(self, cwd: Path, *args: str) -> str:
        return self.run(["git", *args], cwd).stdout.strip()

    def gitml(self, side: str, cwd: Path, *args: str) -> str:
        return self.run([sys.executable, GITML, *args], cwd, side).stdout.strip()

    # -- trees -----------------------------------------------------------------------------------
    def make_trees(self) -> None:
        for side, rev in (("before", self.args.before), ("after", self.args.after)):
            sha = self.git(ROOT, "rev-parse", "--verify", f"{rev}^{{commit}}")
            tree = self.tmp / f"tree-{side}"
            tree.mkdir()
            arch = subprocess.run(["git", "archive", sha, "gitml"], cwd=ROOT, capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(tree)], input=arch.stdout, check=True)
            self.revs[side], self.trees[side] = sha, tree
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "gitml")],
                           env=self.env(side), check=True)
            where = self.run([sys.executable, "-c", "import gitml; print(gitml.__file__)"], self.tmp, side).stdout.strip()
            if not where.startswith(str(tree) + os.sep):
                raise RuntimeError(f"{side}: gitml imported from {where}, not from {tree}")
            self.log(f"{side}: {sha[:7]} extracted to {tree}; gitml.__file__ = {where}")

    # -- the repository --------------------------------------------------------------------------
    def build(self) -> None:
        a = self.args
        base = self.tmp / "base"
        base.mkdir()
        store = self.tmp / "artifact-remote"
        self.store = store
        self.git(base, "init", "-q", "-b", "main")
        (base / "train.py").write_text("print('train')\n")
        (base / ".gitignore").write_text("*.bin\n")
        self.git(base, "add", "-A")
        self.git(base, "commit", "-q", "-m", "first")
        self.gitml("after", base, "init")
        self.gitml("after", base, "remote", "add", "store", str(store), "--default")
        self.git(base, "add", "-A")
        self.git(base, "commit", "-q", "-m", "gitml init, artifact remote")
        self.git(base, "checkout", "-q", "-b", "feature")
        (base / "train.py").write_text("print('train, deeper')\n")
        self.git(base, "commit", "-q", "-am", "feature: deeper")
        feature = self.git(base, "rev-parse", "HEAD")
        self.git(base, "checkout", "-q", "main")
        (base / "README.md").write_text("churn model\n")
        self.git(base, "add", "-A")
        self.git(base, "commit", "-q", "-m", "readme")
        main = self.git(base, "rev-parse", "HEAD")
        t0 = time.perf_counter()
        spec = {"repo": str(base), "n": a.runs, "chunk": a.chunk, "main": main, "feature": feature}
        p = self.run([sys.executable, Path(__file__).resolve(), "--worker", "preload", json.dumps(spec)], self.tmp, "after")
        res = json.loads(next(x for x in reversed(p.stdout.splitlines()) if x.startswith(RESULT_PREFIX))[len(RESULT_PREFIX):])
        self.log(f"preloaded {res['n']} runs in {res['s']:.1f} s")
        ids = []
        for i in range(10):
            (base / "model.bin").write_bytes(random.Random(i).randbytes(100_000))
            ids.append(self.gitml("after", base, "commit-run", "-e", "churn", "-n", f"art-{i}",
                                  "-p", f"depth={i + 2}", "-m", f"acc={0.7 + i / 100}", "-a", "model.bin").split()[-1])
        for rid in ids[:3]:
            self.gitml("after", base, "registry", "register", "churn", "--run", rid)
        self.gitml("after", base, "registry", "assign", "churn", "--version", "v0.0.2", "--stage", "prod")
        self.gitml("after", base, "artifacts", "push")
        self.log(f"built in {time.perf_counter() - t0:.1f} s: {a.runs} + 10 runs, churn v0.0.1–v0.0.3, prod = v0.0.2")
        for side in SIDES:
            self.repos[side] = self.tmp / f"repo-{side}"
            subprocess.run(["cp", "-a", str(base), str(self.repos[side])], check=True)
        plain = self.tmp / "plain"
        plain.mkdir()
        self.git(plain, "init", "-q", "-b", "main")
        for k in range(2):
            (plain / "f.txt").write_text(f"{k}\n")
            self.git(plain, "add", "-A")
            self.git(plain, "commit", "-q", "-m", f"c{k}")
        self.plain = plain
        self.hook_line = f"refs/heads/main {self.git(plain, 'rev-parse', 'HEAD')} refs/heads/main {self.git(plain, 'rev-parse', 'HEAD~1')}\n"
        self.out = self.tmp / "out"
        self.out.mkdir()

    # -- cases -----------------------------------------------------------------------------------
    def cases(self) -> list[dict]:
        """Every measured command: label, argv builder (side, k), cwd builder, stdin, kind."""
        py = sys.executable
        g = [py, str(GITML)]

        def repo(side):
            return self.repos[side or "after"]

        out = self.out
        return [
            {"id": "help", "label": "`gitml --help`", "argv": lambda s, k: [*g, "--help"], "cwd": repo},
            {"id": "import", "label": '`python -c "import gitml"`', "argv": lambda s, k: [py, "-c", "import gitml"], "cwd": repo},
            {"id": "list", "label": "`gitml runs list` (default limit 50)", "argv": lambda s, k: [*g, "runs", "list"], "cwd": repo},
            {"id": "filter", "label": '`gitml runs list --filter "metrics.acc > 0.5" --order-by "metrics.acc DESC"`',
             "argv": lambda s, k: [*g, "runs", "list", "--filter", "metrics.acc > 0.5", "--order-by", "metrics.acc DESC"], "cwd": repo},
            {"id": "which", "label": "`gitml registry which churn@prod`", "argv": lambda s, k: [*g, "registry", "which", "churn@prod"], "cwd": repo},
            {"id": "get", "label": "`gitml artifacts get models:/churn@prod -o OUT`",
             "argv": lambda s, k: [*g, "artifacts", "get", "models:/churn@prod", "-o", str(out / f"{s}-{k}" / "x")], "cwd": repo},
            {"id": "hook", "label": "`gitml hooks pre-push origin URL` (no gitml refs: fast path)",
             "argv": lambda s, k: [*g, "hooks", "pre-push", "origin", "file:///nowhere.git"], "cwd": lambda s: self.plain,
             "stdin": self.hook_line},
            {"id": "diff", "label": "`gitml diff main feature`", "argv": lambda s, k: [*g, "diff", "main", "feature"], "cwd": repo},
            {"id": "commit", "label": "`gitml commit-run -m acc=0.5`", "argv": lambda s, k: [*g, "commit-run", "-m", "acc=0.5"],
             "cwd": repo, "last": True},
        ]

    def floors(self) -> list[dict]:
        base = self.repos["after"]
        return [
            {"id": "f-py", "label": "`python -c pass` (interpreter start-up)", "argv": [sys.executable, "-c", "pass"], "cwd": base},
            {"id": "f-status", "label": "`git status` (big repository)", "argv": ["git", "status"], "cwd": base},
            {"id": "f-revparse", "label": "`git rev-parse HEAD`", "argv": ["git", "rev-parse", "HEAD"], "cwd": base},
            {"id": "f-diff", "label": "`git diff --stat main feature`", "argv": ["git", "diff", "--stat", "main", "feature"], "cwd": base},
        ]

    def once(self, case: dict, side: str, k, extra: list[str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
        argv = [str(a) for a in case["argv"](side, k)]
        if extra:
            argv = [argv[0], *extra, *argv[1:]]
        t0 = time.perf_counter()
        p = subprocess.run(argv, cwd=case["cwd"](side), env=self.env(side), input=case.get("stdin"),
                           capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{case['id']} ({side}) failed ({p.returncode}): {p.stderr[-2000:]}")
        return dt, p

    def warm(self) -> None:
        """Each command once per side, untimed: bytecode written, each copy's index built; outputs compared."""
        self.same: dict[str, bool] = {}
        for case in self.cases():
            if case.get("last"):
                continue
            outs = {}
            for side in SIDES:
                _, p = self.once(case, side, "warm")
                _, p = self.once(case, side, "warm2")
                outs[side] = p.stdout.replace(f"{side}-warm2", "SIDE-warm2")
            if case["id"] == "get":
                got = {s: (self.out / f"{s}-warm2" / "x").read_bytes() for s in outs}
                outs = {s: outs[s] + str(hash(got[s])) for s in outs}
            self.same[case["id"]] = outs["before"] == outs["after"]
            if not self.same[case["id"]]:
                pairs = zip(outs["before"].splitlines() + [""], outs["after"].splitlines() + [""], strict=False)
                first = next(((x, y) for x, y in pairs if x != y), ("", ""))
                self.notes.append(f"{case['label']}: BEFORE and AFTER print different output (first difference: "
                                  f"`{first[0].strip()}` / `{first[1].strip()}`)")
        for side in SIDES:  # one untimed commit-run per side, so the first timed one is not the first
            self.once(self.cases()[-1], side, "warm")
        for f in self.floors():
            subprocess.run(f["argv"], cwd=f["cwd"], env=self.env(None), capture_output=True, check=True)

    # -- quiet rounds ----------------------------------------------------------------------------
    def busy(self) -> bool:
        """True when a process matching ``--wait-idle`` (default: pytest) runs."""
        if not self.args.wait_idle:
            return False
        p = subprocess.run(["pgrep", "-f", self.args.wait_idle], capture_output=True, text=True, check=False)
        return any(pid.strip() != str(os.getpid()) for pid in p.stdout.split())

    def _watch(self) -> None:
        """Every second: flag the current round when a process matching ``--wait-idle`` runs."""
        while True:
            if self.busy():
                self.flag = True
            time.sleep(1)

    def rounds(self, label: str, n: int, fn) -> None:
        """Run ``fn(k)`` for ``n`` rounds with no ``--wait-idle`` process alongside.

        Before a round, wait (at most ``--max-wait`` seconds over the whole run) until none runs;
        a round during which one ran is thrown away and run again, up to ``n // 2`` extra rounds
        (so a machine that is never quiet costs at most half as much time again).
        ``fn(k)`` returns a list of ``(key, value)`` samples, kept only for an undisturbed round.
        """
        k = redone = 0
        while k < n:
            while self.busy() and self.waited < self.args.max_wait:
                time.sleep(2)
                self.waited += 2
            self.flag = self.busy()
            self.loads.append(os.getloadavg()[0])
            got = fn(k + redone)
            if self.flag and redone < n // 2:
                redone += 1
                continue
            if self.flag:
                self.kept_disturbed += 1
            for key, value in got:
                self.samples.setdefault(key, []).append(value)
            k += 1
        self.redone[label] = redone
        self.log(f"{label}: {n} rounds ({redone} thrown away and run again)")

    def measure(self) -> None:
        reps = self.args.reps
        cases = self.cases()
        reads = [c for c in cases if not c.get("last")]
        writes = [c for c in cases if c.get("last")]
        floors = self.floors()

        def one_round(group, k):
            items: list[tuple[dict, str | None]] = []
            for case in group:
                items += [(case, s) for s in (SIDES if k % 2 == 0 else SIDES[::-1])]
            if group is reads:
                items += [(f, None) for f in floors]
            shift = k % len(items)
            got = []
            for case, side in items[shift:] + items[:shift]:
                if side is None:
                    t0 = time.perf_counter()
                    subprocess.run(case["argv"], cwd=case["cwd"], env=self.env(None), capture_output=True, check=True)
                    dt = time.perf_counter() - t0
                else:
                    dt, _ = self.once(case, side, k)
                got.append(((case["id"], side or "floor"), dt))
            return got

        self.rounds("reads", reps, lambda k: one_round(reads, k))
        self.rounds("commit-run", reps, lambda k: one_round(writes, k))

    def profile(self) -> None:
        """``-X importtime`` of each gitml command, ``--profiles`` times per side, alternating."""

        def one_round(k):
            got = []
            for case in self.cases():
                for side in SIDES if k % 2 == 0 else SIDES[::-1]:
                    _, p = self.once(case, side, f"prof{k}", extra=["-X", "importtime"])
                    got.append((("importtime", case["id"], side), parse_importtime(p.stderr)))
            return got

        self.rounds("importtime", self.args.profiles, one_round)
        self.imports = {(key[1], key[2]): v for key, v in self.samples.items() if key[0] == "importtime"}

    # -- report ----------------------------------------------------------------------------------
    def delta(self, case_id: str) -> float:
        """Median wall time AFTER minus BEFORE, in ms."""
        return 1000 * (statistics.median(self.samples[(case_id, "after")]) - statistics.median(self.samples[(case_id, "before")]))

    def report(self) -> str:
        a = self.args
        ms = lambda v: f"{v * 1000:,.1f}"  # noqa: E731
        versions = {}
        for dist in ("click", "dulwich", "PyYAML", "fsspec", "semver", "ruamel.yaml", "tabulate"):
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                versions[dist] = "not installed"
        git_v = self.git(ROOT, "--version").replace("git version ", "")
        lines = [
            "# The Workspace seam (issue 10): before and after",
            "",
            f"Command: `{shlex.join(['python', 'bench/bench_seam.py', *sys.argv[1:]])}`",
            "",
            f"- Date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
            f"machine: {os.cpu_count()} cores ({cpu_model()}), {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; git {git_v}; "
            + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
            f"- BEFORE = `{self.revs['before'][:7]}` (`--before {a.before}`), AFTER = `{self.revs['after'][:7]}` "
            f"(`--after {a.after}`), each `gitml/` from `git archive`, run with `PYTHONPATH` at its tree "
            "(`gitml.__file__` checked on both sides).",
            "- Bytecode cached on both sides (`PYTHONDONTWRITEBYTECODE` removed, trees byte-compiled, "
            "every command run twice untimed per side).",
            f"- Repository: {a.runs:,} bulk runs on `refs/gitml/runs` in {-(-a.runs // a.chunk):,} ref commits "
            "(1 in 10 from branch `feature`) + 10 runs with a 100 KB artifact (`gitml commit-run -a`); "
            "model `churn` v0.0.1–v0.0.3, `prod` = v0.0.2; artifact remote a local folder, everything pushed. "
            "One copy per side (the index schema differs: 2 before, 3 after).",
            f"- Median of {a.reps} wall times per figure, whole processes, BEFORE/AFTER alternating, the order of "
            f"all commands rotating each round. 1-minute load average during the rounds: "
            f"{min(self.loads):.2f}–{max(self.loads):.2f} (mean {statistics.mean(self.loads):.2f}) on "
            f"{os.cpu_count()} cores. "
            + (f"Rounds during which a process matching `pgrep -f {a.wait_idle}` ran were "
               f"thrown away and run again: {', '.join(f'{k} {v}' for k, v in self.redone.items())}"
               f"{f'; kept anyway (no retries left): {self.kept_disturbed}' if self.kept_disturbed else ''}; "
               f"waited {self.waited:.0f} s for quiet." if a.wait_idle else "Other processes were not checked (`--wait-idle ''`)."),
            "",
            "| case | before (ms) | after (ms) | after / before | spread before / after (ms, p25–p75) | same output |",
            "|---|---:|---:|---:|---|:---:|",
        ]
        for case in self.cases():
            b, af = self.samples[(case["id"], "before")], self.samples[(case["id"], "after")]
            mb, ma = statistics.median(b), statistics.median(af)
            same = self.same.get(case["id"])
            lines.append(
                f"| {case['label']} | {ms(mb)} | {ms(ma)} | {ma / mb:.2f}× | {iqr(b)} / {iqr(af)} | "
                f"{'yes' if same else ('no' if same is not None else 'n/a')} |"
            )
        lines += ["", "Floors and peers, measured in the same rounds:", "", "| command | ms (median) |", "|---|---:|"]
        for f in self.floors():
            lines.append(f"| {f['label']} | {ms(statistics.median(self.samples[(f['id'], 'floor')]))} |")
        lines += [
            "",
            f"Imports (`-X importtime`, median of {a.profiles} runs per side): modules loaded, of them dulwich, and "
            "milliseconds of imports from the first `gitml` import on (top-level entries' cumulative time):",
            "",
            "| case | modules before | modules after | dulwich before | dulwich after | imports before (ms) | imports after (ms) | Δ imports / Δ wall (ms) | top-level imports that moved most, cumulative ms (before → after) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for case in self.cases():
            ib, ia = self.imports[(case["id"], "before")], self.imports[(case["id"], "after")]
            med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
            lines.append(
                f"| {case['label']} | {med(ib, 'modules'):.0f} | {med(ia, 'modules'):.0f} | {med(ib, 'dulwich'):.0f} | "
                f"{med(ia, 'dulwich'):.0f} | {med(ib, 'gitml_ms'):.1f} | {med(ia, 'gitml_ms'):.1f} | "
                f"{med(ia, 'gitml_ms') - med(ib, 'gitml_ms'):+.1f} / {self.delta(case['id']):+.1f} | {movers(ib, ia)} |"
            )
        lines += [
            "",
            "Modules loaded on one side only (count, sum of median self times, the largest by self time in ms):",
            "",
            "| case | only AFTER loads | only BEFORE loads |",
            "|---|---|---|",
        ]
        for case in self.cases():
            ib, ia = self.imports[(case["id"], "before")], self.imports[(case["id"], "after")]
            lines.append(f"| {case['label']} | {only_on(ia, ib)} | {only_on(ib, ia)} |")
        for side in SIDES:
            dul = max(r["dulwich"] for r in self.imports[("hook", side)])
            self.notes.append(f"hook fast path, {side.upper()}: " + ("no dulwich module imported in any profiled run"
                              if dul == 0 else f"DULWICH IMPORTED ({dul} modules)"))
        if self.notes:
            lines += ["", "Notes:", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def iqr(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return f"{q[0] * 1000:.0f}–{q[2] * 1000:.0f}"


def parse_importtime(text: str) -> dict:
    """Modules, dulwich modules, top-level cumulative and per-module self times from ``-X importtime``."""
    top: dict[str, float] = {}
    own: dict[str, float] = {}
    modules = dulwich = 0
    seen_gitml = False
    gitml_us = 0.0
    for line in text.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum, name = line[len("import time:"):].split("|", 2)
        modules += 1
        bare = name.strip()
        own[bare] = float(self_us) / 1000
        if bare.split(".")[0] == "dulwich":
            dulwich += 1
        if name.startswith(" ") and not name.startswith("  "):  # top level: one space after the bar
            if bare.split(".")[0] == "gitml":
                seen_gitml = True
            if seen_gitml:
                gitml_us += float(cum)
                top[bare] = top.get(bare, 0.0) + float(cum) / 1000
    return {"modules": modules, "dulwich": dulwich, "gitml_ms": gitml_us / 1000, "top": top, "self": own}


def movers(before: list[dict], after: list[dict], n: int = 4) -> str:
    """The top-level imports whose median cumulative time changed most, largest first."""
    names = set().union(*(r["top"] for r in before + after))

    def med(runs, name):
        return statistics.median(r["top"].get(name, 0.0) for r in runs)

    moved = sorted(((med(after, m) - med(before, m), m) for m in names), key=lambda x: -abs(x[0]))
    return "; ".join(f"{m} {med(before, m):.1f} → {med(after, m):.1f}" for d, m in moved[:n] if abs(d) >= 0.5) or "—"


def only_on(one: list[dict], other: list[dict], n: int = 6) -> str:
    """Modules every run of ``one`` loaded and no run of ``other`` did, by median self time (ms)."""
    names = set.intersection(*(set(r["self"]) for r in one)) - set().union(*(r["self"] for r in other))
    timed = sorted(((statistics.median(r["self"][m] for r in one), m) for m in names), reverse=True)
    total = sum(t for t, _ in timed)
    shown = ", ".join(f"{m} {t:.1f}" for t, m in timed[:n])
    more = f", … {len(timed) - n} more" if len(timed) > n else ""
    return f"{len(timed)} ({total:.1f} ms): {shown}{more}" if timed else "—"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        res = {"preload": w_preload}[sys.argv[2]](json.loads(sys.argv[3]))
        print(RESULT_PREFIX + json.dumps(res))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default="8bf9537", help="revision before the change (default 8bf9537)")
    ap.add_argument("--after", default="HEAD", help="revision after the change (default HEAD)")
    ap.add_argument("--runs", type=int, help="bulk runs on the runs ref (default 2000)")
    ap.add_argument("--chunk", type=int, default=10, help="runs per ref commit in the bulk load (default 10)")
    ap.add_argument("--reps", type=int, help="timed samples per figure and side (default 21)")
    ap.add_argument("--profiles", type=int, help="-X importtime runs per command and side (default 5)")
    ap.add_argument("--wait-idle", default="pytest", metavar="PATTERN",
                    help="measure only while no process matches `pgrep -f PATTERN` ('' to skip; default pytest)")
    ap.add_argument("--max-wait", type=float, default=120, help="seconds to wait for quiet, in all (default 120)")
    ap.add_argument("--quick", action="store_true", help="defaults of 500 runs, 7 samples, 3 profiles")
    ap.add_argument("--workdir", default=tempfile.gettempdir(), help="where the benchmark's folder goes")
    ap.add_argument("--out", help="also write the report to this file")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark's folder")
    args = ap.parse_args()
    for name, full, quick in (("runs", 2000, 500), ("reps", 21, 7), ("profiles", 5, 3)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    b = Bench(args)
    try:
        b.make_trees()
        b.build()
        b.warm()
        b.log("warmed up")
        b.measure()
        b.profile()
        text = b.report()
    finally:
        if args.keep:
            b.log(f"kept {b.tmp}")
        else:
            shutil.rmtree(b.tmp, ignore_errors=True)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
