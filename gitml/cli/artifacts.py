"""``gitml remote …`` and ``gitml artifacts …``: parse, one call to :mod:`gitml.artifacts`, render.

Each command opens the Workspace of ``-C``/the current directory and passes it as ``repo=``;
path arguments are read from that directory (:func:`gitml.cli.context.path_arg`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from gitml.cli.context import path_arg, workspace
from gitml.cli.output import echo_json, echo_table, output_options
from gitml.core.errors import GitmlError


class Bars:
    """tqdm bars (bytes and files) on a terminal; nothing when stderr is piped.

    Args:
        what: the label of the bytes bar (``push``, ``pull``, ``get``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.bytes = self.files = None

    def start(self, files: int, total_bytes: int) -> None:
        """Open the bars, when stderr is a terminal and there is something to move."""
        if not sys.stderr.isatty() or not files:
            return
        from tqdm import tqdm

        self.bytes = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=self.what, leave=False)
        self.files = tqdm(total=files, unit="file", desc="files", leave=False)

    def advance(self, nbytes: int) -> None:
        """Count one object of ``nbytes`` bytes moved."""
        if self.bytes is not None:
            self.bytes.update(nbytes)
            self.files.update(1)

    def close(self) -> None:
        """Close the bars, if they were opened."""
        for bar in (self.bytes, self.files):
            if bar is not None:
                bar.close()


def _options(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="-o")
        out[key] = value
    return out


@click.group("remote")
def remote_group() -> None:
    """Configure artifact remotes (any fsspec URL)."""


@remote_group.command("add")
@click.argument("name")
@click.argument("url")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="fsspec storage option.")
@click.option("--default", is_flag=True, help="Make it the default remote.")
@click.option("--local", is_flag=True, help="Write to this repository's git config, not gitml.yaml.")
def remote_add_cmd(name, url, options, default, local) -> None:
    """Add or replace remote NAME at URL (s3://…, gs://…, /path, memory://…)."""
    from gitml.artifacts.remotes import add_remote

    with workspace() as ws:
        remote = add_remote(name, url, _options(options), default=default, local=local, repo=ws, masked=True)
    click.echo(f"{remote.name}\t{remote.url}")
    for warning in remote.warnings:
        click.echo(f"gitml: warning: {warning}", err=True)


@remote_group.command("list")
@output_options
def remote_list_cmd(as_json, as_csv) -> None:
    """List remotes; the default one is marked."""
    from dataclasses import asdict

    from gitml.artifacts.remotes import list_remotes

    with workspace() as ws:
        remotes = list_remotes(repo=ws, masked=True)  # credentials are never printed
    if as_json:
        echo_json([{k: v for k, v in asdict(r).items() if k != "warnings"} for r in remotes])
        return
    rows = [[r.name + (" *" if r.default else ""), r.url, r.scope,
             " ".join(f"{k}={v}" for k, v in sorted(r.options.items()))] for r in remotes]
    echo_table(["name", "url", "scope", "options"], rows, as_csv)


@remote_group.command("remove")
@click.argument("name")
def remote_remove_cmd(name) -> None:
    """Remove remote NAME."""
    from gitml.artifacts.remotes import remove_remote

    with workspace() as ws:
        remove_remote(name, repo=ws)


@click.group("artifacts")
def artifacts_group() -> None:
    """Push, pull, list, verify and collect artifacts."""


def _remote_option(func):
    return click.option("-r", "--remote", help="Remote name (default: the default remote).")(func)


def _force_option(func):
    return click.option("-f", "--force", is_flag=True,
                        help="Overwrite existing files whose content differs.")(func)


def _jobs_option(func):
    return click.option("-j", "--jobs", type=click.IntRange(1, 256), default=8, show_default=True,
                        help="Parallel transfers.")(func)


@artifacts_group.command("push")
@click.argument("runs", nargs=-1)
@_remote_option
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=None,
              help="Uploads at once  [default: 64 small objects on S3, GCS and Azure; 8 elsewhere, but "
                   "objects up to 1 MiB one at a time to a folder on a local disk]")
@click.option("--recheck", is_flag=True,
              help="Ask the remote about every object, not only those this repository has no record of.")
