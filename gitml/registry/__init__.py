"""Model registry: versions and stages as annotated git tags in GTO's grammar (DESIGN.md §4)."""

from gitml.registry.ops import (
    assign,
    deprecate,
    deregister,
    history,
    problems,
    register_model,
    resolve_model_uri,
    show,
    unassign,
    which,
)

__all__ = ["assign", "deprecate", "deregister", "history", "problems", "register_model", "resolve_model_uri", "show",
           "unassign", "which"]
