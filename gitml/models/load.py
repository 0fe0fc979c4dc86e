"""``load_model(uri)``: a model from a folder, a run (``runs:/``) or the registry (``models:/``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.models.pyfunc import PyFuncModel, load_from_folder

if TYPE_CHECKING:  # a model in a plain folder needs no repository code (a tenth of a second to import)
    from gitml.core.workspace import WorkspaceLike

SCHEMES = ("runs:/", "models:/")


def model_folder(uri: str | os.PathLike, remote: str | None = None, repo: WorkspaceLike = None) -> Path:
    """The local folder a model URI or path stands for, its bytes verified.

    A ``runs:/<run>/<path>`` or ``models:/<name>@<stage>`` (``models:/<name>/vX.Y.Z``,
    ``models:/<name>/latest``) URI is fetched from the local content store or the artifact
    remote, every file checked against the sha256 its run recorded (see
    :func:`gitml.artifacts.materialize`). Anything else is a local path, used as it is.

    Raises:
        BadInputError: a bad URI, an unknown model, version or stage, a run without that artifact.
        RunNotFoundError: the run is not on the runs ref (``gitml pull`` may bring it).
        TamperedError: a model file's bytes do not match what was logged.
        GitmlError: the bytes are in no store.
    """
    text = os.fspath(uri)
    if isinstance(text, str) and text.startswith(SCHEMES):
        from gitml.artifacts.local import materialize

        return materialize(text, remote=remote, repo=repo)
    return Path(text)


def load_model(uri: str | os.PathLike, *, remote: str | None = None, repo: WorkspaceLike = None,
               **options: Any) -> PyFuncModel:
    """Load a model for ``predict``, from a folder, ``runs:/<run>/<path>`` or ``models:/<name>@<stage>``.

    Args:
        uri: a local folder, or a run or registry URI (see :func:`model_folder`).
        remote: artifact remote for the bytes the local cache lacks.
        repo: the repository URIs are resolved in (default: the current directory's).
        **options: the flavor's load options: ``skops_trusted_types`` (sklearn, skops files),
            ``model_config`` (custom models).

    Returns:
        A :class:`PyFuncModel`: ``.predict(data, params=None)``, ``.metadata``,
        ``.unwrap_python_model()``.

    Raises:
        ModelFormatError: not a model folder, a bad ``MLmodel``, an unknown flavor, a model file
            that cannot be read.
        TamperedError: the bytes of a logged model changed since it was logged.
        BadInputError, RunNotFoundError, GitmlError: as :func:`model_folder`.
    """
    return load_from_folder(model_folder(uri, remote=remote, repo=repo), **options)
