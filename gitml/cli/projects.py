"""``gitml run``: a project's entry point as a run."""

from __future__ import annotations

import click


def _progress(line: str) -> None:
    """Progress for people (an environment being built).

    On a terminal only, so that a command that succeeds leaves a captured stderr empty.
    """
    import sys

    if sys.stderr.isatty():
        click.echo(f"gitml: {line}", err=True)


def _terminate_as_interrupt() -> None:
    """SIGTERM (CI cancelling a job, a scheduler preempting it) stops a run as Ctrl-C does: KILLED."""
    import signal

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@click.command("run")
@click.argument("uri", required=False)
@click.option("-e", "--entry-point", "entry", default="main", show_default=True,
              help="The entry point, or a .py or .sh file of the project.")
@click.option("-P", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A parameter (repeatable).")
@click.option("--version", "version", default=None, metavar="REV",
              help="The revision to run (branch, tag or commit), in a temporary worktree.")
@click.option("--env-manager", type=click.Choice(["local", "virtualenv", "uv", "conda"]), default=None,
              help="How to make the environment (default: local without an environment file, else uv or virtualenv).")
@click.option("-n", "--name", default=None, help="The run's name (a sweep's parent run's).")
@click.option("--experiment", default=None, help="The run's experiment.")
@click.option("--sweep", "kind", type=click.Choice(["grid", "random"]), default=None,
              help="Run many trials: grid (every combination of -P lists) or random (--trials draws).")
@click.option("--trials", type=click.IntRange(min=1), default=None, help="How many random trials.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Trials at once.")
@click.option("--objective", default=None, metavar="metrics.NAME", help="Pick the sweep's best trial by this metric.")
@click.option("--direction", type=click.Choice(["min", "max"]), default="min", show_default=True,
              help="Whether the objective's best is its lowest or highest value.")
@click.option("--seed", type=int, default=None, help="The random sweep's seed.")
@click.option("--backend", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where a sweep's trials run: here, or on a Dask distributed cluster.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="The Dask scheduler (--backend dask).")
def run_cmd(uri: str | None, entry: str, params: tuple[str, ...], version: str | None, env_manager: str | None,
            name: str | None, experiment: str | None, kind: str | None, trials: int | None, jobs: int,
            objective: str | None, direction: str, seed: int | None, backend: str, scheduler: str | None) -> None:
    """Run a project's entry point as a run; print the run's id (last, after the command's output).

    URI is this repository (default), a path to another repository, or a URL git can clone.
    Lists (-P lr=0.01,0.1) or ranges (-P lr=loguniform(1e-4,1) with --sweep random) make a
    sweep: each trial a run under a parent run. Exit 1 when a trial failed; the count is on
    stderr and in the parent run's tags (sweep.failed, sweep.finished ...).
    """
    from gitml.cli.context import workspace
    from gitml.core.errors import BadInputError, GateFailedError
    from gitml.projects.run import run_project
    from gitml.projects.spec import parse_assignments
    _terminate_as_interrupt()
    values = parse_assignments(params)
    if kind is None and any("," in v or "(" in v for v in values.values()):
        from gitml.projects.sweep import is_sweep  # a single run does not import the sweep module

        if is_sweep(values):
            kind = "grid"
    if kind is None and backend == "dask":
        kind = "grid"  # one trial on the cluster is a sweep of one
    if kind is None:
        values = {k: v.replace("\\,", ",") for k, v in values.items()}  # `\,` reads as in a sweep
        if trials is not None or jobs != 1 or objective is not None or seed is not None or scheduler is not None:
            raise BadInputError("--trials, --jobs, --objective, --seed and --scheduler go with a sweep "
                                "(-P lists or ranges, or --sweep)")
        with workspace() as ws:
            result = run_project(uri, entry, values, version, env_manager, name, experiment, repo=ws, log=_progress)
        for warning in result.warnings:
            click.echo(f"gitml: warning: {warning}", err=True)
        click.echo(result.run.id)
        if result.run.status != "FINISHED":
            raise SystemExit(1)
        return
    from gitml.projects.sweep import describe_trial, run_sweep

    key = objective[len("metrics."):] if objective and objective.startswith("metrics.") else None
    lock = __import__("threading").Lock()

    def report(trial) -> None:
        with lock:
            try:
                click.echo(describe_trial(trial, key))
            except OSError:  # stdout closed (`| head -1`): the trials go on, their runs say how they ended
                pass

    if backend == "dask" and not click.get_current_context().find_root().obj.get("debug"):
        # distributed logs a lost scheduler as tracebacks; each trial's run keeps the error and
        # the sweep ends with one line (--debug shows them)
        import logging

        try:
            import distributed  # noqa: F401 - its import sets its loggers' levels; ours come after
        except ImportError:
            pass  # run_sweep says how to install it
        for logger in ["distributed", *logging.root.manager.loggerDict]:  # its import gives some their own handlers
            if logger == "distributed" or logger.startswith("distributed."):
                logging.getLogger(logger).setLevel(logging.CRITICAL + 1)
    with workspace() as ws:
        found = run_sweep(values, uri, entry, kind, trials, jobs, objective, direction, version, env_manager, name,
                          experiment, repo=ws, seed=seed, on_trial=report, log=_progress, backend=backend,
                          scheduler=scheduler)
    best = f", best run {found.best.id[:8]} ({key}={found.best.metrics[key]:.6g})" if found.best else ""
    for warning in dict.fromkeys(w for t in found.trials if t.result for w in t.result.warnings):
        click.echo(f"gitml: warning: {warning}", err=True)  # once, not once per trial
    if key and found.best is None and any(t.status == "FINISHED" for t in found.trials):
        click.echo(f"gitml: warning: no finished trial logged metrics.{key}: the sweep has no best trial "
                   "(is the name right?)", err=True)
    click.echo(f"sweep {found.sweep_id}: {len(found.trials)} trials, {found.failed} failed{best}")
    click.echo(found.parent.id)
    if found.failed:
        # the exit code keeps its class (1: an operation failed) so that scripts and CI read 2 and
        # 3 as bad input and internal error only; how many failed is in the message and the tags
        raise GateFailedError(f"{found.failed} of {len(found.trials)} trials failed (sweep {found.sweep_id}, "
                              f"parent run {found.parent.id[:8]})")


@click.command("reproduce")
@click.argument("run")
@click.option("--tolerance", type=float, default=1e-6, show_default=True,
              help="How far a metric may move: |new - old| <= tolerance * max(1, |old|).")
@click.option("--env-manager", type=click.Choice(["local", "virtualenv", "uv", "conda"]), default=None,
              help="Override the environment manager the run recorded.")
@click.option("--md", "as_md", is_flag=True, help="Print the metric comparison as Markdown (for a pull request).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def reproduce_cmd(run: str, tolerance: float, env_manager: str | None, as_md: bool, as_json: bool) -> None:
    """Run RUN again from its commit, patch, entry point and parameters; compare the metrics.

    Exit 0 when every metric matches within the tolerance, 1 when one differs (or the
    reproduction failed).
    """
    from gitml.cli.context import workspace
    from gitml.cli.diff import _render
    from gitml.core.errors import BadInputError, GateFailedError
    from gitml.projects.reproduce import reproduce

    if as_md and as_json:
        raise BadInputError("--md and --json: choose one")

    with workspace() as ws:
        # Markdown or JSON for a script: the command's own output would come first on stdout
        found = reproduce(run, tolerance, env_manager, repo=ws, log=_progress, stream=not (as_md or as_json))
    new = found.project_run.run
    for warning in found.warnings:
        click.echo(f"gitml: warning: {warning}", err=True)
    _render(found.diff, ["original", "reproduction"], as_md, as_json, False)
    if new.status != "FINISHED":
        raise GateFailedError(f"the reproduction {new.id[:8]} ended {new.status} (exit code "
                              f"{found.project_run.exit_code})")
    if found.differing:
        raise GateFailedError(f"not reproduced: {', '.join(found.differing)} differ beyond {tolerance:g} "
                              f"(reproduction {new.id[:8]})")
    if not as_json and not as_md:  # Markdown and JSON are for a file or a pull request: the table only
        click.echo(f"reproduced: run {new.id[:8]} matches {found.original.id[:8]} within {tolerance:g}")
