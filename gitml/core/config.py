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

# To mark metric changes in `gitml diff` as improvements or regressions, give goals instead of
# the file list (the files then go under metrics_files):
# metrics_files: [metrics.json]
# metrics:
#   accuracy: max
#   val_loss: {direction: min, tolerance: 0.01}
"""


@dataclass
class Config:
    """The parsed ``gitml.yaml``; every field has a default so the file is optional."""

    params: list[str] = field(default_factory=lambda: list(DEFAULT_PARAMS_FILES))
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS_FILES))
    experiment: str = "default"
    goals: dict[str, Goal] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Goal:
    """How a metric should move: ``max`` (higher is better) or ``min``, within ``tolerance``.

    ``tolerance`` is an absolute amount a change may go the wrong way before it counts as a
    regression (``relative: true`` makes it a fraction of the old value).
    """

    direction: str
    tolerance: float = 0.0
    relative: bool = False


def _goals(value: object, where: Path) -> dict[str, Goal]:
    goals = {}
    for name, spec in (value or {}).items():
        if isinstance(spec, str):
            spec = {"direction": spec}
        if not isinstance(spec, dict) or spec.get("direction") not in ("max", "min"):
            raise BadInputError(f"{where}: metric {name!r} needs direction max or min, got {spec!r}")
        tolerance = spec.get("tolerance", 0.0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
            raise BadInputError(f"{where}: tolerance of metric {name!r} must be a number >= 0")
        relative = spec.get("relative", False)
        if not isinstance(relative, bool):
            raise BadInputError(f"{where}: 'relative' of metric {name!r} must be true or false")
        goals[str(name)] = Goal(spec["direction"], float(tolerance), relative)
    return goals


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
    # `metrics:` is either the list of metrics files, or a mapping of metric goals; with the
    # mapping, the files are named by `metrics_files:`.
    metrics = doc.get("metrics")
    goals = _goals(metrics, path) if isinstance(metrics, dict) else {}
    files_key = "metrics_files" if isinstance(metrics, dict) or "metrics_files" in doc else "metrics"
    return Config(
        params=_file_list(doc, "params", DEFAULT_PARAMS_FILES, path),
        metrics=_file_list(doc, files_key, DEFAULT_METRICS_FILES, path),
        experiment=experiment,
        goals=goals,
        raw=doc,
    )
