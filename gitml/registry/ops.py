"""Registry operations: every change is a new annotated tag, created only if its name is free."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from gitml.core import runsref, yamlfmt
from gitml.core.config import load_config
from gitml.core.errors import BadInputError, ConcurrencyError, GitmlError
from gitml.core.formats import RUN_FILES, parse_run
from gitml.core.gitrepo import GitRepo, RepoLike, open_repo
from gitml.core.registry import Event, ModelState, fold, load_events, tag_problems
from gitml.core.tags import TagName, bump, check_model, check_stage, check_version, format_tag, version_key

MAX_ATTEMPTS = 50
CLAIMS = "refs/gitml/registry-claims"


@dataclass
class Rules:
    """Stage rules from gitml.yaml's ``registry:`` section."""

    stages: list[str] | None = None
    one_stage_per_version: bool = False
    promotion: list[str] | None = None


def rules(git: GitRepo) -> Rules:
    raw = load_config(git.root).raw.get("registry") or {}
    if not isinstance(raw, dict):
        raise BadInputError("gitml.yaml: 'registry' must be a mapping")
    stages, promotion = raw.get("stages"), raw.get("promotion")
    for key, value in (("stages", stages), ("promotion", promotion)):
        if value is not None and (not isinstance(value, list) or not all(isinstance(s, str) for s in value)):
            raise BadInputError(f"gitml.yaml: registry.{key} must be a list of stage names")
    return Rules(stages, bool(raw.get("one_stage_per_version", False)), promotion)


def _state(git: GitRepo) -> dict[str, ModelState]:
    return fold(load_events(git), rules(git).one_stage_per_version)


def _model(git: GitRepo, name: str) -> ModelState:
    state = _state(git).get(check_model(name))
    if state is None:
        raise BadInputError(f"no model {name!r} in the registry", hint="see `gitml registry show`")
    return state


def _message(title: str, meta: dict[str, Any]) -> str:
    block = yamlfmt.dump({"gitml": {k: v for k, v in meta.items() if v is not None}})
    return f"{title}\n\n{block}"


def _tag(git: GitRepo, event: TagName, target: str, title: str, meta: dict[str, Any]) -> str:
    name = format_tag(event)
    if git.create_tag(name, target, _message(title, meta)) is None:
        raise _Taken(name)
    return name


class _Taken(Exception):
    pass


def register_model(model: str, run: str, path: str | None = None, version: str | None = None,
                   bump_part: str = "patch", message: str | None = None, repo: RepoLike = None) -> dict:
    """Register a run's artifact as the next version of ``model`` (tag ``model@vX.Y.Z``).

    The tag points at the run's source commit; its message carries run id, path, sha256 and size.
    """
    from gitml.tracking.query import resolve_run_id

    check_model(model)
    if bump_part not in ("patch", "minor", "major"):
        raise BadInputError(f"unknown bump {bump_part!r}")
    with open_repo(repo) as git:
        run_id = resolve_run_id(run, git)
        tree = runsref.run_tree(git, git.ref(runsref.RUNS_REF), run_id)
        record = parse_run(run_id, runsref.read_run_files(git, tree, RUN_FILES))
        path = _artifact_path(record.artifacts, path, run_id)
        entry = record.artifacts[path]
        commit = record.source.get("commit")
        if not commit or not git.has_object(commit):
            raise BadInputError(f"run {run_id[:8]}'s source commit {commit or '(none)'} is not in this repository",
                                hint="a version tag must point at the code that produced it")
        meta = {"run": run_id, "path": path, "sha256": entry.get("sha256"), "size": entry.get("size"),
                "description": message}
        for _ in range(MAX_ATTEMPTS):
            state = _state(git).get(model)
            if state and state.deprecated:
                raise BadInputError(f"model {model!r} is deprecated")
            highest = max(state.versions, key=version_key) if state and state.versions else None
            chosen = check_version(version) if version else bump(highest, bump_part)  # never reuse a number
            if state and chosen in state.versions:
                raise BadInputError(f"{model} {chosen} is already registered")
            title = message.split("\n")[0] if message else f"Registering artifact {model} version {chosen}"
            try:
                tag = _tag(git, TagName("register", model, chosen), commit, title, {**meta, "version": chosen})
            except _Taken:
                if version:
                    raise BadInputError(f"{model} {chosen} is already registered") from None
                continue  # another writer took this version: bump again
            return {"model": model, "version": chosen, "tag": tag, "run": run_id, "path": path,
                    "commit": commit}
    raise ConcurrencyError(f"could not register {model} after {MAX_ATTEMPTS} attempts")


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


