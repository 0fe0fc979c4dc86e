"""Sync with git remotes: ``gitml fetch``, ``pull`` and ``push`` (DESIGN.md §5).

Transport is the user's own ``git`` (local paths, ssh, https with credential helpers). The runs
ref is never force-pushed or force-fetched: diverged copies are merged (union of runs, see
:func:`gitml.core.runsref.merge_changes`) and pushed again.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from gitml.core import runsref
from gitml.core.errors import BadInputError, ConcurrencyError, GitmlError, RemoteError
from gitml.core.formats import KNOWN_FILES, parse_history, parse_run
from gitml.core.gitrepo import GitRepo, RepoLike, open_repo
from gitml.core.tags import parse_tag

PUSH_ATTEMPTS = 10
BULK_THRESHOLD = 200  # past this many incoming runs, read them with git cat-file --batch


def tracking_ref(remote: str) -> str:
    return f"refs/gitml/remotes/{remote}/runs"


@dataclass
class SyncResult:
    remote: str
    runs_tip: str | None = None
    merged: int = 0  # runs taken from the remote copy
    tags: list[str] = field(default_factory=list)
    uploaded: int = 0
    notes: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # left out by pull --exclude-bad


def default_remote(git: GitRepo) -> str:
    """The current branch's remote, else ``origin``, else the only remote."""
    remotes = git.remotes()
    _, branch = git.head()
    if branch:
        configured = git.config_value("branch", "remote", branch)
        if configured in remotes:
            return configured
    if "origin" in remotes:
        return "origin"
    if len(remotes) == 1:
        return next(iter(remotes))
    raise BadInputError("no git remote to sync with" if not remotes else "several git remotes: name one",
                        hint="gitml push REMOTE")


def _check_remote(git: GitRepo, remote: str | None) -> str:
    name = remote or default_remote(git)
    if name not in git.remotes():
        raise BadInputError(f"no git remote named {name!r}", hint="add it with `git remote add`; see `git remote -v`")
    return name


def _git_or_fail(git: GitRepo, *args: str) -> tuple[int, str]:
    """``(exit code, git's output)``: for the calls whose messages are read here (see _last_error)."""
    return git.git_result(*args)


def fetch(remote: str | None = None, repo: RepoLike = None) -> SyncResult:
    """Bring the remote's runs ref into ``refs/gitml/remotes/<remote>/runs``, and its tags."""
    with open_repo(repo) as git:
        name = _check_remote(git, remote)
        # Only registry tags are fetched (named one by one): release tags are none of gitml's business.
        code, listing = _git_or_fail(git, "ls-remote", "--tags", "--refs", name)
        if code != 0:
            raise RemoteError(f"git ls-remote {name} failed: {_last_error(listing, code)}")
        have = git.tags()
        wanted = [line.split("\t", 1)[1] for line in listing.splitlines() if "\trefs/tags/" in line]
        tags = [ref for ref in wanted if parse_tag(ref[10:]) and ref[10:] not in have]
        code, message = _git_or_fail(git, "fetch", "--no-tags", "--no-write-fetch-head", name,
                                     f"{runsref.RUNS_REF}*:{tracking_ref(name)}*", *[f"{t}:{t}" for t in tags])
        if code != 0:
            raise RemoteError(f"git fetch {name} failed: {_last_error(message, code)}")
        return SyncResult(name, git.ref(tracking_ref(name)), tags=[t[10:] for t in tags])


def incoming_problems(git: GitRepo, base: str | None, theirs: str) -> dict[str, str]:
    """``{run id or entry: message}`` for every run that ``theirs`` changed since ``base`` (the
    merge base with our ref) and that fails the reader's checks (docs/security.md): checked
    before anything is merged. Each message names its run or entry."""
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
    return problems


def _read_incoming(git: GitRepo, tip: str, trees: dict[str, str]) -> dict[str, dict[str, bytes] | GitmlError]:
    """The files of many incoming runs: two git processes for many, one batch for a few; a run
    whose folder cannot be read maps to its error."""
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
    for _ in range(runsref.MAX_ATTEMPTS):
        ours = git.ref(runsref.RUNS_REF)
        if ours == theirs:
            return 0
        base = git.git("merge-base", ours, theirs, check=False).decode().strip() or None if ours else None
        bad = incoming_problems(git, base, theirs)
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
        if ours is None or _is_ancestor(git, ours, theirs):
            if git.set_ref_if_equals(runsref.RUNS_REF, ours, theirs):
                return len(runsref.diff_runs(git, ours, theirs)[0])
            continue
        if _is_ancestor(git, theirs, ours):
            return 0
        changes = runsref.merge_changes(git, ours, theirs, base)
        tree = runsref.apply_changes(git, ours, changes)
        commit = git.write_commit(tree, [ours, theirs], f"merge runs from {theirs[:12]}")
        if git.set_ref_if_equals(runsref.RUNS_REF, ours, commit):
            return len(changes)
        time.sleep(random.uniform(0, 0.02))
    raise ConcurrencyError("could not merge the runs ref: it kept moving")


