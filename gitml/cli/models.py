"""``gitml models …``: parse, one call to :mod:`gitml.models`, render.

A model argument (``-m``) is a local folder, ``runs:/<run>/<path>`` or ``models:/<name>@<stage>``
(``models:/<name>/vX.Y.Z``); a URI is resolved in ``-C``'s (or the current) repository.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from gitml.cli.context import path_arg, workspace
from gitml.core.errors import BadInputError
from gitml.core.http import is_loopback


class _FiniteSeconds(click.FloatRange):
    """A number of seconds > 0 that is a number: ``nan`` and ``inf`` are refused (click's range lets nan in)."""

    def convert(self, value, param, ctx):
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return number


FINITE_SECONDS = _FiniteSeconds(min=0, min_open=True)
SERVE_EXTRA = "gitml models serve needs gitml[serve]: pip install 'gitml[serve]'"


@click.group("models")
def models_group() -> None:
    """Score, describe, package and serve models saved in MLflow's format (folders, runs:/ and models:/ URIs)."""


def model_folder_arg(uri: str, remote: str | None) -> Path:
    """The verified local folder of ``-m URI``.

    A ``runs:/`` or ``models:/`` URI is resolved (and its files hash-checked) in this repository;
    anything else is a path, read from ``-C``'s directory.
    """
    from gitml.models.load import SCHEMES, model_folder

    if not uri.startswith(SCHEMES):
        return path_arg(uri)
    with workspace() as ws:
        return model_folder(uri, remote=remote, repo=ws)


@contextlib.contextmanager
def _repository_if_any(uri: str):
    """This command's repository: required for a URI, optional for a folder.

    A ``runs:/`` or ``models:/`` URI is resolved in it; for a folder it is used when there is
    one (a logged model's run and commit come from it), else None is yielded.
    """
    from gitml.core.errors import NotARepositoryError
    from gitml.models.load import SCHEMES

    if uri.startswith(SCHEMES):
        with workspace() as ws:
            yield ws
        return
    with contextlib.ExitStack() as stack:
        try:
            ws = stack.enter_context(workspace())
        except NotARepositoryError:
            ws = None
        yield ws


def _trusted_option(func):
    return click.option("--skops-trusted-type", "trusted", multiple=True, metavar="TYPE",
                        help="For a skops model: a type you vouch for beyond skops' defaults "
                             "(repeatable; e.g. sklearn.tree._tree.Tree). The model's own list is not used.")(func)


def _model_option(func):
    func = click.option("--remote", metavar="NAME", help="Artifact remote for model files the local cache lacks.")(func)
    return click.option("-m", "--model-uri", "uri", required=True, metavar="URI",
                        help="A model folder, runs:/<run>/<path> or models:/<name>@<stage>.")(func)


@models_group.command("serve")
@_model_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback makes the model reachable from the network.")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=5000, show_default=True,
              help="Port to listen on (0: any free port; the URL printed says which).")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes, each with its own copy of the model.")
@click.option("-t", "--timeout", type=FINITE_SECONDS, default=60.0, show_default=True,
              help="Seconds a request may take before it is answered 504.")
@click.option("--max-body", type=click.IntRange(min=1), default=32 * 1024 * 1024, show_default=True,
              metavar="BYTES", help="Largest request body accepted (413 above).")
@_trusted_option
@click.pass_context
def serve_cmd(ctx, uri, remote, host, port, workers, timeout, max_body, trusted) -> None:
    """Serve a model with MLflow's scoring protocol (/ping, /health, /version, /invocations).

    Prints the URL on stdout once the model is loaded and the port bound; Ctrl-C or SIGTERM stop it.
    """
    try:
        from gitml.models import serve
    except ImportError as exc:
        if exc.name not in ("starlette", "uvicorn") and not str(exc.name).startswith(("starlette.", "uvicorn.")):
            raise
        raise BadInputError(SERVE_EXTRA) from None
    folder = model_folder_arg(uri, remote)

    def listening(url: str) -> None:  # bound: only now is the warning true
        if not is_loopback(host):
            click.echo(f"gitml: warning: listening on {host}: the model is reachable from the network", err=True)
        click.echo(f"Serving {uri} on {url} (Ctrl-C stops)")

    serve.serve(folder, host=host, port=port, workers=workers, timeout=timeout, max_body=max_body,
                debug=ctx.find_root().obj.get("debug", False), skops_trusted_types=list(trusted),
                on_listening=listening)
    sys.stdout.flush()


@models_group.command("predict")
@_model_option
@click.option("-i", "--input", "input_path", required=True, metavar="FILE",
              help="Input: .json (the scoring protocol's body forms), .csv (header line first) or .parquet.")