def _stage_event(model: str, version: str, stage: str, kind: str, message: str | None,
                 repo: RepoLike) -> dict:
    check_model(model)
    check_stage(stage)
    version = check_version(version)
    with open_repo(repo) as git:
        policy = rules(git)
        if kind == "assign" and policy.stages is not None and stage not in policy.stages:
            raise BadInputError(f"stage {stage!r} is not allowed here (gitml.yaml allows: "
                                f"{', '.join(policy.stages)})")
        for attempt in range(MAX_ATTEMPTS):
            state = _model(git, model)
            info = state.versions.get(version)
            if info is None or info.deregistered:
                raise BadInputError(f"{model} has no registered version {version}")
            if kind == "assign":
                _check_promotion(state, version, stage, policy)
            elif version not in state.holders.get(stage, []):
                raise BadInputError(f"{model} {version} does not hold stage {stage!r}")
            default = (f"Assigning stage {stage} to artifact {model} version {version}" if kind == "assign"
                       else f"Unassigning stage {stage} from artifact {model} version {version}")
            title = message.split("\n")[0] if message else default
            counter = max(state.max_counter, _last_claim(git, model)) + 1
            if not git.add_ref_if_new(f"{CLAIMS}/{model}/{counter}", info.commit):
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # another writer has this counter
                continue
            try:
                tag = _tag(git, TagName(kind, model, version, stage, counter), info.commit, title,
                           {"version": version, "run": info.run_id, "description": message})
            except _Taken:
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # another writer took the counter
                continue
            return {"model": model, "version": version, "stage": stage, "tag": tag, "counter": counter}
    raise ConcurrencyError(f"could not {kind} {model} after {MAX_ATTEMPTS} attempts")


def _last_claim(git: GitRepo, model: str) -> int:
    """The highest stage-event counter of a model reserved in this repository.

    Stage tags of different stages have different names, so a tag alone cannot stop two writers
    from taking the same counter: each writer first reserves it with ``add_if_new`` on a claim ref
    (``refs/gitml/registry-claims/<model>/<n>``). A writer killed between claim and tag leaves a
    gap in the counters, never a duplicate.
    """
    names = [ref.rsplit("/", 1)[1] for ref in git.refs_under(f"{CLAIMS}/{model}/")]
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


def assign(model: str, version: str, stage: str, message: str | None = None, repo: RepoLike = None) -> dict:
    """Put ``version`` of ``model`` in ``stage`` (tag ``model#stage#N``)."""
    return _stage_event(model, version, stage, "assign", message, repo)


def unassign(model: str, version: str, stage: str, message: str | None = None, repo: RepoLike = None) -> dict:
    """Take ``stage`` away from ``version`` (tag ``model#stage!#N``)."""
    return _stage_event(model, version, stage, "unassign", message, repo)


def deregister(model: str, version: str, message: str | None = None, repo: RepoLike = None) -> dict:
    """Withdraw a version (tag ``model@vX.Y.Z!``); its history stays."""
    version = check_version(version)
    with open_repo(repo) as git:
        info = _model(git, model).versions.get(version)
        if info is None or info.deregistered:
            raise BadInputError(f"{model} has no registered version {version}")
        title = message.split("\n")[0] if message else f"Deregistering artifact {model} version {version}"
        try:
            tag = _tag(git, TagName("deregister", model, version), info.commit, title, {"version": version})
        except _Taken:
            raise BadInputError(f"{model} {version} is already deregistered") from None
        return {"model": model, "version": version, "tag": tag}


