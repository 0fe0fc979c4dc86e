"""Team configuration: ``gitml.yaml`` at the repository root (committed).

Personal values (credentials, endpoint overrides) live in git config under ``[gitml]``, never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gitml.core.errors import BadInputError

CONFIG_FILE = "gitml.yaml"
DEFAULT_PARAMS_FILES = ("params.yaml",)
DEFAULT_METRICS_FILES = ("metrics.json",)

TEMPLATE = """\
# gitml team configuration (committed with the code). See docs/formats.md#gitmlyaml.

# Files `gitml commit-run` reads when given no -p/-m/--params/--metrics options.
# Nested keys are flattened with dots (train.lr), as DVC does. Missing files are skipped.
params: [params.yaml]
metrics: [metrics.json]

# Experiment used when a run names none.
# experiment: default
"""


@dataclass
class Config:
    """The parsed ``gitml.yaml``; every field has a default so the file is optional."""

    params: list[str] = field(default_factory=lambda: list(DEFAULT_PARAMS_FILES))
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS_FILES))
    experiment: str = "default"
    raw: dict = field(default_factory=dict)


def _file_list(doc: dict, key: str, default: tuple[str, ...], where: Path) -> list[str]:
    value = doc.get(key, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadInputError(f"{where}: '{key}' must be a list of file names, got {value!r}")
    return value


def load_config(root: str | Path) -> Config:
    """Read ``gitml.yaml`` from a work tree root; a missing file gives the defaults."""
    path = Path(root) / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from None
    import yaml  # only when there is a file to read: keeps `gitml --help` light

    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise BadInputError(f"{path}{line}: invalid YAML: {problem}") from None
    if not isinstance(doc, dict):
        raise BadInputError(f"{path}: expected a mapping at the top level")
    experiment = doc.get("experiment", "default")
    if not isinstance(experiment, str) or not experiment:
        raise BadInputError(f"{path}: 'experiment' must be a non-empty string")
    return Config(
        params=_file_list(doc, "params", DEFAULT_PARAMS_FILES, path),
        metrics=_file_list(doc, "metrics", DEFAULT_METRICS_FILES, path),
        experiment=experiment,
        raw=doc,
    )
