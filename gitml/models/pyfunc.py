"""Saving and loading models: ``save_model`` writes a model folder, ``load_model`` gives a :class:`PyFuncModel`.

The folder is MLflow's model format (docs/formats.md, "Models"): ``MLmodel``, the flavor's files,
``requirements.txt``, ``python_env.yaml``, ``conda.yaml`` and, when given, the input example.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, ModelFormatError
from gitml.models import flavors
from gitml.models.example import save_example
from gitml.models.mlmodel import PYFUNC, Model
from gitml.models.requirements import installed_version, requirements, write_env_files
from gitml.models.signature import ModelSignature, enforce, enforce_params, infer_signature

log = logging.getLogger(__name__)
CODE_DIR = "code"


class PyFuncModel:
    """A loaded model: ``predict`` checks the input against the signature, then calls the flavor.

    Attributes:
        metadata: the model's ``MLmodel`` (:class:`gitml.models.Model`): flavors, signature,
            run id, and so on.
        path: the folder it was loaded from.
    """

    def __init__(self, metadata: Model, implementation: Any, path: Path) -> None:
        self.metadata, self._impl, self.path = metadata, implementation, Path(path)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data``.

        Args:
            data: a pandas DataFrame, a dict of columns, a list of rows, or a numpy array (for a
                tensor signature); checked and cast by :func:`gitml.models.signature.enforce`.
            params: inference params, checked against the signature's params schema.

        Returns:
            What the model returns (an array, a Series or DataFrame, a list).

        Raises:
            SchemaError: the input or a param does not fit the signature.
        """
        signature = self.metadata.signature
        return self._impl.predict(enforce(signature, data), params=enforce_params(signature, params))

    def unwrap_python_model(self) -> Any:
        """The custom model instance of a model saved from a :class:`PythonModel`.

        Raises:
            BadInputError: the model is not a custom Python model.
        """
        model = getattr(self._impl, "python_model", None)
        if model is None:
            raise BadInputError("this model is not a custom Python model (it has a native flavor)")
        return model

    def __repr__(self) -> str:
        flavor = ", ".join(sorted(self.metadata.flavors))
        return f"PyFuncModel(flavors=[{flavor}], path={str(self.path)!r})"


def _copy_code(folder: Path, code_paths: list[str] | None) -> str | None:
    if not code_paths:
        return None
    target = folder / CODE_DIR
    target.mkdir()
    for source in code_paths:
        source = os.fspath(source)
        dest = target / os.path.basename(os.path.normpath(source))
        if os.path.isdir(source):
            shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
        elif os.path.isfile(source):
            shutil.copyfile(source, dest)
        else:
            raise BadInputError(f"code path {source} does not exist")
    return CODE_DIR


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def save_model(model: Any, path: str | os.PathLike, *, flavor: str | None = None,
               signature: ModelSignature | None = None, input_example: Any = None,
               pip_requirements: list[str] | str | None = None, extra_pip_requirements: list[str] | str | None = None,
               code_paths: list[str] | None = None, metadata: dict[str, Any] | None = None,
               fetch: Any = None, **flavor_options: Any) -> Model:
    """Write ``model`` as a model folder at ``path`` (MLflow's format; MLflow loads it).

    Args:
        model: a scikit-learn estimator or pipeline, or a :class:`PythonModel` instance.
        path: the folder to create; it must not exist (or be empty).
        flavor: ``sklearn`` or ``python_model`` (or a plugin's); default: found from the model.
        signature: the model's :class:`ModelSignature`; default: inferred from ``input_example``
            (outputs from the model's predictions on it).
        input_example: a few rows (DataFrame, array, list of dicts), stored with the model.
        pip_requirements: the model's requirements instead of the flavor's pinned defaults.
        extra_pip_requirements: requirements added to the defaults.
        code_paths: files or folders copied into ``code/`` and put on ``sys.path`` when loaded.
        metadata: a free-form mapping stored in ``MLmodel``.
        fetch: ``fetch(uri, dest)`` for ``artifacts=`` given as URIs (set by ``log_model``).
        **flavor_options: the flavor's own options: ``serialization_format`` and
            ``skops_trusted_types`` (sklearn), ``artifacts`` and ``model_config`` (python_model).

    Returns:
        The :class:`Model` written to ``MLmodel``.

    Raises:
        BadInputError: ``path`` exists and is not empty, no flavor saves this model, a bad
            option, example or requirement. Nothing is left at ``path`` then.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BadInputError(f"{path} already exists", hint="save to a new folder")
    if signature is not None and not isinstance(signature, ModelSignature):
        raise BadInputError(f"signature must be a gitml.models.ModelSignature (infer_signature builds one), "
                            f"not {type(signature).__name__}")
    module = flavors.get(flavor) if flavor else flavors.for_object(model)
    if module.FLAVOR == "python_model":
        flavor_options.setdefault("fetch", fetch)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        saved = module.save(model, staging, **flavor_options)
        pyfunc = dict(saved.pyfunc)
        pyfunc["python_version"] = ".".join(map(str, sys.version_info[:3]))
        pyfunc["code"] = _copy_code(staging, code_paths)
        mlmodel = Model(flavors={PYFUNC: pyfunc}, metadata=metadata)
        if saved.flavor is not None:
            saved.flavor["code"] = pyfunc["code"]
            mlmodel.flavors[module.FLAVOR] = saved.flavor
        if input_example is not None:
            mlmodel.saved_input_example_info = save_example(staging, input_example)
            if signature is None:  # the model just saved predicts on its example (with the trust given)
                trusted = flavor_options.get("skops_trusted_types")
                signature = _infer(module, staging, mlmodel, input_example,
                                   {"skops_trusted_types": trusted} if trusted else {})
        mlmodel.signature = signature
        mlmodel.model_size_bytes = _size(staging)
        lines = requirements(saved.requirements, pip_requirements, extra_pip_requirements)
        pyfunc["env"] = write_env_files(staging, lines)
        mlflow_version = installed_version("mlflow")
        if mlflow_version:
            mlmodel.extra["mlflow_version"] = mlflow_version
        from gitml import __version__

        mlmodel.extra["gitml"] = {"version": __version__}
        mlmodel.save(staging)
        if path.exists():
            path.rmdir()
        os.rename(staging, path)
        return mlmodel
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _infer(module: Any, folder: Path, mlmodel: Model, example: Any, options: dict[str, Any]) -> ModelSignature | None:
    """The signature from the example, outputs from the model's own predictions on it."""
    try:
        inputs = infer_signature(example)
        output = module.load_pyfunc(folder, mlmodel, **options).predict(enforce(inputs, example))
        return infer_signature(example, output)
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the model's own predict failed: keep the inputs
        log.warning("could not infer the model's outputs from the input example: %s", exc)
        return infer_signature(example)


