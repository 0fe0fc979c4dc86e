"""Artifacts: content-addressed bytes kept out of git (DESIGN.md §3).

The public API is imported lazily, so fsspec loads only when an artifact command runs:

- moving bytes (:mod:`gitml.artifacts.transfer`): ``push``, ``status``, ``pull``, ``download``,
  ``ls``, ``referenced_objects``, and the types they return (``TransferResult``,
  ``StatusReport``, ``ObjectStatus``, ``ObjectRef``) and take (``Progress``);
- keeping the stores honest (:mod:`gitml.artifacts.maintenance`): ``verify``, ``gc``, and what
  they return (``VerifyReport``, ``GcReport``);
- remotes (:mod:`gitml.artifacts.remotes`): ``add_remote``, ``list_remotes``, ``remove_remote``;
- a verified local copy to open (:mod:`gitml.artifacts.local`): ``materialize``.

Every function takes ``repo=``: a :class:`~gitml.core.workspace.Workspace`, an open repository
or a path. This package imports only :mod:`gitml.core` and its own modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    **dict.fromkeys(("push", "pull", "download", "status", "ls", "referenced_objects", "TransferResult",
                     "StatusReport", "ObjectStatus", "ObjectRef", "Progress"), "gitml.artifacts.transfer"),
    **dict.fromkeys(("verify", "gc", "VerifyReport", "GcReport"), "gitml.artifacts.maintenance"),
    **dict.fromkeys(("add_remote", "list_remotes", "remove_remote"), "gitml.artifacts.remotes"),
    "materialize": "gitml.artifacts.local",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562); ``AttributeError`` for any other name."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'gitml.artifacts' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The public names, for ``dir(gitml.artifacts)`` and completion, before any is imported (PEP 562)."""
    return sorted(__all__)
