"""Model signatures in MLflow's schema: inferred from an input example, enforced at predict.

A signature is three lists, each stored in ``MLmodel`` as a JSON string (MLflow's
``mlflow.types.schema``; docs/formats.md, "Models"):

- ``inputs``: either column specs ``{"type": "double", "name": "x", "required": true}``
  (types ``boolean``, ``integer``, ``long``, ``float``, ``double``, ``string``, ``binary``,
  ``datetime``) or tensor specs ``{"type": "tensor", "tensor-spec": {"dtype": "float64",
  "shape": [-1, 4]}}``, never a mix;
- ``outputs``: the same, inferred from the model's predictions on the example;
- ``params``: ``{"name": "k", "type": "long", "default": 1, "shape": null}`` (optional).

pandas and numpy are imported only when a signature is inferred or enforced.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from gitml.core.errors import BadInputError, SchemaError

log = logging.getLogger(__name__)

COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")
# MLflow's column type -> the numpy dtype a column is cast to
_NUMPY_OF = {"boolean": "bool", "integer": "int32", "long": "int64", "float": "float32", "double": "float64",
             "string": "object", "binary": "object", "datetime": "datetime64[ns]"}
_INT_TYPES = ("integer", "long")
_FLOAT_TYPES = ("float", "double")
_EMPTY_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32", "boolean": "bool",
                 "string": "object", "binary": "object", "datetime": "datetime64[ns]"}
_PARAM_TYPES = ("boolean", "integer", "long", "float", "double", "string", "datetime")


@dataclass
class ModelSignature:
    """A model's input, output and params schemas, as MLflow stores them.

    Attributes:
        inputs: column specs or tensor specs (dicts in MLflow's JSON form), or None.
        outputs: the same for predictions, or None.
        params: param specs ``{"name", "type", "default", "shape"}``, or None.
    """

    inputs: list[dict[str, Any]] | None = None
    outputs: list[dict[str, Any]] | None = None
    params: list[dict[str, Any]] | None = field(default=None)

    def to_dict(self) -> dict[str, str | None]:
        """The ``signature:`` block of ``MLmodel``: each part a JSON string or None."""
        return {name: None if part is None else json.dumps(part)
                for name, part in (("inputs", self.inputs), ("outputs", self.outputs), ("params", self.params))}

    @classmethod
    def from_dict(cls, block: object) -> ModelSignature:
        """Read the ``signature:`` block of an ``MLmodel`` (gitml's or MLflow's).

        Raises:
            ModelFormatError: a part is not a JSON list of specs.
        """
        from gitml.core.errors import ModelFormatError

        if not isinstance(block, dict):
            raise ModelFormatError("MLmodel 'signature' is not a mapping")
        parts: dict[str, list | None] = {}
        for name in ("inputs", "outputs", "params"):
            text = block.get(name)
            if text in (None, ""):
                parts[name] = None
                continue
            try:
                value = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                value = None
            if not isinstance(value, list) or not all(isinstance(spec, dict) for spec in value):
                raise ModelFormatError(f"MLmodel signature {name!r} is not a JSON list of specs")
            for spec in value if name != "params" else ():
                _check_spec(name, spec)
            parts[name] = value
        return cls(**parts)

    def is_tensor(self) -> bool:
        """Whether the inputs are tensor specs (else column specs, or no inputs)."""
        return bool(self.inputs) and self.inputs[0].get("type") == "tensor"


# MLflow's column types (mlflow.types.DataType), its complex ones, and "tensor"
SPEC_TYPES = frozenset({"boolean", "integer", "long", "float", "double", "string", "binary", "datetime",
                        "array", "object", "map", "any", "tensor"})


def _check_spec(part: str, spec: dict[str, Any]) -> None:
    """One input or output spec as MLflow writes it: a known ``type``; a tensor's dtype; a name as text.

    Raises:
        ModelFormatError: anything else (a model whose signature cannot be read is refused at
            load, not at its first predict).
    """
    from gitml.core.errors import ModelFormatError

    kind = spec.get("type")
    if kind not in SPEC_TYPES:
        raise ModelFormatError(f"MLmodel signature {part}: a spec has "
                               f"{'no type' if kind is None else f'the unknown type {kind!r}'}: {json.dumps(spec)[:120]}")
    if "name" in spec and not isinstance(spec["name"], (str, int)):
        raise ModelFormatError(f"MLmodel signature {part}: a spec's name is not text: {json.dumps(spec)[:120]}")
    if kind == "tensor":
        tensor = spec.get("tensor-spec")
        import numpy as np

        try:
            known = isinstance(tensor, dict) and isinstance(tensor.get("dtype"), str) and bool(np.dtype(tensor["dtype"]))
        except TypeError:
            known = False
        if not known or not isinstance(tensor.get("shape", []), list):
            raise ModelFormatError(f"MLmodel signature {part}: a tensor spec needs a numpy dtype and a shape list")


# -- inference -------------------------------------------------------------------------------------

def _column_type(series: Any) -> str:
    import numpy as np

    kind = series.dtype.kind
    if kind == "b":
        return "boolean"
    if kind in "iu":
        size = series.dtype.itemsize
        return "integer" if size < 4 or (size == 4 and kind == "i") else "long"
    if kind == "f":
        return "float" if series.dtype.itemsize <= 4 else "double"
    if kind == "M":
        return "datetime"
    values = [v for v in series.tolist() if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if values and all(isinstance(v, (bytes, bytearray)) for v in values):
        return "binary"
    if all(isinstance(v, str) for v in values):
        return "string"
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    raise BadInputError(f"cannot infer a column type for {series.name!r} (values of type "
                        f"{sorted({type(v).__name__ for v in values})})",
                        hint="pass signature= explicitly")


def _frame_specs(frame: Any) -> list[dict[str, Any]]:
    specs = []
    for name in frame.columns:
        column = frame[name]
        spec: dict[str, Any] = {"type": _column_type(column)}
        spec["name"] = name if isinstance(name, str) else int(name)
        spec["required"] = not bool(column.isna().any())
        specs.append(spec)
    return specs


def _as_frame(example: Any) -> Any:
    """A column-based example as a DataFrame (or None when it is tensor-based)."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, pd.Series):
        return example.to_frame()
    if isinstance(example, np.ndarray):
        return None
    if isinstance(example, list) and example and all(isinstance(row, dict) for row in example):
        return pd.DataFrame(example)
    if isinstance(example, dict):
        if all(np.ndim(v) == 0 for v in example.values()):
            return pd.DataFrame([example])
        return pd.DataFrame(example)
    if isinstance(example, list):
        return pd.DataFrame(example)
    raise BadInputError(f"cannot infer a signature from an example of type {type(example).__name__}",
                        hint="give a pandas DataFrame, a numpy array or a list of dicts, or pass signature=")


def _specs(example: Any) -> list[dict[str, Any]]:
    import numpy as np

    frame = _as_frame(example)
    if frame is not None:
        return _frame_specs(frame)
    array = np.asarray(example)
    return [{"type": "tensor", "tensor-spec": {"dtype": str(array.dtype), "shape": [-1, *array.shape[1:]]}}]


def _param_specs(params: dict[str, Any]) -> list[dict[str, Any]]:
    specs = []
    for name, value in params.items():
        shape = None
        sample = value
        if isinstance(value, (list, tuple)):
            shape, sample = [-1], (value[0] if value else "")
        kind = ("boolean" if isinstance(sample, bool) else "long" if isinstance(sample, int)
                else "double" if isinstance(sample, float) else "string" if isinstance(sample, str) else None)
        if kind is None:
            raise BadInputError(f"param {name!r}: cannot infer a type for {type(sample).__name__}")
        specs.append({"name": name, "type": kind, "default": list(value) if shape else value, "shape": shape})
    return specs


def infer_signature(model_input: Any, model_output: Any = None, params: dict[str, Any] | None = None
                    ) -> ModelSignature:
    """A signature from example input (and output, and params), by MLflow's rules.

    Args:
        model_input: a pandas DataFrame (or Series), a numpy array, a list of dicts, or a dict
            of columns.
        model_output: predictions on that input (an array, a Series, a DataFrame), or None.
        params: example inference params ``{name: default}`` (scalars or lists of them).

    Returns:
        The :class:`ModelSignature`: column specs for column-based input (a column with a
        missing value is ``required: false``), a tensor spec with the first dimension -1 for
        an array.

    Raises:
        BadInputError: the example's type or a column's values have no MLflow type.
    """
    inputs = _specs(model_input)
    outputs = None
    if model_output is not None:
        import numpy as np

        frame = _as_frame(model_input)
        if frame is not None and isinstance(model_output, np.ndarray) and model_output.ndim == 1:
            import pandas as pd

            specs = _frame_specs(pd.DataFrame({0: model_output}))
            outputs = [{k: v for k, v in spec.items() if k != "name"} for spec in specs]
        else:
            outputs = _specs(model_output)
    return ModelSignature(inputs, outputs, _param_specs(params) if params else None)


# -- enforcement -----------------------------------------------------------------------------------

def _cast_column(values: Any, name: object, kind: str) -> Any:
    """``values`` (a Series) as column type ``kind``, widening only where nothing is lost."""
    import numpy as np

    dtype = values.dtype
    have = dtype.kind
    if not len(values) and kind in _EMPTY_DTYPES:  # no values, nothing to lose: an empty batch reaches the model
        return values.astype(_EMPTY_DTYPES[kind])
    if kind in _FLOAT_TYPES:
        target = np.dtype(np.float32 if kind == "float" else np.float64)
        if dtype == target:
            return values
        if have == "f" and dtype.itemsize <= target.itemsize:
            return values.astype(target)
        if have in "iu":  # integers widen to floats, as MLflow's server casts them, when exactly
            widened = values.astype(target)
            exact = 2 ** (24 if kind == "float" else 53)
            numbers = values.to_numpy()
            if not len(numbers) or all(abs(int(n)) <= exact or int(w) == int(n)
                                       for n, w in zip(numbers.tolist(), widened.tolist(), strict=True)
                                       if abs(n) > exact):
                return widened
            raise SchemaError(f"column {name!r}: integers past 2**{53 if kind == 'double' else 24} would lose "
                              f"digits as {kind}")
    elif kind in _INT_TYPES:
        if have in "iu":
            limit = 4 if kind == "integer" else 8
            if dtype.itemsize <= limit and not (have == "u" and dtype.itemsize == limit):
                return values
    elif kind == "boolean":
        if have == "b":
            return values
        if have == "O" and all(isinstance(v, bool) for v in values.tolist() if v is not None):
            return values
    elif kind == "string":
        if have in "OUT" and all(isinstance(v, str) for v in values.tolist() if v is not None):
            return values
        if str(dtype) in ("string", "str"):
            return values
    elif kind == "binary":
        if have in "OS" and all(isinstance(v, (bytes, bytearray)) for v in values.tolist() if v is not None):
            return values
    elif kind == "datetime":
        if have == "M":
            if getattr(dtype, "tz", None) is not None:
                raise SchemaError(f"column {name!r}: datetimes with a time zone ({dtype.tz}) are not a datetime "
                                  "column's values: send them in UTC without an offset")
            return values.astype("datetime64[ns]")
    raise SchemaError(f"column {name!r}: can not safely convert {dtype} to {kind}")


def _enforce_columns(specs: list[dict[str, Any]], data: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.Series):
        data = data.to_frame()
    elif isinstance(data, dict):
        data = pd.DataFrame([data]) if all(np.ndim(v) == 0 for v in data.values()) else pd.DataFrame(data)
    elif isinstance(data, (list, np.ndarray)):
        data = pd.DataFrame(data)
    elif not isinstance(data, pd.DataFrame):
        raise SchemaError(f"expected a DataFrame, a dict of columns or a list of rows, got {type(data).__name__}")
    if data.columns.duplicated().any():
        raise SchemaError(f"the input names columns more than once: "
                          f"{sorted({str(c) for c in data.columns[data.columns.duplicated()]})}")
    named = all("name" in spec for spec in specs)
    if not named:
        if len(data.columns) != len(specs):
            raise SchemaError(f"model expects {len(specs)} columns, got {len(data.columns)}")
        out = data.copy()
        for column, spec in zip(list(data.columns), specs, strict=True):
            out[column] = _cast_column(data[column], column, spec["type"])
        return out
    names = [spec["name"] for spec in specs]
    missing = [spec["name"] for spec in specs if spec["name"] not in data.columns and spec.get("required", True)]
    if missing:
        extra = [c for c in data.columns if c not in names]
        note = f" Note that there were extra inputs: {extra}." if extra else ""
        raise SchemaError(f"Model is missing inputs {missing}.{note}")
    extra = [c for c in data.columns if c not in names]
    if extra:
        log.warning("dropping input columns the signature does not name: %s", extra)
    present = [spec for spec in specs if spec["name"] in data.columns]
    columns, same = {}, [spec["name"] for spec in present] == list(data.columns)
    if same and _numbers_as_specified(present, data):
        return data
    for spec in present:
        name = spec["name"]
        column = data[name]
        gaps = column.hasnans
        if gaps and spec.get("required", True):
            raise SchemaError(f"column {name!r} is required but has missing values")
        try:
            columns[name] = column if gaps and column.isna().all() else _cast_column(column, name, spec["type"])
        except (TypeError, ValueError, OverflowError) as exc:  # pandas refusing a cast is the input's fault
            raise SchemaError(f"column {name!r}: cannot read it as {spec['type']}: {exc}") from None
        same = same and columns[name] is column
    return data if same else pd.DataFrame(columns, index=data.index)  # one frame built, not one insert a column


def _numbers_as_specified(specs: list[dict[str, Any]], data: Any) -> bool:
    """Whether ``data`` already fits ``specs`` (one per column, in order) with nothing to cast.

    The common case for a scoring server (number columns of exactly the signature's dtypes)
    checked in one pass over the dtypes and one NaN scan of the values, instead of column by
    column; anything else (a cast, a gap in a required column) is left to the full check.
    """
    import numpy as np

    exact = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32}
    dtypes = data.dtypes.tolist()
    # (a lookup miss must not compare: numpy reads ``dtype == None`` as ``dtype == float64``)
    if not all(spec["type"] in exact and dtype == exact[spec["type"]]
               for spec, dtype in zip(specs, dtypes, strict=True)):
        return False
    if not any(dtype.kind == "f" for dtype in dtypes) or not any(spec.get("required", True) for spec in specs):
        return True
    return not np.isnan(data.to_numpy(dtype=np.float64)).any()


