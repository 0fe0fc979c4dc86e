"""What a model is (``gitml models info``) and a container that serves it (``gitml models dockerfile``)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, GitmlError
from gitml.core.workspace import WorkspaceLike, open_workspace
from gitml.models.load import SCHEMES, model_folder
from gitml.models.mlmodel import PYFUNC, Model

SERVE_PORT = 8080


@dataclass
class ModelDescription:
    """A model's card: how it loads, what it takes and needs, where it came from.

    Attributes:
        uri: what was asked for; ``folder``: the local folder read.
        flavors: the flavor names; ``loader_module``: ``python_function``'s loader.
        serialization_format: the sklearn file format (None for other flavors).
        inputs, outputs, params: the signature's specs (MLflow's JSON form), or None.
        requirements: the lines of ``requirements.txt``.
        python_version: the Python the model was saved with.
        size_bytes: the folder's bytes on disk.
        model_uuid, utc_time_created: from ``MLmodel``.
        run_id, artifact_path: the run it was logged in, when logged.
        source_commit, source_branch: that run's code commit and branch, when the run is on
            this repository's runs ref.
    """

    uri: str
    folder: str
    flavors: list[str]
    loader_module: str
    serialization_format: str | None
    inputs: list[dict[str, Any]] | None
    outputs: list[dict[str, Any]] | None
    params: list[dict[str, Any]] | None
    requirements: list[str]
    python_version: str | None
    size_bytes: int
    model_uuid: str
    utc_time_created: str
    run_id: str | None = None
    artifact_path: str | None = None
    source_commit: str | None = None
    source_branch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able mapping (``gitml models info --json``)."""
        return dict(self.__dict__)


def describe(uri: str | os.PathLike, remote: str | None = None, repo: WorkspaceLike = None) -> ModelDescription:
    """Describe the model a folder or URI names, without loading it (no pickle is opened).

    Args:
        uri: a model folder, ``runs:/<run>/<path>`` or ``models:/<name>@<stage>``.
        remote: artifact remote for bytes the local cache lacks.
        repo: the repository URIs and the run's provenance are read from.

    Returns:
        The :class:`ModelDescription`.

    Raises:
        ModelFormatError: not a model folder, or a bad ``MLmodel``.
        BadInputError, RunNotFoundError, TamperedError: as :func:`gitml.models.model_folder`.
    """
    folder = model_folder(uri, remote=remote, repo=repo)
    mlmodel = Model.load(folder)
    requirements = []
    req = folder / "requirements.txt"
    if req.is_file():
        requirements = [line.strip() for line in req.read_text(errors="replace").splitlines() if line.strip()]
    sig = mlmodel.signature
    described = ModelDescription(
        uri=os.fspath(uri), folder=str(folder), flavors=sorted(mlmodel.flavors), loader_module=mlmodel.loader_module,
        serialization_format=(mlmodel.flavors.get("sklearn") or {}).get("serialization_format"),
        inputs=sig.inputs if sig else None, outputs=sig.outputs if sig else None, params=sig.params if sig else None,
        requirements=requirements, python_version=mlmodel.flavors[PYFUNC].get("python_version"),
        size_bytes=sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
        model_uuid=mlmodel.model_uuid, utc_time_created=mlmodel.utc_time_created,
        run_id=mlmodel.run_id, artifact_path=mlmodel.artifact_path)
    if described.run_id and (os.fspath(uri).startswith(SCHEMES) or repo is not None):
        _provenance(described, repo)
    return described


def _provenance(described: ModelDescription, repo: WorkspaceLike) -> None:
    """The run's source commit and branch, when the run is on the runs ref (else left None)."""
    from gitml.tracking.query import get_run

    try:
        with open_workspace(repo) as ws:
            run = get_run(described.run_id, repo=ws)
    except GitmlError:
        return
    described.source_commit = run.source.get("commit")
    described.source_branch = run.source.get("branch")


DOCKERFILE = """\
# Serves the model in model/ with `gitml models serve` (MLflow's scoring protocol) on port {port}.
# Made by `gitml models dockerfile`; build with: docker build -t my-model {out}
FROM python:{python}-slim
WORKDIR /opt/gitml
COPY model/requirements.txt /opt/gitml/model/requirements.txt
RUN pip install --no-cache-dir -r /opt/gitml/model/requirements.txt '{gitml}'
COPY model/ /opt/gitml/model/
EXPOSE {port}
CMD ["gitml", "models", "serve", "-m", "/opt/gitml/model", "--host", "0.0.0.0", "--port", "{port}"]
"""


def dockerfile(uri: str | os.PathLike, out: str | os.PathLike, gitml_requirement: str | None = None,
               remote: str | None = None, repo: WorkspaceLike = None) -> list[Path]:
    """Write a Docker build context that serves the model: ``out/Dockerfile`` and ``out/model/``.

    The image installs the model's ``requirements.txt`` and gitml with its ``serve`` extra on
    the Python the model was saved with, copies the model in, and runs ``gitml models serve``
    on all interfaces, port 8080 (inside a container, the network is the container's).

    Args:
        uri: a model folder, ``runs:/…`` or ``models:/…``.
        out: the folder to create; it must not exist or be empty.
        gitml_requirement: how the image installs gitml (a pip requirement: a version, a URL, a
            wheel copied into ``out``); default ``gitml[serve]==<this version>``.
        remote: artifact remote for bytes the local cache lacks.
        repo: the repository URIs are resolved in.

    Returns:
        The files written.

    Raises:
        BadInputError: ``out`` exists and is not empty.
        ModelFormatError, TamperedError: as :func:`describe`.
    """
    from gitml import __version__

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInputError(f"{out} already exists", hint="give a new folder")
    described = describe(uri, remote=remote, repo=repo)
    python = ".".join((described.python_version or "3.11").split(".")[:2])
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(described.folder, out / "model")
    for path in (out / "model").rglob("*"):  # a verified copy is read-only; the build context need not be
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    text = DOCKERFILE.format(port=SERVE_PORT, out=out, python=python,
                             gitml=gitml_requirement or f"gitml[serve]=={__version__}")
    (out / "Dockerfile").write_text(text)
    return [out / "Dockerfile", out / "model"]
