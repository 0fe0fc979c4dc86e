"""Custom Python models: subclass :class:`PythonModel`, then ``gitml.models.save_model`` or ``log_model``.

This module imports nothing from gitml (nor MLflow): a saved model stores it by value inside
``python_model.pkl`` (cloudpickle), so MLflow's ``mlflow.pyfunc.load_model`` loads a gitml
custom model on a machine without gitml, and gitml loads it without MLflow. The contract is
MLflow's (``mlflow.pyfunc.PythonModel``): ``load_context(context)`` once after loading, then
``predict(context, model_input, params=None)`` per call.
"""

from __future__ import annotations

import types
from typing import Any


class PythonModelContext:
    """What a custom model's ``load_context`` and ``predict`` get: its artifacts and config.

    Attributes:
        artifacts: ``{name: absolute path}`` of the files and folders given as
            ``artifacts={name: path or URI}`` when the model was saved, now inside the model.
        model_config: the ``model_config`` mapping given at save time (or None).
    """

    def __init__(self, artifacts: dict[str, str], model_config: dict[str, Any] | None = None) -> None:
        self._artifacts = dict(artifacts)
        self._model_config = model_config

    @property
    def artifacts(self) -> dict[str, str]:
        """``{name: absolute path}`` of the model's artifacts."""
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any] | None:
        """The model's configuration mapping, or None."""
        return self._model_config


class PythonModel:
    """Base class of a custom model: any Python that turns an input into predictions.

    Subclass it and override :meth:`predict` (and :meth:`load_context` to open artifacts)::

        class Doubler(gitml.models.PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input * (params or {}).get("factor", 2)
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Called once when the model is loaded, with its artifacts; the default does nothing."""

    def predict(self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``model_input`` (a DataFrame, array, or what the signature says).

        Raises:
            NotImplementedError: a subclass must override it.
        """
        raise NotImplementedError("a PythonModel subclass must define predict(context, model_input, params=None)")

    @property
    def predict_type_hints(self) -> types.SimpleNamespace:
        """No type hints: MLflow's loader asks for them and then uses the saved signature."""
        return types.SimpleNamespace(input=None, output=None)
