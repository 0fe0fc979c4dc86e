"""scikit-learn models: ``gitml.models.sklearn.load_model(uri)`` gives the estimator itself.

Saving goes through :func:`gitml.models.save_model` (or ``gitml.log_model``), which picks this
flavor for any estimator; see :mod:`gitml.models.flavors.sklearn` for the files.
"""

from __future__ import annotations

import os
from typing import Any

from gitml.core.workspace import WorkspaceLike
from gitml.models.load import model_folder
from gitml.models.pyfunc import load_native_from_folder, save_model


def load_model(uri: str | os.PathLike, *, remote: str | None = None, repo: WorkspaceLike = None,
               skops_trusted_types: list[str] | None = None) -> Any:
    """The estimator (or pipeline) a model folder or URI holds, as scikit-learn gives it.

    Args:
        uri: a folder, ``runs:/<run>/<path>`` or ``models:/<name>@<stage>``.
        remote: artifact remote for bytes the local cache lacks.
        repo: the repository URIs are resolved in.
        skops_trusted_types: for a skops file, the types you allow beyond skops' defaults.

    Raises:
        ModelFormatError: not an sklearn model, or unreadable.
        TamperedError: a logged model's bytes changed.
    """
    folder = model_folder(uri, remote=remote, repo=repo)
    return load_native_from_folder(folder, "sklearn", skops_trusted_types=skops_trusted_types)


__all__ = ["load_model", "save_model"]
