"""Managing artifact remotes from the API and CLI (the format lives in :mod:`gitml.core.remotes`)."""

from __future__ import annotations

from gitml.core import remotes as _remotes
from gitml.core.gitrepo import RepoLike, open_repo
from gitml.core.remotes import Remote


def add_remote(name: str, url: str, options: dict[str, str] | None = None, default: bool = False,
               local: bool = False, repo: RepoLike = None) -> Remote:
    """Add or replace a remote: in gitml.yaml (team), or in git config with ``local=True``.

    Example: ``add_remote("storage", "s3://bucket/ml", {"endpoint_url": "http://127.0.0.1:9000"})``.
    """
    with open_repo(repo) as git:
        return _remotes.add_remote(git, name, url, options, default=default, local=local)


def list_remotes(repo: RepoLike = None) -> list[Remote]:
    """Every configured remote (team and local), with which one is the default."""
    with open_repo(repo) as git:
        return _remotes.list_remotes(git)


def remove_remote(name: str, repo: RepoLike = None) -> None:
    """Remove a remote from gitml.yaml and git config."""
    with open_repo(repo) as git:
        _remotes.remove_remote(git, name)
