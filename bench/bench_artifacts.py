#!/usr/bin/env python
"""Artifacts benchmark: gitml versus DVC versus a raw fsspec upload of the same files.

Run ``python bench/bench_artifacts.py`` (full: a 1 GiB file and 10,000 small files, about 11
minutes on 2 cores, 22 when other work shares them) or ``python bench/bench_artifacts.py --quick`` (0.25 GiB and 2,000 files, a
few minutes). It prints a Markdown report of absolute figures and ratios to stdout and progress
to stderr; ``--markdown FILE`` also writes the report to FILE.

Everything happens in one run on the same files, generated once (seeded random bytes):

a. hashing the big file: ``gitml.core.store.hash_file`` versus ``hashlib.sha256`` over the
   same bytes read in 1 MiB chunks (the limit), best of several alternating passes, file in the
   page cache;
b. ingest and push of the big file and of the small files (one directory artifact, 1-4 KiB each)
   to a local-folder remote and to S3 served by moto: ``gitml commit-run -a`` then
   ``gitml artifacts push RUN -r REMOTE`` versus ``dvc add`` then ``dvc push TARGET -r REMOTE``
   (each timed on its own) versus a raw fsspec ``put`` of the same source files (``put_file``
   for the big file, ``put(dir, dest, recursive=True)`` for the directory; LocalFileSystem and
   s3fs);
c. a second push when nothing changed (10,000 objects): gitml and DVC; for reference, the time
   raw fsspec takes to list those objects once (``fs.find``);
d. fetching one file of the 10,000-file artifact into an empty cache: ``gitml artifacts get
   runs:/<id>/small/<file> -o X`` versus DVC's granular ``dvc pull small/<file>`` (cache and
   workspace copy deleted first); raw fsspec ``get_file`` of the one object for reference.

Each local measurement is repeated (5×, 2× with ``--quick``; ``--reps``) with the tools' order
rotated, into an emptied cache or an empty remote folder each time (the previous copies are
deleted, so later repetitions reuse freed memory as the first did not), and reported as median
[min-max]. S3 pushes are done twice per tool for the big file and once for the small files (moto is slow;
each tool has its own bucket, a fresh prefix each time, and the order rotates). gitml
and DVC each get one repository per data set (gitml: ``git init``; DVC: ``git init`` + ``dvc
init`` with the files hard-linked in), so resetting one data set's cache never touches the other's.

gitml and DVC are timed as CLI commands (wall time, interpreter start included). Raw fsspec runs
in a worker process and is timed around the call only (imports excluded), so it is the stricter
baseline; its wall time including start-up is reported too. DVC lives in its own virtualenv
(default ``/var/tmp/dvcenv/bin/dvc``, ``--dvc``). The moto server runs in its own process (so it
never competes for a GIL with a client being timed), started by this script on a free port and
warmed up with one untimed upload of the big file (its first large upload is the slowest).

All working directories are created under ``/var/tmp`` (``--workdir-root``): on the machine this
was written on, creating files under ``/tmp`` cost 0.4-1.5 ms each at times, which would dominate
the small-file figures; the report prints the measured cost per create (work directory and /tmp)
at the start and end of the run. Subprocesses get a scrubbed environment: ``HOME`` in the work directory with a
``.gitconfig``, ``TMPDIR`` in the work directory, no ``GIT_*`` variables, DVC analytics off, DVC's
site cache in the work directory, moto credentials (``testing``).

``--profile DIR`` runs every gitml command under cProfile (dumps in DIR; timings then inflated).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import random
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
MB = 1e6  # throughputs are in MB/s (10^6 bytes); sizes in GiB are 2^30 bytes
CHUNK = 1 << 20

MODES = {
    "full": {"big": 1 << 30, "small": 10_000, "hash_reps": 5, "reps": 5, "s3_reps": {"big": 2, "small": 1}},
    "quick": {"big": 1 << 28, "small": 2_000, "hash_reps": 3, "reps": 2, "s3_reps": {"big": 2, "small": 1}},
}
GOALS = {"hash_pct": 90.0, "vs_dvc": 2.0, "vs_raw_pct": 90.0, "noop_s": 1.0}
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKETS = {"gitml": "gitml-bench", "dvc": "dvc-bench", "raw": "raw-bench"}


# ------------------------------------------------------------------------------------------------
# Workers (run in their own processes)
# ------------------------------------------------------------------------------------------------
def _s3(endpoint: str):
    import s3fs

    return s3fs.S3FileSystem(
        endpoint_url=endpoint, key=AWS_ENV["AWS_ACCESS_KEY_ID"], secret=AWS_ENV["AWS_SECRET_ACCESS_KEY"]
    )


def _fs(spec: dict):
    if spec.get("endpoint"):
        return _s3(spec["endpoint"])
    import fsspec

    return fsspec.filesystem("file")


def w_moto(spec: dict) -> dict:
    """Serve S3 on a free port until stdin closes (the driver holds the other end)."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    Path(spec["port_file"] + ".tmp").write_text(str(port))
    os.replace(spec["port_file"] + ".tmp", spec["port_file"])
    sys.stdin.read()  # EOF when the driver exits or closes the pipe
    server.stop()
    return {"port": port}


