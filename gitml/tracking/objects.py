"""Python objects as artifact bytes: what ``log_dict``, ``log_text``, ``log_figure``, … store.

These are MLflow's fluent helpers of the same names (``log_image``, ``log_table`` too).

Each function turns an object into the bytes of one file, chosen by the artifact's extension,
and raises :class:`~gitml.core.errors.BadInputError` for an object or an extension it cannot
write: nothing is stored then. The libraries an object comes from (matplotlib, plotly,
Pillow, numpy, pandas) are imported only when such an object is given.

Formats (MLflow's, so that a file logged by either tool reads the same):

- dict: ``.json`` (indented 2, keys in the order given) or ``.yaml``/``.yml`` (block style,
  keys sorted, as MLflow's ``yaml.dump``); anything else, or a value neither holds, is refused
  (MLflow writes JSON for any extension and turns what JSON cannot hold into its ``str``);
- text: UTF-8;
- figure: a matplotlib ``Figure`` in any format its canvas writes (``.png``, ``.svg``,
  ``.pdf``, …); a plotly figure as ``.html`` (self-contained: plotly.js inline, no network to
  view it) or, with kaleido installed, a static image;
- image: PNG (or another format Pillow writes, by extension) from a PIL image or an array of
  shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``: integers 0–255, or floats
  0–1 (scaled by 255);
- table: JSON ``{"columns": [...], "data": [[...], ...]}`` (pandas' ``split`` orient without
  the index) or Parquet, from a DataFrame or a dict of columns; logged again under the same
  name in the same run, the rows are appended.
"""

from __future__ import annotations

import io
import json
import posixpath
from typing import Any

from gitml.core.errors import BadInputError

DICT_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}
THUMBNAIL = 256  # pixels, the longer side of a stepped image's preview (MLflow's size)


def extension(artifact_file: str) -> str:
    """The artifact's lower-case extension with its dot (``""`` when it has none)."""
    return posixpath.splitext(artifact_file)[1].lower()


def dict_bytes(dictionary: Any, artifact_file: str) -> bytes:
    """``dictionary`` as JSON or YAML, by ``artifact_file``'s extension.

    Raises:
        BadInputError: not a mapping; another extension; a value JSON or YAML cannot hold.
    """
    if not isinstance(dictionary, dict):
        raise BadInputError(f"log_dict needs a dict, not {type(dictionary).__name__}")
    kind = DICT_FORMATS.get(extension(artifact_file))
    if kind is None:
        raise BadInputError(f"log_dict writes .json, .yaml or .yml files, not {artifact_file!r}")
    if kind == "json":
        try:
            return json.dumps(dictionary, indent=2, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"log_dict: cannot write {artifact_file!r} as JSON: {exc}") from None
    import yaml

    try:
        return yaml.safe_dump(dictionary, indent=2, default_flow_style=False).encode("utf-8")
    except yaml.YAMLError as exc:
        raise BadInputError(f"log_dict: cannot write {artifact_file!r} as YAML: {exc}") from None


def text_bytes(text: Any) -> bytes:
    """``text`` as UTF-8.

    Raises:
        BadInputError: not a string, or one holding lone surrogates.
    """
    if not isinstance(text, str):
        raise BadInputError(f"log_text needs a str, not {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadInputError(f"log_text: the text is not valid Unicode: {exc.reason}") from None


def _library(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


PLOTLY_IMAGES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".svg", ".pdf"})  # what plotly's to_image writes


def figure_bytes(figure: Any, artifact_file: str) -> bytes:
    """A matplotlib or plotly figure as the file ``artifact_file`` names.

    Raises:
        BadInputError: another kind of object; a format the figure's library does not write
            (a plotly static image without kaleido names it).
    """
    ext = extension(artifact_file)
    library = _library(figure)
    if library == "matplotlib" and hasattr(figure, "savefig"):
        supported = figure.canvas.get_supported_filetypes()
        if ext[1:] not in supported:
            raise BadInputError(f"log_figure: matplotlib cannot write {artifact_file!r}; use one of "
                                f"{', '.join('.' + name for name in sorted(supported))}")
        out = io.BytesIO()
        figure.savefig(out, format=ext[1:])
        return out.getvalue()
    if library == "plotly" and hasattr(figure, "to_html"):
        if ext == ".html":
            return figure.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
        if ext not in PLOTLY_IMAGES:
            raise BadInputError(f"log_figure: plotly cannot write {artifact_file!r}; use .html, or with kaleido "
                                + ", ".join(sorted(PLOTLY_IMAGES)))
        try:
            return figure.to_image(format=ext[1:])
        except (ValueError, RuntimeError, ImportError) as exc:  # no kaleido (its word varies), no such format
            raise BadInputError(f"log_figure: plotly cannot write {artifact_file!r}: "
                                f"{str(exc).strip().splitlines()[0]}",
                                hint="use a .html file, or pip install kaleido for static images") from None
    raise BadInputError(f"log_figure takes a matplotlib or plotly figure, not {type(figure).__name__}")


