"""Environments for projects: built once per hash of their spec, cached under the git common dir.

An environment is ``local`` (the interpreter running gitml, as MLflow's ``--env-manager local``)
or a virtualenv built from the project's spec: a ``python_env.yaml`` (MLflow's format: ``python``,
``build_dependencies``, ``dependencies``), a ``requirements.txt`` or a ``pyproject.toml``'s
``[project] dependencies``. It lives in ``<git common dir>/gitml/envs/<hash>``, where ``hash`` is
SHA-256 of the canonical spec (the manager, the Python version, every requirement line and
gitml's own version), so the same spec is built once and found again in one ``stat``. ``uv``
builds it when it is on PATH (or ``--env-manager uv`` asks for it), else ``python -m venv`` and
pip; a ``conda.yaml`` is built by ``conda env create`` (conda on PATH). Builds take an exclusive lock per hash (``flock``, released by the kernel if the builder
dies), so several ``gitml run`` starting at once build it once; an environment is used only
once its ``.gitml-ready`` marker is written, and a half-built one is removed and built again.

gitml itself is made importable in every environment (a ``.pth`` file naming a folder that
holds only the ``gitml`` package, plus gitml's own runtime requirements installed there), so a
script run by ``gitml run`` can call ``gitml.start_run()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, GitmlError
from gitml.projects.spec import Project

ENVS_DIR = "envs"
READY = ".gitml-ready"
MANAGERS = ("local", "virtualenv", "uv", "conda")
MAX_REQUIREMENT_LINES = 2000


@dataclass(frozen=True)
class EnvSpec:
    """What an environment holds: the manager, a Python version (None: this one), requirements."""

    manager: str
    python: str | None = None
    requirements: tuple[str, ...] = ()
    source: str | None = None  # the spec file, relative to the project
    conda_file: str | None = field(default=None, compare=False)  # where a conda.yaml is read from
    root: str | None = field(default=None, compare=False)  # the project's folder: relative requirements start there

    @property
    def hash(self) -> str:
        """SHA-256 (hex, first 32 digits) of the canonical spec and gitml's version; ``local`` for local."""
        if self.manager == "local":
            return "local"
        from gitml import __version__

        canonical = json.dumps({"manager": self.manager, "python": self.python or _this_python(),
                                "requirements": list(self.requirements), "gitml": __version__},
                               sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Environment:
    """A ready environment: its hash, its ``bin`` folder (None for local) and its ``python``."""

    hash: str
    manager: str
    python: str
    bin_dir: str | None = None
    built: bool = False  # built by this call (False: found ready)
    seconds: float = 0.0

    def variables(self, base: dict[str, str]) -> dict[str, str]:
        """The environment variables a command runs with: ``PATH`` led by the env's ``bin``."""
        env = dict(base)
        first = self.bin_dir or os.path.dirname(self.python)
        env["PATH"] = first + os.pathsep + env.get("PATH", "")
        if self.bin_dir:
            env["VIRTUAL_ENV"] = str(Path(self.bin_dir).parent)
            env.pop("PYTHONHOME", None)
        return env


def _this_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _requirement_lines(path: Path, seen: set[Path] | None = None) -> list[str]:
    """A requirements file's lines (comments and blanks dropped, ``-r`` includes followed)."""
    seen = set() if seen is None else seen
    if path in seen:
        return []
    seen.add(path)
    out: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"requirements file {path.name!r} does not exist") from None
    except UnicodeDecodeError:
        raise BadInputError(f"{path.name}: not UTF-8 text") from None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            include = (path.parent / line.split(None, 1)[1]).resolve()
            if not include.is_file():
                raise BadInputError(f"{path.name}: included file {line.split(None, 1)[1]!r} does not exist")
            out += _requirement_lines(include, seen)
        else:
            out.append(line)
        if len(out) > MAX_REQUIREMENT_LINES:
            raise BadInputError(f"{path.name}: more than {MAX_REQUIREMENT_LINES} requirements")
    return out


