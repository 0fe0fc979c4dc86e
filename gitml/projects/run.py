"""``gitml run``: run a project's entry point as a run, in its environment, from any revision.

The run is opened before the command starts and committed when it ends: ``FINISHED`` on exit
code 0, ``FAILED`` otherwise, ``KILLED`` on Ctrl-C (the command gets SIGINT, then SIGTERM, then
SIGKILL). The command's output is streamed live and kept as the run's ``logs/stdout.txt`` and
``logs/stderr.txt``. A script that calls ``gitml.start_run()`` joins this run (through the
``GITML_RUN_ID`` and ``GITML_TRACKING_REPO`` environment variables), so what it logs lands in
the same run. The run records the entry point, the resolved parameters (also as params), the
environment's hash and the exit code (``run.yaml``'s ``project``; docs/formats.md).

Where the code comes from:

- this repository (no URI, or ``.``): its work tree as it is (a dirty tree is recorded as a
  patch, as for any run), or with ``--version`` a temporary worktree at that revision;
- another local repository or any URL git can clone: cloned once into
  ``<git common dir>/gitml/projects/<hash of the URI>``, fetched on later runs, and checked out
  at ``--version`` (default: the remote's default branch) in a temporary worktree. The user's
  tree is never touched.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gitml.core import active, store
from gitml.core.errors import BadInputError, GitmlError, RemoteError
from gitml.core.formats import Run, param_value
from gitml.core.gitcli import run_git
from gitml.core.gitrepo import GitRepo
from gitml.core.urls import mask_text
from gitml.core.workspace import Workspace, WorkspaceLike, open_workspace
from gitml.projects import env as envs
from gitml.projects.spec import build_command, entry_point, load_project, resolve_parameters
from gitml.tracking.commit import finish_active, new_meta
from gitml.tracking.provenance import capture_source

RUN_ID_ENV = "GITML_RUN_ID"  # the run a child's gitml.start_run() joins
REPO_ENV = "GITML_TRACKING_REPO"  # the repository that run is recorded in
PROJECTS_DIR = "projects"
KILL_GRACE = 10.0  # seconds between SIGINT, SIGTERM and SIGKILL when the run is interrupted


@dataclass
class ProjectRun:
    """What :func:`run_project` did.

    Attributes:
        run: the committed run.
        exit_code: the command's exit code (negative: killed by that signal; None: not started).
        seconds: how long the command ran.
        environment: the environment it ran in.
        command: the shell command.
    """

    run: Run
    exit_code: int | None
    seconds: float
    environment: envs.Environment
    command: str
    warnings: list[str] = field(default_factory=list)


def _is_url(uri: str) -> bool:
    return "://" in uri or (":" in uri and not os.path.exists(uri) and "@" in uri.split(":", 1)[0])


@contextmanager
def checkout(ws: Workspace, uri: str | None, version: str | None,
             patch: str | None = None) -> Iterator[tuple[Path, GitRepo, str]]:
    """The project's folder for one run: ``(folder, its repository, the URI as recorded)``.

    Args:
        ws: the workspace runs are recorded in.
        uri: as :func:`run_project` takes it.
        version: a revision, or None (this work tree as it is; a clone's default branch).
        patch: uncommitted changes to apply on top of ``version`` (a run's ``patch.diff``).

    Raises:
        BadInputError: a revision that does not exist, a path that is not a git repository,
            a patch that does not apply.
        RemoteError: cloning or fetching the URI failed.
    """
    here = ws.repo
    fragment = ""  # MLflow's `URI#subdirectory`: a project in a folder of that repository
    if uri is not None and "#" in uri and not Path(uri).expanduser().exists():
        uri, _, fragment = uri.partition("#")
        fragment = fragment.strip("/")
        if not fragment or any(part in ("", ".", "..") for part in fragment.split("/")):
            raise BadInputError(f"bad subdirectory {fragment!r} after '#': give a folder inside the repository")
    local = None if uri is None else Path(uri).expanduser()
    if local is not None and not local.is_absolute() and not local.exists() and (Path(here.root) / local).exists():
        local = Path(here.root) / local  # a folder of this repository, as a run records it
    same = uri in (None, ".") or (local is not None and local.exists() and _same_repo(here, local))
    sub = ""  # a project in a folder of this repository (MLflow's `mlflow run examples/wine`)
    if same and local is not None:
        inside = local.resolve().relative_to(Path(here.root).resolve()) if local.resolve().is_relative_to(
            Path(here.root).resolve()) else Path()
        sub = "" if str(inside) == "." else inside.as_posix()
    if (not same and uri is not None and local is not None and not local.is_absolute() and not local.exists()
            and not _is_url(uri) and (version is not None or patch is not None)
            and ".." not in Path(uri).parts and uri.strip()):
        # a folder of this repository at a past revision, gone from the work tree since (moved
        # or removed): what `gitml reproduce` finds recorded
        same, sub = True, Path(uri).as_posix().strip("/")
    if fragment:
        sub = f"{sub}/{fragment}" if sub else fragment
    if same and version is None and patch is None:
        remove_stale_worktrees(here.common_dir)  # a killed `gitml run --version`'s, say (one git call)
        if not (Path(here.root) / sub).is_dir():
            raise BadInputError(f"no folder {sub!r} in this repository")
        yield Path(here.root) / sub, here, sub or "."
        return
    if same:
        repo_dir, recorded = here.common_dir, sub or "."
    elif (local is not None and local.is_dir() and not _is_url(uri) and version is None and patch is None
          and not _bare(local)):
        # another repository on this machine, as it is (MLflow runs a local folder as it is): its
        # commit and uncommitted changes are recorded, so `gitml reproduce` can rebuild it
        folder = local.resolve() / fragment if fragment else local.resolve()
        try:
            other = GitRepo(local.resolve())
        except Exception:  # noqa: BLE001 - not a git repository: said in one line
            raise BadInputError(f"{uri!r} is not in a git repository: gitml runs projects whose code a "
                                "commit records", hint="git init and commit it, or give a URL git can clone") from None
        if not folder.is_dir():
            other.close()
            raise BadInputError(f"no folder {fragment!r} in {uri!r}")
        with other:
            yield folder, other, str(local.resolve()) + (f"#{fragment}" if fragment else "")
        return
    elif local is not None and local.exists() and not _is_url(uri):
        repo_dir, recorded = Path(_cached_clone(here, str(local.resolve()), version)), str(local.resolve())
    else:
        repo_dir, recorded = Path(_cached_clone(here, uri, version)), mask_text(uri)
    if fragment and not same:
        recorded = f"{recorded}#{fragment}"
    commit = _resolve(repo_dir, version or "HEAD")
    remove_stale_worktrees(repo_dir)
    tmp = Path(tempfile.mkdtemp(prefix=WORKTREE_PREFIX))
    owner = open(tmp / OWNER_LOCK, "a+")  # held while the worktree is in use; a dead owner frees it
    fcntl.flock(owner, fcntl.LOCK_EX)
    tree = tmp / "project"
    try:
        _git(repo_dir, "worktree", "add", "--detach", "--force", str(tree), commit)
        if patch:
            proc = run_git(["-C", str(tree), "apply", "--whitespace=nowarn", "-"],
                           input=patch.encode("utf-8", "surrogateescape"))
            if proc.returncode != 0:
                raise BadInputError(f"the run's uncommitted changes do not apply at {commit[:12]}: "
                                    f"{git_reason(proc.stderr)}")
        if sub and not (tree / sub).is_dir():
            raise BadInputError(f"no folder {sub!r} at {commit[:12]}")
        with GitRepo(tree) as project_repo:
            yield tree / sub, project_repo, recorded
    finally:
        _git(repo_dir, "worktree", "remove", "--force", str(tree), check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        _git(repo_dir, "worktree", "prune", check=False)
        owner.close()


WORKTREE_PREFIX = "gitml-run-"
OWNER_LOCK = "owner.lock"


def remove_stale_worktrees(repo_dir: Path | str) -> list[str]:
    """Remove the temporary worktrees of ``gitml run`` processes that died (killed, a lost worker).

    A worktree in use holds a lock on ``owner.lock`` beside it; one whose lock can be taken has no
    owner left. Worktrees that are not gitml's are never touched.

    Returns:
        The paths removed.
    """
    removed = []
    for line in _git(repo_dir, "worktree", "list", "--porcelain", check=False).splitlines():
        if not line.startswith("worktree "):
            continue
        tree = Path(line[len("worktree "):])
        lock = tree.parent / OWNER_LOCK
        if not tree.parent.name.startswith(WORKTREE_PREFIX) or not lock.is_file():
            continue
        with open(lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live gitml run's
            _git(repo_dir, "worktree", "remove", "--force", str(tree), check=False)
            shutil.rmtree(tree.parent, ignore_errors=True)
            removed.append(str(tree))
    if removed:
        _git(repo_dir, "worktree", "prune", check=False)
    return removed


def _bare(path: Path) -> bool:
    proc = run_git(["-C", str(path), "rev-parse", "--is-bare-repository"])
    return proc.returncode == 0 and proc.stdout.strip() == b"true"


def _same_repo(here: GitRepo, path: Path) -> bool:
    try:
        with GitRepo(path) as other:
            return Path(other.common_dir).resolve() == Path(here.common_dir).resolve()
    except Exception:  # noqa: BLE001 - not a repository: not ours
        return False


def _git(cwd: Path | str, *args: str, check: bool = True) -> str:
    proc = run_git(["-C", str(cwd), *args])
    if check and proc.returncode != 0:
        raise GitmlError(f"git {args[0]} failed: {git_reason(proc.stderr)}")
    return (proc.stdout or b"").decode("utf-8", "replace").strip()


def git_reason(stderr: bytes | None) -> str:
    """Why git failed, from its error output, in one line.

    The ``fatal:``/``error:`` lines and the line just before the first of them (an ssh or proxy
    message), without the advice git adds after them; the last line when there are none.
    Credentials masked, at most 500 characters.
    """
    lines = [line.strip() for line in (stderr or b"").decode("utf-8", "replace").splitlines() if line.strip()]
    marks = [i for i, line in enumerate(lines) if line.startswith(("fatal:", "error:"))]
    if not marks:
        return mask_text(lines[-1])[:500] if lines else "no output"
    before = marks[0] - 1
    keep = ([before] if before >= 0 and not lines[before].startswith(("hint:", "warning:")) else []) + marks
    return mask_text("; ".join(lines[i] for i in keep))[:500]


def _cached_clone(here: GitRepo, uri: str, version: str | None = None) -> str:
    """A bare clone of ``uri`` under ``<common>/gitml/projects``, fetched now (once per run).

    When the fetch fails but ``version`` is a commit the clone already holds (``gitml
    reproduce`` offline, the other repository moved), the clone is used as it is.
    """
    cache = here.gitml_dir / PROJECTS_DIR / hashlib.sha256(uri.encode()).hexdigest()[:24]
    if not (cache / "HEAD").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="clone-", dir=cache.parent))
        proc = run_git(["clone", "--quiet", "--bare", "--", uri, str(tmp / "repo.git")])
        if proc.returncode != 0:  # a URI that cannot be cloned: bad input, nothing is started
            shutil.rmtree(tmp, ignore_errors=True)
            raise BadInputError(f"cannot clone {mask_text(uri)}: {git_reason(proc.stderr)}",
                                hint="give this repository (.), a path to a git repository, or a URL git can clone")
        try:
            os.rename(tmp / "repo.git", cache)
        except OSError:  # another gitml run cloned it meanwhile
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        proc = run_git(["-C", str(cache), "fetch", "--quiet", "--prune", "--tags", "origin",
                        "+refs/heads/*:refs/heads/*"])
        if proc.returncode != 0:
            held = version is not None and re.fullmatch(r"[0-9a-f]{40}", version) and run_git(
                ["-C", str(cache), "cat-file", "-e", f"{version}^{{commit}}"]).returncode == 0
            if not held:
                raise RemoteError(f"cannot fetch {mask_text(uri)}: {git_reason(proc.stderr)}")
    return str(cache)


def _resolve(repo_dir: Path, rev: str) -> str:
    if rev.startswith("-"):
        raise BadInputError(f"bad --version {rev!r}")
    proc = run_git(["-C", str(repo_dir), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"])
    if proc.returncode != 0:
        raise BadInputError(f"no revision {rev!r} in the project", hint="give a branch, a tag or a commit")
    return proc.stdout.decode().strip()


def run_project(uri: str | None = None, entry: str = "main", parameters: dict[str, str] | None = None,
                version: str | None = None, env_manager: str | None = None, name: str | None = None,
                experiment: str | None = None, repo: WorkspaceLike = None, tags: dict[str, str] | None = None,
                stream: bool = True, log=None, patch: str | None = None,
                stop: threading.Event | None = None) -> ProjectRun:
    """Run an entry point of a project as a gitml run (MLflow's ``mlflow run``).

    Args:
        uri: the project: None or ``.`` for this repository, a path to another repository, or
            a URL git can clone.
        entry: the entry point (default ``main``), or a ``.py``/``.sh`` file of the project.
        parameters: ``{name: text}``, as ``-P name=value`` gives them; checked by type.
        version: the revision to run (a branch, tag or commit; default: this work tree as it
            is, or the remote's default branch).
        env_manager: ``local``, ``virtualenv``, ``uv`` or ``conda`` (default: see
            :func:`gitml.projects.env.env_spec`).
        name: the run's name (default: generated).
        experiment: the run's experiment (default as for any run).
        repo: where the run is recorded: a Workspace, an open repository or a path inside one
            (default: the current directory).
        tags: more tags for the run (sweeps set theirs).
        stream: copy the command's output to this process's stdout and stderr as it comes.
        log: called with one line of progress for people (environment builds).
        patch: uncommitted changes to apply on ``version`` first (``gitml reproduce`` gives a
            run's recorded patch).
        stop: set by another thread to interrupt the command as Ctrl-C would (a sweep's
            trials); the run is then committed ``KILLED``.

    Returns:
        A :class:`ProjectRun`; its ``run`` is committed ``FINISHED`` (exit code 0), ``FAILED``
        or ``KILLED``.

    Raises:
        BadInputError: a bad descriptor, entry point, parameter (missing, wrong type),
            environment manager or revision: nothing is started and nothing is committed.
        RemoteError: the project could not be cloned or fetched.
        GitmlError: the environment could not be built (naming the requirement).
        KeyboardInterrupt: after the run is committed ``KILLED``.
    """
    cwd = Path.cwd()
    in_work_tree = version is None and patch is None  # not a worktree made for the run
    with open_workspace(repo) as ws, checkout(ws, uri, version, patch) as (root, project_repo, recorded):
        project = load_project(root)
        point = entry_point(project, entry)
        values = resolve_parameters(point, dict(parameters or {}), cwd, root)
        command = build_command(point, values)
        spec = envs.env_spec(project, env_manager)
        environment = envs.prepare(spec, ws.repo.gitml_dir, log)
        source, patch = capture_source(project_repo)
        warnings = untracked_warning(root, project, command) if in_work_tree else []
        if Path(project_repo.common_dir).resolve() != Path(ws.repo.common_dir).resolve():  # another repository
            source = {**source, "remote": recorded, "branch": None}
        meta, _ = new_meta(ws.repo, name, experiment, False, command=command)
        meta["source"], meta["entry_point"] = source, point.name
        meta["project"] = {"name": project.name, "uri": recorded, "version": source.get("commit"),
                           "parameters": values, "environment": envs.describe(environment)}
        handle = active.ActiveRun.create(ws.repo.gitml_dir, meta, patch)
        try:
            for key, text in values.items():
                handle.param(key, param_value(key, _typed(point, key, text)))
            for key, value in {"mlflow.source.type": "PROJECT", "mlflow.project.entryPoint": point.name,
                               "mlflow.project.env": environment.manager, **(tags or {})}.items():
                handle.tag(key, str(value))
        finally:
            handle.close()
        started = time.perf_counter()
        code, logs, interrupted = _execute(command, root, environment, ws.repo, handle.id, stream, stop)
        seconds = time.perf_counter() - started
        reopened = active.ActiveRun.reopen(ws.repo.gitml_dir, handle.id)
        try:
            for path, data in logs.items():
                reopened.artifact(path, {"kind": "file", "sha256": store.put_bytes(store.cache_dir(ws.repo.gitml_dir),
                                                                                    data), "size": len(data)})
        finally:
            reopened.close()
        status = "KILLED" if interrupted else "FINISHED" if code == 0 else "FAILED"
        finished = finish_active(ws.repo, handle.id, status, project={"exit_code": code,
                                                                       "duration": round(seconds, 3)})
        result = ProjectRun(finished.run, code, seconds, environment, command, warnings)
    if interrupted:
        stopped = KeyboardInterrupt()
        stopped.project_run = result  # committed KILLED: a sweep counts it as such
        raise stopped
    return result


def untracked_warning(root: Path, project, command: str) -> list[str]:
    """A warning when the run needs a file git does not track.

    That is the descriptor, the environment's spec, or a file the command names (``python
    train.py``). The run records the commit and the uncommitted changes of tracked files only, so
    ``gitml reproduce`` would not have such a file. Other untracked files (outputs, data) are
    not the run's code and are not named.
    """
    proc = run_git(["-C", str(root), "ls-files", "--others", "--exclude-standard", "-z", "--", "."])
    untracked = {n for n in (proc.stdout or b"").decode("utf-8", "replace").split("\0") if n} \
        if proc.returncode == 0 else set()
    if not untracked:
        return []
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    needed = {project.source, project.environment.file, *(os.path.normpath(w) for w in words)}
    names = sorted(untracked & {n for n in needed if n})
    if not names:
        return []
    return [f"{', '.join(names)}: not tracked by git, so not part of the run's record and not there for "
            "`gitml reproduce`; `git add` it"]


def _typed(point, key: str, text: str) -> Any:
    param = point.parameters.get(key)
    if param is None:
        return text
    if param.type == "float":
        return float(text)
    if param.type == "int":
        return int(text)
    return text


MAX_LOG_BYTES = 64 << 20  # of each stream kept as an artifact; the rest is streamed, then cut


def _execute(command: str, cwd: Path, environment: envs.Environment, repo: GitRepo, run_id: str,
             stream: bool, stop: threading.Event | None = None) -> tuple[int | None, dict[str, bytes], bool]:
    """Run ``command`` under ``bash -c``; return ``(exit code, {log path: bytes}, interrupted)``.

    Interrupted: Ctrl-C in this thread, or ``stop`` set (checked five times a second).
    """
    variables = environment.variables(dict(os.environ))
    variables[RUN_ID_ENV] = run_id
    variables[REPO_ENV] = str(repo.root)
    variables.pop("MLFLOW_RUN_ID", None)
    # Its own process group: a stop reaches every process of the command (`a; b`, `a | b`, `cd x &&
    # python …`), not only bash; a terminal's Ctrl-C reaches gitml, which passes it on (_stop).
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=variables, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, process_group=0)
    kept = {"logs/stdout.txt": bytearray(), "logs/stderr.txt": bytearray()}
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, sys.stdout.buffer if stream else None,
                                                  kept["logs/stdout.txt"]), daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, sys.stderr.buffer if stream else None,
                                                  kept["logs/stderr.txt"]), daemon=True)]
    for pump in pumps:
        pump.start()
    interrupted = False
    try:
        while True:
            try:
                code = proc.wait(timeout=None if stop is None else 0.2)
                break
            except subprocess.TimeoutExpired:
                if stop.is_set():
                    interrupted = True
                    code = _stop(proc)
                    break
        if code != 0 and stop is not None and stop.wait(0.5):
            interrupted = True  # a Ctrl-C reached the command before this thread heard of it
    except KeyboardInterrupt:
        interrupted = True
        code = _stop(proc)
    for pump in pumps:
        pump.join(timeout=30)
    return code, {path: bytes(data) for path, data in kept.items()}, interrupted


def _pump(source: BinaryIO, sink: BinaryIO | None, kept: bytearray) -> None:
    for chunk in iter(lambda: source.read1(65536), b""):
        if sink is not None:
            try:
                sink.write(chunk)
                sink.flush()
            except (OSError, ValueError):
                sink = None
        if len(kept) < MAX_LOG_BYTES:
            kept += chunk[:MAX_LOG_BYTES - len(kept)]


def _stop(proc: subprocess.Popen) -> int | None:
    """Interrupt the command's process group as a terminal would, then harder, each after a grace period."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            return proc.wait(timeout=KILL_GRACE)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            continue
    return proc.poll()
