"""Model flavors: one module each, found by name (built in) or by entry point (``gitml.model_flavors``).

A flavor module defines:

- ``FLAVOR``: its name (``sklearn``); ``LOADER_MODULES``: the ``python_function`` loader modules
  whose models it loads (MLflow's own names, such as ``mlflow.sklearn``);
- ``handles(model) -> bool``: whether it can save this object (used when no flavor is named);
- ``save(model, folder, **options) -> Saved``: write the model's files into ``folder``;
- ``load_pyfunc(folder, mlmodel) -> object with predict(data, params=None)``;
- ``load_native(folder, mlmodel)``: the framework's own object.

A third-party package adds a flavor with an entry point in the group ``gitml.model_flavors``
whose value is its module (``keras = gitml_keras.flavor``).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from gitml.core.errors import BadInputError, ModelFormatError

ENTRY_POINT_GROUP = "gitml.model_flavors"
BUILT_IN = {"sklearn": "gitml.models.flavors.sklearn", "python_model": "gitml.models.flavors.python_model"}


@dataclass
class Saved:
    """What a flavor's ``save`` wrote.

    Attributes:
        flavor: the native flavor's ``MLmodel`` block, or None (a custom Python model has only
            ``python_function``).
        pyfunc: the ``python_function`` block (``loader_module`` and the flavor's keys).
        requirements: the distributions the model needs, to be pinned (``["scikit-learn"]``).
    """

    flavor: dict[str, Any] | None
    pyfunc: dict[str, Any]
    requirements: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def _modules() -> dict[str, str]:
    """``{flavor name: module}``: the built-in ones and the entry points (read once a process)."""
    found = dict(BUILT_IN)
    try:
        from importlib.metadata import entry_points

        for point in entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(point.name, point.value)
    except Exception:  # noqa: BLE001 - a broken plugin must not hide the built-in flavors
        pass
    return found


def get(name: str) -> ModuleType:
    """The flavor module called ``name``.

    Raises:
        BadInputError: no such flavor.
    """
    if name in BUILT_IN:  # no entry-point scan (tens of milliseconds) for the flavors gitml has
        return importlib.import_module(BUILT_IN[name])
    modules = _modules()
    if name not in modules:
        raise BadInputError(f"unknown model flavor {name!r}", hint=f"known flavors: {', '.join(sorted(modules))}")
    return importlib.import_module(modules[name])


def for_object(model: object) -> ModuleType:
    """The flavor that saves ``model`` (the first whose ``handles`` says yes).

    Raises:
        BadInputError: none does.
    """
    for names in (list(BUILT_IN), [n for n in _modules() if n not in BUILT_IN]):  # plugins only if needed
        for name in names:
            module = get(name)
            if module.handles(model):
                return module
    raise BadInputError(f"no model flavor knows how to save a {type(model).__module__}.{type(model).__name__}",
                        hint="wrap it in a gitml.models.PythonModel subclass, or pass flavor=")


def for_loader(loader_module: str, where: str) -> ModuleType:
    """The flavor that loads models whose ``python_function`` names ``loader_module``.

    Raises:
        ModelFormatError: none does (gitml never imports a loader module a model names: that
            would run code the model chose).
    """
    for names in (list(BUILT_IN), [n for n in _modules() if n not in BUILT_IN]):  # plugins only if needed
        for name in names:
            module = get(name)
            if loader_module in module.LOADER_MODULES:
                return module
    raise ModelFormatError(f"{where}: unknown model flavor (loader_module {loader_module!r})",
                           hint="gitml loads the flavors: " + ", ".join(sorted(_modules())))
