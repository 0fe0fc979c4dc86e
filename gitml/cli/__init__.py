"""The ``gitml`` command line: a thin shell over the Python API (DESIGN.md §6)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Console entry point; exits with the command's exit code.

    The pre-push hook's path is dispatched before click is even imported.

    Args:
        argv: the arguments after ``gitml`` (default: ``sys.argv[1:]``).
    """
    args = sys.argv[1:] if argv is None else argv
    if args[:2] == ["hooks", "pre-push"] and "--help" not in args and "-h" not in args:
        from gitml.cli.prepush import run_pre_push

        sys.exit(run_pre_push(args[2:]))
    from gitml.cli.main import main as run

    run(args)


__all__ = ["main"]
