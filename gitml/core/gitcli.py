"""The one place gitml starts ``git``, and how git's failures become gitml errors.

:class:`gitml.core.gitrepo.GitRepo` runs git through :func:`run_git` for what dulwich does slowly
or not at all, behind typed methods. The pre-push hook's fast path (which must not pay for
importing dulwich) uses the two dulwich-free questions here: :func:`discover` and
:func:`read_files_at`. Nothing outside ``gitml.core`` builds a git command line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from gitml.core.errors import BadInputError, GitmlError, InternalError, RemoteError


def run_git(args: tuple[str, ...] | list[str], cwd: str | os.PathLike | None = None,
            input: bytes | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``git *args`` in ``cwd`` and return the finished process (stdout and stderr as bytes).

    The exit code is not judged here: :func:`git_failure` turns a failure into an error by kind.

    Args:
        args: git's arguments, without the leading ``git``.
        cwd: the directory git runs in (default: the current one).
        input: bytes written to git's stdin (default: none).
        timeout: seconds after which git is killed and :class:`subprocess.TimeoutExpired` raised
            (default: none). With a timeout git also never prompts for credentials.

    Returns:
        The finished process, whatever its exit code.

    Raises:
        GitmlError: the ``git`` command is not installed.
    """
    env = None
    if timeout is not None:  # a question asked on the side: never wait on a password prompt
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": os.environ.get(
            "GIT_SSH_COMMAND", "ssh -o BatchMode=yes")}
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            env=env,
            timeout=timeout,
            capture_output=True,
            check=False,
            close_fds=False,  # lets CPython use vfork: about half the cost of a default spawn
        )
    except FileNotFoundError:
        raise GitmlError("the git command was not found", hint="install git and put it on PATH") from None


def discover(cwd: str | os.PathLike | None = None) -> tuple[Path, Path] | None:
    """Find the repository at ``cwd`` with one git process and no dulwich.

    The pre-push hook asks this before deciding it has work.

    Args:
        cwd: a directory inside the repository (default: the current one).

    Returns:
        ``(absolute git common dir, work tree top)``, or None outside a repository (or in a bare
        one, which has no work tree).
    """
    out = run_git(["rev-parse", "--path-format=absolute", "--git-common-dir", "--show-toplevel"], cwd)
    if out.returncode != 0:
        return None
    lines = out.stdout.decode("utf-8", "surrogateescape").splitlines() + ["", ""]
    common, top = lines[0], lines[1]
    return (Path(common) if os.path.isabs(common) else Path(top, common)), Path(top)


def read_files_at(specs: list[str], cwd: str | os.PathLike | None = None) -> list[bytes | None] | None:
    """Read files at revisions with one ``git cat-file --batch`` process and no dulwich.

    Args:
        specs: ``<revision>:<path>`` specs in git's syntax (``refs/remotes/origin/main:gitml.yaml``).
        cwd: a directory inside the repository (default: the current one).

    Returns:
        Each spec's bytes, in the order given (None where a spec names nothing), or None when
        git failed as a whole.
    """
    if not specs:
        return []
    out = run_git(["cat-file", "--batch"], cwd, "".join(f"{spec}\n" for spec in specs).encode())
    if out.returncode != 0:
        return None
    found: list[bytes | None] = []
    data, pos = out.stdout, 0
    while pos < len(data) and len(found) < len(specs):  # "<sha> <type> <size>\n<bytes>\n" or "<spec> missing\n"
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        pos = end + 1
        if len(header) == 3 and header[2].isdigit():
            size = int(header[2])
            found.append(data[pos:pos + size])
            pos += size + 1
        else:
            found.append(None)
    return found


# git subcommands that talk to a remote: their failure is the remote's (or the network's).
REMOTE_COMMANDS = {"fetch", "push", "ls-remote", "clone", "pull"}
# What git says (exit code 128) when a revision, object name or path argument it was given
# does not resolve: the input was bad, nothing failed.
BAD_INPUT_MESSAGES = re.compile(
    r"unknown revision|bad revision|ambiguous argument|not a valid object name|invalid object name"
    r"|needed a single revision|not a valid (?:commit|tag|tree|ref)|invalid reference|invalid refspec"
    r"|not a valid ref name|is not a valid branch name|bad revision range|invalid key|invalid section name",
    re.IGNORECASE,
)
GIT_USAGE_EXIT = 129  # git's own usage error: gitml built a command line this git does not accept


def git_failure(args: tuple[str, ...] | list[str], code: int, stderr: str) -> GitmlError:
    """The error for a git command that exited with ``code`` and said ``stderr``, by kind.

    A signal, or git rejecting its command line (exit 129), is an :class:`InternalError` (exit
    3): gitml asked for something git could not do. A command that talks to a remote failing is a
    :class:`RemoteError` (1). A revision or argument git cannot resolve is a
    :class:`BadInputError` (2). Anything else is a plain :class:`GitmlError` (1): the operation
    failed (a held lock, a full disk, a corrupt object), as git's last error line says.

    Args:
        args: the arguments git was given (its subcommand names the error).
        code: git's exit code; negative when a signal killed it.
        stderr: what git wrote to stderr, decoded.

    Returns:
        The error to raise, its message ending with git's last error line (credentials masked).
    """
    from gitml.core.urls import mask_text

    command = _subcommand(args)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("fatal:", "error:"))]
    said = mask_text((errors or lines or [f"exit code {code}"])[-1])
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return InternalError(f"git {command} was killed by {name}")
    if command in REMOTE_COMMANDS:
        return RemoteError(f"git {command} failed: {said}")
    if any(BAD_INPUT_MESSAGES.search(line) for line in errors or lines):
        return BadInputError(f"git {command} failed: {said}")
    if code == GIT_USAGE_EXIT:
        return InternalError(f"git {command} rejected its arguments: {said}", hint="please report it, with the output of `git --version`")
    return GitmlError(f"git {command} failed: {said}")


def _subcommand(args: tuple[str, ...] | list[str]) -> str:
    """The git subcommand in ``args``, past global options such as ``-c key=value``."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-c", "-C", "--git-dir", "--work-tree"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return args[0] if args else "?"


def check_result(args: tuple[str, ...] | list[str], proc: subprocess.CompletedProcess) -> bytes:
    """``proc``'s stdout when it succeeded; else raise its error (see :func:`git_failure`).

    Args:
        args: the arguments git was given.
        proc: the finished git process, from :func:`run_git`.

    Returns:
        git's stdout, as bytes.

    Raises:
        BadInputError: git could not resolve a revision or argument it was given.
        RemoteError: a command that talks to a remote failed.
        InternalError: git was killed by a signal, or rejected its command line.
        GitmlError: any other failure.
    """
    if proc.returncode != 0:
        raise git_failure(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout
