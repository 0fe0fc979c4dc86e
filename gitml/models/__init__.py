"""Models: MLflow's model format, saved and loaded the gitml way (DESIGN.md §7; docs/models.md).

A model is a folder (``MLmodel`` in MLflow's schema, the flavor's files, its requirements)
logged as a run's directory artifact and registered as a version. Everything here is imported
lazily: ``import gitml`` loads neither pandas nor scikit-learn.

- :func:`save_model`, :func:`load_model` (a path, ``runs:/…`` or ``models:/…``), :class:`PyFuncModel`;
- :class:`PythonModel`, :class:`PythonModelContext`: custom models;
- :class:`ModelSignature`, :func:`infer_signature`; :class:`Model` (what ``MLmodel`` says);
- :func:`describe` (``gitml models info``), :func:`dockerfile` (``gitml models dockerfile``);
- :mod:`gitml.models.sklearn`: ``load_model`` giving the estimator itself.

``gitml.log_model`` (inside a run) saves, logs and optionally registers in one call.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "save_model": "gitml.models.pyfunc",
    "PyFuncModel": "gitml.models.pyfunc",
    "load_model": "gitml.models.load",
    "model_folder": "gitml.models.load",
    "PythonModel": "gitml.models.python_model",
    "PythonModelContext": "gitml.models.python_model",
    "ModelSignature": "gitml.models.signature",
    "infer_signature": "gitml.models.signature",
    "Model": "gitml.models.mlmodel",
    "describe": "gitml.models.info",
    "ModelDescription": "gitml.models.info",
    "dockerfile": "gitml.models.info",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562); ``AttributeError`` for any other name."""
    module = _API.get(name)
    if module is None:
        if name in ("sklearn",):
            return importlib.import_module(f"gitml.models.{name}")
        raise AttributeError(f"module 'gitml.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The public names, for ``dir(gitml.models)`` and completion (PEP 562)."""
    return sorted({*__all__, "sklearn"})