def load_from_folder(folder: str | os.PathLike, **options: Any) -> PyFuncModel:
    """Load the model in a local folder (written by gitml or MLflow).

    Args:
        folder: the model folder.
        **options: the flavor's load options (``skops_trusted_types``, ``model_config``).

    Raises:
        ModelFormatError: no ``MLmodel`` or a bad one, an unknown flavor, a missing or
            unreadable model file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFormatError(f"{str(folder)!r} is not a model folder")
    mlmodel = Model.load(folder)
    module = flavors.for_loader(mlmodel.loader_module, str(folder))
    _add_code(folder, mlmodel)
    return PyFuncModel(mlmodel, module.load_pyfunc(folder, mlmodel, **options), folder)


def load_native_from_folder(folder: str | os.PathLike, flavor: str, **options: Any) -> Any:
    """The framework's own object in a local model folder (the estimator, the custom model).

    Raises:
        ModelFormatError: as :func:`load_from_folder`, or the model is not of that flavor.
    """
    folder = Path(folder)
    mlmodel = Model.load(folder)
    module = flavors.get(flavor)
    if mlmodel.loader_module not in module.LOADER_MODULES:
        raise ModelFormatError(f"{folder} is not a {flavor} model (its flavors: {', '.join(sorted(mlmodel.flavors))})")
    _add_code(folder, mlmodel)
    return module.load_native(folder, mlmodel, **options)


def _add_code(folder: Path, mlmodel: Model) -> None:
    code = mlmodel.flavors[PYFUNC].get("code")
    if not code:
        return
    target = (folder / str(code)).resolve()
    if folder.resolve() not in target.parents or not target.is_dir():
        raise ModelFormatError(f"{folder}: the model's code folder {code!r} is not inside it")
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))


class ModelInfo:
    """What ``gitml.log_model`` logged: where the model is and how it was saved.

    Attributes:
        model_uri: ``runs:/<run id>/<artifact path>``, loadable with :func:`gitml.load_model`
            once the run has ended.
        run_id: the run's id.
        artifact_path: the model folder's path among the run's artifacts.
        flavors: the ``MLmodel`` flavors (``python_function`` and the native one).
        signature: the :class:`ModelSignature` saved with it, or None.
        registered_model_name: the model it becomes a version of when the run finishes, or None.
        sha256: the digest of the model folder's manifest in the content store.
        metadata: the whole :class:`Model`.
    """

    def __init__(self, run_id: str, artifact_path: str, mlmodel: Model, sha256: str,
                 registered_model_name: str | None) -> None:
        self.model_uri = f"runs:/{run_id}/{artifact_path}"
        self.run_id, self.artifact_path, self.sha256 = run_id, artifact_path, sha256
        self.flavors, self.signature, self.metadata = mlmodel.flavors, mlmodel.signature, mlmodel
        self.registered_model_name = registered_model_name

    def __repr__(self) -> str:
        return f"ModelInfo(model_uri={self.model_uri!r}, flavors={sorted(self.flavors)})"
