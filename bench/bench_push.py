#!/usr/bin/env python
"""Push benchmark (issue 12, item 7): pushing many small objects to S3, gitml versus DVC versus raw fsspec.

Run ``python bench/bench_push.py`` (10,000 files of 1-4 KiB, about 10 minutes on 2 cores) or
``python bench/bench_push.py --files 2000`` for a shorter run. It prints a Markdown report to
stdout (``--markdown FILE`` also writes it there) and progress to stderr.

The same files (seeded random bytes, generated once) are pushed by each tool to an S3 served by
moto on 127.0.0.1 (its own process, a free port, started and stopped here), each tool into its
own bucket:

1. **First push** of the directory of small files, once per tool: ``gitml artifacts push RUN -r
   s3`` (after ``gitml commit-run -a small``) and ``dvc push small.dvc -r s3`` (after ``dvc add
   small``) timed as CLI commands, interpreter start included; raw fsspec is s3fs
   ``put(dir, dest, recursive=True)`` in a worker process, timed around the call alone (the
   stricter baseline), its process wall time beside it. The same is done to a local folder
   (``--reps`` times, median, the tools' order rotated each round), where raw fsspec is
   ``LocalFileSystem.put``; with ``--before-src DIR``, the gitml in DIR takes part in those rounds.
   Every local push writes a new folder; they are all deleted after the last round.
2. **No-op push**: the same push again, nothing changed (10,001 objects for gitml, the manifest
   included), ``--reps`` times: gitml as a user runs it (it knows what it pushed and asks the
   remote only about what changed since), gitml with ``--recheck`` (asks the remote about every
   object: a fresh clone's first push), and ``dvc push``; with ``--before-src DIR``, also the
   gitml in DIR (an earlier commit's tree, say ``git archive <commit> gitml | tar -x -C DIR``).

Every S3 request the server answers is counted by method (a counting WSGI layer around moto's
app), so the report gives, next to each time, how many requests it took.

DVC lives in its own virtualenv (default ``/tmp/gitml-bench-dvc/bin/dvc``, ``--dvc``; make it
with ``python -m venv /tmp/gitml-bench-dvc && /tmp/gitml-bench-dvc/bin/pip install 'dvc[s3]'``).
Work directories go under ``/var/tmp`` (``--workdir-root``). Subprocesses get a scrubbed
environment (``HOME`` in the work directory with a ``.gitconfig``, no ``GIT_*``, moto credentials).
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
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

from _common import LoadSampler, bench_home, cpu_model, emit_result, failure_line, run_worker, scrubbed_env

ROOT = Path(__file__).resolve().parents[1]
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
BUCKETS = {"gitml": "gitml-push", "dvc": "dvc-push", "raw": "raw-push"}
GOALS = {"noop_vs_dvc": 1.0, "small_vs_raw_pct": 80.0}


# ------------------------------------------------------------------------------------------------
# Workers (their own processes)
# ------------------------------------------------------------------------------------------------
def _s3(endpoint: str):
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=endpoint, key=AWS["AWS_ACCESS_KEY_ID"], secret=AWS["AWS_SECRET_ACCESS_KEY"])


def w_moto(spec: dict) -> dict:
    """Serve S3 until stdin closes; append ``METHOD path?query`` to ``spec['log']`` per request."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    log = open(spec["log"], "a", buffering=1)

    def counting(environ, start_response):
        query = environ.get("QUERY_STRING", "")
        log.write(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}{'?' + query if query else ''}\n")
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, counting, threaded=True)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    Path(spec["port_file"] + ".tmp").write_text(str(server.server_port))
    os.replace(spec["port_file"] + ".tmp", spec["port_file"])
    sys.stdin.read()  # EOF when the driver closes the pipe or exits
    server.shutdown()
    return {}


def w_raw_put(spec: dict) -> dict:
    import fsspec

    fs = _s3(spec["endpoint"]) if spec.get("endpoint") else fsspec.filesystem("file")
    t0 = time.perf_counter()
    fs.put(spec["src"], spec["dest"], recursive=True)
    return {"seconds": time.perf_counter() - t0}