def _without(git: GitRepo, tip: str, keys: set[str], base: str | None) -> str:
    """A commit on top of ``tip`` that undoes its changes to the entries ``keys`` (display keys):
    an entry ``base`` had goes back to that version, a new one goes away. So a bad change to a
    good run never deletes the good run."""
    before = dict(runsref.iter_run_trees(git, base)) if base else {}
    present: dict[str, str | None] = {}
    top = runsref.runs_tree(git, tip)
    for name, entry in (git.read_tree(top) if top else {}).items():
        for key in runsref.shard_runs(git, name, entry):
            if runsref.display_key(key) in keys:
                present[key] = before.get(key)
    tree = runsref.apply_changes(git, tip, present)
    return git.write_commit(tree, [tip], f"leave out {len(present)} entries that fail validation: "
                            + ", ".join(sorted(runsref.display_key(k) for k in present))[:2000])


def _is_ancestor(git: GitRepo, older: str, newer: str) -> bool:
    return _git_or_fail(git, "merge-base", "--is-ancestor", older, newer)[0] == 0


def pull(remote: str | None = None, exclude_bad: bool = False, repo: RepoLike = None) -> SyncResult:
    """Fetch, then merge the remote's runs into the local runs ref (never a force).

    Every incoming run is validated before the merge (docs/security.md).

    Raises:
        GitmlError: incoming runs fail validation (named); nothing is merged. With
            ``exclude_bad`` the other runs are merged and those are left out instead.
    """
    with open_repo(repo) as git:
        result = fetch(remote, git)
        result.merged = _merge_into_local(git, result.runs_tip, exclude_bad, result.remote, result.excluded)
        result.runs_tip = git.ref(runsref.RUNS_REF)
        return result


def registry_tags(git: GitRepo) -> list[str]:
    return sorted(name for name in git.tags() if parse_tag(name) is not None)


def push(remote: str | None = None, artifacts_remote: str | None = None, repo: RepoLike = None) -> SyncResult:
    """Upload artifacts first, then push the runs ref and registry tags; merge and retry on a race.

    Raises:
        GitmlError: artifacts could not be uploaded (nothing is pushed then), or git refused.
    """
    from gitml.artifacts.transfer import push as push_artifacts
    from gitml.core.remotes import list_remotes

    with open_repo(repo) as git:
        name = _check_remote(git, remote)
        result = SyncResult(name)
        if git.ref(runsref.RUNS_REF) is not None:
            if list_remotes(git) or artifacts_remote:
                uploaded = push_artifacts(remote=artifacts_remote, repo=git)
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
            elif _has_artifacts(git):
                raise GitmlError("not pushing: runs have artifacts but no artifact remote is configured",
                                 hint="gitml remote add NAME URL --default, then gitml push again")
        for _ in range(PUSH_ATTEMPTS):
            refspecs = [f"{runsref.RUNS_REF}:{runsref.RUNS_REF}"] if git.ref(runsref.RUNS_REF) else []
            result.tags = registry_tags(git)
            refspecs += [f"refs/tags/{t}:refs/tags/{t}" for t in result.tags]
            if not refspecs:
                return result
            code, message = _git_or_fail(git, "push", "--porcelain", name, *refspecs)
            if code == 0:
                result.runs_tip = git.ref(runsref.RUNS_REF)
                git.git("update-ref", tracking_ref(name), result.runs_tip or "", check=False)
                return result
            # The remote's runs ref moved (or another pusher held its lock): merge and retry.
            # Anything else (a hook that said no, auth, network, a clashing tag) is reported.
            if not _retryable(message):
                raise RemoteError(f"git push {name} failed: {_last_error(message, code)}")
            time.sleep(random.uniform(0, 0.05))
            fetched = fetch(name, git)
            result.merged += _merge_into_local(git, fetched.runs_tip, remote=name)
        raise ConcurrencyError(f"git push {name}: the remote runs ref kept moving; try again")


def _retryable(message: str) -> bool:
    for line in message.splitlines():
        if line.startswith("!") and runsref.RUNS_REF in line and any(
                reason in line for reason in ("fetch first", "non-fast-forward", "lock", "failed to update ref")):
            return True  # the remote's runs ref moved, or another pusher was updating it
    return False


def _last_error(message: str, code: int) -> str:
    """git's last error line, its URLs masked (git drops ``user:pw@`` but keeps ``?access_token=``)."""
    from gitml.core.urls import mask_text

    lines = [line for line in message.splitlines()
             if line.startswith(("error", "fatal", "!", "gitml:")) and "failed to push some refs" not in line]
    # The pre-push hook says why it blocked a push on its own lines before its summary: give
    # the first reason (and how many more) rather than only the summary.
    reasons = [line for line in lines if line.startswith("gitml: pre-push: ") and "push blocked" not in line
               and "warning:" not in line]
    if reasons and any("push blocked" in line for line in lines):
        more = f" (and {len(reasons) - 1} more: git push shows them all)" if len(reasons) > 1 else ""
        return mask_text(f"the pre-push hook blocked it: {reasons[0][len('gitml: pre-push: '):]}{more}")
    return mask_text((lines or message.splitlines() or [str(code)])[-1])


def _has_artifacts(git: GitRepo) -> bool:
    from gitml.tracking import index

    conn = index.open_index(git)
    try:
        row = conn.execute("SELECT 1 FROM runs WHERE doc NOT LIKE '%\"artifacts\": {}%' LIMIT 1").fetchone()
    finally:
        conn.close()
    return row is not None
