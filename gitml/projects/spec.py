"""The project descriptor: ``gitml.yaml``'s ``project:`` section, or an MLflow ``MLproject`` file.

A project names its environment and its entry points; an entry point has typed parameters
and a command template (MLflow's MLproject format: https://mlflow.org/docs/latest/projects.html,
"Specifying Projects"). Parameters are checked by type before anything starts (MLflow checks
only ``path`` and ``uri``): ``-P lr=abc`` for a ``float`` is refused. Values enter the command
shell-quoted; parameters the entry point does not declare are appended as ``--key value``, as
MLflow does. An entry point that is not declared but names a ``.py`` or ``.sh`` file of the
project runs that file.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.core import yamlfmt
from gitml.core.config import CONFIG_FILE, MAX_CONFIG_BYTES
from gitml.core.errors import BadInputError

MLPROJECT = "MLproject"
#: Parameter types, MLflow's names (``string`` is MLflow's spelling of ``str``).
TYPES = {"float": "float", "int": "int", "str": "str", "string": "str", "path": "path", "uri": "uri",
         # names MLproject files use for the same types (MLflow checks only path and uri)
         "double": "float", "number": "float", "integer": "int", "long": "int"}
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # runs:/…, models:/…, s3://…, dbfs:/…: not a local path
#: What ``environment:`` may name, by kind.
ENV_KINDS = ("local", "python_env", "requirements", "pyproject", "conda")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
MAX_PARAMS = 256
MAX_VALUE_CHARS = 6000  # a param value, as MLflow bounds a logged param


@dataclass(frozen=True)
class Parameter:
    """A typed parameter of an entry point: ``type`` one of float, int, str, path, uri."""

    name: str
    type: str = "str"
    default: Any = None
    required: bool = True


@dataclass(frozen=True)
class EntryPoint:
    """An entry point: its parameters and its command template (``python train.py --lr {lr}``)."""

    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)


@dataclass(frozen=True)
class Environment:
    """Where a project's software comes from: ``kind`` (:data:`ENV_KINDS`) and its spec file."""

    kind: str = "local"
    file: str | None = None  # relative to the project root


@dataclass(frozen=True)
class Project:
    """A parsed descriptor.

    Attributes:
        name: the project's name (the folder's when the descriptor gives none).
        root: the project's folder.
        environment: its :class:`Environment`.
        entry_points: ``{name: EntryPoint}``.
        source: ``"gitml.yaml"``, ``"MLproject"`` or ``None`` (no descriptor: files only).
    """

    name: str
    root: Path
    environment: Environment = Environment()
    entry_points: dict[str, EntryPoint] = field(default_factory=dict)
    source: str | None = None


def _bad(where: str, message: str, hint: str | None = None) -> BadInputError:
    return BadInputError(f"{where}: {message}", hint)


