"""``gitml models predict``: score a file with a model, as ``POST /invocations`` would score its body."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, GitmlError
from gitml.models.pyfunc import load_from_folder

CONTENT_TYPES = {"json": "application/json", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
MAX_INPUT_BYTES = 1 << 30


def content_type_of(path: Path, given: str | None) -> str:
    """``json``, ``csv`` or ``parquet``: ``given``, else the file's extension.

    Raises:
        BadInputError: an unknown type, or an extension that names none.
    """
    kind = (given or path.suffix.lstrip(".")).lower()
    kind = {"application/json": "json", "text/csv": "csv", "application/vnd.apache.parquet": "parquet"}.get(kind, kind)
    if kind not in CONTENT_TYPES:
        raise BadInputError(f"cannot tell the input's format from {path.name!r}",
                            hint="use a .json, .csv or .parquet file, or --content-type json|csv|parquet")
    return kind


def predict_file(folder: str | os.PathLike, input_path: str | os.PathLike, content_type: str | None = None,
                 **options: Any) -> bytes:
    """Predictions for the input file, as the scoring server's answer body ``{"predictions": …}``.

    Args:
        folder: a local model folder (see :func:`gitml.models.model_folder` for URIs).
        input_path: the input: JSON in the scoring protocol's forms (``{"dataframe_split": …}``,
            ``dataframe_records``, ``instances``, ``inputs``; ``params`` beside them), CSV with a
            header line, or Parquet (needs pyarrow).
        content_type: ``json``, ``csv`` or ``parquet`` (default: from the extension).
        **options: the flavor's load options (``skops_trusted_types``).

    Returns:
        UTF-8 JSON, ``{"predictions": [...]}``.

    Raises:
        BadInputError: the file is missing, over 1 GiB, of an unknown format or malformed
            (``ProtocolError``), or does not fit the signature (``SchemaError``).
        ModelFormatError: as :func:`gitml.models.load_model`.
    """
    from gitml.models import scoring

    path = Path(input_path)
    kind = content_type_of(path, content_type)
    if not path.is_file():
        raise BadInputError(f"input file {str(path)!r} does not exist")
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise BadInputError(f"input file {str(path)!r} is over {MAX_INPUT_BYTES >> 30} GiB")
    model = load_from_folder(folder, **options)
    signature = model.metadata.signature
    params = None
    if kind == "json":
        data, params = scoring.parse_json(path.read_bytes(), signature)
    elif kind == "csv":
        data = scoring.parse_csv(path.read_bytes(), signature)
    else:
        data = scoring.parse_parquet(path.read_bytes(), signature)
    try:
        predictions = model.predict(data, params=params)
    except GitmlError:
        raise
    except Exception as exc:  # noqa: BLE001 - the model's own failure: the operation failed (exit 1)
        raise GitmlError(f"the model failed: {type(exc).__name__}: {exc}") from exc
    return scoring.predictions_json(predictions)
