"""MLflow's scoring protocol without the web server: request bodies in, prediction JSON out.

``gitml models serve`` (:mod:`gitml.models.serve`) answers ``POST /invocations`` with these
functions, and nothing here imports a web framework, so a command that reads the same JSON or
CSV from a file can use them too. The body forms (docs/models.md, "Serving"):

- JSON: an object with exactly one of ``dataframe_split`` (``{"columns", "data", "index"}``,
  what pandas' ``to_dict(orient="split")`` gives and MLflow's client sends),
  ``dataframe_records`` (a list of row objects), ``instances`` or ``inputs`` (TF-serving style:
  columns, rows or a tensor), plus an optional ``params`` object;
- CSV: a header line and rows, as ``DataFrame.to_csv(index=False)`` writes them;
- Parquet: what ``DataFrame.to_parquet()`` writes (pyarrow or fastparquet reads it).

Values are cast to the signature's column types the way MLflow's server casts them where no
information is lost (integral numbers for integer columns, ISO text for datetimes, base64 text
for binary columns); the rest is left to :func:`gitml.models.signature.enforce`, which refuses
text in a number column with a :class:`~gitml.core.errors.SchemaError`.
"""

from __future__ import annotations

import base64
import csv
import datetime
import io
import json
import warnings
from typing import Any

from gitml.core.errors import BadInputError
from gitml.models.signature import ModelSignature

INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
SPLIT_KEYS = frozenset({"data", "columns", "index"})
# MLflow's column type -> the dtype read_csv gets for it (datetime and binary are cast after)
_CSV_DTYPES = {"boolean": "bool", "integer": "int32", "long": "int64", "float": "float32", "double": "float64",
               "string": "object"}

_CAST_TYPES = frozenset({"integer", "long", "datetime", "binary"})  # what cast_frame may change


class ProtocolError(BadInputError):
    """A request body that is not one of the protocol's forms (HTTP 400 ``BAD_REQUEST``)."""


class ParquetUnavailable(BadInputError):
    """A Parquet body, and no Parquet reader installed (HTTP 415: this server cannot read it)."""


def parse_json(body: bytes | str, signature: ModelSignature | None) -> tuple[Any, dict[str, Any] | None]:
    """The model input and params of a JSON request body.

    Args:
        body: the body, UTF-8 JSON.
        signature: the model's signature (the input is built and cast to fit it), or None.

    Returns:
        ``(data, params)``: a DataFrame for the ``dataframe_*`` forms and for column-based
        ``instances``/``inputs``; a numpy array for a tensor signature; for a model without a
        signature, what MLflow passes (arrays, or a mapping of column arrays).

    Raises:
        ProtocolError: malformed JSON, not exactly one input key, a malformed input form.
        SchemaError: a value that cannot be cast to its column's type.
    """
    try:
        payload = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ProtocolError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("the body's JSON is nested too deeply") from None
    if not isinstance(payload, dict):
        raise ProtocolError(f"the body must be a JSON object with exactly one of {', '.join(INPUT_KEYS)}; "
                            f"got a JSON {_json_kind(payload)}")
    keys = [key for key in INPUT_KEYS if key in payload]
    if len(keys) != 1:
        raise ProtocolError(f"the body must have exactly one of {', '.join(INPUT_KEYS)}; "
                            f"it has {sorted(payload) if not keys else keys}")
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise ProtocolError(f"'params' must be a JSON object, not a JSON {_json_kind(params)}")
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        data = cast_frame(_split_frame(value, signature), signature)
    elif key == "dataframe_records":
        data = cast_frame(_records_frame(value), signature)
    else:
        data = _tensor_or_columns(key, value, signature)
    return data, params