def _read_yaml(path: Path, where: str) -> Any:
    data = path.read_bytes()
    if len(data) > MAX_CONFIG_BYTES:
        raise _bad(where, f"larger than {MAX_CONFIG_BYTES >> 20} MiB, not a descriptor")
    try:
        return yamlfmt.load_untrusted(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad(where, "not UTF-8 text") from None
    except yamlfmt.YamlProblem as exc:
        line = f" line {exc.line}" if exc.line else ""
        raise BadInputError(f"{where}{line}: invalid YAML: {exc.problem}") from None


def _env_kind(file: str, where: str) -> str:
    base = os.path.basename(file).lower()
    if base.endswith(".txt"):
        return "requirements"
    if base == "pyproject.toml":
        return "pyproject"
    if base.endswith((".yaml", ".yml")):
        return "conda" if base.startswith("conda") else "python_env"
    raise _bad(where, f"environment {file!r} is not local, a python_env.yaml, a requirements.txt, "
                      "a pyproject.toml or a conda.yaml")


def _check_file(root: Path, file: object, where: str) -> str:
    if not isinstance(file, str) or not file or "\0" in file:
        raise _bad(where, f"expected a file name, got {file!r}")
    path = (root / file).resolve()
    if not path.is_relative_to(root.resolve()):
        raise _bad(where, f"{file!r} is outside the project")
    if not path.is_file():
        raise _bad(where, f"{file!r} does not exist in the project")
    return file


def _parameters(raw: object, where: str) -> dict[str, Parameter]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _bad(where, "parameters must be a mapping of name to type or {type, default}")
    if len(raw) > MAX_PARAMS:
        raise _bad(where, f"more than {MAX_PARAMS} parameters")
    out = {}
    for name, spec in raw.items():
        here = f"{where}.{name}"
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _bad(where, f"parameter name {name!r} is not a plain name (letters, digits, _ . -)")
        if isinstance(spec, str):
            spec = {"type": spec}
        elif spec is None:
            spec = {}
        elif not isinstance(spec, dict):
            raise _bad(here, "expected a type name or a mapping with type and default")
        unknown = set(spec) - {"type", "default"}
        if unknown:
            raise _bad(here, f"unknown key {sorted(unknown)[0]!r} (a parameter has type and default)")
        kind = TYPES.get(str(spec.get("type", "str")).lower())
        if kind is None and where.startswith("MLproject"):
            kind = "str"  # MLflow passes a type it does not know (bool …) through as text: so does gitml
        if kind is None:
            raise _bad(here, f"unknown type {spec.get('type')!r}", "use float, int, str, path or uri")
        param = Parameter(name, kind, spec.get("default"), "default" not in spec)
        if not param.required and param.default is not None:
            try:
                check_value(param, _text(param.default))
            except BadInputError as exc:
                raise _bad(here, f"default {param.default!r}: {exc.message}") from None
        out[name] = param
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _entry_points(raw: object, where: str) -> dict[str, EntryPoint]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _bad(where, "entry_points must be a mapping of name to {parameters, command}")
    out = {}
    for name, spec in raw.items():
        here = f"{where}.{name}"
        if not isinstance(name, str) or not name or len(name) > 128:
            raise _bad(where, f"entry point name {name!r} is not a name")
        if isinstance(spec, str):
            spec = {"command": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("command"), str) or not spec["command"].strip():
            raise _bad(here, "an entry point needs a command (text)")
        unknown = set(spec) - {"command", "parameters"}
        if unknown:
            raise _bad(here, f"unknown key {sorted(unknown)[0]!r} (an entry point has command and parameters)")
        params = _parameters(spec.get("parameters"), f"{here}.parameters")
        try:
            parsed = [(f, conv, fmt) for _, f, fmt, conv in string.Formatter().parse(spec["command"]) if f is not None]
        except ValueError as exc:
            raise _bad(here, f"command template: {exc}", "write a literal { or } as {{ or }}") from None
        for placeholder, conversion, format_spec in parsed:
            if conversion or format_spec or not _NAME_RE.match(placeholder):
                raise _bad(here, f"the command's placeholder {{{placeholder}{'!' + conversion if conversion else ''}"
                                 f"{':' + format_spec if format_spec else ''}}} is not a plain {{name}}",
                           "a value goes in shell-quoted, as {name}; conversions and formats would undo the quoting")
        fields = {placeholder for placeholder, _, _ in parsed}
        for placeholder in fields:
            if placeholder not in params:
                raise _bad(here, f"the command names {{{placeholder}}}, which is not a parameter")
        out[name] = EntryPoint(name, spec["command"], params)
    return out


def load_project(root: str | Path) -> Project:
    """The project at ``root``: ``gitml.yaml``'s ``project:``, else ``MLproject``, else files only.

    Args:
        root: the project's folder (a checkout).

    Returns:
        The :class:`Project`.

    Raises:
        BadInputError: the descriptor is not YAML, has an unknown key or a bad entry point,
            parameter type, default or environment (named with its path), asks for Docker
            (``docker_env``, unsupported), or both files describe the project.
    """
    root = Path(root)
    config = root / CONFIG_FILE
    section = None
    if config.is_file():
        doc = _read_yaml(config, CONFIG_FILE)
        section = doc.get("project") if isinstance(doc, dict) else None
    mlproject = next((p for p in (root / MLPROJECT, root / "mlproject") if p.is_file()), None)
    if section is not None and mlproject is not None:
        raise BadInputError(f"both {CONFIG_FILE}'s project: and {mlproject.name} describe the project",
                            hint="keep one of them")
    if section is not None:
        return _from_gitml(root, section)
    if mlproject is not None:
        return _from_mlproject(root, mlproject)
    return Project(name=root.resolve().name, root=root)


def _from_gitml(root: Path, section: object) -> Project:
    where = f"{CONFIG_FILE}: project"
    if not isinstance(section, dict):
        raise _bad(where, "expected a mapping with name, environment and entry_points")
    unknown = set(section) - {"name", "environment", "entry_points"}
    if unknown:
        raise _bad(where, f"unknown key {sorted(unknown)[0]!r}", "a project has name, environment and entry_points")
    env = section.get("environment", "local")
    if env == "local":
        environment = Environment()
    else:
        file = _check_file(root, env, f"{where}.environment")
        environment = Environment(_env_kind(file, f"{where}.environment"), file)
    name = section.get("name") or root.resolve().name
    if not isinstance(name, str) or not name.strip():
        raise _bad(f"{where}.name", "expected text")
    return Project(name, root, environment, _entry_points(section.get("entry_points"), f"{where}.entry_points"),
                   CONFIG_FILE)


def _from_mlproject(root: Path, path: Path) -> Project:
    where = path.name
    doc = _read_yaml(path, where)
    if not isinstance(doc, dict):
        raise _bad(where, "expected a mapping")
    if "docker_env" in doc:
        raise _bad(where, "docker_env is not supported by gitml run",
                   "give the project a python_env.yaml (or conda.yaml), or run it with mlflow run")
    envs = [key for key in ("python_env", "conda_env") if key in doc]
    if len(envs) > 1:
        raise _bad(where, "python_env and conda_env both given; keep one")
    if envs:
        file = _check_file(root, doc[envs[0]], f"{where}: {envs[0]}")
        environment = Environment("python_env" if envs[0] == "python_env" else "conda", file)
    else:
        environment = Environment()
    name = doc.get("name") or root.resolve().name
    return Project(str(name), root, environment, _entry_points(doc.get("entry_points"), f"{where}: entry_points"),
                   MLPROJECT)


def entry_point(project: Project, name: str) -> EntryPoint:
    """The entry point ``name``: declared, or a ``.py``/``.sh`` file of the project run as is.

    Raises:
        BadInputError: no such entry point or file (the message lists the declared ones).
    """
    if name in project.entry_points:
        return project.entry_points[name]
    if name.endswith((".py", ".sh")):
        path = (project.root / name).resolve()
        if path.is_relative_to(project.root.resolve()) and path.is_file():
            runner = "python" if name.endswith(".py") else "bash"
            command = f"{runner} {shlex.quote(name)}".replace("{", "{{").replace("}", "}}")
            return EntryPoint(name, command)
    known = ", ".join(sorted(project.entry_points)) or "none declared"
    raise BadInputError(f"no entry point {name!r} in project {project.name!r} (it has: {known})",
                        hint="name a declared entry point, or a .py or .sh file of the project")


def check_value(param: Parameter, text: str) -> Any:
    """``text`` as ``param``'s type: a float, an int, or the text (path and uri too).

    Raises:
        BadInputError: ``text`` is not of the type (``abc`` for a float), or is too long.
    """
    if not isinstance(text, str):
        raise BadInputError(f"parameter {param.name!r}: expected text, got {type(text).__name__}")
    if len(text) > MAX_VALUE_CHARS:
        raise BadInputError(f"parameter {param.name!r}: longer than {MAX_VALUE_CHARS} characters")
    if param.type == "float":
        try:
            value = float(text)
        except ValueError:
            raise BadInputError(f"parameter {param.name!r} is a float, got {text!r}") from None
        if not math.isfinite(value):
            raise BadInputError(f"parameter {param.name!r} is a float, got {text!r} (not a finite number)")
        return value
    if param.type == "int":
        try:
            return int(text)
        except ValueError:
            raise BadInputError(f"parameter {param.name!r} is an int, got {text!r}") from None
    if param.type in ("path", "uri") and not text:
        raise BadInputError(f"parameter {param.name!r} is a {param.type}, got an empty value")
    return text


def resolve_parameters(entry: EntryPoint, given: dict[str, str], cwd: Path | None = None,
                       root: Path | None = None) -> dict[str, str]:
    """Every parameter's value as text: given, else the default; types checked; paths made absolute.

    A relative ``path`` (and a ``uri`` that is a relative local path, not ``runs:/…``,
    ``s3://…``) given with ``-P`` is taken from ``cwd`` (where ``gitml run`` was started), as
    MLflow does; a relative default is part of the project, taken from ``root`` (the project's
    folder at the revision run, so ``--version`` and ``gitml reproduce`` read the files of that
    revision). Parameters the entry point does not declare are kept as given.

    Args:
        entry: the entry point.
        given: ``{name: text}`` from ``-P name=value``.
        cwd: the folder given relative paths are read from (default: the current directory).
        root: the folder relative defaults are read from (default: ``cwd``).

    Returns:
        ``{name: text}``, declared parameters first, in the descriptor's order.

    Raises:
        BadInputError: a required parameter is missing, or a value is not of its type.
    """
    cwd = Path.cwd() if cwd is None else cwd
    out: dict[str, str] = {}
    for name, param in entry.parameters.items():
        base = cwd
        if name in given:
            text = given[name]
        elif not param.required and param.default is not None:
            text = _text(param.default)
            base = cwd if root is None else root
        elif not param.required:
            continue  # default: null, and not given
        else:
            raise BadInputError(f"entry point {entry.name!r} needs parameter {name!r} ({param.type})",
                                hint=f"give it with -P {name}=VALUE")
        check_value(param, text)
        if param.type in ("path", "uri") and not _SCHEME_RE.match(text) and not os.path.isabs(text):
            text = str((base / text).resolve())
        out[name] = text
    for name, text in given.items():
        if name not in out:
            if not _NAME_RE.match(name):
                raise BadInputError(f"parameter name {name!r} is not a plain name (letters, digits, _ . -)")
            if len(text) > MAX_VALUE_CHARS:
                raise BadInputError(f"parameter {name!r}: longer than {MAX_VALUE_CHARS} characters")
            out[name] = text
    return out


def build_command(entry: EntryPoint, values: dict[str, str]) -> str:
    """The shell command: the template with each value shell-quoted, then ``--key value`` for the rest.

    Args:
        entry: the entry point.
        values: from :func:`resolve_parameters`.

    Returns:
        A command for ``bash -c``.
    """
    declared = {name: shlex.quote(values.get(name, "")) for name in entry.parameters}
    command = entry.command.format(**declared)
    extra = [f"--{name} {shlex.quote(text)}" for name, text in values.items() if name not in entry.parameters]
    return " ".join([command, *extra])


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["lr=0.1", "depth=3"]`` (``-P`` options) as ``{"lr": "0.1", "depth": "3"}``.

    Raises:
        BadInputError: an item without ``=``, an empty name, or a name given twice.
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise BadInputError(f"parameters are NAME=VALUE, not {item!r}")
        if name in out:
            raise BadInputError(f"parameter {name!r} given twice")
        out[name] = value
    return out
