"""Git hooks: the pre-push shim, installing it beside (never over) the user's hooks, running it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from gitml.core.errors import BadInputError

if TYPE_CHECKING:  # dulwich loads only when a hook has real work: an ordinary push never pays for it
    from gitml.core.gitrepo import GitRepo
    from gitml.core.workspace import WorkspaceLike

__all__ = ["check", "install", "uninstall"]  # the API docs/sync.md documents

MARKER = "gitml pre-push hook"
CHAINED = "pre-push.chained"
# The same text as hooks/pre-push in the source tree (a test keeps them equal).
SHIM = '#!/bin/sh\n# gitml pre-push hook: uploads the artifacts of what is pushed, validates run records and registry\n# tags, and applies the gates of gitml.yaml. Installed by `gitml hooks install`; a pre-push hook\n# that was there before runs first (pre-push.chained), with the same arguments and input.\n# GITML_SKIP_HOOKS=1 skips the gitml checks; `git push --no-verify` skips every hook.\ninput=$(cat)\nhooks_dir=$(dirname "$0")\nif [ -x "$hooks_dir/pre-push.chained" ]; then\n  printf \'%s\\n\' "$input" | "$hooks_dir/pre-push.chained" "$@" || exit $?\nfi\nif [ "${GITML_SKIP_HOOKS:-}" = "1" ]; then\n  echo "gitml: GITML_SKIP_HOOKS=1: pre-push checks skipped" >&2\n  exit 0\nfi\nif ! command -v gitml >/dev/null 2>&1; then\n  echo "gitml: pre-push hook: the gitml command is not on PATH, so nothing was checked." >&2\n  echo "gitml: install it (pip install gitml) or push with --no-verify to bypass." >&2\n  exit 1\nfi\nprintf \'%s\\n\' "$input" | exec gitml hooks pre-push "$@"\n'


def hooks_dir(git: GitRepo) -> Path:
    """Where git looks for hooks (``core.hooksPath`` respected).

    Args:
        git: the open repository.

    Returns:
        The hooks folder, absolute (it may not exist yet).
    """
    return git.git_path("hooks")


def install(force: bool = False, repo: WorkspaceLike = None) -> list[str]:
    """Install the pre-push hook; an existing foreign hook is kept and chained (``--force`` replaces it).

    Args:
        force: replace a pre-push hook that is not gitml's instead of chaining it.
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        One line per thing done.

    Raises:
        BadInputError: both ``pre-push`` and ``pre-push.chained`` exist already (without ``force``).
    """
    from gitml.core.workspace import open_workspace

    done = []
    with open_workspace(repo) as ws:
        directory = hooks_dir(ws.repo)
        directory.mkdir(parents=True, exist_ok=True)
        hook, chained = directory / "pre-push", directory / CHAINED
        if hook.exists() and MARKER not in hook.read_text(errors="replace"):
            if force:
                done.append(f"replaced the existing {hook}")
            elif chained.exists():
                raise BadInputError(f"{hook} and {chained} both exist already",
                                    hint="merge them by hand, or use --force to replace pre-push")
            else:
                hook.rename(chained)
                done.append(f"kept your pre-push hook as {chained.name}; it runs first")
        hook.write_text(SHIM)
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        done.append(f"installed {hook}")
    return done


def uninstall(repo: WorkspaceLike = None) -> list[str]:
    """Remove gitml's pre-push hook and put a chained one back.

    Args:
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        One line per thing done.

    Raises:
        BadInputError: there is no gitml pre-push hook.
    """
    from gitml.core.workspace import open_workspace

    with open_workspace(repo) as ws:
        directory = hooks_dir(ws.repo)
        hook, chained = directory / "pre-push", directory / CHAINED
        if not hook.exists() or MARKER not in hook.read_text(errors="replace"):
            raise BadInputError(f"no gitml pre-push hook in {directory}")
        hook.unlink()
        done = [f"removed {hook}"]
        if chained.exists():
            chained.rename(hook)
            done.append(f"restored your pre-push hook from {chained.name}")
        return done


def nothing_to_check(text: str, remote: str = "origin") -> bool:
    """True when the push carries no gitml ref or tag, the repository has no runs and no gates.

    Answered from a few file reads and at most two git processes, before dulwich or the index are
    even imported: this is the cost of the hook on an ordinary push in a repository that does not
    use gitml's refs. Gates count wherever they may rule the push: in the work tree's
    ``gitml.yaml`` and in that of every commit the full check could read it from (the remote's
    commit of each pushed branch, its remote-tracking ref, the remote's default branch).

    Args:
        text: what git wrote to the hook's stdin: ``<local ref> <local sha> <remote ref>
            <remote sha>`` lines (empty under the pre-commit framework, whose variables say).
        remote: the git remote's name (or URL) being pushed to.

    Returns:
        True when the full check can be skipped; False when it must run (or cannot be ruled
        out, e.g. outside a repository).
    """
    from gitml.core.gitcli import discover

    if not text.strip() and os.environ.get("PRE_COMMIT_TO_REF"):
        return False  # the pre-commit framework: what is pushed comes in variables
    branches = []
    for line in text.splitlines():
        parts = line.split()
        name = parts[2] if len(parts) == 4 else ""
        if name.startswith("refs/gitml/") or (name.startswith("refs/tags/") and ("@" in name or "#" in name)):
            return False
        if name.startswith("refs/heads/") and parts[1].strip("0"):
            branches.append((parts[3], name[len("refs/heads/"):]))
    found = discover()
    if found is None:
        return False
    common, top = found
    if (common / "refs" / "gitml" / "runs").exists():
        return False
    try:
        if " refs/gitml/runs\n" in (common / "packed-refs").read_text(errors="replace"):
            return False
    except FileNotFoundError:
        pass
    try:
        if "gates" in (Path(top) / "gitml.yaml").read_text(errors="replace"):
            return False
    except FileNotFoundError:
        pass
    return not branches or not _target_has_gates(branches, remote)


_nothing_to_check = nothing_to_check  # the name bench/bench_hooks.py times


def _target_has_gates(branches: list[tuple[str, str]], remote: str) -> bool:
    """Whether any ``gitml.yaml`` the full check may take the gates from mentions gates."""
    import re

    from gitml.core.gitcli import read_files_at

    specs = [sha for sha, _ in branches if re.fullmatch(r"[0-9a-f]{40}(?:[0-9a-f]{24})?", sha) and sha.strip("0")]
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", remote) and ".." not in remote:  # a name, not a URL
        specs += [f"refs/remotes/{remote}/{b}" for _, b in branches]
        specs += [f"refs/remotes/{remote}/{b}" for b in ("HEAD", "main", "master")]
    if not specs:
        return False
    contents = read_files_at([f"{spec}:gitml.yaml" for spec in specs])
    if contents is None:
        return True  # cannot tell: let the full check decide
    return any(b"gates" in data for data in contents if data is not None)


def check(revs: list[str] | None = None, remote: str | None = None, repo: WorkspaceLike = None):
    """Run the pre-push validation without pushing (for CI): nothing is uploaded.

    Checks the runs ref, every registry tag, and the given revisions (default: HEAD) as if they
    were pushed to ``remote``'s branches of the same names: the gates are those of the
    ``gitml.yaml`` on that branch as last fetched (``refs/remotes/<remote>/<branch>``), as the
    pre-push hook reads them.

    Args:
        revs: revisions to check as pushed branches (default: HEAD).
        remote: the git remote to check against (default: the branch's, else origin).
        repo: a Workspace, an open repository or a path inside one.

    Returns:
        A :class:`gitml.hooks.prepush.CheckResult` (``problems`` would block a push).

    Raises:
        BadInputError: a revision does not resolve, or a gitml.yaml is invalid.
    """
    from gitml.core import runsref
    from gitml.core.tags import parse_tag
    from gitml.core.workspace import open_workspace
    from gitml.hooks.prepush import ZERO, PushedRef, TargetConfigs, check_push

    with open_workspace(repo) as ws:
        git = ws.repo
        name = remote or (git.default_remote() if git.remotes() else "origin")
        refs = []
        tip = git.ref(runsref.RUNS_REF)
        if tip:
            refs.append(PushedRef(runsref.RUNS_REF, tip, runsref.RUNS_REF, git.ref(runsref.tracking_ref(name)) or ZERO))
        for tag, sha in git.tags().items():
            if parse_tag(tag):
                refs.append(PushedRef(f"refs/tags/{tag}", sha, f"refs/tags/{tag}", ZERO))
        targets = TargetConfigs(git, name)
        for rev in revs or ["HEAD"]:
            sha = git.rev_parse(rev)
            if sha is None:
                raise BadInputError(f"not a revision: {rev!r}")
            branch = rev if rev != "HEAD" else (git.head()[1] or "HEAD")
            # As a push would: the remote's branch is where its gates are read from.
            remote_sha = targets.tracking(branch) or ZERO
            refs.append(PushedRef(f"refs/heads/{branch}", sha, f"refs/heads/{branch}", remote_sha))
        return check_push(name, refs, upload=False, repo=ws)
