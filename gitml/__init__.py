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
    "start_run": "gitml.tracking.fluent",
    "end_run": "gitml.tracking.fluent",
    "active_run": "gitml.tracking.fluent",
    "log_param": "gitml.tracking.fluent",
    "log_params": "gitml.tracking.fluent",
    "log_metric": "gitml.tracking.fluent",
    "log_metrics": "gitml.tracking.fluent",
    "set_tag": "gitml.tracking.fluent",
    "set_tags": "gitml.tracking.fluent",
    "log_artifact": "gitml.tracking.fluent",
    "log_artifacts": "gitml.tracking.fluent",
    "commit_run": "gitml.tracking.commit",
    "get_run": "gitml.tracking.query",
    "search_runs": "gitml.tracking.query",
    "delete_run": "gitml.tracking.query",
    "resolve_run_id": "gitml.tracking.query",
    "list_active_runs": "gitml.tracking.query",
    "rebuild_index": "gitml.tracking.query",
    "init": "gitml.tracking.setup",
    "compare": "gitml.diff.compare",
    "register_model": "gitml.registry.ops",
    "demo": "gitml.tracking.demo",
    "Run": "gitml.core.formats",
    "Metric": "gitml.core.formats",
    "GitmlError": "gitml.core.errors",
}

__all__ = ["__version__", "diff", *_API]


_SUBMODULES = ("errors", "artifacts", "tracking", "core", "diff", "registry")  # gitml.diff is callable


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # `import gitml; gitml.errors.BadInputError` works without a second import
        return importlib.import_module(f"gitml.{name}")
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'gitml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