def parse_csv(body: bytes, signature: ModelSignature | None) -> Any:
    """The DataFrame of a CSV request body (header line first), read with the signature's types.

    Raises:
        ProtocolError: the body is not CSV pandas can read as those types (text in a number
            column is one such case).
    """
    import pandas as pd

    header = next(csv.reader([body.split(b"\n", 1)[0].decode("utf-8", "replace")]), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:  # pandas would rename the second one and score with the first, silently
        raise ProtocolError(f"the input names columns more than once: {', '.join(repeated)}")
    dtypes = {spec["name"]: _CSV_DTYPES[spec["type"]] for spec in _named_columns(signature)
              if spec["type"] in _CSV_DTYPES}
    try:
        with warnings.catch_warnings():
            # a row with more fields than the header: pandas would take the extra leading fields
            # as an index (index_col=None) or drop the trailing ones with a warning (False)
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.BytesIO(body), dtype=dtypes or None, encoding="utf-8", index_col=False)
    except pd.errors.ParserWarning:
        raise ProtocolError("the body is not CSV with the model's column types: a row has more fields "
                            "than the header") from None
    except (ValueError, TypeError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        raise ProtocolError(f"the body is not CSV with the model's column types: {exc}") from None
    return cast_frame(frame, signature)


def parse_parquet(body: bytes, signature: ModelSignature | None) -> Any:
    """The DataFrame of a Parquet request body (what ``DataFrame.to_parquet()`` writes).

    Raises:
        ParquetUnavailable: pyarrow (or fastparquet) is not installed.
        ProtocolError: the body is not Parquet pandas can read.
    """
    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(body))
    except ImportError as exc:
        raise ParquetUnavailable(f"reading Parquet needs {exc.name or 'pyarrow'}, which is not installed",
                                 hint="pip install pyarrow") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors have no common base but Exception
        raise ProtocolError(f"the body is not Parquet pandas can read: {type(exc).__name__}: {exc}") from None
    return cast_frame(frame, signature)


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _split_frame(value: Any, signature: ModelSignature | None = None) -> Any:
    import pandas as pd

    if not isinstance(value, dict) or "data" not in value or set(value) - SPLIT_KEYS:
        got = sorted(value) if isinstance(value, dict) else f"a JSON {_json_kind(value)}"
        raise ProtocolError(f"'dataframe_split' must be an object with 'data' and optionally 'columns' and "
                            f"'index'; got {got}")
    data, columns = value["data"], value.get("columns")
    try:
        array = _number_rows(data, columns, signature)
        if array is not None:
            return pd.DataFrame(array, columns=columns, index=value.get("index"))
        return pd.DataFrame(data=data, columns=columns, index=value.get("index"))
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"'dataframe_split' is not a table: {exc}") from None


def _number_rows(data: Any, columns: Any, signature: ModelSignature | None) -> Any:
    """``data`` (rows of JSON numbers) as one 2-D numpy array, or None to let pandas read it.

    The array holds what pandas would build column by column, at a fraction of the cost for the
    small bodies a scoring server mostly gets: all floats give float64, all integers int64; a mix
    gives float64 only where the signature makes every column a double, so the values end up as
    they would have (the signature casts integers in a double column to float64 anyway).
    Booleans, None, text, ragged rows, or integers past int64 take pandas' path.
    """
    import numpy as np

    if type(data) is not list or not data or not all(type(row) is list for row in data):
        return None
    kinds = {type(v) for row in data for v in row}
    if kinds == {float}:
        dtype = np.float64
    elif kinds == {int}:
        dtype = np.int64
    elif kinds == {int, float} and isinstance(columns, list) and _all_double(columns, signature):
        dtype = np.float64
    else:
        return None
    try:
        array = np.array(data, dtype=dtype)
    except (ValueError, OverflowError):  # ragged rows, or an integer past int64
        return None
    return array if array.ndim == 2 else None


def _all_double(columns: list[Any], signature: ModelSignature | None) -> bool:
    types = {spec["name"]: spec["type"] for spec in _named_columns(signature)}
    return bool(types) and all(types.get(column) == "double" for column in columns)


def _records_frame(value: Any) -> Any:
    import pandas as pd

    if not isinstance(value, list):
        raise ProtocolError(f"'dataframe_records' must be a list of row objects, not a JSON {_json_kind(value)}")
    try:
        return pd.DataFrame(value)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"'dataframe_records' is not a table: {exc}") from None


def _named_columns(signature: ModelSignature | None) -> list[dict[str, Any]]:
    if signature is None or not signature.inputs or signature.is_tensor():
        return []
    return [spec for spec in signature.inputs if "name" in spec]


