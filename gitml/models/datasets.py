"""What ``log_input`` records of a dataset: a digest of its content, its source and schema.

Here beside the model signatures because a dataset's schema is written the same way: MLflow's
column spec for a table, its tensor spec for an array (:mod:`gitml.models.signature`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError
from gitml.core.formats import DATASET_COUNTS, DATASET_TEXT
from gitml.core.store import hash_file


def describe_dataset(dataset: Any, source: str | None = None, root: Path | None = None) -> tuple[str, dict[str, Any]]:
    """A dataset's default name and its ``inputs.yaml`` fields (see :func:`gitml.log_input`).

    Args:
        dataset: a path (file or folder), a pandas DataFrame, a numpy array, or a mapping with
            at least ``digest``.
        source: where it came from (default: a path as given, relative to ``root`` when inside).
        root: the repository's work tree.

    Returns:
        ``(name, fields)``: fields ``digest``, ``source_type``, ``source``, ``schema`` (JSON
        text or None), ``num_rows``, ``num_elements`` (None when unknown).

    Raises:
        BadInputError: a path that does not exist, another kind of object, a mapping without a
            text ``digest`` or with fields of the wrong type.
    """
    library = type(dataset).__module__.split(".")[0]
    if isinstance(dataset, (str, os.PathLike)):
        return _path(Path(dataset), source, root)
    if library == "pandas" and hasattr(dataset, "columns") and hasattr(dataset, "dtypes"):
        return "dataset", _frame(dataset, source)
    if library == "numpy" and hasattr(dataset, "dtype") and hasattr(dataset, "shape"):
        return "dataset", _array(dataset, source)
    if isinstance(dataset, dict):
        return _by_hand(dataset, source)
    raise BadInputError(f"log_input takes a path, a pandas DataFrame, a numpy array or a mapping with a "
                        f"digest, not {type(dataset).__name__}")


def _fields(digest: str, source_type: str, source: str | None, schema: Any, rows: int | None,
            elements: int | None) -> dict[str, Any]:
    return {"digest": digest, "source_type": source_type, "source": source,
            "schema": json.dumps(schema, sort_keys=True) if schema is not None else None,
            "num_rows": rows, "num_elements": elements}


def _path(path: Path, source: str | None, root: Path | None) -> tuple[str, dict[str, Any]]:
    if not path.exists():
        raise BadInputError(f"log_input: {str(path)!r} does not exist")
    shown = str(path)
    if root is not None:
        try:
            shown = path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            shown = str(path.resolve())
    if path.is_dir():
        lines = [f"{file.relative_to(path).as_posix()}\t{hash_file(file)}\n"
                 for file in sorted(path.rglob("*")) if file.is_file()]
        digest = hashlib.sha256("".join(lines).encode("utf-8", "surrogateescape")).hexdigest()
        count = len(lines)
    elif path.is_file():
        digest, count = hash_file(path), None
    else:
        raise BadInputError(f"log_input: {str(path)!r} is neither a file nor a folder")
    fields = _fields(digest, "path", source if source is not None else shown, None, None, count)
    return path.resolve().name or "dataset", fields


def _frame(frame: Any, source: str | None) -> dict[str, Any]:
    import pandas as pd

    from gitml.models.signature import infer_signature

    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())  # a tuple column too
    try:
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    except TypeError as exc:  # a cell pandas cannot hash (a list, a dict)
        raise BadInputError(f"log_input: cannot hash this DataFrame: {exc}") from None
    try:
        schema = {"mlflow_colspec": infer_signature(frame).inputs}
    except (BadInputError, TypeError, ValueError):  # MultiIndex columns, say
        schema = None  # columns of a type MLflow's schema has no name for: no schema, still a digest
    return _fields(digest.hexdigest(), "pandas", source, schema, int(frame.shape[0]), int(frame.size))


def _array(array: Any, source: str | None) -> dict[str, Any]:
    import numpy as np

    if array.dtype == object:
        raise BadInputError("log_input: an array of Python objects has no digest; give numbers")
    digest = hashlib.sha256(f"{array.dtype.str}\t{array.shape}\n".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    schema = {"mlflow_tensorspec": {"dtype": str(array.dtype), "shape": [-1, *array.shape[1:]]}}
    rows = int(array.shape[0]) if array.ndim else 1
    return _fields(digest.hexdigest(), "numpy", source, schema, rows, int(array.size))


def _by_hand(described: dict[str, Any], source: str | None) -> tuple[str, dict[str, Any]]:
    if not isinstance(described.get("digest"), str) or not described["digest"]:
        raise BadInputError("log_input: a dataset given as a mapping needs a text 'digest'")
    fields = {key: described.get(key) for key in DATASET_TEXT + DATASET_COUNTS}
    fields["source_type"] = fields["source_type"] or "external"
    if source is not None:
        fields["source"] = source
    if isinstance(fields["schema"], (dict, list)):
        fields["schema"] = json.dumps(fields["schema"], sort_keys=True)
    for key in DATASET_TEXT:
        if fields[key] is not None and not isinstance(fields[key], str):
            raise BadInputError(f"log_input: {key} must be text, not {type(fields[key]).__name__}")
    for key in DATASET_COUNTS:
        value = fields[key]
        if value is not None and (type(value) is not int or value < 0):
            raise BadInputError(f"log_input: {key} must be a count, not {value!r}")
    name = described.get("name")
    return name if isinstance(name, str) and name else "dataset", fields
