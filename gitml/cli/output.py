"""Rendering shared by commands: a table for people, JSON and CSV for scripts."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from gitml.core.errors import BadInputError
from gitml.core.ids import printable


def output_options(func: Callable) -> Callable:
    """Add ``--json`` and ``--csv`` to a command (a table is the default).

    Args:
        func: the command's function; it receives the flags as ``as_json`` and ``as_csv``.

    Returns:
        The function with both click options attached (a decorator).
    """
    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("as_json") and kwargs.get("as_csv"):
            raise BadInputError("--json and --csv: choose one")
        return func(*args, **kwargs)

    checked = click.option("--csv", "as_csv", is_flag=True, help="Write CSV.")(checked)
    return click.option("--json", "as_json", is_flag=True, help="Write JSON (stable, documented).")(checked)


_FLOAT_MAX_INT = 2**53


def _cell(value: Any) -> Any:
    """A table cell: floats to 6 significant digits, huge ints as text, strings made printable."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return float(f"{value:.6g}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _FLOAT_MAX_INT:
        return str(value)  # exact, and tabulate would try to turn it into a float
    if isinstance(value, str):
        return printable(value)
    return "" if value is None else value


def echo_json(data: Any) -> None:
    """Write ``data`` to stdout as indented JSON with sorted keys.

    Args:
        data: JSON-ready data; NaN and infinities must already be strings.

    Raises:
        ValueError: ``data`` holds a NaN or an infinity (``allow_nan=False``).
    """
    click.echo(json.dumps(data, indent=2, sort_keys=True, allow_nan=False))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], as_csv: bool = False,
               keep_spaces: bool = False) -> None:
    """Write rows to stdout as a table for people (tabulate's default format) or as CSV.

    Args:
        headers: the column names.
        rows: the rows, one value per column; the table shows text escaped to one line and
            floats to 6 significant digits, the CSV the values as they are.
        as_csv: write CSV instead of the table.
        keep_spaces: keep the cells' leading spaces (tabulate strips them): a tree's indent.
    """
    if as_csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return
    from tabulate import tabulate

    # tabulate reads text that looks like a number as one and reformats it: a run id 12345e12
    # would show as 1.2345e+16, the text "1e3" as 1000, an int of 400 digits as inf. A column
    # holding such text is shown verbatim (right-aligned when all of it is numbers).
    verbatim, align = [], []
    for column in range(len(headers)):
        values = [row[column] for row in rows if column < len(row)]
        exact = any(_numeric_text(v) or _huge_int(v) for v in values)
        numeric = all(v is None or v == "" or _numeric_text(v) or _is_number(v) for v in values)
        if exact:
            verbatim.append(column)
        align.append(("right" if numeric else "left") if exact else "global")
    click.echo(tabulate([[_cell(c) for c in row] for row in rows], headers=list(headers),
                        disable_numparse=verbatim or False, colalign=align if verbatim else None,
                        preserve_whitespace=keep_spaces))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _huge_int(value: Any) -> bool:
    return _is_number(value) and isinstance(value, int) and abs(value) > _FLOAT_MAX_INT


def _numeric_text(value: Any) -> bool:
    """Whether ``value`` is text that tabulate would read as a number (and so reformat)."""
    if not isinstance(value, str):
        return False
    for kind in (float, int):
        try:
            kind(value)
            return True
        except ValueError:
            pass
    return False