def _tensor_or_columns(key: str, value: Any, signature: ModelSignature | None) -> Any:
    """``instances`` or ``inputs`` as the model takes them (MLflow's TF-serving reading)."""
    import numpy as np
    import pandas as pd

    rows = isinstance(value, list) and bool(value) and all(isinstance(row, dict) for row in value)
    if signature is not None and signature.is_tensor():
        try:
            array = np.asarray(value) if not isinstance(value, dict) else None
        except (ValueError, TypeError, OverflowError):  # ragged rows, say
            array = None
        if array is None or array.dtype == object:
            raise ProtocolError(f"{key!r} must be a (nested) list of numbers for this model's tensor input")
        return array
    named = _named_columns(signature)
    if not named:  # no signature (or unnamed columns): what MLflow hands the model
        try:
            if key == "instances" and rows:
                return {name: np.asarray([row.get(name) for row in value]) for name in _keys_of(value)}
            if isinstance(value, dict):
                return {name: np.asarray(column) for name, column in value.items()}
            return value if rows else np.asarray(value)
        except (ValueError, TypeError, OverflowError) as exc:  # ragged rows, say
            raise ProtocolError(f"{key!r} is not an array: {exc}") from None
    try:
        if rows:
            frame = pd.DataFrame(value)
        elif isinstance(value, dict):
            scalars = all(np.ndim(column) == 0 for column in value.values())
            frame = pd.DataFrame([value]) if scalars else pd.DataFrame(value)
        elif len(named) == 1:  # one column: a bare list (or value) is that column
            frame = pd.DataFrame({named[0]["name"]: value if isinstance(value, list) else [value]})
        else:
            frame = pd.DataFrame(value)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"{key!r} is not a table of the model's columns: {exc}") from None
    return cast_frame(frame, signature)


def _keys_of(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(name for row in rows for name in row))


def cast_frame(frame: Any, signature: ModelSignature | None) -> Any:
    """``frame``'s columns cast to the signature's types where JSON or CSV cannot carry them.

    Whole floats (``1.0``) become integers for integer columns; ISO text becomes datetimes;
    base64 text becomes bytes for binary columns. Anything else is left for
    :func:`~gitml.models.signature.enforce` to check (it widens integers to floats and refuses
    what would lose information).

    Raises:
        SchemaError: datetime or base64 text that does not parse.
    """
    if frame.columns.duplicated().any():
        repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise ProtocolError(f"the input names columns more than once: {', '.join(repeated)}")
    for spec in _named_columns(signature):
        name = spec["name"]
        if spec["type"] in _CAST_TYPES and name in frame.columns:
            column = frame[name]
            cast = _cast_column(column, name, spec["type"])
            if cast is not column:  # assigning a column costs a pandas insert: only when it changed
                frame[name] = cast
    return frame


def _cast_column(column: Any, name: str, kind: str) -> Any:
    import numpy as np
    import pandas as pd

    from gitml.core.errors import SchemaError

    if kind in ("integer", "long") and column.dtype.kind == "f":
        values = column.to_numpy()
        bound = 2.0 ** (31 if kind == "integer" else 63)  # past it the integer type would wrap around
        if np.isfinite(values).all() and (values == np.round(values)).all() and (
                (values >= -bound) & (values < bound)).all():
            return column.astype("int32" if kind == "integer" else "int64")
    elif kind == "datetime" and column.dtype.kind == "O":
        try:
            return pd.to_datetime(column)
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"column {name!r}: cannot read {column.tolist()[:3]} as datetimes: {exc}") from None
    elif kind == "binary" and column.dtype.kind == "O":
        try:
            return column.map(lambda text: base64.b64decode(text, validate=True) if isinstance(text, str) else text)
        except ValueError as exc:
            raise SchemaError(f"column {name!r}: binary values must be base64 text: {exc}") from None
    return column


def jsonable(predictions: Any) -> Any:
    """Predictions as MLflow's server answers them, ready for ``json.dumps``.

    An array becomes a (nested) list, a DataFrame a list of row objects, a Series the rows of a
    one-column DataFrame (``[{"x": 6.0}]``, ``[{"0": 1}]`` unnamed); anything else is kept.
    """
    import sys

    pd = sys.modules.get("pandas")
    if hasattr(predictions, "tolist") and type(predictions).__module__ == "numpy":
        return predictions.tolist()
    if pd is not None and isinstance(predictions, pd.DataFrame):
        return predictions.to_dict(orient="records")
    if pd is not None and isinstance(predictions, pd.Series):
        return predictions.to_frame().to_dict(orient="records")
    return predictions


def _default(value: Any) -> Any:
    """``json.dumps``'s fallback: numpy scalars and arrays, dates and times, bytes as base64."""
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return value.tolist()
    if isinstance(value, (datetime.date, datetime.time)):  # pandas' Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"predictions of type {type(value).__name__} cannot be written as JSON")


def predictions_json(predictions: Any) -> bytes:
    """The answer body ``{"predictions": …}``, UTF-8 JSON.

    Raises:
        TypeError: the predictions hold a value JSON cannot carry.
    """
    return json.dumps({"predictions": jsonable(predictions)}, default=_default,
                      separators=(",", ":")).encode("utf-8")
