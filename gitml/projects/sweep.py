"""Sweeps: many trials of one entry point, each a run under a parent run that records the sweep.

``-P lr=0.01,0.1,1 -P depth=3,5`` is a grid (every combination: 6 trials); ``--sweep random
--trials N`` draws N trials from ranges such as ``-P lr=loguniform(1e-4,1)``. Each trial is a
run of :func:`gitml.projects.run.run_project` tagged ``sweep=<sweep id>`` and linked to the
parent run by MLflow's ``mlflow.parentRunId`` tag; the parent records the sweep's parameters as
params (the specs as given), its size, and, under ``--objective metrics.X``, the best trial
(tag ``best_run_id``, metric ``X``). ``--jobs N`` runs N trials at once. A failing trial is
committed FAILED and the others go on; Ctrl-C starts no new trial and commits the running ones
KILLED. Every trial's parameters are checked before the first one starts.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from gitml.core import active
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import Run
from gitml.core.ids import new_run_id
from gitml.core.workspace import WorkspaceLike, open_workspace
from gitml.projects.run import ProjectRun, checkout, run_project, untracked_warning
from gitml.projects.spec import build_command, entry_point, load_project, resolve_parameters
from gitml.tracking.commit import check_status, finish_active, new_meta

SWEEP_TAG = "sweep"
PARENT_TAG = "mlflow.parentRunId"
MAX_TRIALS = 10_000
_FUNCTION = re.compile(r"^\s*(uniform|loguniform|randint|choice)\s*\((.*)\)\s*$", re.S)


def split_values(text: str) -> list[str]:
    r"""``a,b,c`` as ``["a", "b", "c"]``; ``\,`` keeps a comma inside a value.

    Any other backslash is kept as it is, so ``C:\data`` and regular expressions pass through.
    """
    parts, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and text[i + 1:i + 2] == ",":
            current.append(",")
            i += 2
            continue
        if char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def is_sweep(parameters: dict[str, str]) -> bool:
    """Whether ``-P`` values ask for a sweep: a list (``a,b``) or a range (``uniform(0,1)``)."""
    return any(len(split_values(v)) > 1 or _FUNCTION.match(v) for v in parameters.values())


@dataclass(frozen=True)
class Dimension:
    """One swept parameter: ``values`` (a list) or a ``function`` with its ``bounds``."""

    name: str
    values: tuple[str, ...] = ()
    function: str | None = None
    bounds: tuple[float, ...] = ()

    def draw(self, rng: random.Random) -> str:
        """One random value, as text."""
        if self.function is None or self.function == "choice":
            return rng.choice(self.values)
        low, high = self.bounds
        if self.function == "uniform":
            return repr(rng.uniform(low, high))
        if self.function == "loguniform":
            return repr(math.exp(rng.uniform(math.log(low), math.log(high))))
        return str(rng.randint(int(low), int(high)))


def dimensions(parameters: dict[str, str]) -> list[Dimension]:
    """The sweep's dimensions, in the order given.

    Raises:
        BadInputError: a range that is not ``uniform(a,b)``, ``loguniform(a,b)`` (a > 0),
            ``randint(a,b)`` (whole numbers) or ``choice(x,y,…)``, or with ``a > b``.
    """
    out = []
    for name, text in parameters.items():
        found = _FUNCTION.match(text)
        if not found:
            out.append(Dimension(name, tuple(split_values(text))))
            continue
        function, inside = found.group(1), found.group(2)
        args = [a.strip() for a in split_values(inside)]
        if function == "choice":
            if not args or not all(args):
                raise BadInputError(f"-P {name}: choice() needs values, e.g. choice(adam,sgd)")
            out.append(Dimension(name, tuple(args), "choice"))
            continue
        try:
            bounds = tuple(float(a) for a in args)
        except ValueError:
            raise BadInputError(f"-P {name}: {function}() takes two numbers, got {inside!r}") from None
        if len(bounds) != 2 or not all(math.isfinite(b) for b in bounds) or bounds[0] > bounds[1]:
            raise BadInputError(f"-P {name}: {function}(low, high) needs two finite numbers, low <= high")
        if function == "loguniform" and bounds[0] <= 0:
            raise BadInputError(f"-P {name}: loguniform() needs low > 0")
        if function == "randint" and not all(b == int(b) for b in bounds):
            raise BadInputError(f"-P {name}: randint() takes whole numbers")
        out.append(Dimension(name, (), function, bounds))
    return out


def trial_values(parameters: dict[str, str], kind: str = "grid", trials: int | None = None,
                 seed: int | None = None) -> list[dict[str, str]]:
    """Every trial's parameters: the grid's combinations, or ``trials`` random draws.

    Raises:
        BadInputError: an unknown kind, a range in a grid, no ``trials`` for a random sweep,
            more than :data:`MAX_TRIALS` trials.
    """
    dims = dimensions(parameters)
    if kind == "grid":
        ranged = [d.name for d in dims if d.function not in (None, "choice")]
        if ranged:
            raise BadInputError(f"-P {ranged[0]}: a range needs --sweep random --trials N (a grid takes lists)")
        if trials is not None:
            raise BadInputError("--trials goes with --sweep random (a grid runs every combination)")
        size = math.prod(len(d.values) for d in dims)
        if size > MAX_TRIALS:
            raise BadInputError(f"the grid has {size} trials, more than {MAX_TRIALS}")
        return [dict(zip([d.name for d in dims], combo, strict=True))
                for combo in itertools.product(*(d.values for d in dims))]
    if kind == "random":
        if trials is None or trials < 1 or trials > MAX_TRIALS:
            raise BadInputError(f"--sweep random needs --trials N, 1 to {MAX_TRIALS}")
        rng = random.Random(seed)
        return [{d.name: d.draw(rng) for d in dims} for _ in range(trials)]
    raise BadInputError(f"unknown sweep {kind!r}: use grid or random")


@dataclass
class Trial:
    """One trial: its number (from 1), its parameters, and what happened."""

    number: int
    values: dict[str, str]
    result: ProjectRun | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        """The run's status, ``NOT STARTED`` (interrupted first) or ``ERROR`` (it could not start)."""
        if self.result is not None:
            return self.result.run.status
        return "ERROR" if self.error else "NOT STARTED"


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the sweep's id, its parent run, the trials, the best run."""

    sweep_id: str
    parent: Run
    trials: list[Trial] = field(default_factory=list)
    best: Run | None = None
    interrupted: bool = False

    @property
    def failed(self) -> int:
        """How many trials did not finish (failed, killed, or could not start)."""
        return sum(t.status != "FINISHED" for t in self.trials if t.status != "NOT STARTED")