@click.option("--json", "as_json", is_flag=True, help="Write JSON.")
def push_cmd(runs, remote, jobs, recheck, as_json) -> None:
    """Upload what the remote lacks for RUNS (default: every run)."""
    from gitml.artifacts.transfer import push

    bars = Bars("push")
    try:
        with workspace() as ws:
            result = push(list(runs) or None, remote=remote, jobs=jobs, progress=bars, repo=ws, recheck=recheck)
    finally:
        bars.close()
    missing = [f"{m.run_id[:8]}:{m.path}" for m in result.missing_locally]
    if as_json:
        echo_json({"remote": result.remote, "uploaded": len(result.transferred), "bytes": result.bytes,
                   "skipped": result.skipped, "missing_locally": missing, "refused": result.refused})
    else:
        click.echo(f"{len(result.transferred)} uploaded ({result.bytes} bytes), {result.skipped} already "
                   f"on {result.remote}" + (f", {len(missing)} missing locally" if missing else ""))
    if missing:
        raise GitmlError(f"not in the local cache, so not pushed: {', '.join(missing[:5])}")
    _fail_refused(result.refused, "the other runs' artifacts were pushed")


def _fail_refused(refused: dict[str, str], what: str) -> None:
    """Exit 1 naming the runs whose records could not be used (after the rest was done)."""
    if refused:
        run_id, problem = next(iter(refused.items()))
        more = f" and {len(refused) - 1} more run(s)" if len(refused) > 1 else ""
        raise GitmlError(f"run {run_id} refused ({problem}){more}; {what}",
                         hint=f"gitml runs delete {run_id}")


@artifacts_group.command("status")
@click.argument("runs", nargs=-1)
@_remote_option
@click.option("-a", "--all", "show_all", is_flag=True, help="Also list objects already on the remote.")
@output_options
def status_cmd(runs, remote, show_all, as_json, as_csv) -> None:
    """Show which artifacts are not on the remote yet."""
    from gitml.artifacts.transfer import status

    with workspace() as ws:
        report = status(list(runs) or None, remote=remote, repo=ws)
    for run_id, problem in report.refused.items():
        click.echo(f"gitml: warning: run {run_id} left out: {problem}", err=True)
    found = [s for s in report if show_all or not s.remote]
    if as_json:
        echo_json([{"run": s.ref.run_id, "path": s.ref.path, "sha256": s.ref.digest, "size": s.ref.size,
                    "local": s.local, "remote": s.remote} for s in found])
        return
    if not found and not as_csv:  # say what was looked at rather than print an empty table
        if not report:
            click.echo(f"no artifacts referenced by {'these runs' if runs else 'any run'}")
        else:
            click.echo(f"all {_count(len(report), 'object')} referenced by {'these runs' if runs else 'the runs'} "
                       f"are on {report.remote}")
        return
    echo_table(["run", "path", "size", "local", "remote"],
               [[s.ref.run_id[:8], s.ref.path, s.ref.size, "yes" if s.local else "no",
                 "yes" if s.remote else "no"] for s in found], as_csv)


@artifacts_group.command("pull")
@click.argument("run")
@click.argument("paths", nargs=-1)
@click.option("-o", "--out", default=".", show_default=True, help="Directory to write into.")
@_remote_option
@_jobs_option
@_force_option
def pull_cmd(run, paths, out, remote, jobs, force) -> None:
    """Fetch RUN's artifacts (or only PATHS) into OUT/<path>; print the files written."""
    from gitml.artifacts.transfer import pull

    bars = Bars("pull")
    try:
        with workspace() as ws:
            written = pull(run, paths, out=path_arg(out), remote=remote, jobs=jobs, progress=bars, repo=ws,
                           force=force)
    finally:
        bars.close()
    for path in written:
        click.echo(_as_given(path, out))


@artifacts_group.command("get")
@click.argument("uri")
@click.option("-o", "--out", "dest", help="Destination file or directory (default: its base name, here).")
@_remote_option
@_force_option
def get_cmd(uri, dest, remote, force) -> None:
    """Fetch one file or directory by URI (runs:/<run>/<path>) without the rest of the run."""
    from gitml.artifacts.transfer import download

    bars = Bars("get")
    try:
        with workspace() as ws:
            written = download(uri, None if dest is None else path_arg(dest), remote=remote, progress=bars,
                               repo=ws, force=force, into=path_arg("."))
    finally:
        bars.close()
    for path in written:
        click.echo(_as_given(path, "." if dest is None else dest))


