"""A model's input example, stored as MLflow stores it (docs/formats.md, "Models").

``input_example.json`` holds the example (a DataFrame in pandas' ``split`` orient without the
index, an array as nested lists, anything else as JSON), and ``serving_input_example.json`` a
request body ready for ``POST /invocations``. ``MLmodel``'s ``saved_input_example_info`` says
which: ``{artifact_path, type, serving_input_path[, pandas_orient]}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gitml.core.errors import BadInputError, ModelFormatError

EXAMPLE_FILE = "input_example.json"
SERVING_FILE = "serving_input_example.json"


def _plain(value: Any) -> Any:
    """JSON-able Python values: numpy scalars and arrays, NaN as null."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def save_example(folder: Path, example: Any) -> dict[str, Any]:
    """Write the example files into model folder ``folder``.

    Returns:
        The ``saved_input_example_info`` block.

    Raises:
        BadInputError: the example is not a DataFrame, an array, a list or a dict.
    """
    import numpy as np
    import pandas as pd

    info: dict[str, Any] = {"artifact_path": EXAMPLE_FILE, "serving_input_path": SERVING_FILE}
    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, pd.DataFrame):
        named = all(isinstance(c, str) for c in example.columns)
        body = {"columns": [str(c) for c in example.columns], "data": _plain(example.to_numpy())} if named \
            else {"data": _plain(example.to_numpy())}
        info.update(type="dataframe", pandas_orient="split" if named else "values")
        serving = {"dataframe_split": body}
    elif isinstance(example, np.ndarray):
        body = _plain(example)
        info["type"] = "ndarray"
        serving = {"inputs": body}
    elif isinstance(example, (list, dict)):
        body = _plain(example)
        info["type"] = "json_object"
        serving = {"inputs": body}
    else:
        raise BadInputError(f"an input example must be a DataFrame, an array, a list or a dict, not "
                            f"{type(example).__name__}")
    (folder / EXAMPLE_FILE).write_text(json.dumps(body))
    (folder / SERVING_FILE).write_text(json.dumps(serving, indent=2))
    return info


def load_example(folder: Path, info: dict[str, Any]) -> Any:
    """The input example a model folder holds, as the type it was saved from.

    Raises:
        ModelFormatError: the files are missing or unreadable, or the type is unknown.
    """
    import numpy as np
    import pandas as pd

    name = info.get("artifact_path", EXAMPLE_FILE)
    path = folder / name
    if not isinstance(name, str) or "/" in name or not path.is_file():
        raise ModelFormatError(f"the model's input example {name!r} is missing")
    try:
        body = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"the model's input example is not JSON: {exc}") from None
    kind = info.get("type")
    if kind == "dataframe":
        if not isinstance(body, dict) or "data" not in body:
            raise ModelFormatError("the model's dataframe example has no 'data'")
        return pd.DataFrame(body["data"], columns=body.get("columns"))
    if kind == "ndarray":
        return np.asarray(body)
    if kind == "json_object":
        return body
    raise ModelFormatError(f"unknown input example type {kind!r}")
