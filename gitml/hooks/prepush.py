"""The pre-push check: what a push carries, whether its bytes are safe, whether it passes the gates.

Called by ``hooks/pre-push`` with git's ``<local ref> <local sha> <remote ref> <remote sha>``
lines. Costs no network call when nothing relevant is pushed (no runs, no registry tags, no
branch commits that runs were made from, no gate).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field

from gitml.core import runsref
from gitml.core.config import load_config
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import RUN_FILES, parse_run
from gitml.core.gitrepo import GitRepo, RepoLike, open_repo
from gitml.core.tags import parse_tag

ZERO = "0" * 40
MAX_COMMITS = 10000


@dataclass
class PushedRef:
    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str


@dataclass
class CheckResult:
    """``problems`` block the push; ``warnings`` are said and let it through."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    runs: set[str] = field(default_factory=set)
    tags: list[str] = field(default_factory=list)
    uploaded: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_lines(text: str) -> list[PushedRef]:
    refs = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            refs.append(PushedRef(*parts))
        elif parts:
            raise BadInputError(f"unexpected pre-push input line: {line!r}")
    return refs


def from_pre_commit_env() -> list[PushedRef]:
    """The pushed ref as the pre-commit framework describes it (PRE_COMMIT_* variables)."""
    to_ref = os.environ.get("PRE_COMMIT_TO_REF")
    if not to_ref:
        return []
    return [PushedRef(os.environ.get("PRE_COMMIT_LOCAL_BRANCH", "HEAD"), to_ref,
                      os.environ.get("PRE_COMMIT_REMOTE_BRANCH", ""), os.environ.get("PRE_COMMIT_FROM_REF", ZERO))]


def _policy(git: GitRepo) -> dict:
    hooks = load_config(git.root).raw.get("hooks") or {}
    policy = hooks.get("pre-push") or {} if isinstance(hooks, dict) else {}
    if not isinstance(policy, dict):
        raise BadInputError("gitml.yaml: hooks.pre-push must be a mapping")
    return policy


def check_push(remote: str, refs: list[PushedRef], upload: bool | None = None, repo: RepoLike = None) -> CheckResult:
    """Check (and by default make safe) what a push to git remote ``remote`` carries."""
    result = CheckResult()
    with open_repo(repo) as git:
        policy = _policy(git)
        gates = policy.get("gates") or []
        branch_refs = [r for r in refs if r.local_sha != ZERO and r.remote_ref.startswith("refs/heads/")]
        for ref in refs:
            if ref.local_sha == ZERO:
                continue  # a deletion carries nothing
            if ref.remote_ref == runsref.RUNS_REF:
                _runs_pushed(git, ref, result)
            elif ref.remote_ref.startswith("refs/tags/") and parse_tag(ref.remote_ref[10:]):
                result.tags.append(ref.remote_ref[10:])
        if result.tags:
            _check_tags(git, result)
        needs_index = git.ref(runsref.RUNS_REF) is not None and branch_refs
        if needs_index or (gates and branch_refs):
            _branch_pushes(git, remote, branch_refs, gates, result)
        if result.runs:
            _check_artifacts(git, remote, policy, result, upload)
    return result


def _runs_pushed(git: GitRepo, ref: PushedRef, result: CheckResult) -> None:
    base = ref.remote_sha if ref.remote_sha != ZERO and git.has_object(ref.remote_sha) else None
    changed, _ = runsref.diff_runs(git, base, ref.local_sha)
    for run_id, tree in changed.items():
        try:
            parse_run(run_id, runsref.read_run_files(git, tree, RUN_FILES))
        except GitmlError as exc:
            result.problems.append(f"{exc} — fix or delete that run (gitml runs delete {run_id[:8]})")
            continue
        result.runs.add(run_id)


def _check_tags(git: GitRepo, result: CheckResult) -> None:
    from gitml.registry.state import fold, load_events

    state = fold(load_events(git))
    for name in result.tags:
        parsed = parse_tag(name)
        model = state.get(parsed.model)
        if parsed.kind in ("assign", "unassign", "deregister"):
            event = next((e for e in (model.events if model else []) if e.tag == name), None)
            version = (event.version if event else None) or parsed.version
            if model is None or version not in model.versions:
                result.problems.append(f"tag {name} refers to a version of {parsed.model} that is not "
                                       f"registered — push the version tag too, or delete {name}")
        if parsed.kind == "register" and model and parsed.version in model.versions:
            run_id = model.versions[parsed.version].run_id
            if run_id:
                result.runs.add(run_id)


