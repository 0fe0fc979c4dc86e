"""Artifacts: content-addressed bytes kept out of git (DESIGN.md §3).

The public API (``gitml.artifacts.push``, ``pull``, ``download``, ``status``, ``ls``, ``verify``,
``gc``, ``add_remote``, ``list_remotes``, ``remove_remote``) is imported lazily: fsspec loads
only when an artifact command runs.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    **dict.fromkeys(("push", "pull", "download", "status", "ls", "verify", "gc", "referenced_objects"),
                    "gitml.artifacts.transfer"),
    **dict.fromkeys(("add_remote", "list_remotes", "remove_remote"), "gitml.artifacts.remotes"),
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'gitml.artifacts' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