def pil_image(image: Any) -> Any:
    """``image`` (a PIL image, or an array as the module says) as a PIL image.

    Raises:
        BadInputError: Pillow is not installed; not an image or array; an array of another
            shape, or with values outside 0–255 (integers) or 0–1 (floats).
    """
    try:
        from PIL import Image
    except ImportError:
        raise BadInputError("log_image needs Pillow: pip install pillow") from None
    return image if isinstance(image, Image.Image) else Image.fromarray(_image_array(image))


def image_bytes(image: Any, artifact_file: str) -> bytes:
    """A PIL image or an image array as the file ``artifact_file`` names (PNG, JPEG, WebP, …).

    Raises:
        BadInputError: as :func:`pil_image`; an extension Pillow does not write.
    """
    from PIL import Image

    image = pil_image(image)
    fmt = Image.registered_extensions().get(extension(artifact_file))
    if fmt is None or fmt not in Image.SAVE:
        raise BadInputError(f"log_image: Pillow cannot write {artifact_file!r}; use .png, .jpg, .webp, …")
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # JPEG has no alpha
    out = io.BytesIO()
    try:
        image.save(out, format=fmt)
    except (OSError, ValueError) as exc:  # a mode the format has no room for (F, CMYK as PNG)
        raise BadInputError(f"log_image: cannot write a {image.mode} image as {artifact_file!r}: {exc}") from None
    return out.getvalue()


def thumbnail_bytes(image: Any, size: int = THUMBNAIL) -> bytes:
    """The WebP preview MLflow's UI shows for a stepped image: its longer side ``size`` pixels."""
    image = pil_image(image)
    width, height = image.size
    scale = size / max(width, height)
    out = io.BytesIO()
    image.resize((max(1, int(width * scale)), max(1, int(height * scale)))).save(out, format="WEBP")
    return out.getvalue()


def _image_array(image: Any) -> Any:
    import numpy as np

    if _library(image) != "numpy" or not isinstance(image, np.ndarray):
        raise BadInputError(f"log_image takes a PIL image or a numpy array, not {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or image.ndim == 3 and image.shape[2] in (3, 4)) or 0 in image.shape:
        raise BadInputError(f"log_image: an array of shape {image.shape} is not an image; "
                            "give (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    if image.dtype.kind == "b":
        return image.astype(np.uint8) * 255
    if image.dtype.kind in "iu":
        if image.min() < 0 or image.max() > 255:
            raise BadInputError("log_image: integer pixels must be 0–255")
        return image.astype(np.uint8)
    if image.dtype.kind == "f":
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise BadInputError("log_image: float pixels must be 0–1")
        return np.round(image * 255).astype(np.uint8)
    raise BadInputError(f"log_image: pixels of dtype {image.dtype} are not an image")


def table_bytes(data: Any, artifact_file: str, earlier: bytes | None = None) -> bytes:
    """A table as MLflow writes one: after the rows ``earlier`` holds (same file, same run).

    JSON is pandas' ``split`` orient without the index, dates in ISO 8601; Parquet is
    ``DataFrame.to_parquet(index=False)`` (pyarrow).

    Args:
        data: a pandas DataFrame, or a dict of columns (or of scalars: one row).
        artifact_file: a ``.json`` or ``.parquet`` path.
        earlier: the file as this run logged it before: its rows come first, as MLflow appends.

    Raises:
        BadInputError: pandas is not installed; another extension; not a table; columns of
            different lengths; values the format cannot hold.
    """
    ext = extension(artifact_file)
    if ext not in (".json", ".parquet"):
        raise BadInputError(f"log_table writes a .json or .parquet file, not {artifact_file!r}")
    try:
        import pandas as pd
    except ImportError:
        raise BadInputError("log_table needs pandas: pip install pandas") from None
    if isinstance(data, dict):
        try:
            data = pd.DataFrame(data)
        except ValueError:
            try:
                data = pd.DataFrame([data])  # all scalars: one row, as MLflow reads it
            except ValueError as exc:
                raise BadInputError(f"log_table: the dict is not a table: {exc}") from None
    if not isinstance(data, pd.DataFrame):
        raise BadInputError(f"log_table takes a pandas DataFrame or a dict of columns, not {type(data).__name__}")
    if earlier is not None:
        try:
            before = pd.read_json(io.BytesIO(earlier), orient="split") if ext == ".json" else pd.read_parquet(
                io.BytesIO(earlier))
        except Exception as exc:  # noqa: BLE001 - pandas' and pyarrow's errors share no base
            raise BadInputError(f"log_table: this run's {artifact_file!r} is not a table to append to: "
                                f"{type(exc).__name__}: {exc}") from None
        data = pd.concat([before, data], ignore_index=True)
    out = io.BytesIO()
    try:
        if ext == ".json":
            data.to_json(out, orient="split", index=False, date_format="iso")
        else:
            data.to_parquet(out, index=False)
    except ImportError as exc:
        raise BadInputError(f"log_table: writing Parquet needs {exc.name or 'pyarrow'}: pip install pyarrow") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadInputError(f"log_table: cannot write {artifact_file!r}: {exc}") from None
    return out.getvalue()