def _enforce_tensor(spec: dict[str, Any], data: Any) -> Any:
    import numpy as np
    import pandas as pd

    tensor = spec.get("tensor-spec") or {}
    want = np.dtype(tensor.get("dtype", "float64"))
    array = data.to_numpy() if isinstance(data, (pd.DataFrame, pd.Series)) else np.asarray(data)
    if array.dtype != want:
        widen = array.dtype.kind in "iu" and want.kind == "f" or (
            array.dtype.kind == want.kind and array.dtype.itemsize <= want.itemsize)
        if not widen:
            raise SchemaError(f"dtype of input {array.dtype} does not match expected dtype {want}")
        array = array.astype(want)
    shape = tensor.get("shape") or []
    if len(shape) != array.ndim or any(s != -1 and s != n for s, n in zip(shape, array.shape, strict=True)):
        raise SchemaError(f"Shape of input {array.shape} does not match expected shape {tuple(shape)}")
    return array


def enforce(signature: ModelSignature | None, data: Any) -> Any:
    """``data`` checked against (and cast to) the signature's inputs, as predict sees it.

    Column inputs: required columns must be there (else ``Model is missing inputs [...]``),
    columns the signature does not name are dropped, the rest put in the signature's order;
    integers widen to float columns, anything that would lose information (a float to an
    integer column, text to a number) is refused. Tensor inputs: the dtype must match or widen
    (int to float) and the shape match, -1 matching any size.

    Args:
        signature: the model's signature; None (or no inputs) checks nothing.
        data: the input (a DataFrame, a dict of columns, a list of rows, an array).

    Returns:
        The input as the model gets it: a DataFrame for column inputs, an array for tensors.

    Raises:
        SchemaError: the input does not fit, with the column or tensor named.
    """
    if signature is None or not signature.inputs:
        return data
    if signature.is_tensor():
        if len(signature.inputs) != 1:
            raise SchemaError("models with several named tensor inputs are not supported yet")
        return _enforce_tensor(signature.inputs[0], data)
    return _enforce_columns(signature.inputs, data)


def enforce_params(signature: ModelSignature | None, params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Inference params checked against the signature's params schema (MLflow's rules).

    Unknown params are dropped with a warning, missing ones take their default, and a value
    that cannot be converted to its type is refused.

    Raises:
        SchemaError: a param of the wrong type.
    """
    if not signature or not signature.params:
        if params:
            log.warning("the model has no params schema: ignoring params %s", sorted(params))
        return None
    given = dict(params or {})
    out: dict[str, Any] = {}
    for spec in signature.params:
        name = spec.get("name")
        if name not in given:
            out[name] = spec.get("default")
            continue
        value, kind = given.pop(name), spec.get("type")
        try:
            if kind in _INT_TYPES:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError
            elif kind in _FLOAT_TYPES:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError
                value = float(value)
            elif kind == "boolean" and not isinstance(value, bool):
                raise ValueError
            elif kind == "string" and not isinstance(value, str):
                raise ValueError
        except ValueError:
            raise SchemaError(f"param {name!r}: {value!r} is not of type {kind}") from None
        out[name] = value
    if given:
        log.warning("ignoring params the signature does not name: %s", sorted(given))
    return out
