"""Hermetic fixtures: real git repositories in tmp dirs, no user config, fixed identity."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

GITML = [sys.executable, "-m", "gitml"]

# A shell that starts its background jobs without job control (`cmd &` in a script, nohup)
# starts them with SIGINT ignored, and a process inherits that: its Python would never raise
# KeyboardInterrupt, and the Ctrl-C tests would wait for nothing. The suite's own processes get
# Python's Ctrl-C back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
RUNS_REF = "refs/gitml/runs"


def _script_dirs() -> list[Path]:
    """Where pip puts the console scripts of the interpreter running the tests.

    Read once, at import: the ``hermetic_env`` fixture moves ``HOME``, which the user scheme's
    folder depends on.
    """
    import site
    import sysconfig

    dirs = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    if site.ENABLE_USER_SITE:  # pip install --user
        dirs.append(Path(sysconfig.get_path("scripts", sysconfig.get_preferred_scheme("user"))))
    return list(dict.fromkeys(dirs))


SCRIPT_DIRS = _script_dirs()


def console_script(name: str = "gitml", dirs: list[Path] | None = None) -> Path | None:
    """The executable console script ``name`` installed for this interpreter, or None."""
    for directory in SCRIPT_DIRS if dirs is None else dirs:
        path = directory / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


_SCRIPT_RUNS: dict[Path, str] = {}


def _package_run_by(script: Path) -> str:
    """The ``gitml/__init__.py`` that the interpreter named by ``script``'s ``#!`` line imports."""
    if script not in _SCRIPT_RUNS:
        import re

        head = script.read_bytes()[:2048].decode(errors="replace")
        # pip writes `#!/path/python`, or for a long or spaced path `#!/bin/sh` then an exec line.
        launcher = re.search(r"^'''exec' \"?([^\"\s]+)", head, re.M)
        shebang = re.match(r"#!(\S+)", head)
        interpreter = launcher.group(1) if launcher else shebang.group(1) if shebang else sys.executable
        proc = subprocess.run([interpreter, "-c", "import gitml; print(gitml.__file__)"],
                              capture_output=True, text=True)
        _SCRIPT_RUNS[script] = proc.stdout.strip() if proc.returncode == 0 else f"nothing ({proc.stderr.strip()})"
    return _SCRIPT_RUNS[script]


@pytest.fixture
def gitml_on_path(monkeypatch) -> Path:
    """Put this interpreter's ``gitml`` console script first on PATH, for what runs it from there.

    A git hook runs ``gitml`` from PATH, so the hook tests need the console script that runs the
    code under test (not another install that happens to be on PATH). When there is none, the
    test fails saying so, instead of as a push that failed for no visible reason.
    """
    script = console_script()
    problem = script_problem(script)
    if problem:
        pytest.fail(problem, pytrace=False)
    monkeypatch.setenv("PATH", str(script.parent) + os.pathsep + os.environ.get("PATH", ""))
    return script


def script_problem(script: Path | None) -> str | None:
    """Why ``script`` cannot stand for the code under test as ``gitml`` on PATH; None when it can."""
    import gitml as package

    install = f"install it with this interpreter: {sys.executable} -m pip install -e '.[dev]'"
    if script is None:
        return (f"this test runs `gitml` from PATH (as a git hook does), but {sys.executable} has no "
                f"`gitml` console script in {', '.join(map(str, SCRIPT_DIRS))}; {install}")
    runs = _package_run_by(script)
    if os.path.realpath(runs) != os.path.realpath(package.__file__):
        return f"the `gitml` console script {script} runs {runs}, not the code under test ({package.__file__}); {install}"
    return None


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory, monkeypatch):
    """Scrub GIT_* and HOME so neither the user's config nor the CI's leaks into a test."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    for key in list(os.environ):
        if key.startswith("GIT_") or key.startswith("GITML_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield home


def git(cwd: Path | str, *args: str, check: bool = True) -> str:
    """Run the real git CLI and return its stdout."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


@dataclass
class Result:
    code: int
    out: str
    err: str


def gitml(cwd: Path | str, *args: str, input: str | None = None) -> Result:
    """Run the real ``gitml`` CLI in a separate process."""
    proc = subprocess.run([*GITML, *args], cwd=cwd, capture_output=True, text=True, input=input)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository with one commit and a work tree."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "train.py").write_text("print('training')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def empty_repo(tmp_path) -> Path:
    """A git repository with no commit yet."""
    path = tmp_path / "fresh"
    path.mkdir()
    git(path, "init", "-q")
    return path


