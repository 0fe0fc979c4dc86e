"""Sync with git remotes: ``gitml fetch``, ``pull`` and ``push`` (DESIGN.md §5).

Transport is the user's own ``git`` (local paths, ssh, https with credential helpers). The runs
ref is never force-pushed or force-fetched: diverged copies are merged (union of runs, see
:func:`gitml.core.runsref.merge_changes`) and pushed again.

The public API (docs/sync.md): :func:`push`, :func:`pull` and :func:`fetch`, which return a
:class:`SyncResult`. After ``import gitml`` they are ``gitml.sync.push()`` and so on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitml.core import experiments, runsref
from gitml.core.cas import REMOTE_ATTEMPTS, attempts
from gitml.core.errors import BadInputError, GitmlError, RemoteError
from gitml.core.formats import KNOWN_FILES, parse_history, parse_run
from gitml.core.gitrepo import GitRepo
from gitml.core.runsref import tracking_ref
from gitml.core.tags import parse_tag
from gitml.core.workspace import WorkspaceLike, open_workspace

__all__ = ["SyncResult", "fetch", "pull", "push"]

BULK_THRESHOLD = 200  # past this many incoming runs, read them with git cat-file --batch


@dataclass
class SyncResult:
    """What a fetch, pull or push did.

    ``remote`` is the git remote's name; ``runs_tip`` the runs-ref commit sha fetched, merged
    or pushed (None when there is none); ``merged`` how many runs were taken from the remote
    copy; ``tags`` the registry tags fetched or pushed; ``uploaded`` how many artifact objects
    were uploaded; ``excluded`` ``{run id or entry: problem}`` left out by
    ``pull(exclude_bad=True)``.
    """

    remote: str
    runs_tip: str | None = None
    merged: int = 0  # runs taken from the remote copy
    tags: list[str] = field(default_factory=list)
    uploaded: int = 0
    notes: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # left out by pull --exclude-bad
    diverged: list[str] = field(default_factory=list)  # registry tags the remote has with other contents


def _check_remote(git: GitRepo, remote: str | None) -> str:
    name = remote or git.default_remote()
    if name not in git.remotes():
        raise BadInputError(f"no git remote named {name!r}", hint="add it with `git remote add`; see `git remote -v`")
    return name


def fetch(remote: str | None = None, repo: WorkspaceLike = None) -> SyncResult:
    """Bring the remote's runs ref into ``refs/gitml/remotes/<remote>/runs``, and its new registry tags.

    Release tags are none of gitml's business and are left alone; nothing local is merged.

    Args:
        remote: git remote name (default: the branch's remote, else ``origin``, else the only one).
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        A :class:`SyncResult`: ``runs_tip`` is the remote-tracking runs ref's commit (None when
        the remote has no runs), ``tags`` the registry tags fetched.

    Raises:
        BadInputError: no such git remote (or none to choose by default).
        RemoteError: the remote cannot be reached, or refused.
    """
    with open_workspace(repo) as ws:
        git = ws.repo
        name = _check_remote(git, remote)
        have = git.tags()
        theirs = {t: sha for t, sha in git.ls_remote_tags(name).items() if parse_tag(t)}
        tags = [f"refs/tags/{t}" for t in theirs if t not in have]
        git.fetch(name, [f"{runsref.RUNS_REF}*:{tracking_ref(name)}*", *[f"{t}:{t}" for t in tags]])
        # A local tag is never overwritten: one the remote holds with other contents (two clones
        # registered the same version offline) is named, for the user to resolve (docs/sync.md).
        diverged = sorted(t for t, sha in theirs.items() if t in have and have[t] != sha)
        return SyncResult(name, git.ref(tracking_ref(name)), tags=[t[10:] for t in tags], diverged=diverged)


def incoming_problems(git: GitRepo, base: str | None, theirs: str, ours: str | None = None) -> dict[str, str]:
    """Check every run that ``theirs`` changed since ``base`` as a reader would, before merging.

    The reader's checks are those of docs/security.md (:func:`gitml.core.formats.parse_run`
    and :func:`gitml.core.formats.parse_history`).

    Args:
        git: the open repository.
        base: the merge base of our runs ref and ``theirs``, or None.
        theirs: the incoming runs-ref commit sha.
        ours: the local runs-ref tip: an incoming experiment record that gives another id a name
            a local record has is refused too (it would take over that experiment's runs).

    Returns:
        ``{run id or display key of the entry: message naming it}`` for every run that fails;
        ``{}`` when all pass.
    """
    changed, _ = runsref.diff_runs(git, base, theirs)
    problems: dict[str, str] = {}
    good: dict[str, str] = {}
    for key, tree in changed.items():
        if isinstance(tree, runsref.BadEntry):
            problems[runsref.display_key(key)] = tree.problem
        else:
            good[key] = tree
    for key, files in _read_incoming(git, theirs, good).items():
        try:
            if isinstance(files, GitmlError):
                raise files
            parse_run(key, files)
            if "history.tsv" in files:
                parse_history(key, files["history.tsv"])
        except GitmlError as exc:
            problems[key] = exc.message
    # experiment records, keyed by their path so that --exclude-bad can undo them
    bad_records: dict[str, str] = {}
    incoming = experiments.read_trees(git, experiments.changed_experiments(git, base, theirs), bad_records)
    if incoming and ours is not None:
        # A record may not take a name another record has here: it would take its runs over.
        named = {exp.name: key for key, exp in experiments.read_experiments(git, ours).items()}
        for key, exp in incoming.items():
            holder = named.get(exp.name)
            if holder is not None and holder != key:
                bad_records[key] = (f"experiment {key}: the name {exp.name!r} belongs to experiment {holder} here; "
                                    "a second record of that name would take over its runs (if both are "
                                    f"yours, rename this clone's first: gitml experiments rename {holder} "
                                    f"'{exp.name}-2', then pull again)")
    for key, message in bad_records.items():
        problems[key if key.startswith(experiments.EXPERIMENTS_DIR) else f"experiments/{key[:2]}/{key}"] = message
    return problems


def _read_incoming(git: GitRepo, tip: str, trees: dict[str, str]) -> dict[str, dict[str, bytes] | GitmlError]:
    """The files of many incoming runs: two git processes for many, one batch for a few.

    A run whose folder cannot be read maps to its error.
    """
    if len(trees) > BULK_THRESHOLD:
        contents = runsref.bulk_read_runs(git, tip, set(trees), KNOWN_FILES)
        return {key: contents.get(key, {}) for key in trees}
    return runsref.read_runs_or_errors(git, trees)


def _merge_into_local(git: GitRepo, theirs: str | None, exclude_bad: bool = False, remote: str = "",
                      excluded: dict[str, str] | None = None) -> int:
    """Merge ``theirs`` into the local runs ref (fast-forward when possible); return runs taken.

    Every incoming run is validated first. With bad runs, nothing is merged (GitmlError naming
    them), unless ``exclude_bad``: then the good runs are merged and the bad changes undone by a
    commit on top of ``theirs`` (see :func:`_without`; history keeps them, and pushing it repairs
    the remote too).
    """
    if theirs is None:
        return 0
    for _ in attempts(f"merge {remote or theirs[:12]}'s runs into {runsref.RUNS_REF}"):
        ours = git.ref(runsref.RUNS_REF)
        if ours == theirs:
            return 0
        base = git.merge_base(ours, theirs) if ours else None
        bad = incoming_problems(git, base, theirs, ours)
        if bad and not exclude_bad:
            problem = next(iter(bad.values()))
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise GitmlError(
                f"refusing runs from {remote or theirs[:12]}: {problem}{more}; nothing was merged",
                hint="gitml pull --exclude-bad merges the others and leaves these out")
        if bad:
            theirs = _without(git, theirs, set(bad), base)  # a child of theirs: same merge base
            if excluded is not None:
                excluded.clear()
                excluded.update(bad)
        if ours is None or git.is_ancestor(ours, theirs):
            if git.set_ref_if_equals(runsref.RUNS_REF, ours, theirs):
                return len(runsref.diff_runs(git, ours, theirs)[0])
            continue
        if git.is_ancestor(theirs, ours):
            return 0
        changes = runsref.merge_changes(git, ours, theirs, base)
        tree = runsref.apply_changes(git, ours, changes)
        tree = experiments.apply_experiments(git, tree, experiments.merge_experiments(git, ours, theirs, base))
        commit = git.write_commit(tree, [ours, theirs], f"merge runs from {theirs[:12]}")
        if git.set_ref_if_equals(runsref.RUNS_REF, ours, commit):
            return len(changes)
    raise AssertionError("unreachable: attempts() raises when it runs out")


def _without(git: GitRepo, tip: str, keys: set[str], base: str | None) -> str:
    """A commit on top of ``tip`` that undoes its changes to the entries ``keys`` (display keys).

    An entry ``base`` had goes back to that version, a new one goes away, so a bad change to a
    good run never deletes the good run.
    """
    before = dict(runsref.iter_run_trees(git, base)) if base else {}
    present: dict[str, str | None] = {}
    top = runsref.runs_tree(git, tip)
    for name, entry in (git.read_tree(top) if top else {}).items():
        for key in runsref.shard_runs(git, name, entry):
            if runsref.display_key(key) in keys:
                present[key] = before.get(key)
    records_before = experiments.experiment_trees(git, base) if base else {}
    records: dict[str, str | None] = {}
    for key in keys:
        if key.startswith(experiments.EXPERIMENTS_DIR):
            record_id = key.rsplit("/", 1)[-1]
            if experiments.ID_RE.match(record_id) and key == f"experiments/{record_id[:2]}/{record_id}":
                old = records_before.get(record_id)
                records[record_id] = None if isinstance(old, runsref.BadEntry) else old
            else:
                records[key] = None
    tree = experiments.apply_experiments(git, runsref.apply_changes(git, tip, present), records)
    left_out = sorted([runsref.display_key(k) for k in present] + [k for k in keys if k.startswith("experiments")])
    return git.write_commit(tree, [tip], f"leave out {len(left_out)} entries that fail validation: "
                            + ", ".join(left_out)[:2000])


def pull(remote: str | None = None, exclude_bad: bool = False, repo: WorkspaceLike = None) -> SyncResult:
    """Fetch, then merge the remote's runs into the local runs ref (never a force).

    Every incoming run is validated before the merge (docs/security.md).

    Args:
        remote: git remote name (default: the branch's remote, else ``origin``, else the only one).
        exclude_bad: merge the runs that pass and leave out (undo) those that fail.
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        A :class:`SyncResult`: ``runs_tip`` is the local runs ref's commit after the merge,
        ``merged`` how many runs were taken, ``excluded`` what was left out.

    Raises:
        BadInputError: no such git remote.
        RemoteError: the fetch failed.
        ConcurrencyError: the local runs ref kept moving during the merge.
        GitmlError: incoming runs fail validation (named); nothing is merged. With
            ``exclude_bad`` the other runs are merged and those are left out instead.
    """
    with open_workspace(repo) as ws:
        git = ws.repo
        result = fetch(remote, ws)
        result.merged = _merge_into_local(git, result.runs_tip, exclude_bad, result.remote, result.excluded)
        result.runs_tip = git.ref(runsref.RUNS_REF)
        return result


def registry_tags(git: GitRepo) -> list[str]:
    """The local tags that are registry events (GTO's grammar).

    Args:
        git: the open repository.

    Returns:
        Tag names without ``refs/tags/``, sorted.
    """
    return sorted(name for name in git.tags() if parse_tag(name) is not None)


def push(remote: str | None = None, artifacts_remote: str | None = None, repo: WorkspaceLike = None) -> SyncResult:
    """Upload artifacts first, then push the runs ref and registry tags to a git remote (never forced).

    When the remote's runs ref moved meanwhile, fetch, merge and push again, up to
    :data:`gitml.core.cas.REMOTE_ATTEMPTS` times.

    Args:
        remote: git remote name (default: the branch's remote, else ``origin``, else the only one).
        artifacts_remote: artifact remote name (default: the default artifact remote).
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        A :class:`SyncResult`: the pushed runs tip, registry tags, objects uploaded, runs merged.

    Raises:
        BadInputError: no such git remote.
        GitmlError: artifacts could not be uploaded (nothing is pushed then).
        RemoteError: git refused the push (a hook, authentication, the network, a clashing tag).
        ConcurrencyError: the remote's runs ref kept moving.
    """
    from gitml.artifacts.transfer import push as push_artifacts

    with open_workspace(repo) as ws:
        git = ws.repo
        name = _check_remote(git, remote)
        result = SyncResult(name)
        if ws.runs_tip is not None:
            if ws.remotes() or artifacts_remote:
                uploaded = push_artifacts(remote=artifacts_remote, repo=ws)
                if uploaded.refused:
                    run_id, problem = next(iter(uploaded.refused.items()))
                    raise GitmlError(f"not pushing the runs ref: run {run_id} cannot be read ({problem}); "
                                     "the other runs' artifacts were uploaded",
                                     hint=f"gitml runs delete {run_id}, then gitml push again")
                if uploaded.missing_locally:
                    missing = ", ".join(f"{m.run_id[:8]}:{m.path}" for m in uploaded.missing_locally[:3])
                    raise GitmlError(f"not pushing: artifacts missing from the local cache ({missing})",
                                     hint="fetch them (gitml artifacts pull) or delete those runs")
                result.uploaded = len(uploaded.transferred)
            elif ws.index.has_artifacts():
                raise GitmlError("not pushing: runs have artifacts but no artifact remote is configured",
                                 hint="gitml remote add NAME URL --default, then gitml push again")
        for _ in attempts(f"push to {name}: the remote runs ref kept moving", limit=REMOTE_ATTEMPTS,
                          base=0.05, cap=2.0, hint="try again"):
            tip = git.ref(runsref.RUNS_REF)
            refspecs = [f"{runsref.RUNS_REF}:{runsref.RUNS_REF}"] if tip else []
            result.tags = registry_tags(git)
            refspecs += [f"refs/tags/{t}:refs/tags/{t}" for t in result.tags]
            if not refspecs:
                return result
            outcome = git.push(name, refspecs)
            if outcome.ok:
                result.runs_tip = tip
                if tip:  # the remote has our tip now; its tracking ref says so (unless a fetch
                    git.move_ref(tracking_ref(name), tip, forward_only=True)  # brought a newer one)
                return result
            if runsref.RUNS_REF not in outcome.moved:
                hint = ("a registry tag of that name exists there with other contents: see "
                        "'Registry tags that collide' in docs/sync.md") if "already exists" in outcome.error else None
                raise RemoteError(f"git push {name} failed: {outcome.error}", hint=hint)
            fetched = fetch(name, ws)
            result.merged += _merge_into_local(git, fetched.runs_tip, remote=name)
        raise AssertionError("unreachable: attempts() raises when it runs out")
