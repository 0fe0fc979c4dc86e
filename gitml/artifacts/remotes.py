"""Managing artifact remotes from the API and the CLI.

The format (``gitml.yaml``'s ``remotes:``, git config's ``[gitml "remote.NAME"]``) and the rules
for credentials live in :mod:`gitml.core.remotes`. A :class:`Remote` holds the real values,
since backends need them; pass ``masked=True`` for what is fit to show, credentials as ``***``.
"""

from __future__ import annotations

from gitml.core import remotes as _remotes
from gitml.core.remotes import Remote
from gitml.core.workspace import WorkspaceLike, open_workspace


def add_remote(name: str, url: str, options: dict[str, object] | None = None, default: bool = False,
               local: bool = False, repo: WorkspaceLike = None, *, masked: bool = False) -> Remote:
    """Add a remote, or replace the one of that name, in gitml.yaml (team) or git config (personal).

    Example: ``add_remote("storage", "s3://bucket/ml", {"endpoint_url": "http://127.0.0.1:9000"})``.

    Args:
        name: 1 to 64 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit.
        url: any fsspec URL; a relative folder is relative to the work tree root.
        options: fsspec storage options; text values are typed (``"true"`` -> True, ``"3"`` -> 3).
        default: make it the default remote, in the place it is written to.
        local: write to the repository's git config (never committed) instead of gitml.yaml.
        repo: a Workspace, an open repository or a path.
        masked: return the remote with its credentials shown as ``***`` (for display).

    Returns:
        The remote as it now reads, merged with the other place it may also be configured in.
        Its ``warnings`` (a list of sentences, for the caller to show) name a folder on this
        machine (absolute, ``~/…``, ``file://``) written to the committed gitml.yaml.

    Raises:
        BadInputError: a bad name or an empty URL; or, for gitml.yaml, a credential in the URL
            or the options. Nothing is written then.
    """
    with open_workspace(repo) as ws:
        remote = _remotes.add_remote(ws.repo, name, url, options, default=default, local=local)
    return _remotes.masked(remote) if masked else remote


def list_remotes(repo: WorkspaceLike = None, *, masked: bool = False) -> list[Remote]:
    """Every configured remote, team and personal merged, sorted by name.

    Args:
        repo: a Workspace, an open repository or a path.
        masked: return copies with credentials (in URLs, in options named like secrets) shown
            as ``***``, fit to print; by default the real values, which backends need.

    Returns:
        The remotes; ``default`` is set on the one commands use when none is named.

    Raises:
        BadInputError: gitml.yaml's ``remotes:`` cannot be read (a bad name, no URL).
    """
    with open_workspace(repo) as ws:
        found = ws.remotes()
    return [_remotes.masked(r) for r in found] if masked else found


def remove_remote(name: str, repo: WorkspaceLike = None) -> None:
    """Remove a remote from gitml.yaml and git config, and forget it as a default.

    Objects on the remote are not touched.

    Args:
        name: the remote's name.
        repo: a Workspace, an open repository or a path.

    Raises:
        BadInputError: no remote of that name.
    """
    with open_workspace(repo) as ws:
        _remotes.remove_remote(ws.repo, name)