def env_spec(project: Project, manager: str | None = None) -> EnvSpec:
    """The spec of ``project``'s environment under ``manager``.

    Args:
        project: the parsed project.
        manager: ``local``, ``virtualenv``, ``uv`` or ``conda`` (default: ``local`` when the
            project names no environment, else ``uv`` when uv is on PATH, else ``virtualenv``).

    Returns:
        The :class:`EnvSpec`.

    Raises:
        BadInputError: an unknown manager, ``conda`` (or a ``conda.yaml``) without conda on
            PATH, or a spec file that cannot be read (named).
    """
    env = project.environment
    if manager is not None and manager not in MANAGERS:
        raise BadInputError(f"unknown environment manager {manager!r}", hint="use local, virtualenv, uv or conda")
    if manager is None:  # a conda file asks for conda, as MLflow's conda_env does
        manager = ("local" if env.kind == "local" else "conda" if env.kind == "conda"
                   else "uv" if shutil.which("uv") else "virtualenv")
    if env.kind == "conda" and manager in ("virtualenv", "uv"):
        raise BadInputError(f"the project's environment is a conda file ({env.file}): --env-manager {manager} "
                            "cannot build it", hint="use --env-manager conda or local")
    if manager == "conda" or env.kind == "conda" and manager != "local":
        if not shutil.which("conda"):
            raise BadInputError("conda is not installed (no conda on PATH)",
                                hint="install conda, or run with --env-manager local or virtualenv")
        if env.kind != "conda":
            raise BadInputError("--env-manager conda builds from a conda.yaml; the project names "
                                f"{env.file or 'no environment file'}", hint="use virtualenv or uv")
        text = (project.root / env.file).read_text(encoding="utf-8")
        return EnvSpec("conda", None, (f"conda.yaml sha256 {hashlib.sha256(text.encode()).hexdigest()}",), env.file,
                       conda_file=str(project.root / env.file))
    if manager == "local":
        return EnvSpec("local", source=env.file)
    if manager == "uv" and not shutil.which("uv"):
        raise BadInputError("--env-manager uv: uv is not installed (pip install uv)")
    python: str | None = None
    requirements: list[str] = []
    if env.file:
        path = project.root / env.file
        where = env.file
        if env.kind == "requirements":
            requirements = _requirement_lines(path)
        elif env.kind == "pyproject":
            requirements = _pyproject_requirements(path)
        elif env.kind == "python_env":
            python, requirements = _python_env(path, where)
    return EnvSpec(manager, python, tuple(requirements), env.file, root=str(project.root))


def _pyproject_requirements(path: Path) -> list[str]:
    import tomllib

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path.name}: not TOML: {exc}") from None
    deps = (doc.get("project") or {}).get("dependencies") or []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise BadInputError(f"{path.name}: [project] dependencies must be a list of requirement strings")
    return list(deps)


def _python_env(path: Path, where: str) -> tuple[str | None, list[str]]:
    """MLflow's ``python_env.yaml``: ``python``, ``build_dependencies``, ``dependencies``."""
    from gitml.core import yamlfmt

    try:
        doc = yamlfmt.load_untrusted(path.read_text(encoding="utf-8"))
    except (yamlfmt.YamlProblem, UnicodeDecodeError) as exc:
        raise BadInputError(f"{where}: invalid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise BadInputError(f"{where}: expected a mapping with python, build_dependencies, dependencies")
    unknown = set(doc) - {"python", "build_dependencies", "dependencies"}
    if unknown:
        raise BadInputError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    python = doc.get("python")
    if isinstance(python, float):  # `python: 3.10` unquoted is the number 3.1
        raise BadInputError(f"{where}: python {python!r} is a number, not a version: quote it (python: \"3.10\")")
    if python is not None:
        python = str(python)
        if not re.fullmatch(r"3(\.\d+){1,2}", python):
            raise BadInputError(f"{where}: python {python!r} is not a version such as 3.11")
    out: list[str] = []
    for key in ("build_dependencies", "dependencies"):
        items = doc.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise BadInputError(f"{where}: {key} must be a list of requirement strings")
        for item in items:
            if item.startswith(("-r ", "--requirement ")):
                out += _requirement_lines((path.parent / item.split(None, 1)[1]).resolve())
            else:
                out.append(item)
    return python, out


def envs_dir(gitml_dir: Path) -> Path:
    """``<git common dir>/gitml/envs``: where environments are built."""
    return gitml_dir / ENVS_DIR


def prepare(spec: EnvSpec, gitml_dir: Path, log=None) -> Environment:
    """The environment of ``spec``: found ready, or built now (once, under a lock).

    Args:
        spec: from :func:`env_spec`.
        gitml_dir: ``<git common dir>/gitml``.
        log: called with one line of progress for people (``building environment …``).

    Returns:
        The ready :class:`Environment`.

    Raises:
        BadInputError: the Python version the spec asks for is not installed.
        GitmlError: the build failed; the message names the requirement that could not be
            installed when the installer says which (nothing half-built is left).
    """
    started = time.perf_counter()
    if spec.manager == "local":
        return Environment("local", "local", sys.executable)
    target = envs_dir(gitml_dir) / spec.hash
    python = target / "bin" / "python"
    if (target / READY).exists():
        return Environment(spec.hash, spec.manager, str(python), str(target / "bin"), False,
                           time.perf_counter() - started)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target.parent / f"{spec.hash}.lock", log):
        if not (target / READY).exists():
            if target.exists():
                shutil.rmtree(target)  # a build that died half-way
            if log:
                log(f"building environment {spec.hash[:12]} ({spec.manager}, {len(spec.requirements)} requirements)")
            try:
                _build(spec, target)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            (target / READY).write_text(json.dumps({"spec": spec.__dict__ | {"requirements": list(spec.requirements)},
                                                    "built": time.time()}, default=str))
            return Environment(spec.hash, spec.manager, str(python), str(target / "bin"), True,
                               time.perf_counter() - started)
    return Environment(spec.hash, spec.manager, str(python), str(target / "bin"), False,
                       time.perf_counter() - started)


