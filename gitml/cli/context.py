"""What every command gets from the ``gitml`` group: the directory to work in, and a Workspace.

``-C PATH`` is taken as git takes it — the repository is found from ``PATH`` and relative paths
on the command line are read from ``PATH`` — without changing the process's directory: a
command opens one :class:`~gitml.core.workspace.Workspace` with :func:`workspace`, passes it to
the service it calls, and turns relative path arguments into paths with :func:`path_arg`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # typing only: importing the Workspace loads dulwich, which `gitml --help` must not
    from gitml.core.workspace import Workspace


def _given_dir() -> str | None:
    """``-C``'s directory (absolute) as the ``gitml`` group stored it, or None without ``-C``."""
    ctx = click.get_current_context(silent=True)
    return (ctx.find_root().obj or {}).get("directory") if ctx else None


def base_dir() -> Path:
    """The directory the command works in: ``-C``'s, else the current one.

    Returns:
        An absolute path.
    """
    given = _given_dir()
    return Path(given) if given else Path.cwd()


def path_arg(value: str | os.PathLike) -> Path:
    """A path given on the command line, read from ``-C``'s directory when it is relative.

    Without ``-C`` a relative path is kept as typed (the current directory reads it), so that
    messages name it as the user wrote it.

    Args:
        value: the path as typed; ``~`` is expanded.

    Returns:
        An absolute path, ``-C``'s directory joined with a relative one, or the relative path
        as typed without ``-C``.
    """
    path = Path(os.path.expanduser(os.fspath(value)))
    given = _given_dir()
    return path if path.is_absolute() or not given else Path(given) / path


@contextlib.contextmanager
def workspace() -> Iterator[Workspace]:
    """Open the Workspace of :func:`base_dir`'s repository for this command, and close it after.

    Yields:
        The open workspace, to pass to the service the command calls.

    Raises:
        NotARepositoryError: that directory is not inside a git work tree.
    """
    from gitml.core.workspace import open_workspace

    with open_workspace(base_dir()) as ws:
        yield ws
