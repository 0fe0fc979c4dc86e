"""Diff: what changed in params and metrics between revisions, branches or runs.

``gitml.diff`` is both this package and the function users call (``gitml.diff("main",
"feature")``, as the issue and MLflow-style APIs read): the module is made callable so that
``from gitml.diff import NoRunError`` and ``gitml.diff(...)`` both work.
"""

import sys
import types

from gitml.diff.compare import DiffResult, Row, compare, diff
from gitml.diff.sides import NoRunError, Side

__all__ = ["DiffResult", "NoRunError", "Row", "Side", "compare", "diff"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> DiffResult:
        return diff(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