def deprecate(model: str, message: str | None = None, repo: RepoLike = None) -> dict:
    """Deprecate the whole model (tag ``model@deprecated``)."""
    with open_repo(repo) as git:
        state = _model(git, model)
        if state.deprecated:
            raise BadInputError(f"model {model!r} is already deprecated")
        target = git.head()[0] or next(iter(state.versions.values())).commit
        try:
            title = message.split("\n")[0] if message else f"Deprecating artifact {model}"
            tag = _tag(git, TagName("deprecate", model), target, title, {"description": message})
        except _Taken:
            raise BadInputError(f"model {model!r} is already deprecated") from None
        return {"model": model, "tag": tag}


def show(model: str | None = None, repo: RepoLike = None) -> list[ModelState]:
    """Every model (or one): versions, latest, and which version holds each stage now."""
    with open_repo(repo) as git:
        state = _state(git)
    if model is not None:
        if check_model(model) not in state:
            raise BadInputError(f"no model {model!r} in the registry")
        return [state[model]]
    return [state[name] for name in sorted(state)]


def problems(model: str | None = None, repo: RepoLike = None) -> list[str]:
    """Warnings about tags that look like versions of ``model`` (or any model) but are not semver.

    Such a tag (``churn@v1.2``, ``churn@v1.0.0-01``) is no registry event, for gitml as for GTO;
    this list is how it is reported instead of vanishing (``gitml registry show`` prints it).
    """
    with open_repo(repo) as git:
        return tag_problems(git, check_model(model) if model is not None else None)


def history(model: str, repo: RepoLike = None) -> list[Event]:
    """Every event of a model, oldest first, with tagger, time and message."""
    with open_repo(repo) as git:
        return list(_model(git, model).events)


def which(ref: str, repo: RepoLike = None) -> dict[str, Any]:
    """Resolve ``MODEL@STAGE``, ``MODEL@latest`` or ``MODEL@vX.Y.Z`` to version, run and artifact URI."""
    model, sep, what = ref.rpartition("@")
    if not sep:
        model, what = ref, "latest"
    with open_repo(repo) as git:
        state = _model(git, model)
    if what == "latest":
        version = state.latest
    elif what.startswith("v") and what[1:2].isdigit():
        version = check_version(what)
    else:
        version = state.stages.get(check_stage(what))
        if version is None:
            raise GitmlError(f"no version of {model} is in stage {what!r}")
    info = state.versions.get(version or "")
    if info is None or info.deregistered:
        raise BadInputError(f"{model} has no registered version {what!r}")
    if info.run_id is None:  # a GTO or hand-made tag: find the run from the commit, when there is one
        info.run_id, info.path = _run_at(info.commit, repo)
    uri = f"runs:/{info.run_id}/{info.path}" if info.run_id and info.path else None
    return {"model": model, "version": version, "stages": sorted(info.stages), "commit": info.commit,
            "run": info.run_id, "path": info.path, "sha256": info.sha256, "uri": uri}


def _run_at(commit: str, repo: RepoLike) -> tuple[str | None, str | None]:
    """The latest finished run made from ``commit`` and its artifact, when it has exactly one."""
    from gitml.tracking.query import search_runs

    runs = search_runs(f"attributes.commit = '{commit}' and attributes.status = 'FINISHED'",
                       order_by="end_time DESC", limit=1, repo=repo)
    if runs and len(runs[0].artifacts) == 1:
        return runs[0].id, next(iter(runs[0].artifacts))
    return None, None


def resolve_model_uri(uri: str, repo: RepoLike = None) -> str:
    """``models:/churn@prod`` / ``models:/churn/v1.2.0`` / ``models:/churn@latest`` -> ``runs:/…``."""
    body = uri[len("models:/"):].strip("/")
    if "@" in body:
        ref = body
    else:
        model, _, version = body.rpartition("/")
        ref = f"{model}@{version}" if model else body
    found = which(ref, repo=repo)
    if found["uri"] is None:
        raise GitmlError(f"{uri}: {found['model']} {found['version']} records no run artifact",
                         hint="it was tagged without gitml's metadata; fetch it with runs:/<run>/<path>")
    return found["uri"]
