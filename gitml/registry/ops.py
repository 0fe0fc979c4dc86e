"""Registry operations: every change is a new annotated tag, created only if its name is free.

Tag names follow GTO's tag grammar, which :mod:`gitml.core.tags` owns: ``churn@v1.2.0``
(register), ``churn@v1.2.0!`` (deregister), ``churn#prod#5`` (assign), ``churn#prod!#6``
(unassign), ``churn@deprecated`` (deprecate). The state is never stored: it is folded from the
tags by :meth:`gitml.core.workspace.Workspace.registry_state`.

Every function takes ``repo=``: a :class:`~gitml.core.workspace.Workspace`, an open repository
or a path (default: the repository of the current directory). It is opened once per call and
closed only when the call opened it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitml.core import runsref
from gitml.core.cas import LOCAL_ATTEMPTS, attempts
from gitml.core.errors import BadInputError
from gitml.core.formats import RUN_FILES, parse_run
from gitml.core.registry import Event, ModelState, format_block, tag_problems, versions_with_digest
from gitml.core.registry import overview as _overview
from gitml.core.tags import TagName, bump, check_model, check_stage, check_version, format_tag, version_key
from gitml.core.workspace import Workspace, WorkspaceLike, open_workspace
from gitml.registry.results import ModelVersionInfo, Overview, Registration, StageChange, Withdrawal

CLAIMS = "refs/gitml/registry-claims"
# Registry writes are as parallel as the run commits that make them (every trial of a sweep that
# logs with register_as= registers when it finishes), and each race lost is another writer's
# success: so they get the runs ref's bound, not a smaller one of their own.
ATTEMPTS = LOCAL_ATTEMPTS


@dataclass
class Rules:
    """Stage rules from gitml.yaml's ``registry:`` section (None: no rule).

    Attributes:
        stages: the only stage names ``assign`` accepts.
        promotion: the order in which a version must enter stages.
    """

    stages: list[str] | None = None
    promotion: list[str] | None = None


def rules(ws: Workspace) -> Rules:
    """The stage rules of the work tree's gitml.yaml (its schema has checked their shape).

    Raises:
        BadInputError: gitml.yaml does not pass its schema.
    """
    raw = ws.config.raw.get("registry") or {}
    return Rules(_lowered(raw.get("stages")), _lowered(raw.get("promotion")))


def _lowered(names: list[str] | str | None) -> list[str] | None:
    """Stage names as tags carry them (lowercase): gitml.yaml may write ``Production``."""
    if names is None:
        return None
    return [check_stage(name) for name in ([names] if isinstance(names, str) else names)]


def _message(title: str, meta: dict[str, Any]) -> str:
    return f"{title}\n\n{format_block(meta)}"


def _tag(ws: Workspace, event: TagName, target: str, title: str, meta: dict[str, Any]) -> str:
    name = format_tag(event)
    if ws.repo.create_tag(name, target, _message(title, meta)) is None:
        raise _Taken(name)
    return name


class _Taken(Exception):
    """A tag name someone else created first."""


def _title(message: str | None, default: str) -> str:
    return message.split("\n")[0] if message else default


def register_model(model: str, run: str, path: str | None = None, version: str | None = None,
                   bump_part: str = "patch", message: str | None = None,
                   repo: WorkspaceLike = None) -> Registration:
    """Register a run's artifact as a new version of ``model``: tag ``<model>@v<semver>``.

    The tag points at the run's source commit; its message carries the run id, artifact path,
    sha256 and size. Without ``version`` the number bumps the highest version ever registered
    (deregistered ones included, so a number is never reused); a writer that loses the name to
    another bumps again.

    Args:
        model: the model name (``churn``, ``nlp/sentiment``).
        run: the run's id or a unique prefix of it.
        path: the artifact's logical path in the run; needed when the run has several.
        version: an explicit semver version (a missing ``v`` is added) instead of a bump.
        bump_part: ``"patch"``, ``"minor"`` or ``"major"``.
        message: the tag message's first line, also stored whole as ``description``.
        repo: a Workspace, an open repository or a path.

    Returns:
        The :class:`Registration`: model, version, tag, run, path and commit, and warnings
        when the run was made from a dirty work tree (the run's patch is what reproduces it)
        or the artifact's bytes equal an existing version's (its twins are named).

    Raises:
        BadInputError: a bad model name, version or bump; a deprecated model; a version that
            exists; a run with no such artifact (or several and no ``path``); a run whose source
            commit is not in the repository.
        RunNotFoundError: no run, or several, match ``run``.
        ConcurrencyError: other writers kept taking the next version.
    """
    model = check_model(model)
    if bump_part not in ("patch", "minor", "major"):
        raise BadInputError(f"unknown bump {bump_part!r}")
    with open_workspace(repo) as ws:
        run_id = ws.resolve_run(run)
        record = parse_run(run_id, runsref.read_run_files(ws.repo, runsref.run_tree(ws.repo, ws.runs_tip, run_id),
                                                          (*RUN_FILES, "patch.diff")))
        path = _artifact_path(record.artifacts, path, run_id)
        entry = record.artifacts[path]
        commit = record.source.get("commit")
        if not commit or not ws.repo.has_object(commit):
            raise BadInputError(f"run {run_id[:8]}'s source commit {commit or '(none)'} is not in this repository",
                                hint="a version tag must point at the code that produced it")
        meta = {"run": run_id, "path": path, "sha256": entry.get("sha256"), "size": entry.get("size"),
                "description": message}
        warnings = _registration_warnings(ws, record, entry.get("sha256"))
        for _ in attempts(f"register {model}", ATTEMPTS):
            state = ws.registry_state(model).get(model)
            if state and state.deprecated:
                raise BadInputError(f"model {model!r} is deprecated")
            highest = max(state.versions, key=version_key) if state and state.versions else None
            chosen = check_version(version) if version else bump(highest, bump_part)
            if state and chosen in state.versions:
                raise BadInputError(f"{model} {chosen} is already registered")
            title = _title(message, f"Registering artifact {model} version {chosen}")
            try:
                tag = _tag(ws, TagName("register", model, chosen), commit, title, {**meta, "version": chosen})
            except _Taken:
                if version:
                    raise BadInputError(f"{model} {chosen} is already registered") from None
                continue  # another writer took this version: bump again on the new state
            return Registration(model, chosen, tag, run_id, path, commit, warnings)
    raise AssertionError("attempts() returns only by raising")  # pragma: no cover


def _registration_warnings(ws: Workspace, record: Any, digest: str | None) -> list[str]:
    """What a user should know about a registration that still goes ahead.

    A run made from a dirty work tree is code no commit holds: its patch is what reproduces it.
    Bytes equal to an existing version's (of any model, deregistered ones included) are most
    likely a registration made twice; the twins are named.
    """
    out = []
    if record.source.get("dirty"):
        kept = "the version records its patch" if record.patch is not None else "its patch was not recorded"
        out.append(f"run {record.id[:8]} was made from a dirty work tree: {kept}")
    if digest:
        twins = [f"{name} {info.version}" + (" (deregistered)" if info.deregistered else "")
                 for name, info in versions_with_digest(ws.repo, digest)]
        if twins:
            out.append(f"same bytes as {', '.join(twins)}")
    return out


def _artifact_path(artifacts: dict, path: str | None, run_id: str) -> str:
    if path is not None:
        if path not in artifacts:
            known = ", ".join(sorted(artifacts)) or "none"
            raise BadInputError(f"run {run_id[:8]} has no artifact {path!r} (it has: {known})")
        return path
    if len(artifacts) != 1:
        known = ", ".join(sorted(artifacts)) or "none"
        raise BadInputError(f"run {run_id[:8]} has {len(artifacts)} artifacts ({known})",
                            hint="name the one to register with --path")
    return next(iter(artifacts))


def _stage_event(kind: str, model: str, version: str, stage: str, message: str | None,
                 repo: WorkspaceLike) -> StageChange:
    model, stage, version = check_model(model), check_stage(stage), check_version(version)
    with open_workspace(repo) as ws:
        policy = rules(ws)
        if kind == "assign" and policy.stages is not None and stage not in policy.stages:
            raise BadInputError(f"stage {stage!r} is not allowed here (gitml.yaml allows: "
                                f"{', '.join(policy.stages)})")
        for _ in attempts(f"{kind} {model}", ATTEMPTS):
            state = ws.model_state(model)
            info = state.versions.get(version)
            if info is None or info.deregistered:
                raise BadInputError(f"{model} has no registered version {version}")
            if kind == "assign":
                _check_promotion(state, version, stage, policy)
            elif version not in state.holders.get(stage, []):
                raise BadInputError(f"{model} {version} does not hold stage {stage!r}")
            default = (f"Assigning stage {stage} to artifact {model} version {version}" if kind == "assign"
                       else f"Unassigning stage {stage} from artifact {model} version {version}")
            counter = max(state.max_counter, _last_claim(ws, model)) + 1
            if not ws.repo.add_ref_if_absent(f"{CLAIMS}/{model}/{counter}", info.commit):
                continue  # another writer reserved this counter
            try:
                tag = _tag(ws, TagName(kind, model, version, stage, counter), info.commit, _title(message, default),
                           {"version": version, "run": info.run_id, "description": message})
            except _Taken:
                continue  # a tag with this counter came from elsewhere (a fetch, GTO): take the next
            return StageChange(model, version, stage, tag, counter)
    raise AssertionError("attempts() returns only by raising")  # pragma: no cover


def _last_claim(ws: Workspace, model: str) -> int:
    """The highest stage-event counter of a model reserved in this repository.

    Stage tags of different stages have different names, so a tag alone cannot stop two writers
    from taking the same counter: each writer first reserves it with ``add_if_new`` on a claim ref
    (``refs/gitml/registry-claims/<model>/<n>``). A writer killed between claim and tag leaves a
    gap in the counters, never a duplicate.
    """
    names = [ref.rsplit("/", 1)[1] for ref in ws.repo.refs_with_prefix(f"{CLAIMS}/{model}/")]
    return max((int(n) for n in names if n.isdigit()), default=0)


def _check_promotion(state: ModelState, version: str, stage: str, policy: Rules) -> None:
    order = policy.promotion
    if not order or stage not in order or order.index(stage) == 0:
        return
    before = order[order.index(stage) - 1]
    held = any(e.kind == "assign" and e.stage == before and (e.version or "") == version for e in state.events)
    if not held:
        raise BadInputError(f"{state.name} {version} must be in stage {before!r} before {stage!r}",
                            hint=f"promotion order in gitml.yaml: {' -> '.join(order)}")


def assign(model: str, version: str, stage: str, message: str | None = None,
           repo: WorkspaceLike = None) -> StageChange:
    """Put ``version`` of ``model`` in ``stage``: tag ``<model>#<stage>#<n>`` (GTO's tag grammar).

    ``n`` is the model's next stage-event counter, reserved with a claim ref so that parallel
    writers never take the same one. A stage is a label: other versions keep it, unless
    gitml.yaml sets ``one_stage_per_version``.

    Args:
        model: the model name.
        version: a registered, not deregistered, version (``v0.1.0``; a missing ``v`` is added).
        stage: the stage (``prod``).
        message: the tag message's first line, also stored whole as ``description``.
        repo: a Workspace, an open repository or a path.

    Returns:
        The :class:`StageChange`: model, version, stage, tag and counter.

    Raises:
        BadInputError: a bad name or version; an unknown model or version; a stage that
            gitml.yaml's ``registry.stages`` does not allow, or that ``registry.promotion`` says
            the version may not enter yet.
        ConcurrencyError: other writers kept taking the next counter.
    """
    return _stage_event("assign", model, version, stage, message, repo)


def unassign(model: str, version: str, stage: str, message: str | None = None,
             repo: WorkspaceLike = None) -> StageChange:
    """Take ``stage`` away from ``version``: tag ``<model>#<stage>!#<n>`` (GTO's tag grammar).

    Args:
        model: the model name.
        version: the version that holds the stage.
        stage: the stage.
        message: the tag message's first line, also stored whole as ``description``.
        repo: a Workspace, an open repository or a path.

    Returns:
        The :class:`StageChange`: model, version, stage, tag and counter.

    Raises:
        BadInputError: a bad name or version; an unknown model or version; a version that does
            not hold the stage.
        ConcurrencyError: other writers kept taking the next counter.
    """
    return _stage_event("unassign", model, version, stage, message, repo)


def deregister(model: str, version: str, message: str | None = None, repo: WorkspaceLike = None) -> Withdrawal:
    """Withdraw a version: tag ``<model>@v<semver>!`` (GTO's tag grammar). Its history stays.

    Args:
        model: the model name.
        version: a registered version (a missing ``v`` is added).
        message: the tag message's first line.
        repo: a Workspace, an open repository or a path.

    Returns:
        The :class:`Withdrawal`: model, version and tag.

    Raises:
        BadInputError: a bad name or version; an unknown model or version; a version already
            deregistered.
    """
    version = check_version(version)
    with open_workspace(repo) as ws:
        info = ws.model_state(model).versions.get(version)
        if info is None or info.deregistered:
            raise BadInputError(f"{model} has no registered version {version}")
        title = _title(message, f"Deregistering artifact {model} version {version}")
        try:
            tag = _tag(ws, TagName("deregister", model, version), info.commit, title, {"version": version})
        except _Taken:
            raise BadInputError(f"{model} {version} is already deregistered") from None
        return Withdrawal(model, version, tag)


def deprecate(model: str, message: str | None = None, repo: WorkspaceLike = None) -> Withdrawal:
    """Deprecate the whole model: tag ``<model>@deprecated`` (GTO's tag grammar) on ``HEAD``.

    A deprecated model refuses new versions; its stages can still change.

    Args:
        model: the model name.
        message: the tag message's first line, also stored whole as ``description``.
        repo: a Workspace, an open repository or a path.

    Returns:
        The :class:`Withdrawal`: model, tag, and version None.

    Raises:
        BadInputError: a bad name, an unknown model, a model already deprecated.
    """
    with open_workspace(repo) as ws:
        state = ws.model_state(model)
        if state.deprecated:
            raise BadInputError(f"model {model!r} is already deprecated")
        target = ws.repo.rev_parse("HEAD") or next(iter(state.versions.values())).commit
        title = _title(message, f"Deprecating artifact {model}")
        try:
            tag = _tag(ws, TagName("deprecate", model), target, title, {"description": message})
        except _Taken:
            raise BadInputError(f"model {model!r} is already deprecated") from None
        return Withdrawal(model, None, tag)


def show(model: str | None = None, repo: WorkspaceLike = None) -> list[ModelState]:
    """Every model (or one): versions, latest, and which version holds each stage now.

    Args:
        model: one model's name; None for every model.
        repo: a Workspace, an open repository or a path.

    Returns:
        The models' states, sorted by name (one, for ``model``).

    Raises:
        BadInputError: a bad model name, or no such model.
    """
    with open_workspace(repo) as ws:
        if model is not None:
            return [ws.model_state(model)]
        state = ws.registry_state()
    return [state[name] for name in sorted(state)]


def overview(repo: WorkspaceLike = None) -> Overview:
    """Every model's latest version and stage holders, and the tags that are not events, at once.

    What :func:`show` and :func:`problems` give for every model, from one listing of the tag
    refs: a model whose tags did not change since the last call is answered from
    ``<git-common-dir>/gitml/registry-cache/`` without folding its history again.

    Args:
        repo: a Workspace, an open repository or a path.

    Returns:
        The :class:`Overview`: models by name (name, latest, deprecated, stages, versions)
        and problems in tag name order.

    Raises:
        BadInputError: gitml.yaml is invalid.
    """
    with open_workspace(repo) as ws:
        raw = ws.config.raw.get("registry") or {}
        one_stage = bool(raw.get("one_stage_per_version", False)) if isinstance(raw, dict) else False
        models, found = _overview(ws.repo, one_stage)
    return Overview(models, found)


def problems(model: str | None = None, repo: WorkspaceLike = None) -> list[str]:
    """Warnings about tags that look like versions of ``model`` (or any model) but are not semver.

    Such a tag (``churn@v1.2``, ``churn@v1.0.0-01``) is no registry event under GTO's tag
    grammar, for gitml as for GTO; this list is how it is reported instead of vanishing
    (``gitml registry show`` prints it).

    Args:
        model: one model's name; None for every model.
        repo: a Workspace, an open repository or a path.

    Returns:
        One message per such tag, in tag-name order.

    Raises:
        BadInputError: a bad model name.
    """
    with open_workspace(repo) as ws:
        return tag_problems(ws.repo, check_model(model) if model is not None else None)


def history(model: str, repo: WorkspaceLike = None) -> list[Event]:
    """Every event of a model, oldest first (by tag time, then counter), with tagger and message.

    Args:
        model: the model name.
        repo: a Workspace, an open repository or a path.

    Returns:
        The model's events.

    Raises:
        BadInputError: a bad model name, or no such model.
    """
    with open_workspace(repo) as ws:
        return list(ws.model_state(model).events)


def which(ref: str, repo: WorkspaceLike = None) -> ModelVersionInfo:
    """Resolve ``MODEL@STAGE``, ``MODEL@latest`` (or ``MODEL``) or ``MODEL@vX.Y.Z``.

    A version tagged without gitml's metadata (by GTO or by hand) gets the run and artifact of
    the newest finished run made from its commit, when that run has exactly one artifact.

    Args:
        ref: the reference.
        repo: a Workspace, an open repository or a path.

    Returns:
        The :class:`ModelVersionInfo`: version, stages, commit, run, path, sha256 and URI.

    Raises:
        BadInputError: a bad name, an unknown model, a version not registered (or deregistered).
        GitmlError: no version holds the stage.
    """
    with open_workspace(repo) as ws:
        model, version, info = ws.model_version(ref)
    uri = f"runs:/{info.run_id}/{info.path}" if info.run_id and info.path else None
    return ModelVersionInfo(model, version, sorted(info.stages), info.commit, info.run_id, info.path,
                            info.sha256, uri)


def resolve_model_uri(uri: str, repo: WorkspaceLike = None) -> str:
    """The ``runs:/…`` URI a model URI stands for.

    ``models:/churn@prod``, ``models:/churn@latest``, ``models:/churn/v1.2.0`` (MLflow's
    spelling) and ``models:/churn`` (the latest) are accepted; a ``runs:/`` URI comes back
    with its run's full id.

    Args:
        uri: the URI.
        repo: a Workspace, an open repository or a path.

    Returns:
        ``runs:/<run id>/<path>``.

    Raises:
        BadInputError: another scheme; an unknown model, version or stage name.
        RunNotFoundError: a ``runs:/`` URI's run is not on the runs ref.
        GitmlError: no version holds the stage, or the version records no run artifact.
    """
    with open_workspace(repo) as ws:
        return str(ws.resolve_uri(uri))
