"""Model registry: versions and stages as annotated git tags in GTO's grammar (DESIGN.md §4).

Every function takes ``repo=``: a :class:`~gitml.core.workspace.Workspace`, an open repository
or a path. Writes return :class:`Registration`, :class:`StageChange` or :class:`Withdrawal`;
:func:`which` returns a :class:`ModelVersionInfo`; :func:`show` and :func:`history` return the
registry state's own :class:`~gitml.core.registry.ModelState` and
:class:`~gitml.core.registry.Event`.
"""

from gitml.registry.ops import (
    assign,
    deprecate,
    deregister,
    history,
    overview,
    problems,
    register_model,
    resolve_model_uri,
    show,
    unassign,
    which,
)
from gitml.registry.results import ModelVersionInfo, Overview, Registration, StageChange, Withdrawal

__all__ = ["ModelVersionInfo", "Overview", "Registration", "StageChange", "Withdrawal", "assign", "deprecate", "deregister",
           "history", "overview", "problems", "register_model", "resolve_model_uri", "show", "unassign", "which"]
