"""Sweeps on a Dask distributed cluster: trials run on the workers, the driver commits the runs.

``gitml run ... --backend dask --scheduler tcp://HOST:PORT`` (the extra ``gitml[dask]``). The
cluster is whatever the scheduler fronts: a local cluster, dask-jobqueue on Slurm or PBS,
Kubernetes; gitml only submits tasks. Each task gets the project at the exact commit as a git
bundle (never the user's tree; the driver's uncommitted changes travel as a patch), and on the
worker:

1. fetches the bundle into a clone kept for the project under the worker's temporary folder
   (environments built there stay for the next trials), and checks the commit out in a
   temporary worktree with the patch applied;
2. runs the trial with :func:`gitml.projects.run.run_project`, which records the run in that
   clone;
3. pushes the run's artifacts to the team's artifact remote when the project configures one
   (``gitml.yaml``'s ``remotes``), and returns the run's record (its files) and its artifacts'
   bytes (up to :data:`MAX_RETURNED_BYTES`).

The driver validates each record as it would a pulled run, stores the artifacts' bytes in its
content store, and commits the run to its runs ref (compare-and-swap, as every writer). A task
whose worker dies is retried once by Dask; a trial that still cannot run is committed ``FAILED``
by the driver, with the error as the run's description, so no trial goes unrecorded.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gitml.core import runsref, store
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import Run, parse_run
from gitml.core.gitcli import run_git
from gitml.core.gitrepo import GitRepo
from gitml.core.workspace import Workspace

MAX_RETURNED_BYTES = 256 << 20  # of a trial's artifacts sent back to the driver
RETRIES = 1
CONNECT_DEADLINE = 20.0  # seconds for the scheduler's handshake


def client_for(scheduler: str):
    """A ``distributed.Client`` connected to ``scheduler`` (``tcp://host:port``).

    Raises:
        BadInputError: ``distributed`` is not installed (``pip install gitml[dask]``), or the
            address is not one.
        RemoteError: the scheduler cannot be reached.
    """
    try:
        from distributed import Client
    except ImportError:
        raise BadInputError("--backend dask needs Dask distributed: pip install 'gitml[dask]'") from None
    if not isinstance(scheduler, str) or "://" not in scheduler:
        raise BadInputError(f"--scheduler {scheduler!r}: expected an address such as tcp://127.0.0.1:8786")
    # In a thread with a deadline: a service that is not a Dask scheduler may answer the
    # handshake with garbage (distributed then fails in any way, MemoryError included) or never.
    import threading

    from gitml.core.errors import RemoteError

    found: dict = {}

    def connect() -> None:
        try:
            found["client"] = Client(scheduler, timeout="10s")
        except BaseException as exc:  # noqa: BLE001 - reported below as the scheduler's failure
            found["error"] = exc

    thread = threading.Thread(target=connect, name="gitml-dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_DEADLINE)
    if "client" in found:
        return found["client"]
    why = found.get("error")
    reason = (f"{type(why).__name__}: {why}"[:300] if why is not None
              else f"no answer like a Dask scheduler's within {CONNECT_DEADLINE:.0f} s")
    raise RemoteError(f"cannot reach the Dask scheduler at {scheduler}: {reason}",
                      hint="give the address `dask scheduler` printed")


def bundle(ws: Workspace, commit: str) -> bytes:
    """A git bundle holding ``commit`` and its history (what a worker needs to check it out)."""
    ref = f"refs/gitml/bundle/{commit}"
    tmp = Path(tempfile.mkdtemp(prefix="gitml-bundle-"))
    try:
        for args in (["update-ref", ref, commit], ["bundle", "create", "--quiet", str(tmp / "b"), ref]):
            proc = run_git(["-C", str(ws.repo.root), *args])
            if proc.returncode != 0:
                raise GitmlError(f"cannot bundle {commit[:12]}: {proc.stderr.decode(errors='replace').strip()}")
        return (tmp / "b").read_bytes()
    finally:
        run_git(["-C", str(ws.repo.root), "update-ref", "-d", ref])
        shutil.rmtree(tmp, ignore_errors=True)


def run_trial(spec: dict[str, Any], bundle_bytes: bytes) -> dict[str, Any]:
    """The task a worker runs: one trial, from the bundle to the run's record.

    Args:
        spec: ``commit``, ``patch`` (text or None), ``entry``, ``values``, ``env_manager``,
            ``name``, ``experiment``, ``tags``, ``identity`` (``(name, email)`` for the
            worker's commits), ``project_id`` (names the clone kept).
        bundle_bytes: from :func:`bundle` (scattered to the workers once per sweep).

    Returns:
        ``{"files": {name: bytes}, "objects": {sha256: bytes}, "run_id", "pushed"}``.
    """
    from gitml.projects.run import run_project

    home = Path(tempfile.gettempdir()) / "gitml-dask" / spec["project_id"]
    repo_dir = home / "repo"
    home.mkdir(parents=True, exist_ok=True)
    with _flock(home / "clone.lock"):
        if not (repo_dir / ".git").exists():
            _git(home, "init", "--quiet", str(repo_dir))
            name, email = spec["identity"]
            _git(repo_dir, "config", "user.name", name)
            _git(repo_dir, "config", "user.email", email)
        bundle_file = home / f"{spec['commit']}.bundle"
        bundle_file.write_bytes(bundle_bytes)
        _git(repo_dir, "fetch", "--quiet", str(bundle_file), f"+refs/gitml/bundle/{spec['commit']}:refs/gitml/trial")
        bundle_file.unlink()
        # the clone's own tree at the commit: its gitml.yaml names the artifact remote to push to
        _git(repo_dir, "checkout", "--quiet", "--detach", "--force", spec["commit"])
    result = run_project(str(repo_dir), spec["entry"], spec["values"], spec["commit"], spec["env_manager"],
                         name=spec["name"], experiment=spec["experiment"], repo=repo_dir, tags=spec["tags"],
                         stream=False, patch=spec["patch"])
    run = result.run
    with GitRepo(repo_dir) as git:
        files = runsref.read_run_files(git, runsref.run_tree(git, git.ref(runsref.RUNS_REF), run.id), run_id=run.id)
        cache = store.cache_dir(git.gitml_dir)
        objects: dict[str, bytes] = {}
        total = 0
        for entry in run.artifacts.values():
            path = store.object_path(cache, entry["sha256"])
            if entry.get("kind") == "file" and path.is_file() and total + entry.get("size", 0) <= MAX_RETURNED_BYTES:
                objects[entry["sha256"]] = path.read_bytes()
                total += len(objects[entry["sha256"]])
    pushed = False
    try:
        from gitml.artifacts.transfer import push

        push([run.id], repo=repo_dir)
        pushed = True
    except BadInputError:
        pass  # no artifact remote configured: the bytes go back to the driver only
    return {"run_id": run.id, "files": files, "objects": objects, "pushed": pushed}


class _flock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        import fcntl

        self.handle = open(self.path, "a+")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def _git(cwd: Path, *args: str) -> None:
    proc = run_git(["-C", str(cwd), *args])
    if proc.returncode != 0:
        raise GitmlError(f"git {args[0]} failed on the worker: {proc.stderr.decode(errors='replace').strip()}")


def project_id(ws: Workspace) -> str:
    """A name for the project's clone on the workers: its first commit's and path's hash."""
    return hashlib.sha256(str(Path(ws.repo.common_dir).resolve()).encode()).hexdigest()[:16]


def record(ws: Workspace, returned: dict[str, Any]) -> Run:
    """Commit a run a worker returned to the driver's runs ref, after checking it as a pulled run.

    Raises:
        GitmlError: the record fails validation (it is not committed).
    """
    run_id = returned["run_id"]
    files = returned["files"]
    run = parse_run(run_id, files)
    cache = store.cache_dir(ws.repo.gitml_dir)
    for sha, data in returned["objects"].items():
        if hashlib.sha256(data).hexdigest() != sha:
            raise GitmlError(f"run {run_id}: an artifact's bytes do not match their hash")
        store.put_bytes(cache, data)
    tree = runsref.write_run_tree(ws.repo, files)
    runsref.commit_runs(ws.repo, {run_id: tree}, f"run {run_id}: {run.name}")  # the index catches up
    return run

