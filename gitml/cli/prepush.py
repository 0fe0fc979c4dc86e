"""``gitml hooks pre-push REMOTE URL``: what git's pre-push hook runs, and all that it prints.

Free of click and dulwich until there is something to check: :mod:`gitml.cli` dispatches here
before importing click, and :func:`gitml.hooks.nothing_to_check` answers an ordinary push from a
few file reads. The checks themselves are :func:`gitml.hooks.prepush.check_push`; this module
only turns their result into stderr lines and an exit code.
"""

from __future__ import annotations

import os
import sys


def _say(line: str) -> None:
    print(f"gitml: pre-push: {line}", file=sys.stderr)


def run_pre_push(args: list[str]) -> int:
    """Run the pre-push checks for git (stdin: git's ref lines) and return the exit code.

    Args:
        args: ``[REMOTE, URL]`` as git passes them (pre-commit passes none: its variables say).

    Returns:
        0 to let the push through, 1 when it is blocked, or the error's exit code.
    """
    from gitml.core.errors import GitmlError
    from gitml.hooks import nothing_to_check

    if os.environ.get("GITML_SKIP_HOOKS") == "1":  # the shim says so too; pre-commit calls us directly
        print("gitml: GITML_SKIP_HOOKS=1: pre-push checks skipped", file=sys.stderr)
        return 0
    remote = args[0] if args else os.environ.get("PRE_COMMIT_REMOTE_NAME", "origin")
    try:
        text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
        if nothing_to_check(text, remote):
            return 0
        from gitml.hooks.prepush import check_push, from_pre_commit_env, parse_lines

        result = check_push(remote, parse_lines(text) or from_pre_commit_env())
    except GitmlError as exc:
        _say(str(exc))
        return exc.exit_code
    for line in result.warnings:
        _say(f"warning: {line}")
    if result.uploaded:
        _say(f"uploaded {result.uploaded} artifact object(s) first")
    if not result.ok:
        for line in result.problems:
            _say(line)
        _say("push blocked (GITML_SKIP_HOOKS=1 or --no-verify bypasses it)")
        return 1
    return 0