def w_raw_put(spec: dict) -> dict:
    t0 = time.perf_counter()
    fs = _fs(spec)
    t1 = time.perf_counter()
    if spec["recursive"]:
        fs.put(spec["src"], spec["dest"], recursive=True)
    else:
        fs.put_file(spec["src"], spec["dest"])
    t2 = time.perf_counter()
    return {"setup": t1 - t0, "seconds": t2 - t1}


def w_raw_find(spec: dict) -> dict:
    fs = _fs(spec)
    t0 = time.perf_counter()
    found = fs.find(spec["path"])
    return {"seconds": time.perf_counter() - t0, "objects": len(found)}


def w_raw_get(spec: dict) -> dict:
    fs = _fs(spec)
    t0 = time.perf_counter()
    fs.get_file(spec["src"], spec["dest"])
    return {"seconds": time.perf_counter() - t0}


def w_mkbuckets(spec: dict) -> dict:
    fs = _s3(spec["endpoint"])
    for bucket in spec["buckets"]:
        fs.mkdir(bucket)
    return {"buckets": sorted(b.rstrip("/") for b in fs.ls(""))}


WORKERS = {
    "moto": w_moto,
    "raw_put": w_raw_put,
    "raw_find": w_raw_find,
    "raw_get": w_raw_get,
    "mkbuckets": w_mkbuckets,
}


def worker_main(name: str, spec_json: str) -> int:
    result = WORKERS[name](json.loads(spec_json))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# ------------------------------------------------------------------------------------------------