def w_mkbuckets(spec: dict) -> dict:
    fs = _s3(spec["endpoint"])
    for bucket in spec["buckets"]:
        fs.mkdir(bucket)
    return {"buckets": sorted(b.rstrip("/") for b in fs.ls(""))}


WORKERS = {"moto": w_moto, "raw_put": w_raw_put, "mkbuckets": w_mkbuckets}


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
class Failed(RuntimeError):
    pass


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        root = Path(args.workdir_root)
        root.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="gitml-pushbench-", dir=root))
        (self.work / "tmp").mkdir()
        home = bench_home(self.work)
        self.env = scrubbed_env(home, drop=("GIT_", "PYTHONPATH", "XDG_CONFIG_HOME", "AWS_", "DVC_", "VIRTUAL_ENV"),
                                TMPDIR=str(self.work / "tmp"), DVC_NO_ANALYTICS="1",
                                DVC_SITE_CACHE_DIR=str(self.work / "dvc-site"), **AWS)
        exe = Path(sys.executable).parent / "gitml"
        self.gitml_argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "gitml"]
        self.gitml_env = dict(self.env)
        if args.gitml_src:  # another copy of gitml (say, an earlier commit's), for a before/after
            self.gitml_argv = [sys.executable, "-m", "gitml"]
            self.gitml_env["PYTHONPATH"] = str(Path(args.gitml_src).resolve())
        self.use_dvc = not args.skip_dvc and Path(args.dvc).exists()
        self.r: dict = collections.defaultdict(list)
        self.notes: list[str] = []
        self.t0 = time.perf_counter()
        self.load = LoadSampler(5)
        self.moto = None

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    # -- processes -------------------------------------------------------------------------------
    def run(self, argv: list[str], cwd: Path, env: dict | None = None) -> tuple[float, str]:
        os.sync()
        t0 = time.perf_counter()
        p = subprocess.run(argv, cwd=cwd, env=env or self.env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if p.returncode:
            raise Failed(f"`{' '.join(argv[:6])}` exit {p.returncode}: {(p.stderr or p.stdout).strip()[-800:]}")
        return wall, p.stdout

    def gitml(self, *args: str, cwd: Path) -> tuple[float, str]:
        return self.run([*self.gitml_argv, *args], cwd, self.gitml_env)

    def dvc(self, *args: str, cwd: Path) -> tuple[float, str]:
        return self.run([self.args.dvc, *args], cwd)

    def git(self, *args: str, cwd: Path) -> None:
        self.run(["git", *args], cwd)

    def worker(self, name: str, spec: dict) -> dict:
        os.sync()
        t0 = time.perf_counter()
        res, p = run_worker([sys.executable, str(Path(__file__).resolve()), "--worker", name, json.dumps(spec)],
                            env=self.env, cwd=self.work)
        if res is None:
            raise Failed(f"worker {name}: {failure_line(p)}")
        return dict(res, wall=time.perf_counter() - t0)

    # -- moto and its request log ----------------------------------------------------------------
    def start_moto(self) -> None:
        port_file = self.work / "moto.port"
        self.request_log = self.work / "moto-requests.log"
        spec = {"port_file": str(port_file), "log": str(self.request_log)}
        self.moto = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", "moto",
                                      json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=open(self.work / "moto.err", "wb"), env=self.env, cwd=self.work)
        deadline = time.time() + 60
        while not port_file.exists():
            if self.moto.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"moto did not start; see {self.work / 'moto.err'}")
            time.sleep(0.1)
        self.endpoint = f"http://127.0.0.1:{int(port_file.read_text())}"
        self.worker("mkbuckets", {"endpoint": self.endpoint, "buckets": [*BUCKETS.values(), "warm-up"]})

    def stop_moto(self) -> None:
        if self.moto is not None:
            self.moto.stdin.close()
            try:
                self.moto.wait(10)
            except subprocess.TimeoutExpired:
                self.moto.terminate()
                self.moto.wait(10)

    def requests_mark(self) -> int:
        with open(self.request_log) as handle:
            return sum(1 for _ in handle)

    def requests_since(self, mark: int) -> dict[str, int]:
        """Requests answered since ``mark``, by kind: GET-list, GET, HEAD, PUT, POST, DELETE."""
        counts: collections.Counter = collections.Counter()
        with open(self.request_log) as handle:
            for i, line in enumerate(handle):
                if i < mark:
                    continue
                method, _, target = line.strip().partition(" ")
                is_list = method == "GET" and ("list-type" in target or target.rstrip("/").count("/") <= 1)
                counts["LIST" if is_list else method] += 1
        return dict(counts)

    def timed_s3(self, key: str, fn) -> None:
        mark = self.requests_mark()
        try:
            res = fn()
        except Failed as exc:
            self.notes.append(f"{key}: {exc}")
            self.log(f"FAILED {key}: {exc}")
            return
        res = res if isinstance(res, dict) else {"seconds": res}
        time.sleep(0.2)  # the log is line-buffered in another process: let its last lines land
        res["requests"] = self.requests_since(mark)
        self.r[key].append(res)

    # -- data and repositories -------------------------------------------------------------------
    def make_data(self) -> None:
        self.small = self.work / "data" / "small"
        self.small.mkdir(parents=True)
        rnd = random.Random(12345)
        self.nbytes = 0
        for i in range(self.args.files):
            size = rnd.randint(1024, 4096)
            (self.small / f"f{i:05d}.bin").write_bytes(rnd.randbytes(size))
            self.nbytes += size

    def setup(self) -> None:
        self.repo = self.work / "gitml-repo"
        self.repo.mkdir()
        self.git("init", "-q", "-b", "main", cwd=self.repo)
        (self.repo / "train.py").write_text("print('train')\n")
        self.git("add", "train.py", cwd=self.repo)
        self.git("commit", "-q", "-m", "init", cwd=self.repo)
        self.gitml("remote", "add", "s3", f"s3://{BUCKETS['gitml']}/store", "-o",
                   f"endpoint_url={self.endpoint}", cwd=self.repo)
        _, out = self.gitml("commit-run", "-n", "small", "-a", str(self.small), cwd=self.repo)
        self.run_id = out.strip().splitlines()[-1]
        _, out = self.gitml("artifacts", "push", "--help", cwd=self.repo)
        self.has_recheck = "--recheck" in out
        if not self.use_dvc:
            return
        self.dvc_repo = self.work / "dvc-repo"
        self.dvc_repo.mkdir()
        self.git("init", "-q", "-b", "main", cwd=self.dvc_repo)
        self.dvc("init", "-q", cwd=self.dvc_repo)
        self.dvc("config", "core.autostage", "false", cwd=self.dvc_repo)
        self.dvc("remote", "add", "s3", f"s3://{BUCKETS['dvc']}/store", cwd=self.dvc_repo)
        self.dvc("remote", "modify", "s3", "endpointurl", self.endpoint, cwd=self.dvc_repo)
        self.dvc("remote", "add", "local", str(self.work / "unused"), cwd=self.dvc_repo)
        (self.dvc_repo / "small").mkdir()
        for name in os.listdir(self.small):
            os.link(self.small / name, self.dvc_repo / "small" / name)
        self.dvc("add", "small", cwd=self.dvc_repo)
        self.r["dvc_version"] = self.dvc("--version", cwd=self.work)[1].strip()

    # -- scenarios -------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """One untimed raw upload of 500 files: a fresh moto process is slowest on its first requests."""
        few = self.work / "data" / "few"
        few.mkdir()
        for name in sorted(os.listdir(self.small))[:500]:
            os.link(self.small / name, few / name)
        self.worker("raw_put", {"endpoint": self.endpoint, "src": str(few), "dest": "warm-up/few"})

    def first_push_s3(self) -> None:
        order = ["raw", "gitml", "dvc"] if self.use_dvc else ["raw", "gitml"]
        for tool in order:
            self.log(f"first push to S3: {tool}")
            if tool == "gitml":
                self.timed_s3("first/s3/gitml", self.gitml_push)
            elif tool == "dvc":
                self.timed_s3("first/s3/dvc", lambda: self.dvc("push", "-r", "s3", "small.dvc", cwd=self.dvc_repo)[0])
            else:
                self.timed_s3("first/s3/raw", lambda: self.worker(
                    "raw_put", {"endpoint": self.endpoint, "src": str(self.small), "dest": f"{BUCKETS['raw']}/small"}))

    def gitml_push(self, *extra: str, remote: str = "s3", expect: int | None = None) -> float:
        wall, out = self.gitml("artifacts", "push", self.run_id, "-r", remote, "--json", *extra, cwd=self.repo)
        got = json.loads(out)["uploaded"]
        want = self.args.files + 1 if expect is None else expect
        if got != want:
            self.notes.append(f"gitml push -r {remote} {' '.join(extra)}: {got} uploaded, expected {want}")
        return wall

    def noop_s3(self) -> None:
        for rep in range(self.args.reps):
            tools = ["gitml", "gitml-recheck", "dvc"] if self.use_dvc else ["gitml", "gitml-recheck"]
            tools += ["before"] if self.args.before_src else []
            tools = tools[rep % len(tools):] + tools[: rep % len(tools)]
            for tool in tools:
                self.log(f"no-op push to S3 rep {rep + 1}: {tool}")
                if tool == "gitml":
                    self.timed_s3("noop/s3/gitml", lambda: self.gitml_push(expect=0))
                elif tool == "gitml-recheck" and self.has_recheck:
                    self.timed_s3("noop/s3/gitml-recheck", lambda: self.gitml_push("--recheck", expect=0))
                elif tool == "dvc":
                    self.timed_s3("noop/s3/dvc", self.dvc_noop)
                elif tool == "before":
                    self.timed_s3("noop/s3/before", self.before_noop)

    def before_noop(self) -> float:
        """The same no-op push by another copy of gitml (``--before-src``), in the same repository."""
        return self.before_push("s3", expect=0)

    def before_push(self, remote: str, expect: int | None = None) -> float:
        """``artifacts push`` by the copy of gitml in ``--before-src``, in the same repository."""
        env = dict(self.gitml_env, PYTHONPATH=str(Path(self.args.before_src).resolve()))
        wall, out = self.run([sys.executable, "-m", "gitml", "artifacts", "push", self.run_id, "-r", remote,
                              "--json"], self.repo, env)
        got, want = json.loads(out)["uploaded"], self.args.files + 1 if expect is None else expect
        if got != want:
            self.notes.append(f"gitml from {self.args.before_src}: push -r {remote} uploaded {got}, expected {want}")
        return wall

    def dvc_noop(self) -> float:
        wall, out = self.dvc("push", "-r", "s3", "small.dvc", cwd=self.dvc_repo)
        if "Everything is up to date" not in out:
            self.notes.append(f"dvc no-op push said: {out.strip()[:200]}")
        return wall

    def first_push_local(self) -> None:
        for rep in range(self.args.reps):
            tools = ["raw", "gitml", "dvc"] if self.use_dvc else ["raw", "gitml"]
            tools += ["before"] if self.args.before_src else []
            tools = tools[rep % len(tools):] + tools[: rep % len(tools)]
            for tool in tools:
                dest = self.work / "remote-local" / f"{tool}-{rep}"
                self.log(f"first push to a local folder rep {rep + 1}: {tool}")
                try:
                    if tool == "gitml":
                        self.gitml("remote", "add", "local", str(dest), cwd=self.repo)
                        self.r["first/local/gitml"].append({"seconds": self.gitml_push(remote="local")})
                    elif tool == "before":
                        self.gitml("remote", "add", "local", str(dest), cwd=self.repo)
                        self.r["first/local/before"].append({"seconds": self.before_push("local")})
                    elif tool == "dvc":
                        self.dvc("remote", "modify", "local", "url", str(dest), cwd=self.dvc_repo)
                        wall = self.dvc("push", "-r", "local", "small.dvc", cwd=self.dvc_repo)[0]
                        self.r["first/local/dvc"].append({"seconds": wall})
                    else:
                        dest.mkdir(parents=True)
                        self.r["first/local/raw"].append(
                            self.worker("raw_put", {"src": str(self.small), "dest": f"{dest}/small"}))
                except Failed as exc:
                    self.notes.append(f"first/local/{tool}: {exc}")
        # Deleted only now: removing 10,000 files between timed pushes (ext4 here is mounted with
        # `discard`) stalled whichever push came next by up to 2-3 s.
        shutil.rmtree(self.work / "remote-local", ignore_errors=True)

    # -- report ----------------------------------------------------------------------------------
    def med(self, key: str, field: str = "seconds") -> float | None:
        v = [x[field] for x in self.r.get(key, []) if field in x]
        return statistics.median(v) if v else None

    def cell(self, key: str, field: str = "seconds", rate: bool = False) -> str:
        v = [x[field] for x in self.r.get(key, []) if field in x]
        if not v:
            return "—"
        m = statistics.median(v)
        text = f"{m:.2f} s"
        if rate:
            text += f" ({self.args.files / m:,.0f} files/s)"
        if len(v) > 1:
            text += f" [{min(v):.2f}–{max(v):.2f}]"
        return text

    def reqs(self, key: str) -> str:
        runs = [x["requests"] for x in self.r.get(key, []) if "requests" in x]
        if not runs:
            return "—"
        last = runs[-1]
        return ", ".join(f"{n:,} {k}" for k, n in sorted(last.items(), key=lambda kv: -kv[1])) or "none"

    def report(self) -> str:
        n = self.args.files
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "gitml"],
                               capture_output=True, text=True, check=False).stdout.strip()
        if self.args.gitml_src:
            commit, dirty = f"(from {self.args.gitml_src})", ""
        vers = subprocess.run([sys.executable, "-c", "import importlib.metadata as m\nfor p in ('fsspec','s3fs',"
                               "'moto'): print(p, m.version(p))"], capture_output=True, text=True,
                              check=False).stdout.split("\n")
        cmd = "python bench/bench_push.py" + ("" if n == 10_000 else f" --files {n}") + (
            "" if self.args.reps == 3 else f" --reps {self.args.reps}") + (
            f" --gitml-src {self.args.gitml_src}" if self.args.gitml_src else "") + (
            f" --before-src {self.args.before_src}" if self.args.before_src else "")
        out = [
            "### Push benchmark",
            "",
            f"Command: `{cmd}`  ",
            f"Machine: {_dt.date.today().isoformat()}, {os.cpu_count()} cores ({cpu_model()}), Linux "
            f"{platform.release()}, Python {platform.python_version()}, {', '.join(v for v in vers if v)}, "
            f"dvc {self.r.get('dvc_version', '—')}; gitml at commit {commit}{' with local changes' if dirty else ''}.  ",
            f"Data: {n:,} files of 1-4 KiB ({self.nbytes / 1e6:.1f} MB) in one directory (gitml: {n + 1:,} objects "
            f"with the manifest).  ",
            self.load.summary(time.perf_counter() - self.t0),
            "",
            "**First push of the small files** (S3 on moto: one run each, after a 500-file warm-up; local folder: "
            f"median [min–max] of {self.args.reps}; raw fsspec: the `put` call alone, its process wall beside it)",
            "",
            "| remote | gitml `artifacts push` | DVC `dvc push` | raw fsspec `put` (process) | gitml as % of raw "
            "(of process) | DVC / gitml |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for where in ("s3", "local"):
            g, d = self.med(f"first/{where}/gitml"), self.med(f"first/{where}/dvc")
            raw, raw_wall = self.med(f"first/{where}/raw"), self.med(f"first/{where}/raw", "wall")
            pct = f"{100 * raw / g:.0f}% ({100 * raw_wall / g:.0f}%)" if g and raw else "—"
            out.append(f"| {where} | {self.cell(f'first/{where}/gitml', rate=True)} | "
                       f"{self.cell(f'first/{where}/dvc', rate=True)} | {self.cell(f'first/{where}/raw', rate=True)} "
                       f"({s(raw_wall)}) | {pct} | {ratio(d, g)} |")
        before, raw = self.med("first/local/before"), self.med("first/local/raw")
        if before:
            out += ["", f"The same first push to a local folder by gitml before (from `{self.args.before_src}`), "
                        f"in the same rounds: {self.cell('first/local/before', rate=True)}"
                        + (f", {100 * raw / before:.0f}% of raw" if raw else "")]
        out += ["", "S3 requests of the first push (last run): " + "; ".join(
            f"{tool} {self.reqs(f'first/s3/{tool}')}" for tool in ("gitml", "dvc", "raw")), ""]
        out += [
            f"**No-op push to S3** ({n + 1:,} objects for gitml, all on the remote; median [min–max] of "
            f"{self.args.reps}, CLI wall time)",
            "",
            "| tool | seconds | S3 requests (last run) | DVC / this |",
            "|---|---:|---|---:|",
        ]
        d = self.med("noop/s3/dvc")
        for key, label in (("noop/s3/gitml", "gitml `artifacts push`"),
                           ("noop/s3/gitml-recheck", "gitml `artifacts push --recheck` (asks about every object)"),
                           ("noop/s3/before", f"gitml before (from `{self.args.before_src}`)"),
                           ("noop/s3/dvc", "DVC `dvc push`")):
            if key == "noop/s3/before" and not self.args.before_src:
                continue
            out.append(f"| {label} | {self.cell(key)} | {self.reqs(key)} | {ratio(d, self.med(key))} |")
        g = self.med("noop/s3/gitml")
        out += ["", "**Goals**", ""]
        if g and d:
            out.append(f"- No-op push of {n:,} objects to S3 no slower than `dvc push`: gitml {g:.2f} s, DVC {d:.2f} s "
                       f"({d / g:.2f}×) — {'met' if d / g >= GOALS['noop_vs_dvc'] else '**not met**'}")
        for where, label in (("s3", "S3"), ("local", "a local folder")):
            g_first, g_raw = self.med(f"first/{where}/gitml"), self.med(f"first/{where}/raw")
            if g_first and g_raw:
                pct = 100 * g_raw / g_first
                out.append(f"- Small files to {label} at ≥ {GOALS['small_vs_raw_pct']:.0f}% of a raw fsspec `put`: "
                           f"{pct:.0f}% — {'met' if pct >= GOALS['small_vs_raw_pct'] else '**not met**'}")
        if self.notes:
            out += ["", "**Notes**", ""] + [f"- {x}" for x in self.notes]
        return "\n".join(out) + "\n"

    # -- main ------------------------------------------------------------------------------------
    def main(self) -> None:
        self.log(f"work directory {self.work}")
        try:
            self.make_data()
            self.start_moto()
            self.setup()
            self.warm_up()
            self.first_push_s3()
            self.noop_s3()
            if not self.args.skip_local:
                self.first_push_local()
        finally:
            self.stop_moto()
            report = self.report()
            print(report)
            if self.args.markdown:
                Path(self.args.markdown).write_text(report)
            if self.args.json:
                Path(self.args.json).write_text(json.dumps(self.r, indent=1) + "\n")
            if not self.args.keep:
                for dirpath, dirnames, _ in os.walk(self.work):
                    for name in dirnames:
                        os.chmod(os.path.join(dirpath, name), 0o755)
                shutil.rmtree(self.work, ignore_errors=True)


def s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"


def ratio(other: float | None, gitml: float | None) -> str:
    return "—" if not other or not gitml else f"{other / gitml:.2f}×"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10_000, help="how many small files (default 10,000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the no-op and local pushes (default 3)")
    ap.add_argument("--dvc", default="/tmp/gitml-bench-dvc/bin/dvc", help="the dvc executable (own virtualenv)")
    ap.add_argument("--skip-dvc", action="store_true", help="leave DVC out")
    ap.add_argument("--skip-local", action="store_true", help="leave the local-folder first push out")
    ap.add_argument("--gitml-src", metavar="DIR", help="run gitml from DIR (put on PYTHONPATH) instead")
    ap.add_argument("--before-src", metavar="DIR",
                    help="also time the no-op push and the local-folder first push with the gitml in DIR "
                         "(say, an earlier commit's)")
    ap.add_argument("--workdir-root", default="/var/tmp", help="where the work directory goes")
    ap.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    ap.add_argument("--json", metavar="FILE", help="also write every measurement to FILE")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        res = WORKERS[args.worker[0]](json.loads(args.worker[1]))
        emit_result(res)
        return 0
    Bench(args).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
