"""The ``gitml`` group, and the one place errors become a stderr line and an exit code.

Exit codes (docs/cli.md): 0 success; 1 failure (a gate, a corrupt record, a lost race, a
remote); 2 usage or bad input; 3 an internal error (a bug); 130 interrupted.
"""

from __future__ import annotations

import sys

import click

from gitml import __version__


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (keeps ``--help`` fast).

    The overridden methods are click's (``click.Group``), documented there.

    Args:
        *args: passed to ``click.Group``.
        lazy: ``{command name: (module, attribute, one-line help)}``; the help is what
            ``gitml --help`` lists without importing the module.
        **kwargs: passed to ``click.Group``.
    """

    def __init__(self, *args, lazy: dict[str, tuple[str, str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, loaded or not, sorted."""
        return sorted([*self.commands, *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command ``name``, importing its module on first use (None when unknown)."""
        if name in self.lazy and name not in self.commands:
            import importlib

            module, attr, _ = self.lazy[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The help's command list, from ``lazy``'s one-line helps (no module is imported)."""
        rows = [(name, help_) for name, (_, _, help_) in sorted(self.lazy.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


COMMANDS = {
    "init": ("gitml.cli.setup", "init_cmd", "Prepare this repository for gitml (idempotent)."),
    "commit-run": ("gitml.cli.commit", "commit_run_cmd", "Commit one run: params, metrics, artifacts."),
    "runs": ("gitml.cli.runs", "runs_group", "List, show, search and delete runs."),
    "experiments": ("gitml.cli.experiments", "experiments_group",
                    "List, show, create, rename, tag and describe experiments."),
    "index": ("gitml.cli.runs", "index_group", "Maintain the local query index."),
    "demo": ("gitml.cli.setup", "demo_cmd", "Create a demo repository with a few runs."),
    "diff": ("gitml.cli.diff", "diff_cmd", "What changed in params and metrics between two revisions."),
    "compare": ("gitml.cli.diff", "compare_cmd", "Several runs side by side."),
    "registry": ("gitml.cli.registry", "registry_group", "Model versions and stages as git tags."),
    "push": ("gitml.cli.sync", "push_cmd", "Upload artifacts, then push runs and registry tags."),
    "pull": ("gitml.cli.sync", "pull_cmd", "Fetch and merge a git remote's runs and registry tags."),
    "fetch": ("gitml.cli.sync", "fetch_cmd", "Fetch a git remote's runs ref and registry tags."),
    "hooks": ("gitml.cli.hooks", "hooks_group", "Install or run the pre-push hook."),
    "check": ("gitml.cli.hooks", "check_cmd", "Run the pre-push checks without pushing (CI)."),
    "remote": ("gitml.cli.artifacts", "remote_group", "Configure artifact remotes."),
    "artifacts": ("gitml.cli.artifacts", "artifacts_group", "Push, pull, list, verify and collect artifacts."),
    "models": ("gitml.cli.models", "models_group", "Serve models saved in MLflow's format."),
    "run": ("gitml.cli.projects", "run_cmd", "Run a project's entry point as a run (MLflow's mlflow run)."),
    "reproduce": ("gitml.cli.projects", "reproduce_cmd", "Run a past run again and compare its metrics."),
    "import": ("gitml.cli.interop", "import_group", "Import runs, experiments and models from MLflow."),
    "export": ("gitml.cli.export", "export_group", "Export runs, experiments and models to MLflow."),
    "ui": ("gitml.cli.ui", "ui_cmd", "Browse, compare and plot runs, branches and the registry in a browser."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gitml")
@click.option("-C", "directories", metavar="PATH", multiple=True,
              help="Run as if started in PATH (like git -C; several combine, each relative to the last).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, directories: tuple[str, ...], debug: bool) -> None:
    """gitml: ML runs, artifacts and a model registry, stored in git."""
    ctx.obj = {"debug": debug, "directory": None}
    if directories:
        ctx.obj["directory"] = _change_to(directories)
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")


def _change_to(directories: tuple[str, ...]) -> str:
    """Where ``-C`` options lead, as ``git -C`` would go, without changing the process's directory.

    Each one is read from the last (an empty one is ignored), symbolic links are followed before
    ``..`` as ``chdir`` does, and the result must be a directory this process may enter.

    Raises:
        click.BadParameter: a path that does not exist, is not a directory or cannot be entered.
    """
    import os

    # The repository is found from there and relative paths are read from there; commands pass
    # a Workspace (cli/context.py), so nothing depends on the process's directory.
    path = os.getcwd()
    for given in directories:
        if not given:
            continue
        path = os.path.realpath(os.path.join(path, os.path.expanduser(given)))
        reason = None
        if not os.path.exists(path):
            reason = "No such file or directory"
        elif not os.path.isdir(path):
            reason = "Not a directory"
        elif not os.access(path, os.X_OK):
            reason = "Permission denied"
        if reason:
            raise click.BadParameter(f"cannot change to {given}: {reason}", param_hint="-C")
    return path


INTERNAL_ERROR = 3  # a bug of gitml's, as DESIGN.md's error classes say (1 failed, 2 bad input)


def _object_id(exc: KeyError) -> str | None:
    """The git object id a dulwich ``KeyError`` names, if it names one."""
    import re

    key = exc.args[0] if exc.args else None
    text = key.decode("ascii", "replace") if isinstance(key, bytes) else str(key)
    return text if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", text) else None


def _traceback() -> None:
    """Print the exception being handled to stderr (``--debug``)."""
    import traceback

    traceback.print_exc()


def _quiet_unraisable(unraisable) -> None:
    """``sys.unraisablehook`` without ``--debug``: log the ignored error at debug level only."""
    import logging

    logging.getLogger("gitml").debug("ignored in %r: %r", unraisable.object, unraisable.exc_value)


def _group_without_command(exc: click.ClickException) -> bool:
    """Whether ``exc`` is click's answer to a command group typed without its subcommand.

    Click raises ``NoArgsIsHelpError`` (8.2 and later) when a group gets no arguments at all,
    and fails with "Missing command." when it got only options (``gitml -C dir``); click 8.1
    printed the help itself. Both mean the same thing to a user.
    """
    from gettext import gettext

    if not isinstance(exc, click.UsageError) or exc.ctx is None or not isinstance(exc.ctx.command, click.Group):
        return False
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
    if no_args is not None and isinstance(exc, no_args):
        return True
    return exc.message == gettext("Missing command.")  # the words click fails with (translated as click does)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every error ends as one line on stderr and a documented exit code.

    This is the one place errors are translated: a :class:`~gitml.core.errors.GitmlError`
    exits with its class's code, a usage error with 2, Ctrl-C with 130, anything else is an
    internal error (3); ``--debug`` prints the traceback instead of the line. Never returns.

    Args:
        argv: the arguments after ``gitml`` (default: ``sys.argv[1:]``; none means ``--help``).
    """
    args = sys.argv[1:] if argv is None else argv
    if not args:  # bare `gitml`: help on stdout, as `gitml --help`
        args = ["--help"]
    debug = "--debug" in args
    if not debug:
        # A destructor failing at exit (dulwich closing a half-written object file on a full
        # disk, say) must not add a traceback to the one error line; --debug still shows it.
        sys.unraisablehook = _quiet_unraisable
    try:
        code = cli.main(args=args, prog_name="gitml", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("gitml: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        if _group_without_command(exc):
            # `gitml runs`, `gitml -C dir`: a request to see what the group holds, answered as
            # bare `gitml` is, with the group's help on stdout and exit 0 (docs/cli.md, Global options).
            click.echo(exc.ctx.get_help(), color=exc.ctx.color)
            sys.exit(0)
        if debug:
            _traceback()
            sys.exit(exc.exit_code)
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see `{exc.ctx.command_path} --help`)"
        click.echo(f"gitml: error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the one translation point
        from gitml.core.errors import GitmlError

        if debug:  # the traceback instead of the one line; the exit code stays the class's
            _traceback()
            sys.exit(exc.exit_code if isinstance(exc, GitmlError) else INTERNAL_ERROR)
        if isinstance(exc, OSError):  # a full or read-only disk is the user's to fix, not a bug
            from gitml.core.active import disk_error

            exc = disk_error(exc, "files in this repository") or exc
        elif isinstance(exc, KeyError) and _object_id(exc):  # dulwich: an object is not there
            from gitml.core.errors import MissingObjectError

            exc = MissingObjectError(_object_id(exc), "reading the repository")
        elif type(exc).__name__ == "OperationalError" and "disk is full" in str(exc):  # sqlite3's
            exc = GitmlError("no space left on device while writing the query index "
                             "(.git/gitml/index.sqlite): free space and retry")
        from gitml.cli.output import printable

        if isinstance(exc, GitmlError):
            label = "internal error" if exc.exit_code == INTERNAL_ERROR else "error"
            click.echo(f"gitml: {label}: {printable(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        click.echo(f"gitml: internal error: {type(exc).__name__}: {printable(str(exc))} (rerun with --debug)",
                   err=True)
        sys.exit(INTERNAL_ERROR)
    sys.exit(code if isinstance(code, int) else 0)
