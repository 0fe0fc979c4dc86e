"""``gitml models …``: parse, one call to :mod:`gitml.models`, render.

A model argument (``-m``) is a local folder, ``runs:/<run>/<path>`` or ``models:/<name>@<stage>``
(``models:/<name>/vX.Y.Z``); a URI is resolved in ``-C``'s (or the current) repository.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitml.cli.context import path_arg, workspace
from gitml.core.errors import BadInputError

SERVE_EXTRA = "gitml models serve needs gitml[serve]: pip install 'gitml[serve]'"


@click.group("models")
def models_group() -> None:
    """Serve models saved in MLflow's format (local folders, runs:/ and models:/ URIs)."""


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
@click.option("-t", "--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Seconds a request may take before it is answered 504.")
@click.option("--max-body", type=click.IntRange(min=1), default=32 * 1024 * 1024, show_default=True,
              metavar="BYTES", help="Largest request body accepted (413 above).")
@click.pass_context
def serve_cmd(ctx, uri, remote, host, port, workers, timeout, max_body) -> None:
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
    if not serve.is_loopback(host):
        click.echo(f"gitml: warning: listening on {host}: the model is reachable from the network", err=True)
    serve.serve(folder, host=host, port=port, workers=workers, timeout=timeout, max_body=max_body,
                debug=ctx.find_root().obj.get("debug", False),
                on_listening=lambda url: click.echo(f"Serving {uri} on {url} (Ctrl-C stops)"))
    sys.stdout.flush()
