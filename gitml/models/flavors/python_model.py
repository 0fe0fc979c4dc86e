"""The custom-model flavor: a :class:`gitml.models.PythonModel` in MLflow's ``mlflow.pyfunc.model`` layout.

Files: ``python_model.pkl`` (the instance, cloudpickled, with gitml's base class stored by
value so that MLflow loads the model without gitml) and ``artifacts/`` (what ``artifacts=``
named, copied in). ``MLmodel`` has only the ``python_function`` flavor, with
``loader_module: mlflow.pyfunc.model``, ``python_model``, ``cloudpickle_version`` and
``artifacts: {name: {path, uri}}``.
"""

from __future__ import annotations

import inspect
import os
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, ModelFormatError
from gitml.models import python_model as base
from gitml.models.flavors import Saved
from gitml.models.mlmodel import PYFUNC, Model
from gitml.models.requirements import installed_version

FLAVOR = "python_model"
LOADER_MODULES = ("mlflow.pyfunc.model",)
PICKLE = "python_model.pkl"


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:
        raise BadInputError("custom Python models need cloudpickle: pip install 'gitml[models]'") from None
    return cloudpickle


def handles(model: object) -> bool:
    """Whether ``model`` is a custom model (a PythonModel, or anything with its two methods)."""
    return isinstance(model, base.PythonModel) or (
        callable(getattr(model, "predict", None)) and callable(getattr(model, "load_context", None)))


def save(model: Any, folder: Path, artifacts: dict[str, str] | None = None,
         model_config: dict[str, Any] | None = None, fetch: Any = None) -> Saved:
    """Write ``model`` and its artifacts into ``folder``.

    Args:
        model: the PythonModel instance.
        folder: the model folder.
        artifacts: ``{name: local path or artifact URI}``; each is copied to ``artifacts/``.
        model_config: a mapping the model gets as ``context.model_config``.
        fetch: ``fetch(uri, dest)`` for artifact URIs (``runs:/…``, ``models:/…``).

    Raises:
        BadInputError: a bad artifact name or a path that does not exist, or a model that
            cannot be pickled.
    """
    cloudpickle = _cloudpickle()
    block: dict[str, Any] = {"loader_module": "mlflow.pyfunc.model", "python_model": PICKLE,
                             "cloudpickle_version": installed_version("cloudpickle"), "code": None,
                             "streamable": False}
    if artifacts:
        copied = {}
        (folder / "artifacts").mkdir()
        for name, source in artifacts.items():
            if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
                raise BadInputError(f"bad artifact name {name!r}")
            source = str(source)
            base_name = os.path.basename(source.rstrip("/")) or name
            target = folder / "artifacts" / base_name
            if target.exists():
                target = folder / "artifacts" / f"{name}-{base_name}"
            if ":/" in source:
                if fetch is None:
                    raise BadInputError(f"artifact {name!r}: URIs need a repository")
                fetch(source, target)
            elif os.path.isdir(source):
                shutil.copytree(source, target, symlinks=False)
            elif os.path.isfile(source):
                shutil.copyfile(source, target)
            else:
                raise BadInputError(f"artifact {name!r}: {source} does not exist")
            copied[name] = {"path": f"artifacts/{target.name}", "uri": source}
        block["artifacts"] = copied
    if model_config is not None:
        block["config"] = dict(model_config)
    by_value = [base, *_own_modules(model)]
    for module in by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        with open(folder / PICKLE, "wb") as f:
            cloudpickle.dump(model, f, protocol=pickle.DEFAULT_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise BadInputError(f"the model cannot be pickled: {exc}") from None
    finally:
        for module in by_value:
            cloudpickle.unregister_pickle_by_value(module)
    return Saved(None, block, ["cloudpickle", "numpy", "pandas"])  # what loading it and its inputs need


def _own_modules(model: Any) -> list[Any]:
    """The user's own modules the model's classes come from (not installed, not the standard library).

    They are stored by value, so the model loads where that code is not importable.
    """
    import sysconfig

    installed = {os.path.realpath(p) for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                                               sysconfig.get_paths()["stdlib"])}
    found = []
    for cls in type(model).__mro__:
        module = sys.modules.get(cls.__module__)
        path = getattr(module, "__file__", None)
        if module is None or path is None or cls.__module__ in ("__main__", base.__name__) or module in found:
            continue
        real = os.path.realpath(path)
        if not any(real.startswith(root + os.sep) for root in installed) and "site-packages" not in real:
            found.append(module)
    return found


class _Wrapper:
    """Calls the custom model's ``predict(context, model_input[, params])`` as MLflow's wrapper does."""

    def __init__(self, model: Any, context: base.PythonModelContext) -> None:
        self.python_model, self.context = model, context
        try:
            names = list(inspect.signature(model.predict).parameters)
        except (TypeError, ValueError):
            names = []
        self.takes_params = "params" in names
        self.takes_context = "context" in names or len([n for n in names if n != "params"]) >= 2

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        args = (self.context, data) if self.takes_context else (data,)
        return self.python_model.predict(*args, params=params) if self.takes_params else self.python_model.predict(*args)


def load_native(folder: Path, mlmodel: Model) -> Any:
    """The custom model instance, its ``load_context`` called."""
    return load_pyfunc(folder, mlmodel).python_model


def load_pyfunc(folder: Path, mlmodel: Model, **options: Any) -> _Wrapper:
    """Unpickle the model, give it its context, and wrap it for predict.

    Raises:
        ModelFormatError: the pickle is missing or unreadable, it needs MLflow (a model saved
            by ``mlflow.pyfunc``), or an artifact path leaves the model folder.
    """
    block = mlmodel.flavors[PYFUNC]
    name = block.get("python_model") or PICKLE
    path = Path(folder) / name
    if not isinstance(name, str) or "/" in name or not path.is_file():
        raise ModelFormatError(f"{folder}: the custom model file {name!r} is missing")
    if any(str(name).endswith(s) for s in (".xz", ".bz2", ".gz")):
        raise ModelFormatError(f"{folder}: compressed custom models ({name}) are not supported yet")
    _cloudpickle()
    try:
        with open(path, "rb") as f:
            model = pickle.load(f)  # noqa: S301 - a model is code; callers verify its bytes first
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "mlflow":
            raise ModelFormatError("this custom model was saved by MLflow's pyfunc and needs mlflow to load",
                                   hint="pip install mlflow (the version in its requirements.txt)") from None
        raise ModelFormatError(f"the model needs the module {exc.name!r}, which is not installed",
                               hint="install what the model's requirements.txt lists, or save it with code_paths") from None
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as exc:
        raise ModelFormatError(f"{path} is not a readable pickle: {exc}") from None
    root = Path(folder).resolve()
    paths = {}
    for key, entry in (block.get("artifacts") or {}).items():
        rel = entry.get("path") if isinstance(entry, dict) else None
        target = (root / rel).resolve() if isinstance(rel, str) else None
        if target is None or root not in target.parents:
            raise ModelFormatError(f"{folder}: artifact {key!r} is not inside the model")
        paths[key] = str(target)
    config = block.get("config") if isinstance(block.get("config"), dict) else None
    context = base.PythonModelContext(paths, options.get("model_config", config))
    if callable(getattr(model, "load_context", None)):
        model.load_context(context)
    if not callable(getattr(model, "predict", None)):
        raise ModelFormatError(f"{folder}: the custom model has no predict method")
    return _Wrapper(model, context)
