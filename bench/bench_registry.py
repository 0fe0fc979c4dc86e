#!/usr/bin/env python
"""Registry benchmark: ``gitml registry …`` versus GTO on the same repository of tags.

Run ``python bench/bench_registry.py`` (full: 2,000 and 4,000 registry tags, each with 2,000
unrelated release tags; about 8 minutes on 2 cores, most of it GTO) or ``--quick`` (200 and 400
registry tags, 200 release tags, 2 repetitions: a smoke run of about a minute);
``--no-gto --sizes 2000,4000,8000`` times gitml alone at more sizes. It prints a Markdown report of
absolute figures and ratios to stdout and progress to stderr; ``--markdown FILE`` also writes the
report to FILE.

The repository (one per size, under ``/var/tmp``) is built in one ``git fast-import`` stream:

* ``N/20`` models ``m0, m1, …``, 20 events each: 8 registrations (``m7@v0.0.1`` … ``v0.0.8``, each
  on its own commit, as GTO wants) and 12 stage events (``m7#dev#3``, ``m7#prod!#9``: assignments
  of dev/staging/prod to recent versions, some unassignments; the counter runs over the model's
  stage events, as in GTO), interleaved across models, one second apart (so GTO, which orders by tag
  time, and gitml, which orders stage events by counter, see the same history);
* every tag is annotated with GTO's one-line message (``Registering artifact m7 version v0.0.3``,
  ``Assigning stage prod to artifact m7 version v0.0.3`` …); odd-numbered models' tags also carry
  gitml's YAML block after it (run id, path, sha256, size: as ``gitml registry`` writes them), even
  ones are exactly what GTO writes, so both kinds of reading are exercised;
* 2,000 unrelated annotated tags ``release-N``, spread among them;
* refs packed (``git pack-refs --all``, as after a clone), one gitml run with an artifact
  (``gitml commit-run -a model.pkl``, for ``register``) and a few spare commits (for
  ``gto register``, which refuses a second version on one commit).

Before timing, the script checks that both tools read the same registry: every model's latest
version and the version each stage holds, ``gitml registry show --json`` against
``gto show --json``.

Timed, as whole processes (wall time, interpreter start included; median of ``--reps`` after one
warm-up run): ``gitml registry show``, ``show m7``, ``which m7@prod``, ``history m7`` against
``gto show``, ``gto show m7``, ``gto show m7#prod --version`` (GTO's nearest to
``which``), ``gto history m7``;
for gitml also cold runs (``.git/gitml/registry-cache/`` deleted before each: the runs that fill
it), reads and writes. Writes run on a copy of the repository per tool, each repetition a real new event:
``gitml registry assign m7 --version v0.0.8 --stage bK`` against ``gto assign m7 --version v0.0.8 --stage bK``
(a fresh stage each time), and ``gitml registry register m7 --run RUN`` against
``gto register m7 SPARE_COMMIT`` (the next patch version each time).

Every timed run records wall time and CPU time (user + sys of the process and its children, from
``wait4``): CPU time is far less sensitive to other load on the machine. Flatness is also measured
interleaved: gitml's warm reads at every size, the sizes' runs alternating in a rotating order, so
that a slow spell of the machine hits all sizes alike. The warm reads are timed once more with every
tag as a loose ref (as local writes leave them before ``git gc``). A watcher samples the load
average and notes any other ``bench_*`` process of this repository seen running.

gitml is run through its console script next to this interpreter (not a pyenv shim, which alone
adds tens of milliseconds); GTO through its own virtualenv (``--gto``, default
``/var/tmp/gtoenv/bin/gto``). Subprocesses get a scrubbed environment: ``HOME`` in the work
directory with a ``.gitconfig``, no ``GIT_*`` variables, analytics off.

Last, at the largest size (warm cache), the report splits each gitml command's time: interpreter
start (``python -c pass``), imports (a process importing the same top-level modules, and
``python -X importtime`` per module), and the rest; then one cProfile run of each command in a
worker process (the CLI called in process, its imports done before the profiler starts; ``show``
also cold) breaks the work down: reading tag refs, the event cache (JSON read/write), reading tag
objects, the fold, claim refs, writing the tag, output. ``--profile DIR`` keeps the dumps.
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
GITML = Path(sys.executable).parent / "gitml"
DEFAULT_GTO = next((p for p in ("/var/tmp/gtoenv/bin/gto", "/tmp/gitml-ci-gto/bin/gto") if os.path.exists(p)),
                   "/var/tmp/gtoenv/bin/gto")
PROBE = "m7"
EVENTS_PER_MODEL = 20
REG_AT = (0, 2, 4, 7, 9, 12, 15, 17)  # positions of the 8 registrations among a model's 20 events
STAGES = ("dev", "staging", "prod")
T0 = 1_700_000_000
IDENT = "Bench User <bench@example.com>"
MODES = {
    "full": {"sizes": [2000, 4000], "unrelated": 2000, "reps": 5, "writes": 5, "cold": 3},
    "quick": {"sizes": [200, 400], "unrelated": 200, "reps": 2, "writes": 2, "cold": 2},
}
GOAL_S, GOAL_RATIO = 0.2, 10.0
OTHER_BENCH = r"bench_(?!registry)[a-z_]+"  # other benchmarks of this repository: their load skews ours
PROFILE_KEYS = [  # (label, function-name test on pstats keys (file, line, name))
    ("reading tag refs (GitRepo.tags)", lambda f, n: n == "tags" and f.endswith("gitrepo.py")),
    ("listing one model's tag refs (refs_with_prefix)", lambda f, n: n == "refs_with_prefix"),
    ("event cache: JSON read (_load_cache)", lambda f, n: n == "_load_cache" and f.endswith("registry.py")),
    ("event cache: JSON write (_save)", lambda f, n: n == "_save" and f.endswith("registry.py")),
    ("reading tag objects (read_tags)", lambda f, n: n == "read_tags" and f.endswith("gitrepo.py")),
    ("load_events in all", lambda f, n: n == "load_events" and f.endswith("registry.py")),
    ("fold", lambda f, n: n == "fold" and f.endswith("registry.py")),
    ("same-bytes check (versions_with_digest)", lambda f, n: n == "versions_with_digest"),
    ("gitml.yaml rules", lambda f, n: n == "rules" and f.endswith("ops.py")),
    ("reading the run (register)", lambda f, n: n in ("read_run_files", "resolve_run_id")),
    ("writing the tag (create_tag_if_absent)", lambda f, n: n in ("create_tag", "create_tag_if_absent")),
    ("claim refs (_last_claim + add_ref_if_absent)", lambda f, n: n in ("_last_claim", "add_ref_if_absent")),
    ("output (echo_table/echo_json/echo)", lambda f, n: n in ("echo_table", "echo_json")),
]
OUTPUT_LABEL = "output (echo_table/echo_json/echo)"
IMPORT_LABEL = "imports left during the command"
LAZY_MODULES = ["gitml.cli.registry", "gitml.registry", "gitml.registry.ops", "gitml.core.registry",
                "gitml.tracking.query", "tabulate"]
IMPORT_WATCH = [  # modules whose import cost (cumulative, -X importtime) the report shows
    ("site (interpreter start-up)", "site"), ("click", "click"), ("gitml.cli", "gitml.cli"),
    ("gitml.registry.ops", "gitml.registry.ops"), ("  of which dulwich (gitml.core.gitrepo)", "gitml.core.gitrepo"),
    ("  of which gitml.core.yamlfmt", "gitml.core.yamlfmt"), ("  of which gitml.core.formats", "gitml.core.formats"),
    ("tabulate", "tabulate"), ("gitml.tracking.query (register)", "gitml.tracking.query")]


# ------------------------------------------------------------------------------------------------
# Profile worker (its own process: the CLI called in process under cProfile)
# ------------------------------------------------------------------------------------------------
def profile_worker(spec: dict) -> None:
    """Import what the command imports (timed), then run the CLI in process under cProfile."""
    import cProfile
    import importlib
    import io
    import pstats

    t0 = time.perf_counter()
    from gitml.cli import main

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    for module in LAZY_MODULES:  # so that the profile shows the work, not imports
        importlib.import_module(module)
    t_lazy = time.perf_counter() - t0
    prof = cProfile.Profile()
    real, sys.stdout = sys.stdout, io.StringIO()
    t1 = time.perf_counter()
    prof.enable()
    try:
        main(spec["argv"])
    except SystemExit as exc:
        if exc.code not in (0, None):
            sys.stdout = real
            raise
    finally:
        prof.disable()
        sys.stdout = real
    t_cmd = time.perf_counter() - t1
    if spec.get("dump"):
        prof.dump_stats(spec["dump"])
    stats = pstats.Stats(prof).stats
    parts = {}
    for label, test in PROFILE_KEYS:
        parts[label] = sum(ct for (f, _, n), (_, _, _, ct, _) in stats.items() if test(f, n))
    parts[OUTPUT_LABEL] += sum(  # click.echo called directly by a command (not through echo_table)
        cct for (f, _, n), (_, _, _, _, callers) in stats.items() if n == "echo" and "click" in f
        for (_, _, cn), (_, _, _, cct) in callers.items() if cn not in ("echo_table", "echo_json"))
    parts[IMPORT_LABEL] = sum(ct for (_, _, n), (_, _, _, ct, _) in stats.items() if n == "_find_and_load")
    top = sorted(((tt, f"{Path(f).parent.name}/{Path(f).name}:{line}:{n}" if f != "~" else n)
                  for (f, line, n), (_, _, tt, _, _) in stats.items()), reverse=True)
    print(json.dumps({"import_s": t_import, "lazy_import_s": t_lazy, "command_s": t_cmd, "parts": parts,
                      "top_self": [(name, tt) for tt, name in top[:15]]}))


def parse_importtime(stderr: str) -> dict[str, float]:
    """``-X importtime`` output -> {module: cumulative seconds} (first occurrence), plus '(top-level)'."""
    found: dict = {}
    top, after_site, seen_site = 0.0, [], False
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        module = name.strip()
        found.setdefault(module, int(cumulative) / 1e6)
        if depth == 0 and seen_site:
            top += int(cumulative) / 1e6
            after_site.append(module)
        seen_site |= depth == 0 and module == "site"
    found["(top-level)"] = top
    found["(modules)"] = after_site
    return found


# ------------------------------------------------------------------------------------------------
# Building the repository
# ------------------------------------------------------------------------------------------------
def plan_model(index: int, seed: int) -> list[tuple]:
    """20 events of one model: ('register', v) or ('assign'|'unassign', v, stage)."""
    rng = random.Random(seed * 100_003 + index)
    for _ in range(100):
        events, versions, held = [], [], set()
        for pos in range(EVENTS_PER_MODEL):
            if pos in REG_AT:
                version = f"v0.0.{len(versions) + 1}"
                versions.append(version)
                events.append(("register", version))
                continue
            if held and rng.random() < 0.25:
                version, stage = rng.choice(sorted(held))
                held.discard((version, stage))
                events.append(("unassign", version, stage))
                continue
            free = [(v, s) for v in versions[-2:] for s in STAGES if (v, s) not in held]
            free = free or [(v, s) for v in versions for s in STAGES if (v, s) not in held]
            weights = [1 + STAGES.index(s) + 2 * (v == versions[-1]) for v, s in free]
            version, stage = rng.choices(free, weights)[0]
            held.add((version, stage))
            events.append(("assign", version, stage))
        if f"m{index}" != PROBE or any(s == "prod" for _, s in held):
            return events
        rng = random.Random(rng.random())  # the probe model must end with a version in prod
    raise RuntimeError("could not plan the probe model")


def _gitml_message(title: str, meta: dict) -> str:
    from gitml.registry.ops import _message  # exactly the block `gitml registry` writes

    return _message(title, meta)


def fast_import_stream(n_models: int, n_unrelated: int, seed: int, spare: int) -> tuple[bytes, dict]:
    """The fast-import stream of the whole repository, and facts about it."""
    plans = {i: plan_model(i, seed) for i in range(n_models)}
    sequence = [(i, pos) for pos in range(EVENTS_PER_MODEL) for i in range(n_models)]  # interleaved
    total = len(sequence) + n_unrelated
    release_at = {round(k * total / n_unrelated) for k in range(n_unrelated)} if n_unrelated else set()
    out: list[bytes] = []
    clock = T0
    mark = 0
    commits: dict[tuple[int, str], int] = {}
    counters = dict.fromkeys(plans, 0)
    release = 0
    run_ids = {i: hashlib.sha256(f"run-{seed}-{i}".encode()).hexdigest()[:32] for i in plans}
    made = {"registry": 0, "unrelated": 0}

    def data(payload: str) -> bytes:
        raw = payload.encode()
        return b"data %d\n%s\n" % (len(raw), raw)

    def commit(ref: str, message: str, content: str, parent: int | None = None) -> int:
        nonlocal clock, mark
        clock += 1
        mark += 1
        out.append(f"commit {ref}\nmark :{mark}\ncommitter {IDENT} {clock} +0000\n".encode())
        out.append(data(message))
        if parent is not None:
            out.append(f"from :{parent}\n".encode())
        out.append(b"M 644 inline model.txt\n" + data(content))
        return mark

    def tag(name: str, target: int, message: str) -> None:
        nonlocal clock
        clock += 1
        out.append(f"tag {name}\nfrom :{target}\ntagger {IDENT} {clock} +0000\n".encode())
        out.append(data(message if message.endswith("\n") else message + "\n"))

    head = commit("refs/heads/main", "initial commit\n", "nothing yet\n")
    slot = 0
    for i, pos in sequence:
        while slot in release_at:
            release += 1
            tag(f"release-{release}", head, f"Release {release}")
            made["unrelated"] += 1
            slot += 1
        slot += 1
        model, event = f"m{i}", plans[i][pos]
        gitml_style = i % 2 == 1
        if event[0] == "register":
            version = event[1]
            head = commit("refs/heads/main", f"train {model} {version}\n", f"{model} {version}\n")
            commits[(i, version)] = head
            title = f"Registering artifact {model} version {version}"
            meta = {"run": run_ids[i], "path": "model.pkl",
                    "sha256": hashlib.sha256(f"{model}{version}".encode()).hexdigest(), "size": 1024,
                    "version": version}
            tag(f"{model}@{version}", head, _gitml_message(title, meta) if gitml_style else title)
        else:
            kind, version, stage = event
            counters[i] += 1
            bang = "!" if kind == "unassign" else ""
            if kind == "assign":
                title = f"Assigning stage {stage} to artifact {model} version {version}"
            elif gitml_style:
                title = f"Unassigning stage {stage} from artifact {model} version {version}"
            else:
                title = f"Unassigning stage '{stage}' to artifact '{model}' version '{version}'"
            meta = {"version": version, "run": run_ids[i]}
            tag(f"{model}#{stage}{bang}#{counters[i]}", commits[(i, version)],
                _gitml_message(title, meta) if gitml_style else title)
        made["registry"] += 1
    while release < n_unrelated:
        release += 1
        tag(f"release-{release}", head, f"Release {release}")
        made["unrelated"] += 1
    parent = head
    for k in range(spare):
        parent = commit("refs/heads/spare", f"spare {k}\n", f"spare {k}\n", parent=parent)
    out.append(b"done\n")
    return b"".join(out), {"plans": plans, "tags": made, "commits": mark}


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.mode = "quick" if args.quick else "full"
        self.cfg = dict(MODES[self.mode])
        if args.sizes:
            self.cfg["sizes"] = [int(s) for s in args.sizes.split(",")]
        if min(self.cfg["sizes"]) < EVENTS_PER_MODEL * (int(PROBE[1:]) + 1):
            raise SystemExit(f"sizes must be at least {EVENTS_PER_MODEL * (int(PROBE[1:]) + 1)} (model {PROBE})")
        if args.unrelated is not None:
            self.cfg["unrelated"] = args.unrelated
        if args.reps:
            self.cfg["reps"] = self.cfg["writes"] = args.reps
        root = Path(args.workdir_root)
        root.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-registry-", dir=root))
        self.home = self.tmp / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Bench User\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n"
            "[gc]\n\tauto = 0\n")
        self.env = self._env()
        self.gto = args.gto
        self.t_start = time.perf_counter()
        self.r: dict = {"sizes": {}}
        self.notes: list[str] = []
        self.profile_dir = Path(args.profile).resolve() if args.profile else None
        if self.profile_dir:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
        self.loads: list[float] = []
        self.others_seen: set[str] = set()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        """Every 5 s: the load average, and whether another benchmark of this repository is running."""
        while True:
            self.loads.append(os.getloadavg()[0])
            p = subprocess.run(["pgrep", "-af", "bench_"], capture_output=True, text=True, check=False)
            for line in p.stdout.splitlines():
                found = re.search(OTHER_BENCH, line)
                if found and "pgrep" not in line:
                    self.others_seen.add(found.group(0) + ".py")
            time.sleep(5)

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GIT_", "PYTHONPATH", "XDG_CONFIG_HOME", "GTO_", "VIRTUAL_ENV"))}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"), GIT_CONFIG_NOSYSTEM="1",
                   TMPDIR=str(self.tmp), DO_NOT_TRACK="1", ITERATIVE_DO_NOT_TRACK="1", GTO_NO_ANALYTICS="1",
                   PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))  # the gitml of this checkout
        return env

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    def run(self, argv: list, cwd: Path, input: bytes | None = None) -> subprocess.CompletedProcess:
        p = subprocess.run([str(a) for a in argv], cwd=cwd, env=self.env, input=input, capture_output=True,
                           check=False)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} failed ({p.returncode}): "
                               f"{p.stderr.decode(errors='replace').strip()[-2000:]}")
        return p

    def timed(self, argv: list, cwd: Path) -> float:
        """Wall time of one whole process; its CPU time (user + sys, children included) in last_cpu."""
        out, err = self.tmp / "timed.out", self.tmp / "timed.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            t = time.perf_counter()
            p = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=self.env, stdout=o, stderr=e)
            _, status, usage = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} failed ({p.returncode}): "
                               f"{err.read_text(errors='replace').strip()[-2000:]}")
        self.last_cpu = usage.ru_utime + usage.ru_stime
        return wall

    def _stats(self, walls: list[float], cpus: list[float]) -> dict:
        return {"median": statistics.median(walls), "min": min(walls), "max": max(walls), "runs": walls,
                "cpu": statistics.median(cpus), "cpu_runs": cpus}

    # -- building --------------------------------------------------------------------------------
    def build(self, n_registry: int) -> tuple[Path, dict]:
        n_models = n_registry // EVENTS_PER_MODEL
        repo = self.tmp / f"repo-{n_registry}"
        repo.mkdir()
        t = time.perf_counter()
        self.run(["git", "init", "-q", "-b", "main"], repo)
        spare = 2 * (self.cfg["writes"] + 1) + 2
        stream, facts = fast_import_stream(n_models, self.cfg["unrelated"], self.args.seed, spare)
        self.run(["git", "fast-import", "--quiet"], repo, input=stream)
        self.run(["git", "pack-refs", "--all", "--prune"], repo)
        self.run(["git", "reset", "-q", "--hard", "main"], repo)
        (repo / ".git" / "info" / "exclude").write_text("model.pkl\n")
        (repo / "model.pkl").write_bytes(random.Random(self.args.seed).randbytes(1024))
        run_id = self.run([GITML, "commit-run", "-n", "bench", "-a", "model.pkl"], repo).stdout.decode().strip()
        spares = self.run(["git", "rev-list", "--reverse", "main..spare"], repo).stdout.decode().split()
        n_tags = len(self.run(["git", "tag"], repo).stdout.splitlines())
        facts.update(run=run_id, spares=spares, models=n_models, n_tags=n_tags,
                     build_s=time.perf_counter() - t)
        self.log(f"built {repo.name}: {facts['tags']['registry']} registry + {facts['tags']['unrelated']} "
                 f"unrelated tags ({n_tags} in all), {facts['commits']} commits, in {facts['build_s']:.1f} s")
        return repo, facts

    def check_agreement(self, repo: Path, facts: dict) -> str:
        """Both tools' view of every model: latest version and the version in each stage."""
        ours = json.loads(self.run([GITML, "registry", "show", "--json"], repo).stdout)
        theirs = json.loads(self.run([self.gto, "show", "--json"], repo).stdout)
        mine = {m["name"]: (m["latest"], m["stages"]) for m in ours}
        gto = {}
        for name, entry in theirs.items():
            stages = {s: v for s, v in (entry.get("stage") or {}).items() if v}
            gto[name] = (entry.get("version"), {s: (v[-1] if isinstance(v, list) else v) for s, v in stages.items()})
        diffs = [f"{name}: gitml {mine.get(name)} vs GTO {gto.get(name)}" for name in sorted(set(mine) | set(gto))
                 if mine.get(name) != gto.get(name)]
        which = self.run([GITML, "registry", "which", f"{PROBE}@prod"], repo).stdout.decode().split("\t")[0]
        gto_which = self.run([self.gto, "show", f"{PROBE}#prod", "--version"], repo).stdout.decode().strip()
        if which != gto_which:
            diffs.append(f"{PROBE}@prod: gitml {which} vs GTO {gto_which}")
        verdict = (f"same latest version and stage holders for all {len(mine)} models; "
                   f"{PROBE}@prod = {which} for both") if not diffs else \
            f"{len(diffs)} differences, e.g. " + "; ".join(diffs[:3])
        self.log(f"agreement: {verdict}")
        return verdict

    # -- timing ----------------------------------------------------------------------------------
    def median(self, argv: list, cwd: Path, reps: int) -> dict:
        self.timed(argv, cwd)  # warm-up
        walls, cpus = [], []
        for _ in range(reps):
            walls.append(self.timed(argv, cwd))
            cpus.append(self.last_cpu)
        return self._stats(walls, cpus)

    @staticmethod
    def drop_cache(repo: Path) -> None:
        """Delete gitml's registry cache (one file per model, and the one-file cache of older gitml)."""
        shutil.rmtree(repo / ".git" / "gitml" / "registry-cache", ignore_errors=True)
        (repo / ".git" / "gitml" / "registry-cache.json").unlink(missing_ok=True)

    def cold(self, argv: list, cwd: Path, reps: int) -> dict:
        """Runs with the registry cache deleted before each (each run fills it again)."""
        walls, cpus = [], []
        for _ in range(reps):
            self.drop_cache(cwd)
            walls.append(self.timed(argv, cwd))
            cpus.append(self.last_cpu)
        return self._stats(walls, cpus)

    def reads(self, repo: Path) -> dict:
        pairs = {
            "show": ([GITML, "registry", "show"], [self.gto, "show"]),
            f"show {PROBE}": ([GITML, "registry", "show", PROBE], [self.gto, "show", PROBE]),
            f"which {PROBE}@prod": ([GITML, "registry", "which", f"{PROBE}@prod"],
                                    [self.gto, "show", f"{PROBE}#prod", "--version"]),
            f"history {PROBE}": ([GITML, "registry", "history", PROBE], [self.gto, "history", PROBE]),
        }
        out = {}
        for label, (ours, theirs) in pairs.items():
            runs = self.cold(ours, repo, self.cfg["cold"])
            cold, cold_cpu = runs["median"], runs["cpu"]
            warm = self.median(ours, repo, self.cfg["reps"])
            gto = self.median(theirs, repo, self.cfg["reps"]) if not self.args.no_gto else None
            out[label] = {"gitml_cold": cold, "gitml_cold_cpu": cold_cpu, "gitml_cold_runs": runs["runs"],
                          "gitml": warm, "gto": gto,
                          "gitml_cmd": " ".join(map(str, ours[1:])),
                          "gto_cmd": "gto " + " ".join(map(str, theirs[1:]))}
            self.log(f"  {label}: gitml cold {cold:.3f} s, warm {warm['median']:.3f} s"
                     + (f"; GTO {gto['median']:.3f} s" if gto else ""))
        return out

    def writes(self, repo: Path, facts: dict) -> dict:
        n = self.cfg["writes"]
        latest = [e[1] for e in facts["plans"][int(PROBE[1:])] if e[0] == "register"][-1]
        out = {}
        tools = [("gitml", GITML)] + ([] if self.args.no_gto else [("gto", self.gto)])
        for tool, exe in tools:
            copy = self.tmp / f"{repo.name}-{tool}"
            shutil.copytree(repo, copy, symlinks=True)
            before = set(self.run(["git", "tag"], copy).stdout.decode().split())
            if tool == "gitml":  # the read runs left a warm cache: the steady state of a working repo
                assign = [[exe, "registry", "assign", PROBE, "--version", latest, "--stage", f"b{k}"]
                          for k in range(n + 1)]
                register = [[exe, "registry", "register", PROBE, "--run", facts["run"]] for _ in range(n + 1)]
            else:
                assign = [[exe, "assign", PROBE, "--version", latest, "--stage", f"b{k}"] for k in range(n + 1)]
                register = [[exe, "register", PROBE, facts["spares"][k]] for k in range(n + 1)]
            for label, cmds in (("assign", assign), ("register", register)):
                walls, cpus = [], []
                for k, cmd in enumerate(cmds):
                    wall = self.timed(cmd, copy)
                    if k:  # the first one is the warm-up
                        walls.append(wall)
                        cpus.append(self.last_cpu)
                times = walls
                out.setdefault(label, {})[tool] = self._stats(walls, cpus)
                if tool == "gitml":
                    out[label]["gitml_cmd"] = " ".join(map(str, cmds[0][1:3])) + " " + " ".join(
                        map(str, cmds[0][3:]))
                else:
                    out[label]["gto_cmd"] = "gto " + " ".join(map(str, cmds[0][1:]))
                self.log(f"  {label} ({tool}): {statistics.median(times):.3f} s")
            if tool == "gitml":  # the same writes with no cache at all (a fresh clone's first write)
                cold_cmds = {"assign": [[GITML, "registry", "assign", PROBE, "--version", latest, "--stage", f"c{k}"]
                                        for k in range(self.cfg["cold"])],
                             "register": [[GITML, "registry", "register", PROBE, "--run", facts["run"]]
                                          for _ in range(self.cfg["cold"])]}
                for label, cmds in cold_cmds.items():
                    walls, cpus = [], []
                    for cmd in cmds:
                        self.drop_cache(copy)
                        walls.append(self.timed(cmd, copy))
                        cpus.append(self.last_cpu)
                    out[label]["gitml_cold"] = self._stats(walls, cpus)
                    self.log(f"  {label} (gitml, cold): {statistics.median(walls):.3f} s")
            new = sorted(set(self.run(["git", "tag"], copy).stdout.decode().split()) - before)
            self.log(f"  {tool} wrote: {', '.join(new)}")
            out.setdefault("tags_written", {})[tool] = new
        return out

    def interleaved(self, repos: dict[int, Path]) -> dict:
        """gitml's warm reads at every size, runs interleaved across sizes (a rotating order each round),
        so that a slow spell of the machine hits all sizes alike: the flatness figures."""
        out = {}
        sizes = sorted(repos)
        for label, argv in ((f"show {PROBE}", ["registry", "show", PROBE]),
                            (f"which {PROBE}@prod", ["registry", "which", f"{PROBE}@prod"]),
                            (f"history {PROBE}", ["registry", "history", PROBE]), ("show", ["registry", "show"])):
            runs: dict[int, list[float]] = {size: [] for size in sizes}
            for size in sizes:
                self.timed([GITML, *argv], repos[size])  # warm-up (and cache)
            for k in range(2 * self.cfg["reps"]):
                order = sizes[k % len(sizes):] + sizes[:k % len(sizes)]
                for size in order:
                    runs[size].append(self.timed([GITML, *argv], repos[size]))
            out[label] = {size: statistics.median(r) for size, r in runs.items()}
            out[label]["runs"] = {size: r for size, r in runs.items()}
            self.log(f"  interleaved {label}: " + ", ".join(f"{size}: {out[label][size]:.3f} s" for size in sizes))
        return out

    def loose(self, repo: Path) -> dict:
        """gitml's warm reads again with every tag as a loose ref (as local writes leave them before gc)."""
        copy = self.tmp / f"{repo.name}-loose"
        shutil.copytree(repo, copy, symlinks=True)
        listing = self.run(["git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/tags"], copy)
        for line in listing.stdout.decode().splitlines():
            sha, ref = line.split(" ", 1)
            path = copy / ".git" / ref
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(sha + "\n")
        packed = copy / ".git" / "packed-refs"
        kept, skip = [], False
        for line in packed.read_text().splitlines(keepends=True):
            if line.startswith("^"):
                if not skip:
                    kept.append(line)
                continue
            skip = " refs/tags/" in line
            if not skip:
                kept.append(line)
        packed.write_text("".join(kept))
        n_loose = sum(1 for _ in (copy / ".git" / "refs" / "tags").rglob("*") if _.is_file())
        self.run([GITML, "registry", "show"], copy)  # warm cache
        out = {"n_loose": n_loose}
        for label, argv in (("show", ["registry", "show"]), (f"show {PROBE}", ["registry", "show", PROBE]),
                            (f"which {PROBE}@prod", ["registry", "which", f"{PROBE}@prod"]),
                            (f"history {PROBE}", ["registry", "history", PROBE])):
            out[label] = self.median([GITML, *argv], copy, self.cfg["reps"])
            self.log(f"  loose refs, {label}: gitml warm {out[label]['median']:.3f} s")
        return out

    def floor(self, repo: Path) -> dict:
        reps = self.cfg["reps"]
        res = {"python -c pass": self.median([sys.executable, "-c", "pass"], repo, reps),
               "gitml --version": self.median([GITML, "--version"], repo, reps)}
        if not self.args.no_gto:
            res["gto --version"] = self.median([self.gto, "--version"], repo, reps)
        shim = shutil.which("gitml", path=self.env.get("PATH"))
        if shim and Path(shim).resolve() != GITML.resolve():
            res[f"gitml --version through {shim}"] = self.median([shim, "--version"], repo, reps)
        return res

    def profile(self, repo: Path, facts: dict) -> dict:
        """Each gitml command at the largest size, warm cache: ``-X importtime`` once, cProfile once.

        The profiled worker imports what the command would import lazily first, so its profile
        shows the work; ``show`` is also profiled cold (cache deleted)."""
        latest = [e[1] for e in facts["plans"][int(PROBE[1:])] if e[0] == "register"][-1]
        copy = self.tmp / f"{repo.name}-profile"
        shutil.copytree(repo, copy, symlinks=True)
        commands = {"show": ["registry", "show"], f"show {PROBE}": ["registry", "show", PROBE],
                    f"which {PROBE}@prod": ["registry", "which", f"{PROBE}@prod"],
                    f"history {PROBE}": ["registry", "history", PROBE],
                    "assign": ["registry", "assign", PROBE, "--version", latest, "--stage", "{stage}"],
                    "register": ["registry", "register", PROBE, "--run", facts["run"]]}
        out: dict = {"importtime": {}, "cprofile": {}}
        stage = 0

        def argv_of(label: str) -> list[str]:
            nonlocal stage
            stage += 1
            return [a.replace("{stage}", f"p{stage}") for a in commands[label]]

        for label in commands:
            runs = []
            for _ in range(3):
                self.run([GITML, "registry", "show"], copy)  # warm cache (after a write: fold in its tag)
                p = self.run([sys.executable, "-X", "importtime", GITML, *argv_of(label)], copy)
                runs.append(parse_importtime(p.stderr.decode()))
            out["importtime"][label] = {m: statistics.median(r.get(m, 0.0) for r in runs)
                                        for m in set().union(*runs) if m != "(modules)"}
            # the same imports in a process that does nothing else: interpreter + imports, wall clock
            code = "import " + ", ".join(runs[0]["(modules)"])
            out.setdefault("import_only", {})[label] = self.median([sys.executable, "-c", code], copy,
                                                                   self.cfg["reps"])["median"]
        variants = [(label, "warm") for label in commands] + [("show", "cold")]
        for label, variant in variants:
            if variant == "cold":
                self.drop_cache(copy)
            else:
                self.run([GITML, "registry", "show"], copy)
            dump = str(self.profile_dir / f"{label.replace(' ', '_').replace('@', '_')}-{variant}.prof") \
                if self.profile_dir else None
            spec = json.dumps({"argv": argv_of(label), "dump": dump})
            p = self.run([sys.executable, __file__, "--profile-worker", spec], copy)
            out["cprofile"][f"{label} ({variant})"] = json.loads(p.stdout.decode().strip().splitlines()[-1])
        return out

    # -- whole run -------------------------------------------------------------------------------
    def main(self) -> str:
        # The environment keeps Python from writing bytecode (PYTHONDONTWRITEBYTECODE): compile this
        # checkout once, as installing a package does, or every run would compile what changed.
        self.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "gitml")], ROOT)
        self.log(f"mode {self.mode}: sizes {self.cfg['sizes']}, +{self.cfg['unrelated']} unrelated tags, "
                 f"median of {self.cfg['reps']}; work dir {self.tmp}")
        self.r["versions"] = {
            "gitml": self.run([GITML, "--version"], self.tmp).stdout.decode().strip(),
            "gto": None if self.args.no_gto else self.run([self.gto, "--version"], self.tmp).stdout.decode().strip(),
            "git": self.run(["git", "--version"], self.tmp).stdout.decode().strip(),
            "commit": self.run(["git", "rev-parse", "--short", "HEAD"], ROOT).stdout.decode().strip(),
            "dirty": self.run(["git", "status", "--porcelain", "--", "gitml"], ROOT).stdout.decode().split("\n")}
        self.r["versions"]["dirty"] = [line[3:] for line in self.r["versions"]["dirty"] if line.strip()]
        last = None
        repos = {}
        for size in self.cfg["sizes"]:
            repo, facts = self.build(size)
            repos[size] = repo
            entry = {"facts": {k: v for k, v in facts.items() if k != "plans"}}
            if not self.args.no_gto:
                entry["agreement"] = self.check_agreement(repo, facts)
            entry["reads"] = self.reads(repo)
            entry["writes"] = self.writes(repo, facts)
            self.r["sizes"][size] = entry
            last = (repo, facts)
        self.r["interleaved"] = self.interleaved(repos)
        self.r["loose"] = self.loose(last[0])
        self.r["floor"] = self.floor(last[0])
        if not self.args.no_profile:
            self.log("profiling gitml commands at the largest size")
            self.r["profile"] = self.profile(*last)
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.report()

    # -- report ----------------------------------------------------------------------------------
    def machine_line(self) -> str:
        cpu = cpu_model()
        v = self.r["versions"]
        return (f"{_dt.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
                f"Python {platform.python_version()}, {v['gitml']} (commit {v['commit']}"
                + (f", uncommitted changes in {', '.join(v['dirty'])}" if v["dirty"] else "")
                + f"), {(v['gto'] or 'GTO not run').replace('🪴', '').strip()}, {v['git']}.")

    def report(self) -> str:
        sizes = sorted(self.r["sizes"])
        big, small = sizes[-1], sizes[0]
        lines = [f"# Registry benchmark ({self.mode})", "",
                 f"Command: `python bench/bench_registry.py{' --quick' if self.args.quick else ''}"
                 f"{' --sizes ' + self.args.sizes if self.args.sizes else ''}`", "",
                 f"Machine: {self.machine_line()}", "",
                 f"Repository: {EVENTS_PER_MODEL} events per model (8 registrations, 12 stage (un)assignments), "
                 f"+{self.cfg['unrelated']} unrelated annotated `release-N` tags, refs packed. Wall time of the "
                 f"whole process, median of {self.cfg['reps']} after one warm-up; CPU = user + sys of the process "
                 f"and its children (median; less sensitive than wall time to other load on the machine); gitml "
                 f"cold = median of {self.cfg['cold']} runs, each with the registry cache "
                 f"(`.git/gitml/registry-cache/`) deleted first (the run fills it; for writes, the cache is "
                 f"deleted before each write). "
                 f"Ratio = GTO / gitml warm, wall time.", ""]
        for size in sizes:
            f = self.r["sizes"][size]["facts"]
            lines.append(f"- {size:,} registry tags ({f['models']} models) + {f['tags']['unrelated']:,} unrelated "
                         f"= {f['n_tags']:,} tags, {f['commits']:,} commits; built in {f['build_s']:.1f} s. "
                         f"Agreement: {self.r['sizes'][size].get('agreement', 'not checked')}.")
        lines += ["", "| command | registry tags | gitml cold (s) | gitml warm (s) | GTO (s) | GTO / gitml "
                      "| gitml warm CPU (s) | GTO CPU (s) | < 0.2 s | ≥ 10× |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|"]
        verdict = {"under": True, "ratio": True, "any_ratio": False}
        for key in self._row_keys():
            for size in sizes:
                row = self._row(size, key)
                if row is None:
                    continue
                label, cold, warm, gto = row
                cpu_ours, cpu_gto = self._cpu(size, key)
                ratio = gto / warm if gto else None
                under = warm < GOAL_S and (cold is None or cold < GOAL_S)
                if size == big:
                    verdict["under"] &= under
                    verdict["ratio"] &= ratio is None or ratio >= GOAL_RATIO
                    verdict["any_ratio"] |= ratio is not None
                lines.append(f"| {label} | {size:,} | {'' if cold is None else f'{cold:.3f}'} | {warm:.3f} | "
                             f"{'' if gto is None else f'{gto:.3f}'} | {'' if ratio is None else f'{ratio:.1f}×'} | "
                             f"{cpu_ours:.3f} | {'' if cpu_gto is None else f'{cpu_gto:.3f}'} | "
                             f"{'met' if under else 'NOT met'} | "
                             f"{'' if ratio is None else ('met' if ratio >= GOAL_RATIO else 'NOT met')} |")
        lines += ["", "Commands compared:", ""]
        for key in self._row_keys():
            d = self._cmds(big, key)
            lines.append(f"- `gitml {d[0]}` vs `{d[1]}`")
        lines += ["", f"Flatness (gitml warm at {big:,} / at {small:,} registry tags; 1.00 = flat):", ""]
        flat_ok = True
        for key in self._row_keys():
            a, b = self._row(small, key), self._row(big, key)
            if a and b:
                growth = b[2] / a[2]
                flat_ok &= growth < 1.15
                gto_growth = f"; GTO {b[3] / a[3]:.2f}" if a[3] and b[3] else ""
                cold_growth = f", cold {b[1] / a[1]:.2f}" if a[1] and b[1] else ""
                lines.append(f"- {a[0]}: {growth:.2f}{cold_growth}{gto_growth}")
        if self.r.get("interleaved") and len(sizes) > 1:
            il = self.r["interleaved"]
            lines += ["", f"Flatness measured interleaved (gitml warm, median of {2 * self.cfg['reps']} runs per size, "
                      "the sizes' runs alternating in a rotating order, so a slow spell of the machine hits every "
                      "size alike):", "",
                      "| command | " + " | ".join(f"{s:,} tags" for s in sizes) + f" | {big:,} / {small:,} |",
                      "|---|" + "---:|" * (len(sizes) + 1)]
            for label, d in il.items():
                growth = d[big] / d[small]
                flat_ok &= growth < 1.15
                lines.append(f"| {label} | " + " | ".join(f"{d[s]:.3f}" for s in sizes) + f" | {growth:.2f} |")
        if self.r.get("loose"):
            lo = self.r["loose"]
            lines += ["", f"Loose refs ({lo['n_loose']:,} tags as loose files under `.git/refs/tags`, as local "
                      f"writes leave them before `git gc`/`git pack-refs`; {big:,} registry tags), gitml warm: "
                      + "; ".join(f"{k} {v['median']:.3f} s (packed: {self._row(big, k)[2]:.3f} s)"
                                  for k, v in lo.items() if k != "n_loose") + "."]
        loads = self.loads or [0.0]
        lines += ["", f"Load average (1 min, sampled every 5 s during the run): mean {statistics.mean(loads):.2f}, "
                  f"max {max(loads):.2f} on {os.cpu_count()} cores. Other benchmarks seen running: "
                  f"{', '.join(sorted(self.others_seen)) or 'none'}."]
        lines += ["", "Process floor (median):", ""]
        for label, t in self.r["floor"].items():
            lines.append(f"- `{label}`: {t['median']:.3f} s")
        lines += ["", f"Goals at {big:,} registry tags: every gitml registry command under {GOAL_S} s, process "
                  f"included: **{'met' if verdict['under'] else 'NOT met'}**; at least {GOAL_RATIO:.0f}× faster "
                  f"than GTO: **{('met' if verdict['ratio'] else 'NOT met') if verdict['any_ratio'] else 'not measured'}**; flat as tags grow (each warm "
                  f"command within 15%): **{'met' if flat_ok else 'NOT met'}**."]
        if self.r.get("profile"):
            lines += self._profile_lines(big)
        lines += ["", "<details><summary>raw results (JSON)</summary>", "", "```json",
                  json.dumps(self._raw(), indent=1), "```", "</details>", ""]
        return "\n".join(lines)

    def _profile_lines(self, big: int) -> list[str]:
        prof, floor = self.r["profile"], self.r["floor"]["python -c pass"]["median"]
        labels = list(prof["importtime"])
        lines = ["", f"## Where gitml's time goes ({big:,} registry tags, warm cache)", "",
                 "Wall-clock split of each command's median (main table), milliseconds: interpreter start "
                 "(`python -c pass`, `site` included), the command's imports (a `python -c \"import …\"` "
                 "process importing the same top-level modules, median, minus the interpreter start), and the "
                 "rest: the registry work and output. The per-module rows are `python -X importtime` "
                 "cumulative figures (median of 3; importtime inflates them a little).", "",
                 "| | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
        walls = {label: self._row(big, label)[2] for label in labels}
        only = prof["import_only"]
        rows = [("whole process (median)", walls), ("interpreter start (python -c pass)", dict.fromkeys(labels, floor)),
                ("imports", {label: only[label] - floor for label in labels})]
        for name, module in IMPORT_WATCH[1:]:
            rows.append((f"&nbsp;&nbsp;{name.strip()}" if name.startswith("  ") else f"&nbsp;{name}",
                         {label: prof["importtime"][label].get(module) or None for label in labels}))
        rows.append(("the rest: registry work + output", {label: walls[label] - only[label] for label in labels}))
        for name, values in rows:
            lines.append(f"| {name} | " + " | ".join("" if values[lab] is None else f"{values[lab] * 1000:.0f}"
                                                     for lab in labels) + " |")
        cp = prof["cprofile"]
        cols = list(cp)
        lines += ["", "The registry work under cProfile (in process, the command's imports done before the "
                  "profiler starts; cumulative ms, inflated by profiling: compare shares):", "",
                  "| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols),
                  "| whole command (profiled) | " + " | ".join(f"{cp[c]['command_s'] * 1000:.0f}" for c in cols) + " |"]
        for key in [k for k, _ in PROFILE_KEYS] + [IMPORT_LABEL]:
            vals = [cp[c]["parts"].get(key, 0.0) for c in cols]
            if max(vals) >= 0.0005:
                lines.append(f"| {key} | " + " | ".join(f"{v * 1000:.0f}" if v >= 0.0005 else "" for v in vals)
                             + " |")
        lines += ["", "Top self time under cProfile:", ""]
        for c in cols:
            top = ", ".join(f"`{n}` {t * 1000:.0f}" for n, t in cp[c]["top_self"][:6])
            lines.append(f"- {c}: {top}")
        return lines

    def _row_keys(self) -> list[str]:
        first = self.r["sizes"][min(self.r["sizes"])]
        return list(first["reads"]) + ["assign", "register"]

    def _row(self, size: int, key: str):
        entry = self.r["sizes"][size]
        if key in entry["reads"]:
            d = entry["reads"][key]
            return key, d["gitml_cold"], d["gitml"]["median"], d["gto"]["median"] if d["gto"] else None
        d = entry["writes"].get(key)
        if not d:
            return None
        cold = d["gitml_cold"]["median"] if "gitml_cold" in d else None
        return key, cold, d["gitml"]["median"], d["gto"]["median"] if "gto" in d else None

    def _cpu(self, size: int, key: str) -> tuple[float, float | None]:
        entry = self.r["sizes"][size]
        d = entry["reads"].get(key) or entry["writes"][key]
        theirs = d.get("gto")
        return d["gitml"]["cpu"], (theirs["cpu"] if theirs else None)

    def _cmds(self, size: int, key: str) -> tuple[str, str]:
        entry = self.r["sizes"][size]
        d = entry["reads"].get(key) or entry["writes"][key]
        return d["gitml_cmd"], d.get("gto_cmd", "")

    def _raw(self) -> dict:
        raw = json.loads(json.dumps(self.r, default=str))
        for p in ((raw.get("profile") or {}).get("cprofile") or {}).values():
            p["top_self"] = p["top_self"][:10]
        for label, found in ((raw.get("profile") or {}).get("importtime") or {}).items():
            raw["profile"]["importtime"][label] = {m: found.get(m) for _, m in IMPORT_WATCH + [("", "(top-level)")]}
        return raw


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--profile-worker":
        profile_worker(json.loads(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 repetitions (smoke run)")
    ap.add_argument("--sizes", help="comma-separated registry tag counts (multiples of 20)")
    ap.add_argument("--unrelated", type=int, help="unrelated release tags per repository")
    ap.add_argument("--reps", type=int, help="timed repetitions per command")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gto", default=DEFAULT_GTO, help="the gto executable (its own virtualenv)")
    ap.add_argument("--no-gto", action="store_true", help="time gitml only")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile breakdown")
    ap.add_argument("--profile", metavar="DIR", help="keep the cProfile dumps in DIR")
    ap.add_argument("--workdir-root", default="/var/tmp", help="where the work directory is made")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    args = ap.parse_args()
    report = Bench(args).main()
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report + "\n")


if __name__ == "__main__":
    main()
