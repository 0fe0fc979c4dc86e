"""Public home of gitml's error hierarchy (defined in :mod:`gitml.core.errors`)."""

from gitml.core.errors import (
    BadInputError,
    ConcurrencyError,
    CorruptRunError,
    DirtyWorktreeError,
    GateFailedError,
    GitmlError,
    InternalError,
    MissingObjectError,
    NoRunError,
    NotARepositoryError,
    NoVersionError,
    RemoteError,
    RunNotFoundError,
    StaleLockError,
)

__all__ = [
    "BadInputError",
    "ConcurrencyError",
    "CorruptRunError",
    "DirtyWorktreeError",
    "GateFailedError",
    "GitmlError",
    "InternalError",
    "MissingObjectError",
    "NoRunError",
    "NotARepositoryError",
    "NoVersionError",
    "RemoteError",
    "RunNotFoundError",
    "StaleLockError",
]