# Hashing (in the driver: nothing else runs in this process)
# ------------------------------------------------------------------------------------------------
def hashlib_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
class CommandFailed(RuntimeError):
    pass


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.mode = "quick" if args.quick else "full"
        self.cfg = dict(MODES[self.mode])
        if args.reps:
            self.cfg["reps"] = args.reps
        root = Path(args.workdir_root)
        root.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="gitml-artbench-", dir=root))
        self.home = self.work / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Bench User\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n"
        )
        (self.work / "tmp").mkdir()
        self.env = self._env()
        self.dvc = args.dvc
        self.use_dvc = not args.skip_dvc and Path(self.dvc).exists()
        self.use_s3 = not args.skip_s3
        self.profile_dir = Path(args.profile).resolve() if args.profile else None
        if self.profile_dir:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
        self.r: dict = {}
        self.notes: list[str] = []
        self.t_start = time.perf_counter()
        self.loads: list[float] = []
        threading.Thread(target=self._sample_load, daemon=True).start()
        self.moto = None
        self.endpoint = None
        exe = Path(sys.executable).parent / "gitml"
        self.gitml_argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "gitml"]
        if not self.use_dvc and not args.skip_dvc:
            self.notes.append(
                f"DVC not found at {self.dvc}: DVC columns are empty "
                "(python -m venv /var/tmp/dvcenv && /var/tmp/dvcenv/bin/pip install 'dvc[s3]')"
            )

    # -- environment -----------------------------------------------------------------------------
    def _env(self) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GIT_", "PYTHONPATH", "XDG_CONFIG_HOME", "AWS_", "DVC_"))
        }
        env.update(AWS_ENV)
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            TMPDIR=str(self.work / "tmp"),
            DVC_NO_ANALYTICS="1",
            DVC_SITE_CACHE_DIR=str(self.work / "dvc-site"),
            PYTHONDONTWRITEBYTECODE="1",
        )
        return env

    def _sample_load(self) -> None:
        while True:
            self.loads.append(os.getloadavg()[0])
            time.sleep(5)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def log(self, msg: str) -> None:
        print(f"[{self.elapsed():7.1f}s] {msg}", file=sys.stderr, flush=True)

    # -- processes -------------------------------------------------------------------------------
    def run(self, argv: list[str], cwd: Path, timed: bool = True) -> tuple[float, str]:
        """Run a command; return (wall seconds, stdout). Dirty pages are flushed first (untimed)."""
        if timed:
            os.sync()
        t0 = time.perf_counter()
        p = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            err = (p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}")[-1500:]
            raise CommandFailed(f"`{' '.join(argv)}` failed (exit {p.returncode}): {err}")
        return wall, p.stdout

    def gitml(self, *args: str, cwd: Path, tag: str = "") -> tuple[float, str]:
        argv = list(self.gitml_argv)
        if self.profile_dir and tag:
            argv = [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(self.profile_dir / f"{tag}.prof"),
                "-m",
                "gitml",
            ]
        return self.run([*argv, *args], cwd)

    def dvc_cmd(self, *args: str, cwd: Path) -> tuple[float, str]:
        return self.run([self.dvc, *args], cwd)

    def git(self, *args: str, cwd: Path) -> str:
        return self.run(["git", *args], cwd, timed=False)[1]

    def worker(self, name: str, spec: dict) -> dict:
        os.sync()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, json.dumps(spec)]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=self.env, cwd=self.work, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        for line in reversed(p.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return dict(json.loads(line[len(RESULT_PREFIX) :]), wall=wall)
        raise CommandFailed(f"worker {name} failed (exit {p.returncode}): {p.stderr.strip()[-1500:]}")

    # -- data ------------------------------------------------------------------------------------
    def make_data(self) -> None:
        data = self.work / "data"
        (data / "small").mkdir(parents=True)
        self.big = data / "big.bin"
        self.small = data / "small"
        self.log(f"generating {self.cfg['big'] / 2**30:g} GiB file and {self.cfg['small']:,} small files")
        with open(self.big, "wb") as out:
            for i in range(self.cfg["big"] // (64 << 20)):
                out.write(random.Random(i).randbytes(64 << 20))
        rnd = random.Random(12345)
        self.small_bytes = 0
        for i in range(self.cfg["small"]):
            size = rnd.randint(1024, 4096)
            (self.small / f"f{i:05d}.bin").write_bytes(rnd.randbytes(size))
            self.small_bytes += size
        self.big_bytes = self.big.stat().st_size
        self.pick = f"f{self.cfg['small'] // 2:05d}.bin"  # the file fetched in (d)
        os.sync()

    def create_probe(self) -> dict:
        """Microseconds per create+write of a 2 KiB file: in the work directory and under /tmp."""
        out = {}
        for name, root in (("work dir", self.work), ("/tmp", Path("/tmp"))):
            d = Path(tempfile.mkdtemp(prefix="gitml-artbench-probe-", dir=root))
            try:
                t0 = time.perf_counter()
                for i in range(300):
                    with open(d / f"f{i}", "wb") as handle:
                        handle.write(b"x" * 2048)
                out[name] = (time.perf_counter() - t0) / 300 * 1e6
            finally:
                shutil.rmtree(d, ignore_errors=True)
        return out

    # -- moto ------------------------------------------------------------------------------------
    def start_moto(self) -> None:
        port_file = self.work / "moto.port"
        log = open(self.work / "moto.log", "wb")
        spec = {"port_file": str(port_file)}
        self.moto = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", "moto", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.work,
        )
        deadline = time.time() + 60
        while not port_file.exists():
            if self.moto.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"moto server did not start; see {self.work / 'moto.log'}")
            time.sleep(0.1)
        self.endpoint = f"http://127.0.0.1:{int(port_file.read_text())}"
        res = self.worker("mkbuckets", {"endpoint": self.endpoint, "buckets": list(BUCKETS.values())})
        self.log(f"moto at {self.endpoint}, buckets {res['buckets']}")

    def warm_moto(self) -> None:
        """One untimed upload of the big file: a fresh moto process is slowest on its first large upload."""
        self.log("warming moto up (one untimed upload of the big file)")
        self.worker("mkbuckets", {"endpoint": self.endpoint, "buckets": ["warmup-bench"]})
        self.worker(
            "raw_put",
            {
                "endpoint": self.endpoint,
                "src": str(self.big),
                "dest": "warmup-bench/big.bin",
                "recursive": False,
            },
        )

    def stop_moto(self) -> None:
        if self.moto is not None:
            self.moto.stdin.close()
            try:
                self.moto.wait(10)
            except subprocess.TimeoutExpired:
                self.moto.terminate()
                self.moto.wait(10)

    def remotes(self) -> list[str]:
        return ["local", "s3"] if self.use_s3 else ["local"]

    # -- (a) hashing -----------------------------------------------------------------------------
    def scenario_hash(self) -> None:
        from gitml.core.store import hash_file

        self.log("(a) hashing")
        hashlib_file(self.big)  # page cache warm
        times = {"hashlib": [], "gitml": []}
        digests = set()
        for _ in range(self.cfg["hash_reps"]):
            for name, fn in (("hashlib", hashlib_file), ("gitml", hash_file)):
                t0 = time.perf_counter()
                digests.add(fn(self.big))
                times[name].append(time.perf_counter() - t0)
        if len(digests) != 1:
            self.notes.append(f"hash mismatch between gitml and hashlib: {digests}")
        # In memory, for reference (no read() cost): 64 MiB buffer hashed repeatedly.
        buf = random.Random(7).randbytes(64 << 20)
        t0 = time.perf_counter()
        h = hashlib.sha256()
        for _ in range(8):
            h.update(buf)
        mem = 8 * len(buf) / (time.perf_counter() - t0)
        self.r["hash"] = {k: min(v) for k, v in times.items()}
        self.r["hash_all"] = times
        self.r["hash_mem"] = mem

    # -- repositories ----------------------------------------------------------------------------
    def setup_repos(self) -> None:
        """One gitml and one DVC repository per data set, so resetting one cache never touches the other."""
        self.repos: dict = {}
        for kind in ("big", "small"):
            repo = self.work / f"gitml-{kind}"
            repo.mkdir()
            self.git("init", "-q", "-b", "main", cwd=repo)
            (repo / "train.py").write_text("print('train')\n")
            self.git("add", "train.py", cwd=repo)
            self.git("commit", "-q", "-m", "init", cwd=repo)
            cache = Path(
                self.git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=repo).strip()
            )
            self.repos[("gitml", kind)] = repo
            self.repos[("gitml-cache", kind)] = cache / "gitml" / "cache"
            if self.use_s3:
                self.gitml(
                    "remote",
                    "add",
                    "s3",
                    f"s3://{BUCKETS['gitml']}/store",
                    "-o",
                    f"endpoint_url={self.endpoint}",
                    cwd=repo,
                )
            if not self.use_dvc:
                continue
            repo = self.work / f"dvc-{kind}"
            repo.mkdir()
            self.git("init", "-q", "-b", "main", cwd=repo)
            self.dvc_cmd("init", "-q", cwd=repo)
            self.dvc_cmd(
                "config", "--local", "core.site_cache_dir", str(self.work / f"dvc-site-{kind}"), cwd=repo
            )
            self.dvc_cmd("config", "core.autostage", "false", cwd=repo)
            self.dvc_cmd("remote", "add", "local", str(self.work / "remote-local" / "dvc-unused"), cwd=repo)
            if self.use_s3:
                self.dvc_cmd("remote", "add", "s3", f"s3://{BUCKETS['dvc']}/store", cwd=repo)
                self.dvc_cmd("remote", "modify", "s3", "endpointurl", self.endpoint, cwd=repo)
            self.git("add", "-A", cwd=repo)
            self.git("commit", "-q", "-m", "dvc init", cwd=repo)
            if kind == "big":
                os.link(self.big, repo / "big.bin")
            else:
                (repo / "small").mkdir()
                for name in os.listdir(self.small):
                    os.link(self.small / name, repo / "small" / name)
            self.repos[("dvc", kind)] = repo
        if self.use_dvc:
            self.r["dvc_version"] = self.run([self.dvc, "--version"], self.work, timed=False)[1].strip()

    def tools(self, rep: int, names=("gitml", "dvc", "raw")) -> list[str]:
        """The tools in the order for repetition ``rep`` (rotated, so none is always first)."""
        names = [n for n in names if n != "dvc" or self.use_dvc]
        k = rep % len(names)
        return names[k:] + names[:k]

    def add(self, key, value) -> None:
        self.r.setdefault(key, []).append(value)

    def measure(self, key, fn, *a, **kw) -> None:
        """Run one measurement and append it; a failure becomes a note, not a crash."""
        try:
            value = fn(*a, **kw)
        except CommandFailed as exc:
            self.notes.append(f"{'/'.join(map(str, key))}: {exc}")
            self.log(f"FAILED {key}: {exc}")
            return
        self.add(key, value)

    @staticmethod
    def rmtree(path: Path) -> None:
        if path.exists():
            for dirpath, dirnames, _ in os.walk(path):  # read-only object folders are fine; be sure anyway
                for d in dirnames:
                    os.chmod(os.path.join(dirpath, d), 0o755)
            shutil.rmtree(path)

    def target(self, kind: str) -> str:
        return "big.bin" if kind == "big" else "small"

    # -- (b1) ingest -------------------------------------------------------------------------------
    def scenario_ingest(self) -> None:
        self.ids = {}
        for kind in ("big", "small"):
            src = self.big if kind == "big" else self.small
            for rep in range(self.cfg["reps"]):
                for tool in self.tools(rep, ("gitml", "dvc")):
                    self.log(f"(b1) {kind} rep {rep + 1}: {tool} ingest")
                    if tool == "gitml":
                        self.rmtree(self.repos[("gitml-cache", kind)])

                        def commit(kind=kind, src=src, rep=rep):
                            wall, out = self.gitml(
                                "commit-run",
                                "-n",
                                f"{kind}-{rep}",
                                "-a",
                                str(src),
                                cwd=self.repos[("gitml", kind)],
                                tag=f"commit-{kind}-{rep}",
                            )
                            self.ids[kind] = out.strip().splitlines()[-1]
                            return wall

                        self.measure(("gitml", "add", kind), commit)
                    else:
                        repo = self.repos[("dvc", kind)]
                        (repo / f"{self.target(kind)}.dvc").unlink(missing_ok=True)
                        self.rmtree(repo / ".dvc" / "cache")
                        self.rmtree(self.work / f"dvc-site-{kind}")
                        self.measure(
                            ("dvc", "add", kind),
                            lambda repo=repo, kind=kind: self.dvc_cmd("add", self.target(kind), cwd=repo)[0],
                        )

    # -- (b2) push -------------------------------------------------------------------------------
    def push_one(self, tool: str, remote: str, kind: str, dest: str) -> float | dict:
        """Push ``kind`` with ``tool`` to ``dest`` (a folder for local, ``bucket/prefix`` for S3)."""
        n_expect = 1 if kind == "big" else self.cfg["small"] + 1
        if tool == "gitml":
            repo = self.repos[("gitml", kind)]
            if remote == "local":
                self.gitml("remote", "add", "local", dest, "--default", cwd=repo)
            else:
                self.gitml(
                    "remote", "add", "s3", f"s3://{dest}", "-o", f"endpoint_url={self.endpoint}", cwd=repo
                )
            wall, out = self.gitml(
                "artifacts",
                "push",
                self.ids[kind],
                "-r",
                remote,
                "--json",
                cwd=repo,
                tag=f"push-{remote}-{kind}",
            )
            res = json.loads(out)
            if res["uploaded"] != n_expect:
                self.notes.append(
                    f"gitml push {kind} -r {remote}: {res['uploaded']} uploaded, expected {n_expect}"
                )
            return wall
        if tool == "dvc":
            repo = self.repos[("dvc", kind)]
            self.dvc_cmd(
                "remote", "modify", remote, "url", dest if remote == "local" else f"s3://{dest}", cwd=repo
            )
            return self.dvc_cmd("push", "-r", remote, f"{self.target(kind)}.dvc", cwd=repo)[0]
        spec = {"endpoint": self.endpoint} if remote == "s3" else {}
        if remote == "local":
            os.makedirs(dest, exist_ok=True)
        src = self.big if kind == "big" else self.small
        return self.worker(
            "raw_put", dict(spec, src=str(src), dest=f"{dest}/{self.target(kind)}", recursive=kind == "small")
        )

    def local_dest(self, tool: str, kind: str, rep: int) -> Path:
        return self.work / "remote-local" / f"{tool}-{kind}-{rep}"

    def scenario_push(self) -> None:
        reps = self.cfg["reps"]
        for kind in ("big", "small"):
            if kind not in self.ids:
                continue
            for rep in range(reps):
                for tool in self.tools(rep):
                    self.log(f"(b2) {kind} rep {rep + 1}: {tool} push -> local")
                    dest = str(self.local_dest(tool, kind, rep))
                    self.measure((tool, "push", "local", kind), self.push_one, tool, "local", kind, dest)
                if rep < reps - 1:  # keep the last copies for (c) and (d); recycle the rest
                    for tool in self.tools(0):
                        self.rmtree(self.local_dest(tool, kind, rep))
                    os.sync()
                    time.sleep(1)  # let the deletions settle before the next timed push
            self.final_local = {tool: str(self.local_dest(tool, kind, reps - 1)) for tool in self.tools(0)}
        if not self.use_s3:
            return
        order = 0  # rotates across all S3 pushes, so no tool is always first into moto
        for kind in ("big", "small"):
            if kind not in self.ids:
                continue
            for rep in range(self.cfg["s3_reps"][kind]):
                for tool in self.tools(order):
                    self.log(f"(b2) {kind} rep {rep + 1}: {tool} push -> s3")
                    dest = f"{BUCKETS[tool]}/store-{kind}-{rep}"
                    self.measure((tool, "push", "s3", kind), self.push_one, tool, "s3", kind, dest)
                    if tool == "raw":
                        self.final_s3_raw = dest
                order += 1

    # -- (c) no-op push --------------------------------------------------------------------------
    def scenario_noop(self) -> None:
        if "small" not in self.ids:
            return
        for remote in self.remotes():
            for rep in range(self.cfg["reps"]):
                for tool in self.tools(rep):
                    self.log(f"(c) no-op rep {rep + 1}: {tool} -> {remote}")
                    self.measure((tool, "noop", remote), self.noop_one, tool, remote, rep)

    def noop_one(self, tool: str, remote: str, rep: int):
        if tool == "gitml":
            wall, out = self.gitml(
                "artifacts",
                "push",
                self.ids["small"],
                "-r",
                remote,
                "--json",
                cwd=self.repos[("gitml", "small")],
                tag=f"noop-{remote}" if rep == 0 else "",
            )
            if json.loads(out)["uploaded"]:
                self.notes.append(
                    f"gitml no-op push -r {remote} uploaded {json.loads(out)['uploaded']} objects"
                )
            return wall
        if tool == "dvc":
            wall, out = self.dvc_cmd("push", "-r", remote, "small.dvc", cwd=self.repos[("dvc", "small")])
            if "Everything is up to date" not in out:
                self.notes.append(f"dvc no-op push -r {remote} said: {out.strip()[:200]}")
            return wall
        if remote == "local":
            spec = {"path": f"{self.final_local['raw']}/small"}
        else:
            spec = {"path": f"{self.final_s3_raw}/small", "endpoint": self.endpoint}
        res = self.worker("raw_find", spec)
        if res["objects"] != self.cfg["small"]:
            self.notes.append(f"raw find on {remote}: {res['objects']} objects, expected {self.cfg['small']}")
        return res

    # -- (d) one file into an empty cache --------------------------------------------------------
    def scenario_get(self) -> None:
        if "small" not in self.ids:
            return
        for remote in self.remotes():
            for rep in range(self.cfg["reps"]):
                for tool in self.tools(rep):
                    self.log(f"(d) get one file rep {rep + 1}: {tool} <- {remote}")
                    self.measure((tool, "get", remote), self.get_one, tool, remote, rep)
        cache = self.repos[("gitml-cache", "small")]
        self.r["gitml_get_cached"] = sum(len(f) for _, _, f in os.walk(cache)) if cache.exists() else 0
        if self.use_dvc:
            repo = self.repos[("dvc", "small")]
            self.r["dvc_get_cached"] = sum(len(f) for _, _, f in os.walk(repo / ".dvc" / "cache"))
            self.r["dvc_get_workspace"] = len(os.listdir(repo / "small")) if (repo / "small").exists() else 0

    def get_one(self, tool: str, remote: str, rep: int):
        want = self.small / self.pick
        if tool == "gitml":
            repo = self.repos[("gitml", "small")]
            self.rmtree(self.repos[("gitml-cache", "small")])
            dest = self.work / f"got-gitml-{remote}-{rep}.bin"
            wall, _ = self.gitml(
                "artifacts",
                "get",
                f"runs:/{self.ids['small']}/small/{self.pick}",
                "-o",
                str(dest),
                "-r",
                remote,
                cwd=repo,
                tag=f"get-{remote}" if rep == 0 else "",
            )
            self.check_same(dest, want, f"gitml get -r {remote}")
            return wall
        if tool == "dvc":
            repo = self.repos[("dvc", "small")]
            self.rmtree(repo / ".dvc" / "cache")
            self.rmtree(repo / "small")
            wall, _ = self.dvc_cmd("pull", "-r", remote, f"small/{self.pick}", cwd=repo)
            self.check_same(repo / "small" / self.pick, want, f"dvc pull -r {remote}")
            return wall
        dest = self.work / f"got-raw-{remote}-{rep}.bin"
        if remote == "local":
            spec = {"src": f"{self.final_local['raw']}/small/{self.pick}"}
        else:
            spec = {"src": f"{self.final_s3_raw}/small/{self.pick}", "endpoint": self.endpoint}
        res = self.worker("raw_get", dict(spec, dest=str(dest)))
        self.check_same(dest, want, f"raw get_file from {remote}")
        return res

    # -- checks ----------------------------------------------------------------------------------
    def check_same(self, got: Path, want: Path, what: str) -> None:
        if not got.exists() or got.read_bytes() != want.read_bytes():
            raise CommandFailed(f"{what}: {got} missing or different from {want}")

    # -- main ------------------------------------------------------------------------------------
    def main(self) -> None:
        self.log(f"work directory {self.work} ({self.mode} mode)")
        try:
            self.add("create_probe", self.create_probe())
            self.make_data()
            self.scenario_hash()
            if self.use_s3:
                self.start_moto()
                self.warm_moto()
            self.r["cli_start"] = {
                "gitml": statistics.median(
                    self.run([*self.gitml_argv, "--help"], self.work)[0] for _ in range(3)
                ),
            }
            if self.use_dvc:
                self.r["cli_start"]["dvc"] = statistics.median(
                    self.run([self.dvc, "--version"], self.work)[0] for _ in range(3)
                )
            self.setup_repos()
            self.scenario_ingest()
            self.scenario_push()
            self.scenario_noop()
            self.scenario_get()
        finally:
            self.stop_moto()
            try:
                self.add("create_probe", self.create_probe())
            except OSError:
                pass
            self.r["elapsed"] = self.elapsed()
            report = self.report()
            print(report)
            if self.args.markdown:
                Path(self.args.markdown).write_text(report + "\n")
            if self.args.json:
                Path(self.args.json).write_text(
                    json.dumps(
                        {"/".join(map(str, k)) if isinstance(k, tuple) else k: v for k, v in self.r.items()},
                        indent=1,
                        default=str,
                    )
                    + "\n"
                )
            if self.args.keep:
                self.log(f"kept {self.work}")
            else:
                self.rmtree(self.work)

    # -- report ----------------------------------------------------------------------------------
    def samples(self, key, field: str = "seconds") -> list[float]:
        v = self.r.get(key) or []
        return [x[field] if isinstance(x, dict) else x for x in v]

    def secs(self, key, field: str = "seconds") -> float | None:
        v = self.samples(key, field)
        return statistics.median(v) if v else None

    def cell(
        self,
        key,
        nbytes: int | None = None,
        nfiles: int | None = None,
        field: str = "seconds",
        spread: bool = True,
    ) -> str:
        v = self.samples(key, field)
        if not v:
            return "—"
        med = statistics.median(v)
        text = f"{med:.2f} s" if med >= 0.1 else f"{med * 1000:.0f} ms"
        if nbytes:
            text += f" ({nbytes / med / MB:,.0f} MB/s)"
        elif nfiles:
            text += f" ({nfiles / med:,.0f} files/s)"
        if spread and len(v) > 1:
            text += f" [{min(v):.2f}–{max(v):.2f}]"
        return text

    def report(self) -> str:
        c = self.cfg
        big_gib = c["big"] / 2**30
        n = c["small"]
        reps = c["reps"]
        out = [
            f"### Artifacts benchmark ({self.mode} mode)",
            "",
            f"Command: `python bench/bench_artifacts.py{' --quick' if self.mode == 'quick' else ''}`  ",
            f"Machine: {self.machine_line()}  ",
            f"Load average (1 min) during the run: {self._load_text()}; whole run {self.r.get('elapsed', 0):.0f} s.  ",
            f"Data: one {big_gib:g} GiB file ({c['big']:,} bytes) and {n:,} files of 1-4 KiB "
            f"({getattr(self, 'small_bytes', 0) / MB:.1f} MB) in one directory; work directories under "
            f"{self.args.workdir_root}; MB = 10^6 bytes. Cells: median [min–max] of {reps} repetitions "
            f"(tool order rotated between repetitions) unless said otherwise.  ",
            f"File creation cost (create + write 2 KiB, µs per file), start / end of the run: {self._probe_text()}.",
            "",
        ]
        # (a)
        h = self.r.get("hash")
        if h:
            lib, git = c["big"] / h["hashlib"] / MB, c["big"] / h["gitml"] / MB
            out += [
                f"**(a) Hashing** (sha256 of the {big_gib:g} GiB file, in the page cache, best of "
                f"{c['hash_reps']}, alternating)",
                "",
                "| | seconds | MB/s | % of hashlib |",
                "|---|---:|---:|---:|",
                f"| `hashlib.sha256`, 1 MiB reads (the limit) | {h['hashlib']:.2f} | {lib:,.0f} | 100% |",
                f"| gitml `store.hash_file` | {h['gitml']:.2f} | {git:,.0f} | {100 * git / lib:.0f}% |",
                f"| (`hashlib.sha256` in memory, reference) | | {self.r['hash_mem'] / MB:,.0f} | |",
                "",
            ]
        datasets = (("big", f"1 file, {big_gib:g} GiB", c["big"], None), ("small", f"{n:,} files", None, n))
        # (b1) ingest
        rows = [
            "**(b1) Ingest into the local cache** (hash + copy into an emptied cache; CLI wall time)",
            "",
            "| data | gitml `commit-run -a` | DVC `dvc add` | DVC / gitml |",
            "|---|---:|---:|---:|",
        ]
        for kind, label, nbytes, nfiles in datasets:
            g, d = self.secs(("gitml", "add", kind)), self.secs(("dvc", "add", kind))
            rows.append(
                f"| {label} | {self.cell(('gitml', 'add', kind), nbytes, nfiles)} | "
                f"{self.cell(('dvc', 'add', kind), nbytes, nfiles)} | {ratio(d, g)} |"
            )
        out += rows + [""]
        # (b2) push
        rows = [
            f"**(b2) Push of everything** (to an empty local folder, {c['reps']}×; to S3 on moto, "
            f"{c['s3_reps']['big']}× for the big file and {c['s3_reps']['small']}× for the small files; gitml and "
            "DVC: CLI wall time; raw fsspec: the `put` call alone, its process wall time on the next line)",
            "",
            "| remote, data | gitml `artifacts push` | DVC `dvc push` | raw fsspec `put` | DVC / gitml | "
            "gitml as % of raw |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for remote in self.remotes():
            for kind, label, nbytes, nfiles in datasets:
                key = lambda tool, remote=remote, kind=kind: (tool, "push", remote, kind)  # noqa: E731
                g, d, raw = self.secs(key("gitml")), self.secs(key("dvc")), self.secs(key("raw"))
                pct = f"{100 * raw / g:.0f}%" if (raw and g) else "—"
                rows.append(
                    f"| {remote}, {label} | {self.cell(key('gitml'), nbytes, nfiles)} | "
                    f"{self.cell(key('dvc'), nbytes, nfiles)} | {self.cell(key('raw'), nbytes, nfiles)} | "
                    f"{ratio(d, g)} | {pct} |"
                )
                if self.samples(key("raw")):
                    wall_pct = f"{100 * self.secs(key('raw'), 'wall') / g:.0f}%" if g else "—"
                    rows.append(
                        f"| ↳ raw, process wall | | | {self.cell(key('raw'), nbytes, nfiles, field='wall')} | | "
                        f"{wall_pct} |"
                    )
        out += rows + [""]
        # (c) no-op
        rows = [
            f"**(c) Second push, nothing changed** ({n + 1:,} objects for gitml incl. the manifest; raw fsspec: "
            f"one `find` listing the {n:,} objects, for reference: call [process wall])",
            "",
            "| remote | gitml `artifacts push` | DVC `dvc push` | DVC / gitml | raw `fs.find` |",
            "|---|---:|---:|---:|---:|",
        ]
        for remote in self.remotes():
            g, d = self.secs(("gitml", "noop", remote)), self.secs(("dvc", "noop", remote))
            rk = ("raw", "noop", remote)
            rc = (
                f"{self.cell(rk, spread=False)} [{self.cell(rk, field='wall', spread=False)}]"
                if self.samples(rk)
                else "—"
            )
            rows.append(
                f"| {remote} | {self.cell(('gitml', 'noop', remote))} | {self.cell(('dvc', 'noop', remote))} | "
                f"{ratio(d, g)} | {rc} |"
            )
        cs = self.r.get("cli_start", {})
        out += rows + [
            "",
            f"CLI start-up for scale: `gitml --help` {s(cs.get('gitml'))}, "
            f"`dvc --version` {s(cs.get('dvc'))} (median of 3).",
            "",
        ]
        # (d) one file
        rows = [
            f"**(d) Fetch one file of the {n:,}-file artifact into an empty cache** (raw fsspec: `get_file` of "
            "the object, path known: call [process wall])",
            "",
            "| remote | gitml `artifacts get` | DVC `dvc pull small/<file>` | DVC / gitml | raw `get_file` |",
            "|---|---:|---:|---:|---:|",
        ]
        for remote in self.remotes():
            g, d = self.secs(("gitml", "get", remote)), self.secs(("dvc", "get", remote))
            rk = ("raw", "get", remote)
            rc = (
                f"{self.cell(rk, spread=False)} [{self.cell(rk, field='wall', spread=False)}]"
                if self.samples(rk)
                else "—"
            )
            rows.append(
                f"| {remote} | {self.cell(('gitml', 'get', remote))} | {self.cell(('dvc', 'get', remote))} | "
                f"{ratio(d, g)} | {rc} |"
            )
        out += rows + [""]
        if "gitml_get_cached" in self.r:
            out += [
                f"After the last fetch, gitml's cache held {self.r['gitml_get_cached']} file(s)"
                + (
                    f"; DVC's cache {self.r.get('dvc_get_cached')} file(s) and its workspace "
                    f"{self.r.get('dvc_get_workspace')} file(s) of small/"
                    if "dvc_get_cached" in self.r
                    else ""
                )
                + ".",
                "",
            ]
        out += ["**Goals**", ""] + self.goals() + [""]
        if self.notes:
            out += ["**Notes**", ""] + [f"- {x}" for x in self.notes] + [""]
        return "\n".join(line for line in out if line is not None)

    def goals(self) -> list[str]:
        """Met/not met on the medians; the best-of-N figure in brackets (noise only ever adds time)."""
        lines = []
        h = self.r.get("hash")
        if h:
            pct = 100 * h["hashlib"] / h["gitml"]
            lines.append(
                f"- Hashing ≥ {GOALS['hash_pct']:.0f}% of hashlib: {pct:.0f}% (best of {self.cfg['hash_reps']} each) "
                f"— {met(pct >= GOALS['hash_pct'])}"
            )
        for remote in self.remotes():
            for kind in ("big", "small"):
                key = lambda tool, remote=remote, kind=kind: (tool, "push", remote, kind)  # noqa: E731
                g, d, raw = self.secs(key("gitml")), self.secs(key("dvc")), self.secs(key("raw"))
                best = {tool: min(self.samples(key(tool)), default=None) for tool in ("gitml", "dvc", "raw")}
                what = f"Push to {remote}, {'big file' if kind == 'big' else 'small files'}"
                if g and d:
                    extra = (
                        f" (best-of: {best['dvc'] / best['gitml']:.2f}×)"
                        if len(self.samples(key("gitml"))) > 1
                        else ""
                    )
                    lines.append(
                        f"- {what}, ≥ {GOALS['vs_dvc']:g}× faster than `dvc push`: {d / g:.2f}×{extra} — "
                        f"{met(d / g >= GOALS['vs_dvc'])}"
                    )
                if g and raw:
                    pct = 100 * raw / g
                    wall = 100 * self.secs(key("raw"), "wall") / g
                    extra = (
                        f"best-of {100 * best['raw'] / best['gitml']:.0f}%, "
                        if len(self.samples(key("gitml"))) > 1
                        else ""
                    )
                    lines.append(
                        f"- {what}, ≥ {GOALS['vs_raw_pct']:.0f}% of raw fsspec `put`: {pct_text(pct)} ({extra}"
                        f"{wall:.0f}% of the raw process's wall time) — {met(pct >= GOALS['vs_raw_pct'])}"
                    )
        for remote in self.remotes():
            g = self.secs(("gitml", "noop", remote))
            if g is not None:
                lines.append(
                    f"- No-op push of {self.cfg['small'] + 1:,} objects to {remote} < {GOALS['noop_s']:g} s: "
                    f"{g:.2f} s — {met(g < GOALS['noop_s'])}"
                )
        return lines

    def _probe_text(self) -> str:
        probes = self.r.get("create_probe") or []
        return " / ".join(", ".join(f"{k} {v:,.0f}" for k, v in p.items()) for p in probes) or "?"

    def _load_text(self) -> str:
        if not self.loads:
            return "?"
        return f"min {min(self.loads):.2f}, median {statistics.median(self.loads):.2f}, max {max(self.loads):.2f}"

    def machine_line(self) -> str:
        cpu = cpu_model()
        code = (
            "import importlib.metadata as m\n"
            "for p in ('gitml', 'fsspec', 's3fs', 'moto'):\n"
            "    try: print(p, m.version(p))\n"
            "    except Exception: print(p, '?')\n"
        )
        vers = subprocess.run(
            [sys.executable, "-c", code], env=self.env, capture_output=True, text=True, check=False
        ).stdout.split("\n")
        mem = ""
        try:
            kb = int(Path("/proc/meminfo").read_text().split()[1])
            mem = f", {kb / 2**20:.0f} GiB RAM"
        except (OSError, ValueError, IndexError):
            pass
        dvc = self.r.get("dvc_version")
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "gitml"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if commit:
            vers.append(f"(gitml at commit {commit}{', with local changes' if dirty else ''})")
        return (
            f"{_dt.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}){mem}, Linux {platform.release()}, "
            f"Python {platform.python_version()}, {', '.join(v for v in vers if v)}"
            + (f", dvc {dvc}" if dvc else "")
            + "."
        )


def s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"


def ratio(other: float | None, gitml: float | None) -> str:
    if not other or not gitml:
        return "—"
    return f"{other / gitml:.2f}×"


def pct_text(pct: float) -> str:
    """A percentage, with a decimal when rounding would hide which side of a 90% goal it is on."""
    return f"{pct:.1f}%" if 89.5 <= pct < 90.5 else f"{pct:.0f}%"


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="0.25 GiB and 2,000 files (a few minutes)")
    ap.add_argument(
        "--reps", type=int, help="repetitions of every local measurement (default 5; 2 with --quick)"
    )
    ap.add_argument("--dvc", default="/var/tmp/dvcenv/bin/dvc", help="the dvc executable (own virtualenv)")
    ap.add_argument("--skip-dvc", action="store_true", help="leave DVC out")
    ap.add_argument("--skip-s3", action="store_true", help="local remote only (no moto server)")
    ap.add_argument(
        "--workdir-root", default="/var/tmp", help="where the work directory goes (default /var/tmp)"
    )
    ap.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    ap.add_argument("--json", metavar="FILE", help="also write every measurement to FILE")
    ap.add_argument("--profile", metavar="DIR", help="run gitml commands under cProfile, dumps in DIR")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)
    Bench(args).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
