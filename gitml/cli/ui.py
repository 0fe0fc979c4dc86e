"""``gitml ui``: the web UI over this repository's runs, branches and registry (read-only)."""

from __future__ import annotations

import click

from gitml.cli.context import workspace
from gitml.core.errors import BadInputError
from gitml.core.http import is_loopback

UI_EXTRA = "gitml ui needs gitml[ui]: pip install 'gitml[ui]' (in a clone of gitml: pip install -e '.[ui]')"


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback shows your runs to the network.")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=5000, show_default=True,
              help="Port to listen on (0: any free port; the URL printed says which).")
@click.option("--open", "open_browser", is_flag=True, help="Open the runs page in your web browser.")
@click.pass_context
def ui_cmd(ctx: click.Context, host: str, port: int, open_browser: bool) -> None:
    """Browse, compare and plot runs, branches and the registry in a web browser.

    Read-only: nothing is written to the repository. New runs show on the next page load.
    Prints the URL on stdout once the port is bound; Ctrl-C or SIGTERM stop it.
    """
    try:
        from gitml.ui import server
    except ImportError as exc:
        if not str(exc.name).startswith(("starlette", "uvicorn", "jinja2")):
            raise
        raise BadInputError(UI_EXTRA) from None
    with workspace() as ws:
        root = ws.root

    def listening(url: str) -> None:
        if not is_loopback(host):
            click.echo(f"gitml: warning: listening on {host}: your runs are reachable from the network", err=True)
        click.echo(f"gitml ui of {root} on {url} (Ctrl-C stops)")
        if open_browser:
            import webbrowser

            webbrowser.open(f"{url}/runs")

    server.serve(root, host=host, port=port, on_listening=listening, debug=bool(ctx.obj and ctx.obj.get("debug")))