@click.option("-o", "--output", metavar="FILE", help="Write the predictions here (default: stdout).")
@click.option("-t", "--content-type", type=click.Choice(["json", "csv", "parquet"]),
              help="The input's format when its extension does not say.")
@_trusted_option
def predict_cmd(uri, remote, input_path, output, content_type, trusted) -> None:
    """Score a file with a model: prints {"predictions": [...]} as the server would answer."""
    from gitml.models.batch import predict_file

    options = {"skops_trusted_types": list(trusted)} if trusted else {}
    answer = predict_file(model_folder_arg(uri, remote), path_arg(input_path), content_type, **options)
    if output:
        write_output(path_arg(output), answer + b"\n", output)
    else:
        click.echo(answer.decode("utf-8"))


def write_output(target: Path, data: bytes, shown: str) -> None:
    """Write ``data`` to ``target`` as a user means ``-o``.

    A regular file (new or not) is replaced whole (through a temporary file, never
    half-written); a symlink is followed to the file it names; a device or a pipe
    (``/dev/stdout``, a FIFO) is written to, never replaced.

    Raises:
        BadInputError: it cannot be written (a missing folder, no room, no permission).
    """
    import os
    import stat

    try:
        real = Path(os.path.realpath(target))
        kind = real.stat().st_mode if real.exists() else None
        if kind is not None and not stat.S_ISREG(kind):
            if stat.S_ISDIR(kind):
                raise BadInputError(f"cannot write {shown!r}: it is a directory")
            with open(real, "wb") as handle:  # a device or a pipe: write to it, as a shell redirect does
                handle.write(data)
            return
        tmp = real.with_name(f".{real.name}.tmp")
        try:
            tmp.write_bytes(data)
            tmp.replace(real)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot write {shown!r}: {exc.strerror or exc}") from None


@models_group.command("info")
@click.argument("uri", metavar="URI")
@click.option("--remote", metavar="NAME", help="Artifact remote for model files the local cache lacks.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def info_cmd(uri, remote, as_json) -> None:
    """What a model is: flavors, signature, requirements, size, source run and commit (nothing is unpickled)."""
    import json

    from gitml.models.info import describe
    from gitml.models.load import SCHEMES

    with _repository_if_any(uri) as ws:
        card = describe(uri if uri.startswith(SCHEMES) else path_arg(uri), remote=remote, repo=ws)
    if as_json:
        click.echo(json.dumps(card.to_dict(), indent=2, sort_keys=True))
        return

    def specs(items) -> str:
        if not items:
            return "(none)"
        return ", ".join(f"{s.get('name', '?')}: {s.get('type')}" + ("" if s.get("required", True) else "?")
                         if s.get("type") != "tensor" else f"tensor {s['tensor-spec'].get('dtype')} "
                         f"{s['tensor-spec'].get('shape')}" for s in items)

    lines = [("model", card.uri), ("folder", card.folder), ("flavors", ", ".join(card.flavors)),
             ("loader", card.loader_module + (f" ({card.serialization_format})" if card.serialization_format else "")),
             ("inputs", specs(card.inputs)), ("outputs", specs(card.outputs))]
    if card.params:
        lines.append(("params", ", ".join(f"{p['name']}: {p['type']} = {p.get('default')!r}" for p in card.params)))
    lines += [("requirements", ", ".join(card.requirements) or "(none)"), ("python", card.python_version or "?"),
              ("size", f"{card.size_bytes:,} bytes"), ("created", f"{card.utc_time_created} UTC"),
              ("uuid", card.model_uuid)]
    if card.run_id:
        lines.append(("run", f"{card.run_id} ({card.artifact_path})"))
    if card.source_commit:
        lines.append(("commit", f"{card.source_commit}" + (f" on {card.source_branch}" if card.source_branch else "")))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        click.echo(f"{label:<{width}}  {value}")


@models_group.command("dockerfile")
@click.argument("uri", metavar="URI")
@click.option("-o", "--output", "out", required=True, metavar="DIR", help="The build context folder to create.")
@click.option("--gitml-requirement", metavar="SPEC",
              help="How the image installs gitml (a pip requirement); default gitml[serve]==<this version>.")
@click.option("--remote", metavar="NAME", help="Artifact remote for model files the local cache lacks.")
def dockerfile_cmd(uri, out, gitml_requirement, remote) -> None:
    """Write a Docker build context (Dockerfile and model/) that serves the model on port 8080."""
    from gitml.models.info import dockerfile
    from gitml.models.load import SCHEMES

    with _repository_if_any(uri) as ws:
        written = dockerfile(uri if uri.startswith(SCHEMES) else path_arg(uri), path_arg(out),
                             gitml_requirement=gitml_requirement, remote=remote, repo=ws)
    for path in written:
        click.echo(path)
