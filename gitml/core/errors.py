"""The one error hierarchy of gitml.

Every error a user can act on is a :class:`GitmlError` carrying a message, an optional hint and
the exit code the CLI uses for it (1 = failure or gate, 2 = usage or bad input, 3 = internal). The
CLI turns it into a single line on stderr; the library never prints. docs/cli.md lists every class
with its code.
"""

from __future__ import annotations


class GitmlError(Exception):
    """Base of every error gitml raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class BadInputError(GitmlError, ValueError):
    """The user gave something gitml cannot accept: a bad key, value, path, file or expression."""

    exit_code = 2


class NotARepositoryError(BadInputError):
    """The path is not inside a git repository with a work tree."""


class RunNotFoundError(BadInputError, LookupError):
    """No run (or more than one run) matches an id or prefix."""


class ExperimentNotFoundError(BadInputError, LookupError):
    """No experiment has this name or id."""


class CorruptRunError(GitmlError):
    """A file on the runs ref cannot be read as the format says."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(f"run {run_id}: {message}" if run_id else message)
        self.run_id = run_id


class ConcurrencyError(GitmlError):
    """A ref update kept losing races past the retry bound."""


class StaleLockError(ConcurrencyError):
    """A lock file was left behind by a process that died while updating a ref."""

    def __init__(self, lock_path: str, age: float) -> None:
        super().__init__(
            f"{lock_path} has been held for {age:.0f} s: a gitml or git process was probably killed "
            "while updating that ref",
            hint=f"if no gitml or git command is running in this repository, remove it: rm '{lock_path}'",
        )
        self.lock_path = lock_path


class RemoteError(GitmlError):
    """A remote (a git remote or an artifact remote) could not be reached or refused an operation."""


class MissingObjectError(GitmlError):
    """An object a ref leads to is not in the repository (corruption, or objects removed under us)."""

    def __init__(self, sha: str, where: str) -> None:
        super().__init__(
            f"object {sha} is missing from the repository while {where}: the repository may be corrupt",
            hint="run `git fsck --full`; a `gitml fetch` from a remote that has it may bring it back",
        )
        self.sha = sha


class InternalError(GitmlError):
    """Something that should not happen: a bug in gitml, or git crashing or killed by a signal."""

    exit_code = 3


class DirtyWorktreeError(GitmlError):
    """The work tree has uncommitted changes and a clean one was required."""


class NoRunError(GitmlError):
    """A revision has no finished run in reach, so there is nothing to compare (exit 1).

    Not raised for a run id that matches nothing: that is bad input, :class:`RunNotFoundError`
    (exit 2). ``gitml.diff.NoRunError`` is this class.
    """


class NoVersionError(GitmlError):
    """A model exists but no live version answers the question now (exit 1).

    No version holds the stage asked for, or every version is deregistered (``@latest``): what
    was named exists and holds nothing, as a revision with no run in reach
    (:class:`NoRunError`).

    A model or version that does not exist at all is bad input (:class:`BadInputError`, exit 2),
    as a run id that matches no run is (:class:`RunNotFoundError`).
    """


class GateFailedError(GitmlError):
    """A check the user asked to fail on did: a metric regressed beyond its goal's tolerance.

    Raised by ``gitml diff --fail-on-regression``; exit code 1, like any failed operation.
    """


class SchemaError(BadInputError):
    """Model input does not fit the model's signature (exit 2; HTTP 400 from ``gitml models serve``).

    A required column is missing, a value cannot be cast to its column's type without loss (a
    float to an integer column, text to a number), or a tensor's type or shape differs. The
    message says which column or tensor, in the words MLflow uses for the same check.
    """


class ModelFormatError(BadInputError):
    """A model folder cannot be loaded (exit 2).

    It has no ``MLmodel`` or a malformed one, names an unknown flavor or serialization format,
    or its model file is missing or unreadable.
    """


class TamperedError(GitmlError):
    """A local copy of an artifact no longer matches the sha256 its run recorded (exit 1).

    Raised before anything opens it: a model whose bytes changed is never loaded.
    """
