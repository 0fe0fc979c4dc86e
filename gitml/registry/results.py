"""What the registry's operations return: one small dataclass per kind of answer.

Each has ``to_dict()``, the plain mapping scripts read (``gitml registry which --json`` prints
:meth:`ModelVersionInfo.to_dict`). Tag names follow GTO's tag grammar (:mod:`gitml.core.tags`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitml.core.registry import ModelSummary


@dataclass(frozen=True)
class Registration:
    """A version just registered (by :func:`gitml.registry.register_model`).

    Attributes:
        model: the model name (``churn``, ``nlp/sentiment``).
        version: the version registered, semver with a ``v`` (``v0.1.0``).
        tag: the tag created, ``<model>@<version>``.
        run: the full id of the run whose artifact the version is.
        path: that artifact's logical path in the run (``model.pkl``).
        commit: the code commit the tag points at (the run's source commit).
        warnings: what the registration went ahead despite, one sentence each: the run was
            made from a dirty work tree (``run 1a2b3c4d was made from a dirty work tree: the
            version records its patch``), or its bytes equal another version's (``same bytes
            as churn v0.0.1``). The CLI prints them on stderr.
    """

    model: str
    version: str
    tag: str
    run: str
    path: str
    commit: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{model, version, tag, run, path, commit}``, and ``warnings`` when there are any."""
        out = asdict(self)
        if not self.warnings:
            del out["warnings"]
        return out


@dataclass(frozen=True)
class StageChange:
    """A stage given to a version or taken from it.

    Returned by :func:`~gitml.registry.assign` and :func:`~gitml.registry.unassign`.

    Attributes:
        model: the model name.
        version: the version whose stage changed (``v0.1.0``).
        stage: the stage (``prod``).
        tag: the tag created: ``<model>#<stage>#<counter>`` for an assignment,
            ``<model>#<stage>!#<counter>`` for an unassignment.
        counter: the model's stage-event counter the tag took (1 for its first stage event).
    """

    model: str
    version: str
    stage: str
    tag: str
    counter: int

    def to_dict(self) -> dict[str, Any]:
        """``{model, version, stage, tag, counter}``."""
        return asdict(self)


@dataclass(frozen=True)
class Withdrawal:
    """A version deregistered, or a whole model deprecated.

    Returned by :func:`~gitml.registry.deregister` and :func:`~gitml.registry.deprecate`.

    Attributes:
        model: the model name.
        version: the version deregistered; None when the whole model was deprecated.
        tag: the tag created: ``<model>@<version>!`` or ``<model>@deprecated``.
    """

    model: str
    version: str | None
    tag: str

    def to_dict(self) -> dict[str, Any]:
        """``{model, version, tag}``, or ``{model, tag}`` for a deprecation."""
        out = asdict(self)
        if self.version is None:
            del out["version"]
        return out


@dataclass(frozen=True)
class ModelVersionInfo:
    """What a reference such as ``churn@prod`` resolves to (:func:`~gitml.registry.which`).

    Attributes:
        model: the model name.
        version: the version the reference stands for (``v0.1.0``).
        stages: every stage the version carries now, sorted.
        commit: the code commit its register tag points at.
        run: the full id of the run whose artifact the version is; None for a version tagged
            without gitml's metadata (by GTO or by hand) whose commit has no finished run with
            exactly one artifact.
        path: the artifact's logical path in that run, None with ``run``.
        sha256: the artifact's digest as the register tag records it (None without gitml's
            metadata).
        uri: ``runs:/<run>/<path>``, where the artifact can be fetched; None without a run.
    """

    model: str
    version: str
    stages: list[str]
    commit: str
    run: str | None
    path: str | None
    sha256: str | None
    uri: str | None

    def to_dict(self) -> dict[str, Any]:
        """``{model, version, stages, commit, run, path, sha256, uri}``: what ``--json`` prints."""
        return asdict(self)


@dataclass(frozen=True)
class Overview:
    """Every model at a glance (by :func:`gitml.registry.overview`): what ``gitml registry show`` lists.

    Attributes:
        models: each model's state now (name, latest, deprecated, stages, versions), by name.
        problems: the tags that look like registry events but are not, one sentence each, in
            tag name order (as :func:`gitml.registry.problems` gives them).
    """

    models: list[ModelSummary]
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``models`` (each one's ``to_dict()``) and ``problems``."""
        return {"models": [m.to_dict() for m in self.models], "problems": list(self.problems)}
