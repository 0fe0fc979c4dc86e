"""A model's environment files, from installed package metadata (no subprocess, no imports).

A saved model carries, as MLflow's do (docs/formats.md, "Models"):

- ``requirements.txt``: one pinned requirement per line (``scikit-learn==1.9.1``);
- ``python_env.yaml``: ``python``, ``build_dependencies`` (pip, setuptools, wheel as installed)
  and ``dependencies: [-r requirements.txt]``;
- ``conda.yaml``: ``channels: [conda-forge]``, ``dependencies: [python=…, pip<=…, {pip: [...]}]``,
  ``name: mlflow-env``.

Versions come from ``importlib.metadata`` (a few file reads), so capturing them costs
milliseconds where MLflow's default starts a process that imports the model.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path

from gitml.core.errors import BadInputError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


@functools.lru_cache(maxsize=256)
def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` without any ``+local`` label, or None."""
    try:
        return metadata.version(distribution).split("+", 1)[0]
    except metadata.PackageNotFoundError:
        return None


def pinned(distributions: list[str]) -> list[str]:
    """``name==version`` for each installed distribution of ``distributions`` (the rest left out)."""
    out = []
    for name in distributions:
        version = installed_version(name)
        if version is not None:
            out.append(f"{name}=={version}")
    return out


def _as_list(value: list[str] | str | os.PathLike | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)) and Path(value).is_file():
        lines = Path(value).read_text().splitlines()
        return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise BadInputError(f"{what} must be a list of requirement strings or a requirements file path")
    return [item.strip() for item in value if item.strip()]


def requirements(defaults: list[str], pip_requirements: list[str] | str | None = None,
                 extra_pip_requirements: list[str] | str | None = None) -> list[str]:
    """The model's requirement lines, as MLflow's ``pip_requirements``/``extra_pip_requirements`` mean.

    Args:
        defaults: the flavor's distributions (``["scikit-learn", "cloudpickle"]``), pinned to
            what is installed.
        pip_requirements: replaces the defaults (a list, or a path to a requirements file).
        extra_pip_requirements: added after them.

    Returns:
        Requirement lines, duplicates removed (the first mention of a name wins).

    Raises:
        BadInputError: both options given, or one is neither a list of strings nor a file.
    """
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise BadInputError("give pip_requirements or extra_pip_requirements, not both")
    lines = _as_list(pip_requirements, "pip_requirements") if pip_requirements is not None else pinned(defaults)
    lines += _as_list(extra_pip_requirements, "extra_pip_requirements")
    seen: set[str] = set()
    out = []
    for line in lines:
        match = _NAME_RE.match(line)
        key = match.group(0).lower().replace("_", "-") if match else line
        if key not in seen:
            seen.add(key)
            out.append(line)
    return out


def write_env_files(path: Path, lines: list[str]) -> dict[str, str]:
    """Write ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml`` into model folder ``path``.

    Returns:
        The ``env`` block of the ``python_function`` flavor: ``{"conda": "conda.yaml",
        "virtualenv": "python_env.yaml"}``.
    """
    python = platform.python_version()
    (path / "requirements.txt").write_text("\n".join(lines) + "\n")
    build = [f"{name}=={v}" if (v := installed_version(name)) else name for name in ("pip", "setuptools", "wheel")]
    # Written as YAML by hand (every text JSON-quoted, which YAML reads as the same string): a
    # save must not pay PyYAML's import, about 20 ms, for two fixed shapes.
    (path / "python_env.yaml").write_text(
        f"python: {json.dumps(python)}\nbuild_dependencies:\n{_items(build, '')}"
        f"dependencies:\n{_items(['-r requirements.txt'], '')}")
    pip = installed_version("pip")
    (path / "conda.yaml").write_text(
        f"channels:\n{_items(['conda-forge'], '')}dependencies:\n"
        f"{_items([f'python={python}', f'pip<={pip}' if pip else 'pip'], '')}- pip:\n{_items(lines, '  ')}"
        f"name: mlflow-env\n")
    return {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


def _items(values: list[str], indent: str) -> str:
    """A YAML block list of quoted strings (``[]`` when empty, on the line before)."""
    return "".join(f"{indent}- {json.dumps(value)}\n" for value in values) or f"{indent}[]\n"