@contextlib.contextmanager
def _lock(path: Path, log=None):
    import fcntl

    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log("waiting for another gitml run building the same environment")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _interpreter(version: str | None) -> str:
    """An installed interpreter of ``version`` (this one when it matches or none is asked for)."""
    if version is None or _this_python() == version or version.startswith(_this_python() + "."):
        return sys.executable
    major_minor = ".".join(version.split(".")[:2])
    found = shutil.which(f"python{major_minor}")
    if found is None:
        raise BadInputError(f"the environment asks for Python {version}, which is not installed here "
                            f"(no python{major_minor} on PATH)", hint="install it, or run with --env-manager local")
    return found


def _gitml_requirements() -> list[str]:
    """The runtime requirements of gitml (no extras), as its installed metadata names them."""
    from importlib import metadata

    try:
        required = metadata.requires("gitml") or []
    except metadata.PackageNotFoundError:
        required = []
    return [r.split(";")[0].strip() for r in required if "extra ==" not in r]


def _build(spec: EnvSpec, target: Path) -> None:
    if spec.manager == "conda":
        _installer(["conda", "env", "create", "--quiet", "--yes", "--file", str(spec.conda_file),
                    "--prefix", str(target)], "creating the conda environment")
        python = target / "bin" / "python"
        _installer([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *_gitml_requirements()], "installing gitml's requirements")
        _link_gitml(target)
        return
    python = _interpreter(spec.python)
    requirements = list(spec.requirements)
    if not any(re.match(r"gitml\b", r) for r in requirements):
        requirements += _gitml_requirements()
    if spec.manager == "uv":
        _installer(["uv", "venv", "--quiet", "--python", python, str(target)], "creating the virtualenv")
        install = ["uv", "pip", "install", "--quiet", "--python", str(target / "bin" / "python")]
    else:
        _installer([python, "-m", "venv", str(target)], "creating the virtualenv")
        install = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if requirements:
        _installer([*install, *_argv(requirements)], "installing requirements", requirements, cwd=spec.root)
    _link_gitml(target)


def _argv(requirements: list[str]) -> list[str]:
    """Requirement lines as installer arguments.

    An option line (``-e ./pkg``, ``--extra-index-url URL``, ``-c constraints.txt``) is split as
    a shell would; a requirement stays one argument (``pkg>=1; python_version < "3.12"``).
    """
    out: list[str] = []
    for line in requirements:
        out += shlex.split(line) if line.startswith("-") else [line]
    return out


def _link_gitml(target: Path) -> None:
    """Make this gitml importable in the environment: a ``.pth`` naming a folder holding only it."""
    import gitml

    package = Path(gitml.__file__).resolve().parent
    shim = target / "gitml-shim"
    shim.mkdir(exist_ok=True)
    link = shim / "gitml"
    if not link.exists():
        link.symlink_to(package, target_is_directory=True)
    out = subprocess.run([str(target / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True)
    Path(out.stdout.strip(), "gitml-shim.pth").write_text(str(shim) + "\n")


_FAILED_REQUIREMENT = [
    re.compile(r"No matching distribution found for ([^\s]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([^\s]+)"),
    re.compile(r"Because ([^\s]+) was not found in the package registry"),
    re.compile(r"Because there is no version of ([^\s]+)"),
    re.compile(r"Because only .* is available and ([^\s]+) .*, we can conclude"),
    re.compile(r"Failed to (?:download|build|fetch) `?([^\s`]+)`?"),
    re.compile(r"Invalid requirement: '?([^'\n]+)'?"),
]


def _installer(argv: list[str], what: str, requirements: list[str] | None = None, cwd: str | None = None) -> None:
    """Run an installer step; a failure names the requirement the installer could not install.

    It runs in ``cwd`` (the project's folder), so a ``./pkg`` requirement is the project's.
    """
    try:
        # its own process group: an interrupted build stops pip's or uv's children too, before
        # the half-built folder is removed (prepare)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                                process_group=0)
    except FileNotFoundError:
        raise GitmlError(f"building the environment: {argv[0]} is not installed") from None
    try:
        stdout, stderr = proc.communicate(timeout=3600)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        raise
    if proc.returncode == 0:
        return
    output = (stderr or "") + (stdout or "")
    failed = next((m.group(1).strip("'\"`,.") for pattern in _FAILED_REQUIREMENT if (m := pattern.search(output))),
                  None)
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
    if failed:
        raise GitmlError(f"building the environment failed: requirement {failed!r} could not be installed",
                         hint=last[:300])
    raise GitmlError(f"building the environment failed while {what}", hint=last[:300])


def describe(environment: Environment) -> dict[str, Any]:
    """What a run records of its environment: ``{manager, hash}``."""
    return {"manager": environment.manager, "hash": environment.hash}
