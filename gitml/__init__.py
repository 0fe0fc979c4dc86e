"""gitml: the machine-learning lifecycle stored in git.

The public API mirrors MLflow's fluent tracking API::

    import gitml
    with gitml.start_run(name="rf", experiment="churn"):
        gitml.log_params({"n_estimators": 200})
        gitml.log_metric("accuracy", 0.91)

Names are imported lazily so that ``import gitml`` (and ``gitml --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "start_run": "gitml.api",
    "end_run": "gitml.api",
    "active_run": "gitml.api",
    "log_param": "gitml.api",
    "log_params": "gitml.api",
    "log_metric": "gitml.api",
    "log_metrics": "gitml.api",
    "set_tag": "gitml.api",
    "set_tags": "gitml.api",
    "log_artifact": "gitml.api",
    "log_artifacts": "gitml.api",
    "log_dict": "gitml.api",
    "log_text": "gitml.api",
    "log_figure": "gitml.api",
    "log_image": "gitml.api",
    "log_table": "gitml.api",
    "log_input": "gitml.api",
    "set_system_metrics_sampling_interval": "gitml.tracking.sysmetrics",
    "set_experiment": "gitml.tracking.experiments",
    "create_experiment": "gitml.tracking.experiments",
    "get_experiment": "gitml.tracking.experiments",
    "get_experiment_by_name": "gitml.tracking.experiments",
    "search_experiments": "gitml.tracking.experiments",
    "set_experiment_tag": "gitml.tracking.experiments",
    "set_experiment_tags": "gitml.tracking.experiments",
    "delete_experiment_tag": "gitml.tracking.experiments",
    "set_experiment_description": "gitml.tracking.experiments",
    "rename_experiment": "gitml.tracking.experiments",
    "commit_run": "gitml.api",
    "get_run": "gitml.tracking.query",
    "get_metric_history": "gitml.tracking.query",
    "search_runs": "gitml.tracking.query",
    "delete_run": "gitml.tracking.query",
    "resolve_run_id": "gitml.tracking.query",
    "list_active_runs": "gitml.tracking.query",
    "rebuild_index": "gitml.tracking.query",
    "write_lookup_maps": "gitml.tracking.query",
    "init": "gitml.api",
    "log_model": "gitml.api",
    "save_model": "gitml.models.pyfunc",
    "load_model": "gitml.models.load",
    "compare": "gitml.diff.compare",
    "register_model": "gitml.registry.ops",
    "demo": "gitml.api",
    "Run": "gitml.core.formats",
    "Metric": "gitml.core.formats",
    "GitmlError": "gitml.core.errors",
}

__all__ = ["__version__", "diff", *_API]


# Subpackages reachable as attributes after a plain ``import gitml`` (``gitml.sync.push()``,
# ``gitml.errors.BadInputError``), imported on first use; gitml.diff is also callable.
_SUBMODULES = ("errors", "api", "artifacts", "tracking", "core", "diff", "registry", "sync", "hooks", "models", "projects",
               "sklearn")


def __getattr__(name: str) -> Any:
    """Import a public name (or a subpackage) on first use (PEP 562).

    Args:
        name: the attribute asked for.

    Returns:
        The function, class or module; a name from ``_API`` is then cached in the module.

    Raises:
        AttributeError: ``gitml`` has no such name.
    """
    if name in _SUBMODULES:  # `import gitml; gitml.errors.BadInputError` works without a second import
        return importlib.import_module(f"gitml.{name}")
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'gitml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names and subpackages, for ``dir(gitml)`` and completion (PEP 562)."""
    return sorted({*__all__, *_SUBMODULES})