def _branch_pushes(git: GitRepo, remote: str, refs: list[PushedRef], gates: list, result: CheckResult) -> None:
    from gitml.diff.sides import NoRunError, resolve_side
    from gitml.tracking import index

    conn = index.open_index(git)
    try:
        for ref in refs:
            exclude = [f"^{ref.remote_sha}"] if ref.remote_sha != ZERO and git.has_object(ref.remote_sha) else []
            commits = git.git("rev-list", f"--max-count={MAX_COMMITS}", ref.local_sha, *exclude,
                              "--not", f"--remotes={remote}", check=False).decode().split()
            for start in range(0, len(commits), 500):
                chunk = commits[start:start + 500]
                rows = conn.execute(f"SELECT id FROM runs WHERE source_commit IN ({','.join('?' * len(chunk))})",  # noqa: S608
                                    chunk).fetchall()
                result.runs.update(r[0] for r in rows)
            branch = ref.remote_ref[len("refs/heads/"):]
            for gate in gates:
                if any(fnmatch.fnmatchcase(branch, p) for p in gate.get("branches") or []):
                    _apply_gate(git, conn, branch, ref.local_sha, gate, result, resolve_side, NoRunError)
    finally:
        conn.close()


def _apply_gate(git, conn, branch, sha, gate, result, resolve_side, NoRunError) -> None:
    goals = load_config(git.root).goals
    try:
        side = resolve_side(git, conn, branch, commit=sha, goals=goals)
    except NoRunError:
        if gate.get("require_run"):
            result.problems.append(f"gate for {branch}: no finished run for {sha[:7]} or its ancestors — "
                                   "train and `gitml commit-run` before pushing")
        return
    for name, rule in (gate.get("metrics") or {}).items():
        value = side.run.metrics.get(name)
        if value is None:
            result.problems.append(f"gate for {branch}: run {side.run.id[:8]} has no metric {name!r}")
            continue
        if "min" in rule and not value >= rule["min"]:
            result.problems.append(f"gate for {branch}: {name} = {value:g} is below the minimum {rule['min']}")
        if "max" in rule and not value <= rule["max"]:
            result.problems.append(f"gate for {branch}: {name} = {value:g} is above the maximum {rule['max']}")
        if "max_regression" in rule:
            against = rule.get("against", "main")
            try:
                base = resolve_side(git, conn, against, goals=goals).run.metrics.get(name)
            except (NoRunError, BadInputError):
                result.warnings.append(f"gate for {branch}: no run on {against!r} to compare {name} with")
                continue
            if base is None:
                continue
            goal = goals.get(name)
            worse = (value - base) if goal is not None and goal.direction == "min" else (base - value)
            if worse > rule["max_regression"]:
                result.problems.append(f"gate for {branch}: {name} regressed by {worse:g} against {against} "
                                       f"({base:g} -> {value:g}; allowed {rule['max_regression']})")


def _check_artifacts(git: GitRepo, remote: str, policy: dict, result: CheckResult, upload: bool | None) -> None:
    from gitml.artifacts import store
    from gitml.artifacts.backend import ObjectStore, RemoteError
    from gitml.artifacts.transfer import _referenced, cache_dir
    from gitml.core.remotes import get_remote, list_remotes

    refs = _referenced(git, sorted(result.runs))
    if not refs:
        return
    if not list_remotes(git):
        result.problems.append(f"{len(refs)} artifact object(s) of the pushed runs would have no copy "
                               "off this machine — gitml remote add NAME URL --default, then push again")
        return
    on_unreachable = policy.get("on_unreachable", "block")
    if isinstance(on_unreachable, dict):
        on_unreachable = on_unreachable.get(remote, on_unreachable.get("default", "block"))
    upload = policy.get("upload", True) if upload is None else upload
    try:
        target = ObjectStore(get_remote(git))
        have = target.existing(r.digest for r in refs)
        missing = [r for r in refs if r.digest not in have]
        local = [r for r in missing if store.object_path(cache_dir(git), r.digest).exists()]
        for ref in missing:
            if ref not in local:
                result.problems.append(f"{ref.path} of run {ref.run_id[:8]} is neither on {target.remote.name!r} "
                                       "nor in the local cache — gitml artifacts pull it from where it is, "
                                       f"or gitml runs delete {ref.run_id[:8]}")
        if local and upload:
            for ref in local:
                target.put(str(store.object_path(cache_dir(git), ref.digest)), ref.digest)
            unverified = {r.digest for r in local} - target.existing(r.digest for r in local)
            if unverified:
                result.problems.append(f"{len(unverified)} uploaded object(s) are not visible on "
                                       f"{target.remote.name!r} — try the push again")
            result.uploaded = len(local) - len(unverified)
        elif local:
            result.problems.append(f"{len(local)} artifact object(s) are not on {target.remote.name!r} — "
                                   "run gitml artifacts push, then push again")
    except RemoteError as exc:
        line = f"{exc} — the pushed runs' artifacts may not be there"
        (result.warnings if on_unreachable == "warn" else result.problems).append(line)
