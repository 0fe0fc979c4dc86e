"""The pre-push check: what a push carries, whether its bytes are safe, whether it passes the gates.

Called by ``hooks/pre-push`` with git's ``<local ref> <local sha> <remote ref> <remote sha>``
lines. Costs no network call when nothing relevant is pushed (no runs, no registry tags, no
branch commits that runs were made from, no gate).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import os
import re
from dataclasses import dataclass, field

from gitml.core import experiments, runsref
from gitml.core.config import Config, Goal, load_config, load_config_at
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.formats import RUN_FILES, parse_run
from gitml.core.gitrepo import GitRepo
from gitml.core.tags import parse_tag
from gitml.core.workspace import Workspace, WorkspaceLike, open_workspace

ZERO = "0" * 40
HEX_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
MAX_COMMITS = 10000


@dataclass
class PushedRef:
    """One line git gives the pre-push hook: what is pushed where.

    Shas are hex; a sha of all zeros (:data:`ZERO`) means "none": a ``local_sha`` of zeros
    deletes ``remote_ref``, a ``remote_sha`` of zeros means the remote has no such ref yet.
    """

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str


@dataclass
class CheckResult:
    """What a pre-push check found: ``problems`` block the push; ``warnings`` are said and let it through.

    ``runs`` are the run ids the push carries (pushed on the runs ref, made from pushed
    commits, or named by pushed registry tags); ``tags`` the registry tags pushed;
    ``uploaded`` how many artifact objects were uploaded first.
    """

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    runs: set[str] = field(default_factory=set)
    tags: list[str] = field(default_factory=list)
    uploaded: int = 0

    @property
    def ok(self) -> bool:
        """Whether the push may go through: no problems."""
        return not self.problems


def parse_lines(text: str) -> list[PushedRef]:
    """Read what git writes to the pre-push hook's stdin.

    Args:
        text: ``<local ref> SP <local sha> SP <remote ref> SP <remote sha>`` lines (git's
            githooks(5) format); blank lines are skipped.

    Returns:
        One :class:`PushedRef` per line, in order.

    Raises:
        BadInputError: a line that does not have four fields.
    """
    refs = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            refs.append(PushedRef(*parts))
        elif parts:
            raise BadInputError(f"unexpected pre-push input line: {line!r}")
    return refs


def from_pre_commit_env() -> list[PushedRef]:
    """The pushed ref as the pre-commit framework describes it, in its environment variables.

    Returns:
        One :class:`PushedRef` built from ``PRE_COMMIT_LOCAL_BRANCH``, ``PRE_COMMIT_TO_REF``,
        ``PRE_COMMIT_REMOTE_BRANCH`` and ``PRE_COMMIT_FROM_REF``, or ``[]`` when
        ``PRE_COMMIT_TO_REF`` is not set.
    """
    to_ref = os.environ.get("PRE_COMMIT_TO_REF")
    if not to_ref:
        return []
    return [PushedRef(os.environ.get("PRE_COMMIT_LOCAL_BRANCH", "HEAD"), to_ref,
                      os.environ.get("PRE_COMMIT_REMOTE_BRANCH", ""), os.environ.get("PRE_COMMIT_FROM_REF", ZERO))]


class TargetConfigs:
    """The ``gitml.yaml`` that rules a push: the one on the branch pushed to, never the pushed one.

    For a pushed branch, the configuration is read at the remote's current commit of that branch
    (the ``<remote sha>`` git gives the hook); when the remote has no such branch yet, or that
    commit is not in this repository, at the remote-tracking ref ``refs/remotes/<remote>/<branch>``,
    else at the remote's default branch (``<remote>/HEAD``, else ``<remote>/main``, else
    ``<remote>/master``). Only when none of those exists, or the commit found has no
    ``gitml.yaml`` (the first push of a repository, a team that has no configuration yet), is the
    work tree's file used: there is then no team rule that the push could loosen.

    Args:
        git: the open repository.
        remote: the git remote's name (or URL: then no remote-tracking ref is consulted).
    """

    def __init__(self, git: GitRepo, remote: str) -> None:
        self.git = git
        # Tracking refs exist only for a configured remote; a URL or path names none (and must
        # never become part of a file path).
        self.remote = remote if remote in git.remotes() else None
        self._configs: dict[str | None, Config] = {}
        self._default: str | None | bool = False

    def known(self, sha: str | None) -> str | None:
        """``sha`` when it names an object this repository has, else None.

        Args:
            sha: a hex object id, the all-zero id, or None.

        Returns:
            ``sha``, or None for None, zeros, text that is not a full object id, or an object
            this repository lacks.
        """
        if not sha or sha == ZERO or not re.fullmatch(r"[0-9a-f]{40}(?:[0-9a-f]{24})?", sha):
            return None
        return sha if self.git.has_object(sha) else None

    def tracking(self, branch: str) -> str | None:
        """The remote-tracking ref's commit of ``branch`` on this remote, if any.

        Args:
            branch: the branch name, without ``refs/heads/``.

        Returns:
            The sha of ``refs/remotes/<remote>/<branch>``, or None (also for a URL remote).
        """
        return self.known(self.git.ref(f"refs/remotes/{self.remote}/{branch}")) if self.remote else None

    def default_branch_commit(self) -> str | None:
        """The remote's default branch as last fetched, if known (remembered after the first call).

        Returns:
            The commit of ``<remote>/HEAD``'s target, else of ``<remote>/main``, else of
            ``<remote>/master``; None when none exists here.
        """
        if self._default is False:
            self._default = None
            if self.remote:
                head = self.git.symbolic_ref(f"refs/remotes/{self.remote}/HEAD")
                names = [head] if head else []
                for name in [*names, f"refs/remotes/{self.remote}/main", f"refs/remotes/{self.remote}/master"]:
                    found = self.known(self.git.ref(name))
                    if found:
                        self._default = found
                        break
        return self._default

    def target_commit(self, ref: PushedRef) -> str | None:
        """The commit whose ``gitml.yaml`` rules the push of ``ref``.

        Args:
            ref: a pushed branch (``remote_ref`` under ``refs/heads/``).

        Returns:
            The remote's commit of the branch, else its remote-tracking ref's, else the remote's
            default branch's; None means the work tree's file rules.
        """
        branch = ref.remote_ref[len("refs/heads/"):]
        return self.known(ref.remote_sha) or self.tracking(branch) or self.default_branch_commit()

    def config(self, commit: str | None) -> Config:
        """The configuration at ``commit``, or the work tree's when it is None or has none.

        Args:
            commit: a commit sha, or None.

        Returns:
            The configuration (read once per commit).

        Raises:
            BadInputError: that ``gitml.yaml`` is invalid; the hint says how to push a fix.
        """
        if commit not in self._configs:
            try:
                found = load_config_at(self.git, commit) if commit else None
            except BadInputError as exc:
                raise BadInputError(exc.message, hint="it rules pushes to that branch: fix it there, pushing the "
                                    "fix with GITML_SKIP_HOOKS=1") from None
            self._configs[commit] = found if found is not None else load_config(self.git.root)
        return self._configs[commit]

    def for_branch(self, ref: PushedRef) -> Config:
        """The configuration that rules the push of branch ``ref`` (see :meth:`target_commit`).

        Args:
            ref: a pushed branch.

        Returns:
            The configuration.

        Raises:
            BadInputError: that ``gitml.yaml`` is invalid.
        """
        return self.config(self.target_commit(ref))

    def for_push(self) -> Config:
        """What rules the push as a whole (upload, on_unreachable): the remote's default branch.

        Returns:
            The configuration at the remote's default branch, else the work tree's.

        Raises:
            BadInputError: that ``gitml.yaml`` is invalid.
        """
        return self.config(self.default_branch_commit())


def _resolved(git: GitRepo, ref: PushedRef) -> PushedRef:
    """``ref`` with its shas checked.

    A name (pre-commit passes ``HEAD``, ``origin/main``) is resolved, and the pushed commit must
    be in this repository.

    Raises:
        BadInputError: a value that names no object (one line, not a traceback).
    """
    def sha(value: str, side: str) -> str:
        if value == ZERO or HEX_RE.fullmatch(value):
            return value
        found = git.rev_parse(value) if value and not value.startswith("-") else None
        if found is None:
            raise BadInputError(f"pre-push input: the {side} {value!r} names no commit in this repository")
        return found

    local, remote_sha = sha(ref.local_sha, "pushed revision"), sha(ref.remote_sha, "remote's revision")
    if local != ZERO and not git.has_object(local):
        raise BadInputError(f"pre-push input: the pushed commit {local[:12]} is not in this repository")
    return dataclasses.replace(ref, local_sha=local, remote_sha=remote_sha)


def check_push(remote: str, refs: list[PushedRef], upload: bool | None = None,
               repo: WorkspaceLike = None) -> CheckResult:
    """Check (and by default make safe) what a push to git remote ``remote`` carries.

    Gates and hook policy come from the configuration of the branches pushed to
    (:class:`TargetConfigs`), never from the commits being pushed or the work tree.

    Args:
        remote: the git remote's name (or URL) being pushed to.
        refs: what git says is pushed (see :func:`parse_lines`).
        upload: upload missing artifact objects (default: the hook policy's ``upload``, true).
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        A :class:`CheckResult`; its ``problems`` block the push.

    Raises:
        BadInputError: the work tree's or a target branch's gitml.yaml is invalid, several
            artifact remotes are configured and none is the default, or a pushed revision
            names no commit here.
    """
    result = CheckResult()
    with open_workspace(repo) as ws:
        git = ws.repo
        refs = [_resolved(git, ref) for ref in refs]
        targets = TargetConfigs(git, remote)
        policy = targets.for_push().pre_push
        branch_refs = [r for r in refs if r.local_sha != ZERO and r.remote_ref.startswith("refs/heads/")]
        for ref in refs:
            if ref.local_sha == ZERO:
                continue  # a deletion carries nothing
            if ref.remote_ref == runsref.RUNS_REF:
                _runs_pushed(git, ref, result)
            elif ref.remote_ref.startswith("refs/tags/") and parse_tag(ref.remote_ref[10:]):
                result.tags.append(ref.remote_ref[10:])
        if result.tags:
            _check_tags(ws, result)
        for ref in branch_refs:
            _check_pushed_config(git, ref, result)
        gated = any(targets.for_branch(r).pre_push.get("gates") for r in branch_refs)
        if branch_refs and (gated or git.ref(runsref.RUNS_REF) is not None):
            _branch_pushes(ws, remote, branch_refs, targets, result)
        if result.runs:
            _check_artifacts(ws, remote, policy, result, upload)
    return result


def _check_pushed_config(git: GitRepo, ref: PushedRef, result: CheckResult) -> None:
    """A pushed ``gitml.yaml`` that is invalid would refuse every later push to its branch: stop it here."""
    try:
        load_config_at(git, ref.local_sha)
    except BadInputError as exc:
        branch = ref.remote_ref[len("refs/heads/"):]
        result.problems.append(f"{exc.message} — once on {branch}, it would refuse every push to {branch}; "
                               "fix it, then push again")


def _runs_pushed(git: GitRepo, ref: PushedRef, result: CheckResult) -> None:
    base = ref.remote_sha if ref.remote_sha != ZERO and git.has_object(ref.remote_sha) else None
    changed, _ = runsref.diff_runs(git, base, ref.local_sha)
    for run_id, tree in changed.items():
        try:
            parse_run(run_id, runsref.read_run_files(git, tree, RUN_FILES))
        except GitmlError as exc:
            result.problems.append(f"{exc} — fix or delete that run (gitml runs delete {runsref.display_key(run_id)})")
            continue
        result.runs.add(run_id)
    bad_records: dict[str, str] = {}
    experiments.read_trees(git, experiments.changed_experiments(git, base, ref.local_sha), bad_records)
    for message in bad_records.values():
        result.problems.append(f"{message} — fix it with gitml experiments, or remove that record")


def _check_tags(ws: Workspace, result: CheckResult) -> None:
    state = ws.registry_state()
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


def _branch_pushes(ws: Workspace, remote: str, refs: list[PushedRef], targets: TargetConfigs,
                   result: CheckResult) -> None:
    git = ws.repo
    for ref in refs:
        exclude = (ref.remote_sha,) if ref.remote_sha != ZERO and git.has_object(ref.remote_sha) else ()
        commits = git.rev_list(ref.local_sha, max_count=MAX_COMMITS, exclude=exclude, exclude_remote=remote)
        result.runs.update(ws.index.run_ids_at(commits))
        branch = ref.remote_ref[len("refs/heads/"):]
        config = targets.for_branch(ref)
        for gate in config.pre_push.get("gates") or []:
            if any(fnmatch.fnmatchcase(branch, p) for p in gate["branches"]):
                _apply_gate(_Gating(ws, targets, ref, branch, config.goals), gate, result)


@dataclass
class _Gating:
    """What applying one pushed branch's gates needs."""

    ws: Workspace
    targets: TargetConfigs
    ref: PushedRef
    branch: str
    goals: dict


def _apply_gate(g: _Gating, gate: dict, result: CheckResult) -> None:
    from gitml.diff.sides import NoRunError, resolve_side

    branch, sha = g.branch, g.ref.local_sha
    try:
        side = resolve_side(g.ws, branch, commit=sha, goals=g.goals)
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
        base = None
        if "max_regression" in rule:
            against = rule.get("against", "main")
            try:
                base = _against(g, against).run.metrics.get(name)
            except (NoRunError, BadInputError):
                result.warnings.append(f"gate for {branch}: no run on {against!r} to compare {name} with")
            else:
                if base is None:
                    result.warnings.append(f"gate for {branch}: the run on {against!r} has no {name} to compare with")
        for problem in gate_problems(name, value, rule, base, g.goals.get(name)):
            result.problems.append(f"gate for {branch}: {problem}")


def _against(g: _Gating, against: str):
    """The run ``against`` stands for: a branch as the remote has it, else the revision or run as given.

    Pushing ``main`` with ``against: main`` compares with the remote's ``main``, not with the
    local ``main`` that is being pushed (which would compare the run with itself).
    """
    from gitml.diff.sides import resolve_side

    commit = g.targets.known(g.ref.remote_sha) if against == g.branch else None
    commit = commit or g.targets.tracking(against)
    return resolve_side(g.ws, against, goals=g.goals, commit=commit)


def gate_problems(name: str, value: float, rule: dict, base: float | None, goal: Goal | None = None) -> list[str]:
    """What is wrong with metric ``name`` = ``value`` under one gate ``rule``.

    NaN never passes a rule: it is not at least a minimum, not at most a maximum, and worse than
    any number it is compared with. A NaN ``base`` leaves nothing to regress from. Infinities
    compare as numbers: ``inf`` accuracy is no regression, ``-inf`` is, whatever the tolerance.

    Args:
        name: the metric's key.
        value: its value in the pushed branch's run.
        rule: the gate's rule for it: ``min``, ``max``, ``max_regression``, ``against``.
        base: the value of the run ``against`` stands for; None skips the ``max_regression``
            check.
        goal: the metric's goal from gitml.yaml; ``direction: min`` makes a rise the
            regression (default: higher is better).

    Returns:
        One sentence per broken rule; ``[]`` when it passes.
    """
    if math.isnan(value):
        wants = [f"{k} {rule[k]}" for k in ("min", "max", "max_regression") if k in rule]
        return [f"{name} is NaN, not a number (the rule: {', '.join(wants)})"]
    problems = []
    if "min" in rule and not value >= rule["min"]:
        problems.append(f"{name} = {value:g} is below the minimum {rule['min']}")
    if "max" in rule and not value <= rule["max"]:
        problems.append(f"{name} = {value:g} is above the maximum {rule['max']}")
    if "max_regression" in rule and base is not None and not math.isnan(base) and value != base:
        against = rule.get("against", "main")
        worse = (value - base) if goal is not None and goal.direction == "min" else (base - value)
        if worse > rule["max_regression"]:
            problems.append(f"{name} regressed by {worse:g} against {against} "
                            f"({base:g} -> {value:g}; allowed {rule['max_regression']})")
    return problems


def _check_artifacts(ws: Workspace, remote: str, policy: dict, result: CheckResult, upload: bool | None) -> None:
    from gitml.artifacts.backend import ObjectStore, RemoteError
    from gitml.core import store

    found = ws.referenced_objects(sorted(result.runs))
    refs = found.refs
    for run_id, problem in found.refused.items():
        result.problems.append(f"run {run_id}: {problem} — fix or delete that run (gitml runs delete {run_id})")
    if not refs:
        return
    if not ws.remotes():
        result.problems.append(f"{len(refs)} artifact object(s) of the pushed runs would have no copy "
                               "off this machine — gitml remote add NAME URL --default, then push again")
        return
    on_unreachable = policy.get("on_unreachable", "block")
    if isinstance(on_unreachable, dict):
        on_unreachable = on_unreachable.get(remote, on_unreachable.get("default", "block"))
    upload = policy.get("upload", True) if upload is None else upload
    try:
        target = ObjectStore(ws.remote())
        have = target.existing(r.digest for r in refs)
        missing = [r for r in refs if r.digest not in have]
        local = [r for r in missing if store.object_path(ws.cache, r.digest).exists()]
        for ref in missing:
            if ref not in local:
                result.problems.append(f"{ref.path} of run {ref.run_id[:8]} is neither on {target.remote.name!r} "
                                       "nor in the local cache — gitml artifacts pull it from where it is, "
                                       f"or gitml runs delete {ref.run_id[:8]}")
        if local and upload:
            for ref in local:
                target.put(str(store.object_path(ws.cache, ref.digest)), ref.digest)
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
