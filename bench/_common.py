"""Helpers every benchmark script shares (imported as ``_common``: the scripts run from bench/)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def cpu_model(default: str = "?") -> str:
    """The CPU's model name from /proc/cpuinfo, or ``default`` where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


# ------------------------------------------------------------------------------------------------
# Workers: every measurement runs in its own Python process and hands back one JSON line
# ------------------------------------------------------------------------------------------------
RESULT_PREFIX = "BENCH_RESULT "


def emit_result(res: dict) -> None:
    """In a worker: print ``res`` as the one ``RESULT_PREFIX`` line the driver looks for."""
    sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(res) + "\n")
    sys.stdout.flush()


def run_worker(cmd: list[str], *, env: dict, cwd: Path) -> tuple[dict | None, subprocess.CompletedProcess]:
    """Run a worker command and return (its result, the finished process).

    The result is the JSON of the last ``RESULT_PREFIX`` line on its stdout, or None when there
    is none (the worker failed: ``failure_line`` says why in one line).
    """
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :]), p
    return None, p


def failure_line(p: subprocess.CompletedProcess) -> str:
    """The last line a failed worker wrote to stderr, or ``exit N, no output``."""
    return (p.stderr.strip().splitlines() or [f"exit {p.returncode}, no output"])[-1]


# ------------------------------------------------------------------------------------------------
# The driver's surroundings: a scratch HOME, a scrubbed environment, the machine's load
# ------------------------------------------------------------------------------------------------
SCRUBBED = ("GIT_", "MLFLOW_", "PYTHONPATH", "XDG_CONFIG_HOME", "VIRTUAL_ENV")


def bench_home(tmp: Path, user: str = "Bench User") -> Path:
    """A fresh ``tmp/home`` with a ``.gitconfig`` (user ``user``, default branch main)."""
    home = tmp / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        f"[user]\n\tname = {user}\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    return home


def scrubbed_env(home: Path, *, drop: tuple[str, ...] = SCRUBBED, **extra: str) -> dict:
    """This process's environment without the variables starting with ``drop``, ``HOME`` set to
    ``home``, git's system config off, MLflow's file store allowed and its telemetry off, no
    bytecode written; then ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        MLFLOW_ALLOW_FILE_STORE="true",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


class LoadSampler:
    """The 1-minute load average at start, then sampled every ``every`` seconds by a daemon thread."""

    def __init__(self, every: float = 10.0):
        self.start = os.getloadavg()
        self.loads: list[float] = []
        self.every = every
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            self.loads.append(os.getloadavg()[0])
            time.sleep(self.every)

    def summary(self, elapsed: float, cores: str | None = None) -> str:
        """``Total benchmark wall time: … s. 1-minute load average: …`` for the report's end;
        ``cores`` is the parenthesis (default: this machine's core count, ~1 kept busy)."""
        if cores is None:
            cores = f"{os.cpu_count()} cores; the benchmark keeps ~1 busy"
        return (
            f"Total benchmark wall time: {elapsed:.0f} s. 1-minute load average: "
            f"{self.start[0]:.2f} at start, mean {statistics.mean(self.loads or [0]):.2f} and "
            f"max {max(self.loads or [0]):.2f} while running ({cores})."
        )


def machine_line(env: dict, mlflow_python: str, root: Path, tree_note: str = "") -> str:
    """One line naming the date, the machine, and the gitml / dulwich / MLflow / SQLAlchemy / git
    versions, for a gitml-versus-MLflow report.

    gitml's versions are read by this interpreter with ``root`` on ``PYTHONPATH`` (the tree the
    workers import), MLflow's by ``mlflow_python``; the line also gives ``root``'s HEAD and whether
    its gitml/ has uncommitted changes. ``tree_note`` is added inside that parenthesis.
    """

    def version(python: str, code: str, env: dict) -> str:
        p = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=False)
        return p.stdout.strip() or "?"

    gitml_v = version(
        sys.executable,
        "import gitml, importlib.metadata as m; print(gitml.__version__, 'dulwich', m.version('dulwich'))",
        dict(env, PYTHONPATH=str(root)),
    )
    mlflow_v = version(
        mlflow_python,
        "import importlib.metadata as m, platform; print(m.version('mlflow'), 'SQLAlchemy', "
        "m.version('sqlalchemy'), 'on Python', platform.python_version())",
        env,
    )
    git_v = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--", "gitml"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{_dt.date.today().isoformat()}, {os.cpu_count()} cores ({cpu_model()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, gitml {gitml_v} (tree at {head}"
        f"{', gitml/ with uncommitted changes' if dirty else ''}{tree_note}), mlflow {mlflow_v}, {git_v}."
    )


# ------------------------------------------------------------------------------------------------
# Report cells
# ------------------------------------------------------------------------------------------------
def fmt(v) -> str:
    """A time (ms) with 3-4 significant figures, or ``—`` for None."""
    if v is None:
        return "—"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(other, gitml) -> str:
    """``other / gitml`` as ``1.5×`` (above 1: gitml is faster), or empty when either is missing."""
    if other is None or gitml is None or gitml == 0:
        return ""
    r = other / gitml
    return f"{r:.1f}×" if r >= 1 else f"{r:.2g}×"


class Profiler:
    """cProfile around a timed section when ``path`` is given (its stats dumped there), else nothing."""

    def __init__(self, path: str | None):
        self.path, self.prof = path, None

    def __enter__(self):
        if self.path:
            import cProfile

            self.prof = cProfile.Profile()
            self.prof.enable()
        return self

    def __exit__(self, *exc):
        if self.prof is not None:
            self.prof.disable()
            self.prof.dump_stats(self.path)


def timed(fn, reps: int, profile: str | None = None) -> dict:
    """One untimed warm-up call of ``fn(0)``, then ``fn(1)`` … ``fn(reps)`` timed (ms each), under
    a :class:`Profiler` writing to ``profile`` when given.

    Returns ``first_ms`` (the warm-up), ``median_ms``, ``min_ms``, ``max_ms`` and ``times``.
    """
    t0 = time.perf_counter()
    fn(0)
    first = (time.perf_counter() - t0) * 1e3
    times = []
    with Profiler(profile):
        for i in range(1, reps + 1):
            t0 = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t0) * 1e3)
    return {"first_ms": first, "median_ms": statistics.median(times), "min_ms": min(times),
            "max_ms": max(times), "times": times}


def prof_path(spec: dict, tool: str, op: str) -> str | None:
    """``<spec["profile"]>/<tool>-<op>.prof``, or None when the worker's spec asks for no profile."""
    return os.path.join(spec["profile"], f"{tool}-{op}.prof") if spec.get("profile") else None


def typical_params(rnd) -> dict:
    """Ten params of a training run (lr, batch size, optimizer …), drawn from ``rnd`` (a ``random.Random``).

    The benchmarks that need realistic runs share it, so their stores hold the same kind of params.
    """
    return {
        "lr": round(10 ** rnd.uniform(-5, -1), 7),
        "batch_size": rnd.choice([16, 32, 64, 128, 256]),
        "optimizer": rnd.choice(["adam", "sgd", "adamw", "rmsprop"]),
        "epochs": rnd.randint(1, 100),
        "dropout": round(rnd.uniform(0, 0.5), 3),
        "layers": rnd.randint(1, 12),
        "hidden": rnd.choice([64, 128, 256, 512, 1024]),
        "seed": rnd.randint(0, 2**31),
        "weight_decay": round(10 ** rnd.uniform(-6, -2), 8),
        "model": rnd.choice(["resnet18", "resnet50", "vit-b16", "mlp", "gbm"]),
    }