def runs_tip(path: Path) -> str:
    return git(path, "rev-parse", "-q", "--verify", "refs/gitml/runs", check=False).strip()


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3 API (moto's server) on a free loopback port, for the whole test session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch):
    """Fake credentials for moto; they reach CLI subprocesses through the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(autouse=True)
def clear_memory_filesystem():
    """fsspec's memory:// store is process-global: empty it around every test."""
    yield
    from fsspec.implementations.memory import MemoryFileSystem

    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs.clear()
    MemoryFileSystem.pseudo_dirs.append("")


@pytest.fixture(params=["local", "memory", "s3"])
def remote_url(request, tmp_path, moto_endpoint, aws_env):
    """``(url, options)`` of an empty artifact remote on each backend of the contract suite."""
    import uuid

    if request.param == "local":
        return str(tmp_path / "remote-store"), {}
    if request.param == "memory":
        return f"memory://gitml-{uuid.uuid4().hex[:8]}", {}
    import s3fs

    bucket = f"gitml-{uuid.uuid4().hex[:8]}"
    fs = s3fs.S3FileSystem(endpoint_url=moto_endpoint, key="testing", secret="testing")
    fs.mkdir(bucket)
    s3fs.S3FileSystem.clear_instance_cache()
    return f"s3://{bucket}/team", {"endpoint_url": moto_endpoint}


@pytest.fixture
def clones(tmp_path):
    """A bare remote with one commit on main, the repository that pushed it, and a clone of it."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    a = tmp_path / "a"
    a.mkdir()
    git(a, "init", "-q")
    (a / "train.py").write_text("print(1)\n")
    git(a, "add", ".")
    git(a, "commit", "-qm", "init")
    git(a, "remote", "add", "origin", str(origin))
    git(a, "push", "-q", "-u", "origin", "main")
    git(tmp_path, "clone", "-q", str(origin), str(tmp_path / "b"))
    return origin, a, tmp_path / "b"


def craft(repo: Path, entries: dict[str, bytes | None], message: str = "crafted") -> str:
    """Commit ``{path: bytes or None (remove)}`` onto the runs ref with plumbing only.

    As a stranger with push rights would: hash-object, update-index, write-tree, commit-tree.
    """
    index = repo / ".git" / "crafted-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}

    def run(*args: str, data: bytes | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, env=env, input=data, capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout.decode().strip()

    tip = run("rev-parse", "-q", "--verify", RUNS_REF) if git(repo, "rev-parse", "-q", "--verify", RUNS_REF,
                                                               check=False).strip() else ""
    index.unlink(missing_ok=True)
    if tip:
        run("read-tree", tip)
    for path, data in entries.items():
        if data is None:
            run("update-index", "--force-remove", path)
            continue
        listed = run("ls-files", "--", path + "/")
        if listed:  # a file where a folder was: drop what was under it
            run("update-index", "--force-remove", *listed.splitlines())
        sha = run("hash-object", "-w", "--stdin", data=data)
        run("update-index", "--add", "--cacheinfo", f"100644,{sha},{path}")
    tree = run("write-tree")
    commit = run("commit-tree", tree, *(["-p", tip] if tip else []), "-m", message)
    run("update-ref", RUNS_REF, commit, *([tip] if tip else []))
    index.unlink(missing_ok=True)
    return commit


def mlflow_python() -> str:
    """MLflow's interpreter for the interop tests (``GITML_MLFLOW``, set by `.ci/run`).

    Without it the calling test module is skipped, except in CI, where its absence is an error:
    the interop tests must not pass by being skipped.
    """
    found = os.environ.get("GITML_MLFLOW")
    if not found:
        if os.environ.get("CI"):
            raise RuntimeError("GITML_MLFLOW is not set in CI: .ci/run must install MLflow for the interop tests")
        pytest.skip("MLflow not available (set GITML_MLFLOW to the Python of a virtualenv with mlflow)",
                    allow_module_level=True)
    return found


def mlflow_env() -> dict:
    """The environment MLflow's processes run in: no MLflow, git or PYTHONPATH settings of ours,
    telemetry off, file stores allowed (MLflow 3 asks for that)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GIT_", "PYTHONPATH"))}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ALLOW_FILE_STORE": "true"}


def code_repository(base: Path) -> tuple[Path, str]:
    """A git repository ``base/origin`` with one commit of a ``train.py``, and that commit: the
    code an MLflow store's runs name as their source in the interop tests."""
    origin = base / "origin"
    origin.mkdir()
    identity = ["-c", "user.name=Test User", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q", str(origin)], check=True)
    (origin / "train.py").write_text("print('train')\n")
    subprocess.run(["git", *identity, "-C", str(origin), "add", "."], check=True)
    subprocess.run(["git", *identity, "-C", str(origin), "commit", "-qm", "code"], check=True)
    return origin, git(origin, "rev-parse", "HEAD").strip()


@contextlib.contextmanager
def mlflow_server(python: str, work: Path, *options: str):
    """A real ``mlflow server`` on a free loopback port, run by MLflow's interpreter from ``work``.

    ``options`` are the server's (``--backend-store-uri …``). Yields its URL once ``/health``
    answers; the server is stopped on the way out. Its log is ``work/server.log``.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = work / "server.log"
    proc = subprocess.Popen([python, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", *options], env=mlflow_env(), cwd=work, stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("mlflow server did not start: " + log.read_text()[-2000:]) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