def _as_given(written: Path, given: str) -> str:
    """A file written under the destination ``given`` on the command line, spelled from it.

    ``-o restored`` prints ``restored/model.pkl`` whether or not ``-C`` moved where ``restored``
    is, as ``git -C`` prints paths relative to its directory. An empty folder made ends with ``/``.
    """
    slash = "/" if written.is_dir() else ""
    try:
        return os.path.normpath(Path(given) / written.relative_to(path_arg(given))) + slash
    except ValueError:  # not under it (the service never writes elsewhere): print where it went
        return os.fspath(written) + slash


def _count(n: int, what: str) -> str:
    """``1 object``, ``2 objects``."""
    return f"{n} {what}{'' if n == 1 else 's'}"


@artifacts_group.command("ls")
@click.argument("run")
@output_options
def ls_cmd(run, as_json, as_csv) -> None:
    """List RUN's artifact files (directories expanded)."""
    from gitml.artifacts.transfer import ls

    with workspace() as ws:
        refs = ls(run, repo=ws)
    if as_json:  # an empty folder (path ending in /) has no content hash of its own
        echo_json([{"path": r.path, "sha256": None if r.path.endswith("/") else r.digest, "size": r.size}
                   for r in refs])
        return
    echo_table(["path", "size", "sha256"],
               [[r.path, r.size, "-" if r.path.endswith("/") else r.digest[:12]] for r in refs], as_csv)


@artifacts_group.command("verify")
@click.option("--remote", "remote_check", is_flag=True, help="Verify the remote's objects (downloads them).")
@click.option("-r", "remote", help="Remote name (implies --remote).")
@click.option("--delete-bad", is_flag=True, help="Delete corrupted objects so a push can replace them.")
def verify_cmd(remote_check, remote, delete_bad) -> None:
    """Re-hash stored objects; list (and fail on) any whose bytes don't match their name."""
    from gitml.artifacts.maintenance import verify

    with workspace() as ws:
        bad = verify(remote=remote, check_remote=remote_check or remote is not None, delete_bad=delete_bad,
                     repo=ws)
    for digest in bad:
        click.echo(digest)
    where = ("on " if bad.where.startswith("remote") else "in ") + bad.where
    if bad:
        raise GitmlError(f"{_count(len(bad), 'corrupted object')} of {bad.checked} verified {where}"
                         + (", deleted" if delete_bad else ""),
                         hint=None if delete_bad else "gitml artifacts verify --delete-bad removes them")
    click.echo(f"verified {_count(bad.checked, 'object')} {where}, all good")


@artifacts_group.command("gc")
@click.option("--remote", "on_remote", is_flag=True, help="Collect on the remote instead of the local cache.")
@click.option("-r", "remote", help="Remote name (implies --remote).")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--keep-history", is_flag=True, help="Also keep objects of runs in the ref's history.")
@click.option("--grace", metavar="DURATION", callback=lambda _c, _p, v: _duration(v),
              help="Keep unreferenced objects younger than this (90s, 30m, 2h, 14d; 0 = none). "
                   "Default: 1h for the cache, 14d for a remote.")
def gc_cmd(on_remote, remote, dry_run, keep_history, grace) -> None:
    """Delete objects that no run reaches and that are older than the grace period; print them."""
    from gitml.artifacts.maintenance import gc

    with workspace() as ws:
        doomed = gc(remote=remote, on_remote=on_remote or remote is not None, dry_run=dry_run,
                    keep_history=keep_history, grace=grace, repo=ws)
    for digest in doomed:
        click.echo(digest)
    kept = _count(doomed.kept, "object") + " kept"
    if doomed.young:
        kept += f", {doomed.young} of them unreferenced but younger than the grace period"
    where = ("on " if doomed.where.startswith("remote") else "in ") + doomed.where
    if not doomed:
        click.echo(f"nothing to collect {where} ({kept})")
    else:
        done = "would delete" if doomed.dry_run else "deleted"
        click.echo(f"{done} {_count(len(doomed), 'object')} {where} ({kept})")


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(text: str | None) -> float | None:
    """``90s``/``30m``/``2h``/``14d``/``2w`` or plain seconds -> seconds."""
    import re

    if text is None:
        return None
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration (e.g. 0, 90s, 30m, 2h, 14d)")
    return float(match[1]) * _UNITS[match[2]]
