"""The ``gitml`` command line: a thin shell over the Python API (DESIGN.md §6)."""

from gitml.cli.main import main

__all__ = ["main"]