def _objective(objective: str | None, direction: str) -> str | None:
    if objective is None:
        return None
    key = objective[len("metrics."):] if objective.startswith("metrics.") else None
    if not key:
        raise BadInputError(f"--objective {objective!r}: expected metrics.NAME")
    if direction not in ("min", "max"):
        raise BadInputError(f"--direction {direction!r}: expected min or max")
    return key


def run_sweep(parameters: dict[str, str], uri: str | None = None, entry: str = "main", kind: str = "grid",
              trials: int | None = None, jobs: int = 1, objective: str | None = None, direction: str = "min",
              version: str | None = None, env_manager: str | None = None, name: str | None = None,
              experiment: str | None = None, repo: WorkspaceLike = None, seed: int | None = None,
              on_trial: Callable[[Trial], None] | None = None, log=None, backend: str = "local",
              scheduler: str | None = None) -> SweepResult:
    """Run a sweep of an entry point: every trial a run under one parent run.

    Args:
        parameters: ``{name: value, list "a,b" or range "uniform(0,1)"}`` as ``-P`` gives them.
        uri: as :func:`gitml.projects.run.run_project`.
        entry: as :func:`gitml.projects.run.run_project`.
        kind: ``grid`` (every combination of the lists) or ``random`` (``trials`` draws).
        trials: how many random trials.
        jobs: trials run at once (1 to 64).
        objective: ``metrics.NAME`` to pick the best trial by.
        direction: ``min`` or ``max``: which end of the objective is best.
        version: as :func:`gitml.projects.run.run_project`.
        env_manager: as :func:`gitml.projects.run.run_project`.
        name: the parent run's name (default ``sweep-<id>``); trials are ``<name>-<number>``.
        experiment: the experiment of the parent and every trial.
        repo: where the runs are recorded (default: the current directory).
        seed: the random sweep's seed (default: a new one each time).
        on_trial: called (in a worker thread) with each trial as it ends.
        log: progress lines for people.
        backend: ``local`` (threads here, ``jobs`` at once) or ``dask`` (tasks on the Dask
            cluster at ``scheduler``; see :mod:`gitml.projects.cluster`; this repository's code
            only, at ``version`` or its HEAD with the work tree's changes as a patch).
        scheduler: the Dask scheduler's address (``tcp://host:port``), for ``backend="dask"``.

    Returns:
        A :class:`SweepResult`.

    Raises:
        BadInputError: a bad sweep, objective, ``jobs``, or a trial's parameter (checked for
            every trial before the first starts; nothing is recorded then).
        KeyboardInterrupt: after the running trials and the parent are committed KILLED.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 64:
        raise BadInputError(f"--jobs {jobs!r}: expected 1 to 64")
    if backend not in ("local", "dask"):
        raise BadInputError(f"unknown backend {backend!r}: use local or dask")
    if backend == "dask" and uri not in (None, "."):
        raise BadInputError("--backend dask runs this repository's code (no URI)",
                            hint="clone the project and run the sweep from there")
    if (backend == "dask") != (scheduler is not None):
        raise BadInputError("--backend dask goes with --scheduler tcp://HOST:PORT (and --scheduler with it)")
    client = None
    key = _objective(objective, direction)
    combos = trial_values(parameters, kind, trials, seed)
    with open_workspace(repo) as ws:
        root_path = Path(ws.repo.root)
        with checkout(ws, uri, version) as (root, project_repo, _):  # every trial's parameters checked first
            point = entry_point(load_project(root), entry)
            for combo in combos:
                resolve_parameters(point, combo, root=root)
            if backend == "dask" and project_repo is ws.repo:
                # the workers get the commit and the tracked files' changes, nothing untracked
                missing = untracked_warning(root, load_project(root),
                                             build_command(point, resolve_parameters(point, combos[0], root=root)))
                if missing:
                    raise BadInputError(missing[0].replace("not there for `gitml reproduce`",
                                                           "not sent to the Dask workers"))
            if project_repo is not ws.repo:
                # a revision or another repository: every trial runs the commit found now, even if
                # the branch moves (a push to the other repository) while the sweep runs
                version = project_repo.head()[0] or version
        if backend == "dask":  # after the checks: bad input is refused without asking the cluster
            from gitml.projects.cluster import client_for

            client = client_for(scheduler)
        sweep_id = new_run_id()[:12]
        parent_name = name or f"sweep-{sweep_id}"
        meta, patch = new_meta(ws.repo, parent_name, experiment, False)
        meta["entry_point"] = point.name
        parent = active.ActiveRun.create(ws.repo.gitml_dir, meta, patch)
        try:
            for pname, text in parameters.items():
                parent.param(pname, text[:6000])
            where = ({"sweep.backend": "dask", "sweep.workers": str(_worker_count(client))} if client is not None
                     else {"sweep.backend": "local", "sweep.jobs": str(jobs)})
            for tag, value in {SWEEP_TAG: sweep_id, "sweep.kind": kind, "sweep.trials": str(len(combos)),
                               **where, "mlflow.project.entryPoint": point.name}.items():
                parent.tag(tag, value)
            if key:
                parent.tag("sweep.objective", f"{direction} metrics.{key}")
        finally:
            parent.close()
        parent_id = parent.id
        experiment_name = meta["experiment"]
    stop = threading.Event()
    result_trials = [Trial(i + 1, combo) for i, combo in enumerate(combos)]

    def one(trial: Trial) -> Trial:
        if stop.is_set():
            return trial
        try:
            trial.result = run_project(uri, entry, trial.values, version, env_manager,
                                       name=f"{parent_name}-{trial.number}", experiment=experiment_name,
                                       repo=root_path, tags={SWEEP_TAG: sweep_id, PARENT_TAG: parent_id},
                                       stream=jobs == 1, log=log, stop=stop)
        except KeyboardInterrupt as exc:
            trial.result = getattr(exc, "project_run", None)
            stop.set()
        except GitmlError as exc:
            trial.error = exc.message
        except Exception as exc:  # noqa: BLE001 - one trial's unexpected error fails that trial, not the sweep
            trial.error = f"{type(exc).__name__}: {exc}"[:2000]
        _tell(on_trial, trial)
        return trial

    if client is not None:
        try:
            _on_cluster(client, root_path, result_trials, version, entry, env_manager, parent_name,
                        experiment_name, {SWEEP_TAG: sweep_id, PARENT_TAG: parent_id}, on_trial)
        except KeyboardInterrupt:
            stop.set()
        except BaseException:
            _finish_parent(root_path, parent_id, result_trials, None, None, False, failed=True)
            raise
        finally:
            client.close()
    interrupted = False
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="gitml-trial")
    try:
        futures = [pool.submit(one, trial) for trial in result_trials if client is None]
        for future in as_completed(futures):
            future.result()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        while True:  # the running trials see `stop`, stop their commands and commit KILLED
            try:
                pool.shutdown(wait=True, cancel_futures=True)
                break
            except KeyboardInterrupt:
                continue
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    interrupted = interrupted or stop.is_set()
    best = _best(result_trials, key, direction)
    parent_run = _finish_parent(root_path, parent_id, result_trials, best, key, interrupted)
    result = SweepResult(sweep_id, parent_run, result_trials, best, interrupted)
    if interrupted:
        raise KeyboardInterrupt
    return result


def _on_cluster(client, root: Path, trials: list[Trial], version: str | None, entry: str, env_manager: str | None,
                parent_name: str, experiment: str, tags: dict[str, str],
                on_trial: Callable[[Trial], None] | None) -> None:
    """Run the trials as tasks on a Dask cluster; commit each run the workers return."""
    from distributed import as_completed as completed

    from gitml.projects import cluster
    from gitml.projects.env import Environment
    from gitml.tracking.provenance import capture_source

    with open_workspace(root) as ws:
        if version is None:
            source, patch = capture_source(ws.repo)
            commit = source.get("commit")
        else:
            from gitml.projects.run import _resolve

            commit, patch = _resolve(Path(ws.repo.common_dir), version), None
        if not commit:
            raise BadInputError("--backend dask needs a commit to send to the workers (this repository has none)")
        # In each task, not scattered: a worker that dies would take scattered data with it, and
        # the retry could not start anywhere.
        data = cluster.bundle(ws, commit)
        identity = (ws.repo.config_value("user", "name") or "gitml", ws.repo.config_value("user", "email") or "gitml@localhost")
        project = cluster.project_id(ws)
        futures = {}
        for trial in trials:
            spec = {"commit": commit, "patch": patch, "entry": entry, "values": trial.values,
                    "env_manager": env_manager, "name": f"{parent_name}-{trial.number}", "experiment": experiment,
                    "tags": tags, "identity": identity, "project_id": project}
            futures[client.submit(cluster.run_trial, spec, data, retries=cluster.RETRIES, pure=False)] = trial
        for future in completed(list(futures)):
            trial = futures[future]
            try:
                run = cluster.record(ws, future.result())
                info = run.project or {}
                env = info.get("environment") or {}
                trial.result = ProjectRun(run, info.get("exit_code"), info.get("duration") or 0.0,
                                          Environment(env.get("hash", ""), env.get("manager", ""), ""), run.command or "")
            except Exception as exc:  # noqa: BLE001 - a worker's error, whatever its kind: the trial failed
                trial.error = f"{type(exc).__name__}: {exc}"[:2000]
                trial.result = ProjectRun(_failed_run(ws, trial, parent_name, experiment, tags, entry), None, 0.0,
                                          Environment("", "", ""), "")
            _tell(on_trial, trial)


def _tell(on_trial: Callable[[Trial], None] | None, trial: Trial) -> None:
    """Report a trial; a report that fails (stdout closed: ``| head``) does not stop the sweep."""
    if on_trial is None:
        return
    try:
        on_trial(trial)
    except Exception:  # noqa: BLE001 - the trial is recorded whatever its report did
        pass


def _failed_run(ws, trial: Trial, parent_name: str, experiment: str, tags: dict[str, str], entry: str) -> Run:
    """A trial the cluster could not run, committed FAILED here with the error as its description."""
    meta, patch = new_meta(ws.repo, f"{parent_name}-{trial.number}", experiment, False,
                           description=f"the trial could not run on the cluster: {trial.error}")
    meta["entry_point"] = entry
    handle = active.ActiveRun.create(ws.repo.gitml_dir, meta, patch)
    try:
        for key, value in trial.values.items():
            handle.param(key, value)
        for key, value in tags.items():
            handle.tag(key, value)
    finally:
        handle.close()
    return finish_active(ws.repo, handle.id, "FAILED").run


def _best(trials: list[Trial], key: str | None, direction: str) -> Run | None:
    if key is None:
        return None
    done = [t.result.run for t in trials if t.result and t.result.run.status == "FINISHED"
            and key in t.result.run.metrics and not math.isnan(t.result.run.metrics[key])]
    if not done:
        return None
    pick = min if direction == "min" else max
    return pick(done, key=lambda run: run.metrics[key])


def _worker_count(client) -> int:
    """How many workers the Dask cluster has as the sweep starts (it may grow or shrink)."""
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - a count for a tag; the sweep itself reports a lost scheduler
        return 0


def _finish_parent(root: Path, parent_id: str, trials: list[Trial], best: Run | None, key: str | None,
                   interrupted: bool, failed: bool = False) -> Run:
    with open_workspace(root) as ws:
        parent = active.ActiveRun.reopen(ws.repo.gitml_dir, parent_id)
        try:
            counts: dict[str, int] = {}
            for trial in trials:
                counts[trial.status] = counts.get(trial.status, 0) + 1
            for status, count in counts.items():
                parent.tag(f"sweep.{status.lower().replace(' ', '_')}", str(count))
            if best is not None and key is not None:
                parent.tag("best_run_id", best.id)
                parent.metric(key, best.metrics[key], 0, time.time())
        finally:
            parent.close()
        failures = sum(t.status not in ("FINISHED", "NOT STARTED") for t in trials)
        status = "KILLED" if interrupted else "FAILED" if failed or failures == len(trials) else "FINISHED"
        return finish_active(ws.repo, parent_id, check_status(status)).run


def describe_trial(trial: Trial, key: str | None = None) -> str:
    """One line for people: ``trial 3/6 lr=0.1 depth=5: FINISHED loss=0.23 (run 1a2b3c4d)``."""
    values = " ".join(f"{k}={v}" for k, v in trial.values.items())
    if trial.result is None:
        return f"trial {trial.number} {values}: {trial.status}{': ' + trial.error if trial.error else ''}"
    run = trial.result.run
    metric = f" {key}={run.metrics[key]:.6g}" if key and key in run.metrics else ""
    return f"trial {trial.number} {values}: {run.status}{metric} (run {run.id[:8]})"

