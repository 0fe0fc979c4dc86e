"""The scikit-learn flavor: any estimator or pipeline, in MLflow's ``sklearn`` layout.

Files: ``model.pkl`` (``pickle`` or ``cloudpickle``) or ``model.skops`` (``skops``). ``MLmodel``
names MLflow's loader (``loader_module: mlflow.sklearn``), so MLflow loads these models without
gitml, and gitml loads MLflow's. Loading a pickle runs code the file chose: only load models
you trust (a model from a run or the registry is hash-verified first); skops loads only the
types you allow.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, ModelFormatError
from gitml.models.flavors import Saved
from gitml.models.mlmodel import PYFUNC, Model
from gitml.models.requirements import installed_version

FLAVOR = "sklearn"
LOADER_MODULES = ("mlflow.sklearn", "gitml.models.flavors.sklearn")
FORMATS = ("pickle", "cloudpickle", "skops")


def handles(model: object) -> bool:
    """Whether ``model`` is a scikit-learn estimator (or pipeline)."""
    return any(cls.__module__.split(".")[0] == "sklearn" for cls in type(model).__mro__)


def save(model: Any, folder: Path, serialization_format: str = "pickle",
         skops_trusted_types: list[str] | None = None) -> Saved:
    """Write ``model`` into ``folder`` as ``model.pkl`` or ``model.skops``.

    Args:
        model: the fitted estimator.
        folder: the model folder (exists, empty of these files).
        serialization_format: ``pickle`` (default), ``cloudpickle`` or ``skops``.
        skops_trusted_types: for skops, the types you vouch for beyond skops' defaults (a tree
            model needs ``sklearn.tree._tree.Tree``); the save checks the file loads with them.

    Raises:
        BadInputError: an unknown format, skops not installed, or a skops file that needs
            types not trusted (they are named).
    """
    if serialization_format not in FORMATS:
        raise BadInputError(f"unknown serialization_format {serialization_format!r}: use one of {', '.join(FORMATS)}")
    needs = ["scikit-learn"]
    if serialization_format == "skops":
        sio = _skops()
        name = "model.skops"
        sio.dump(model, folder / name)
        untrusted = sorted(set(sio.get_untrusted_types(file=folder / name)) - set(skops_trusted_types or ()))
        if untrusted:
            raise BadInputError(f"the model holds types skops does not trust: {', '.join(untrusted)}",
                                hint="pass skops_trusted_types=[...] naming them if you vouch for them")
        needs.append("skops")
    else:
        name = "model.pkl"
        with open(folder / name, "wb") as f:
            if serialization_format == "cloudpickle":
                import cloudpickle

                cloudpickle.dump(model, f, protocol=pickle.DEFAULT_PROTOCOL)
                needs.append("cloudpickle")
            else:
                pickle.dump(model, f, protocol=pickle.DEFAULT_PROTOCOL)
    flavor = {"pickled_model": name, "serialization_format": serialization_format,
              "sklearn_version": installed_version("scikit-learn"), "code": None,
              "skops_trusted_types": sorted(skops_trusted_types) if serialization_format == "skops"
              and skops_trusted_types else None}
    method = "predict" if hasattr(model, "predict") else None
    if method is None:
        raise BadInputError(f"{type(model).__name__} has no predict method: it cannot be served")
    return Saved(flavor, {"loader_module": "mlflow.sklearn", "model_path": name, "predict_fn": method}, needs)


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise BadInputError("serialization_format='skops' needs skops: pip install skops") from None
    return sio


def load_native(folder: Path, mlmodel: Model, skops_trusted_types: list[str] | None = None) -> Any:
    """The estimator a model folder holds.

    Args:
        folder: the model folder.
        mlmodel: its ``MLmodel``.
        skops_trusted_types: for a skops file, the types you allow beyond skops' defaults. The
            list the file itself carries is not trusted: a file cannot vouch for itself.

    Raises:
        ModelFormatError: the file is missing or unreadable, or an unknown format.
        BadInputError: a skops file needs types not allowed (named), or skops is missing.
    """
    block = mlmodel.flavors.get(FLAVOR) or {}
    name = block.get("pickled_model") or mlmodel.flavors[PYFUNC].get("model_path")
    fmt = block.get("serialization_format") or "pickle"
    if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
        raise ModelFormatError(f"{folder}: the sklearn flavor names no model file")
    path = Path(folder) / name
    if not path.is_file():
        raise ModelFormatError(f"{folder}: the model file {name} is missing")
    if fmt == "skops":
        sio = _skops()
        untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(skops_trusted_types or ()))
        if untrusted:
            raise BadInputError(f"the model holds types skops does not trust: {', '.join(untrusted)}",
                                hint="name the ones you vouch for: load_model(..., skops_trusted_types=[...]), "
                                     "or --skops-trusted-type TYPE on the command line")
        return sio.load(path, trusted=sorted(skops_trusted_types or ()) or None)
    if fmt not in ("pickle", "cloudpickle"):
        raise ModelFormatError(f"{folder}: unknown sklearn serialization_format {fmt!r}")
    if fmt == "cloudpickle":
        try:
            import cloudpickle  # noqa: F401 - its reducers are what the file calls
        except ImportError:
            raise ModelFormatError("this model was saved with cloudpickle: pip install cloudpickle") from None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)  # noqa: S301 - a model is code; callers verify its bytes first
    except ModuleNotFoundError as exc:
        raise ModelFormatError(f"the model needs the module {exc.name!r}, which is not installed",
                               hint="install what the model's requirements.txt lists") from None
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as exc:
        raise ModelFormatError(f"{path} is not a readable pickle: {exc}") from None


class _Predictor:
    """The pyfunc face of an estimator: ``predict(data, params=None)`` calls its ``predict_fn``."""

    def __init__(self, estimator: Any, method: str) -> None:
        self.estimator, self.method = estimator, method

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return getattr(self.estimator, self.method)(data)


def load_pyfunc(folder: Path, mlmodel: Model, **options: Any) -> _Predictor:
    """The model as ``predict(data, params=None)`` (params are not passed to sklearn)."""
    method = mlmodel.flavors[PYFUNC].get("predict_fn") or "predict"
    if method not in ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform"):
        raise ModelFormatError(f"{folder}: predict_fn {method!r} is not an estimator method gitml calls")
    estimator = load_native(folder, mlmodel, **options)
    if not hasattr(estimator, method):
        raise ModelFormatError(f"{folder}: the estimator has no {method} method")
    return _Predictor(estimator, method)
