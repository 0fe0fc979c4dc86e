"""``gitml reproduce``: run a past run again from its record and compare the numbers.

The run's record says everything needed: the project (``project.uri``, ``.`` for this
repository), the source commit and the uncommitted patch, the entry point, the resolved
parameters and the environment manager. The reproduction checks out that commit in a temporary
worktree, applies the patch, rebuilds (or finds) the environment, runs the entry point with the
same parameters, and is committed as a new run tagged ``reproduces=<id>``. Its metrics are then
compared with the original's: a metric differs when ``|new - old| > tolerance * max(1, |old|)``
(absolute near zero, relative for large values), or when it is missing, or NaN on one side only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gitml.core.errors import BadInputError
from gitml.core.formats import Run
from gitml.core.workspace import WorkspaceLike, open_workspace
from gitml.diff.compare import DiffResult, compare
from gitml.projects.run import ProjectRun, run_project
from gitml.tracking.query import get_run

REPRODUCES_TAG = "reproduces"


@dataclass
class Reproduction:
    """What :func:`reproduce` found.

    Attributes:
        original: the run reproduced.
        project_run: the reproduction (its ``run`` is committed, tagged ``reproduces``).
        diff: the metrics of the two side by side (:func:`gitml.compare`).
        differing: the metrics that differ beyond the tolerance (or are missing on one side).
        warnings: what is worth saying (the environment's hash changed since the original).
    """

    original: Run
    project_run: ProjectRun
    diff: DiffResult
    differing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        """Whether it finished and every metric matched within the tolerance."""
        return self.project_run.run.status == "FINISHED" and not self.differing


def _differs(old: float | None, new: float | None, tolerance: float) -> bool:
    if old is None or new is None:
        return True
    if math.isnan(old) or math.isnan(new):
        return math.isnan(old) != math.isnan(new)
    if math.isinf(old) or math.isinf(new):
        return old != new
    return abs(new - old) > tolerance * max(1.0, abs(old))


def reproduce(run: str, tolerance: float = 1e-6, env_manager: str | None = None, repo: WorkspaceLike = None,
              stream: bool = True, log=None) -> Reproduction:
    """Re-run ``run`` from its recorded commit, patch, entry point, parameters and environment.

    Args:
        run: a run id or unique prefix of a run made by ``gitml run``.
        tolerance: how far a metric may move (see the module's rule); 0 asks for equality.
        env_manager: override the recorded environment manager (default: the recorded one).
        repo: a Workspace, an open repository or a path inside one (default: the current directory).
        stream: copy the command's output to this process's stdout and stderr.
        log: called with progress lines for people.

    Returns:
        A :class:`Reproduction`.

    Raises:
        RunNotFoundError: no such run.
        BadInputError: the run was not made by ``gitml run`` (no entry point or project
            record), its source commit is not in the project, its patch no longer applies, or
            a bad tolerance.
        GitmlError, RemoteError: as :func:`gitml.projects.run.run_project`.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0 \
            or math.isinf(tolerance):
        raise BadInputError(f"bad tolerance {tolerance!r}: expected a number, 0 or more")
    with open_workspace(repo) as ws:
        original = get_run(run, repo=ws)
        project = original.project
        if original.tags.get("sweep.kind") and not project:
            raise BadInputError(f"run {original.id[:8]} is a sweep's parent: it ran no command itself",
                                hint=f"reproduce one of its trials (gitml runs list -f \"tags.mlflow.parentRunId = "
                                     f"'{original.id}'\")")
        if not original.entry_point or not project:
            raise BadInputError(
                f"run {original.id[:8]} records no entry point: it was made by commit-run or the API, "
                "not by gitml run, so there is no command to run again",
                hint="runs made with `gitml run` can be reproduced")
        commit = original.source.get("commit")
        if not commit:
            raise BadInputError(f"run {original.id[:8]} records no source commit to check out")
        environment = project.get("environment") or {}
        manager = env_manager or environment.get("manager")
        result = run_project(
            project.get("uri") or ".", original.entry_point, dict(project.get("parameters") or {}), commit,
            manager, name=f"reproduce-{original.name}"[:200], experiment=original.experiment, repo=ws,
            tags={REPRODUCES_TAG: original.id}, stream=stream, log=log, patch=original.patch)
        warnings = []
        if environment.get("hash") not in (None, result.environment.hash):
            warnings.append(f"the environment differs from the original's ({environment.get('hash', '')[:12]} "
                            f"then, {result.environment.hash[:12]} now): its spec, gitml or Python changed")
        new = result.run
        diff = compare([original.id, new.id], show_all=True, metrics_only=True, repo=ws)
        differing = sorted(key for key in original.metrics.keys() | new.metrics.keys()
                           if _differs(original.metrics.get(key), new.metrics.get(key), float(tolerance)))
    return Reproduction(original, result, diff, differing, warnings)
