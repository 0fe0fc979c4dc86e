"""``gitml ui``'s web application: starlette routes, Jinja2 pages, JSON endpoints, uvicorn.

This module imports starlette, Jinja2 and uvicorn (``pip install 'gitml[ui]'``); only the
``gitml ui`` command imports it. Every request opens the repository afresh (so new runs show
without a restart: the query index catches up with the runs ref first, which costs a ref read
when nothing moved) and reads through :mod:`gitml.ui.views`; nothing is written but gitml's
caches. Pages are rendered on the server with autoescaping on; the browser runs only the
bundled uPlot (charts) and ``gitml.js``, and the Content-Security-Policy allows no other script.
"""

from __future__ import annotations

import contextvars
import json
import logging
import mimetypes
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gitml.core.errors import BadInputError, GitmlError, RunNotFoundError
from gitml.core.http import bind, quiet_server, url_of
from gitml.core.ids import RUN_ID_RE
from gitml.core.store import human_size
from gitml.core.workspace import open_workspace
from gitml.ui import views

HERE = Path(__file__).parent
log = logging.getLogger("gitml.ui")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _list(value: str | None) -> list[str] | None:
    """A comma-separated list from the query string (None: not given)."""
    if value is None:
        return None
    return [item for item in value.split(",") if item]


def _columns(query, kind: str) -> list[str] | None:
    """The columns of one kind asked for: repeated, or comma-separated in a link written by hand.

    With ``cols`` (the column picker and the pages' own links) each value is one key, commas
    and all; without it, a value is split on commas. None (the default columns) when none is
    named, unless ``cols`` is there: then none.
    """
    values = query.getlist(kind)
    named = [v for v in values if v] if query.get("cols") else [i for v in values for i in v.split(",") if i]
    if named or query.get("cols") or kind in query:
        return named
    return None


def _int(value: str | None, default: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise BadInputError(f"bad {name} {value[:40]!r}: a whole number") from None


_BUILD_INDEX = "import sys\nfrom gitml.core.workspace import open_workspace\n" \
    "with open_workspace(sys.argv[1]) as ws:\n    ws.index.count()\n"


class UI:
    """The application's state: the repository it shows and the page templates.

    Args:
        root: a path inside the repository (each request opens it anew).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(default=True, default_for_string=True))
        self.templates.filters["short"] = lambda sha: (sha or "")[:8]
        self.templates.filters["urlq"] = lambda text: quote(str(text), safe="")
        self.templates.filters["size"] = lambda n: "" if n is None else human_size(n)
        self.templates.filters["num"] = _num
        self.templates.filters["when"] = _when
        self.templates.filters["duration"] = _duration
        self.templates.tests["run_id"] = lambda text: bool(RUN_ID_RE.fullmatch(str(text)))
        # a list is the parameter repeated: keys with commas in them stay whole
        self.templates.globals["query"] = lambda **kw: urlencode(
            {k: v for k, v in kw.items() if v not in (None, "", [])}, doseq=True)
        self.templates.filters["sortkey"] = views.sort_key
        with open_workspace(root) as ws:
            self.name = ws.root.name
            build = ws.index.needs_build()
        self._indexer: subprocess.Popen | None = None
        self._indexer_log: Any = None
        self._indexer_lock = threading.Lock()
        self._indexer_started = time.monotonic()
        if build:
            # A fresh clone's first answers would wait for the whole index (100,000 runs: ~40 s).
            # Another process builds it on the other core while the runs page shows the newest
            # runs from the runs ref's map; the pages that need the index wait for it. Its
            # stderr goes to a file: warnings about many unreadable runs must not fill a pipe
            # nobody reads until it ends, which would stop it.
            self._indexer_log = tempfile.TemporaryFile()
            self._indexer = subprocess.Popen(  # noqa: S603 - this Python, a fixed program
                [sys.executable, "-c", _BUILD_INDEX, str(root)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._indexer_log)

    def indexing(self, grace: float = 0.0) -> bool:
        """Whether the query index is still being built beside the server.

        ``grace``: wait for the build until that many seconds after it started (a small
        repository's is done by then); a later question does not wait.
        """
        indexer = self._indexer  # read once: another request's thread may finish it meanwhile
        if indexer is None:
            return False
        try:
            indexer.wait(max(0.0, self._indexer_started + grace - time.monotonic()))
        except subprocess.TimeoutExpired:
            return True
        self._finish_indexer()
        return False

    def wait_for_index(self) -> None:
        """Wait until the index being built is done (at once when none is)."""
        indexer = self._indexer
        if indexer is not None:
            indexer.wait()
            self._finish_indexer()

    def _finish_indexer(self) -> None:
        with self._indexer_lock:
            indexer, self._indexer = self._indexer, None
            output, self._indexer_log = self._indexer_log, None
        if indexer is None or output is None:
            return
        output.seek(0)
        problem = output.read()[-4000:].decode("utf-8", "replace").strip()
        output.close()
        if indexer.returncode and indexer.returncode > 0:  # not stopped by a signal (close, Ctrl-C): it failed;
            # the next question builds the index itself, and reports what goes wrong
            log.warning("building the query index beside the server failed (%s): %s", indexer.returncode,
                        problem.splitlines()[-1] if problem else "no message")

    def close(self) -> None:
        """Stop an index build still running (its transaction is rolled back; the next question starts it again)."""
        indexer = self._indexer
        if indexer is not None and indexer.poll() is None:
            indexer.terminate()
            try:
                indexer.wait(10)
            except subprocess.TimeoutExpired:
                indexer.kill()
                indexer.wait()
        self._finish_indexer()

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """The page ``name`` rendered with ``context``, with the security headers; its links under the mount's root."""
        html = self.templates.get_template(name).render(repo=self.name, root=ROOT_PATH.get(), **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def answer(self, request: Request, template: str, build: Callable[[Any], dict[str, Any]],
               api: bool, needs_index: bool = True) -> Response:
        """Run ``build(ws)`` on a fresh Workspace; JSON for the API, else the page; errors as 400/404/500.

        ``needs_index``: ``build`` asks the query index, so it waits for an index being built.
        """
        if needs_index:
            self.wait_for_index()
        try:
            with open_workspace(self.root) as ws:
                data = build(ws)
        except RunNotFoundError as exc:
            return self.error(api, 404, exc.message)
        except BadInputError as exc:
            missing = ("no model", "not found", "has no artifact")
            return self.error(api, 404 if any(m in exc.message for m in missing) else 400, exc.message)
        except GitmlError as exc:
            log.warning("%s: %s", request.url.path, exc.message)
            return self.error(api, 500, exc.message)
        data = views.jsonable(data)
        if api:
            return JSONResponse(data, headers=SECURITY_HEADERS)
        return self.page(template, data=data, data_json=json.dumps(data, allow_nan=False))

    def error(self, api: bool, status: int, message: str) -> Response:
        """An error answer: ``{"error": message}`` for the API, else the error page."""
        if api:
            return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)
        return self.page("error.html", status=status, status_code=status, message=message)


def _num(value: Any) -> Any:
    """A float as people read it: 7 significant digits (``0.229376``, not ``0.22937600000000002``)."""
    if isinstance(value, float):
        return f"{value:.7g}"
    return "" if value is None else value


def _duration(seconds: float | None) -> str:
    """A run's length as MLflow's table shows it: ``850ms``, ``42.1s``, ``12.5min``, ``3.2h``, ``2.0d``."""
    if seconds is None or seconds < 0:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds / 86400:.1f}d"


def _when(stamp: str | None) -> str:
    """``2026-12-01T13:35:45.880Z`` as ``2026-12-01 13:35:45 UTC``."""
    if not stamp:
        return ""
    return stamp[:19].replace("T", " ") + " UTC" if stamp.endswith(("Z", "+00:00")) else stamp


# Where the application is mounted: "" served on its own, "/gitml" under Mount("/gitml", app=…).
# Pages put it before their links; set per request by HostCheck, the outermost layer.
ROOT_PATH: contextvars.ContextVar[str] = contextvars.ContextVar("gitml_ui_root", default="")


class HostCheck:
    """Answer only requests whose ``Host`` names this server: no DNS rebinding.

    A page of another site can make the browser send requests to ``127.0.0.1`` under a name
    the attacker controls; the browser then lets that page read the answers. Refusing every
    ``Host`` but the allowed names (400) stops it, as Jupyter and MLflow's server do.

    Args:
        app: the ASGI application behind it.
        hosts: the names (lowercase, no port; IPv6 without brackets) allowed; ``*`` allows any.
    """

    def __init__(self, app: Any, hosts: set[str]) -> None:
        self.app, self.hosts = app, hosts
        self.ui: UI | None = None  # the application's state, when it is gitml ui's

    async def __call__(self, scope, receive, send) -> None:
        """Refuse a request for another host with 400; pass the others on."""
        ROOT_PATH.set(scope.get("root_path", "").rstrip("/"))
        if scope["type"] == "http" and "*" not in self.hosts:
            # every Host header must name this server (a request with two is not a browser's)
            headers = [v.decode("latin-1").strip().lower() for k, v in scope.get("headers") or [] if k == b"host"]
            names = [h[1:h.find("]")] if h.startswith("[") else h.rsplit(":", 1)[0] for h in headers] or [""]
            header = headers[0] if len(headers) == 1 else ", ".join(headers)
            if any(name not in self.hosts for name in names) or len(names) > 1:
                response = Response(f"gitml ui: requests for the host {header[:100]!r} are not answered here",
                                    status_code=400, media_type="text/plain", headers=SECURITY_HEADERS)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
# How long after the server starts a runs or run page waits for an index being built, before it
# answers without it: a small repository's index is built in that time, and its pages never show
# the interim answer. Later pages do not wait.
INDEX_GRACE = 0.5


def allowed_hosts(host: str) -> set[str]:
    """The ``Host`` names a server bound to ``host`` answers: loopback's names, and ``host`` itself.

    Bound to every address (``0.0.0.0``, ``::``), it answers any name: serving the network was
    the explicit choice.
    """
    if host in ("0.0.0.0", "::", ""):
        return {"*"}
    return LOOPBACK_NAMES | {host.lower().strip("[]")}


def create_app(root: str | os.PathLike = ".", hosts: set[str] | None = None) -> Any:
    """The ASGI application showing the repository at ``root`` (read-only).

    Pages: ``/runs``, ``/runs/{id}``, ``/runs/{id}/artifact?path=``, ``/compare?runs=a,b``, ``/experiments``,
    ``/branches?a=&b=``, ``/registry``, ``/registry/{model}``; each has its JSON twin under
    ``/api`` (docs/ui.md), plus ``/api/runs/{id}/history?key=`` (a metric's points) and the
    artifact endpoints ``/runs/{id}/download?path=`` and ``/runs/{id}/raw?path=`` (images).

    Args:
        root: a path inside the repository.
        hosts: the ``Host`` names answered (:func:`allowed_hosts`; default loopback's names).

    Raises:
        NotARepositoryError: ``root`` is not inside a git repository.
    """
    ui = UI(Path(root))

    def runs(request: Request, api: bool = False) -> Response:
        q = request.query_params

        def build(ws):
            return views.runs_page(ws, experiment=q.get("experiment") or None, filter=q.get("filter") or None,
                                   order_by=q.get("order_by") or None, offset=_int(q.get("offset"), 0, "offset"),
                                   limit=_int(q.get("limit"), views.DEFAULT_PAGE, "page size"),
                                   params=_columns(q, "params"), metrics=_columns(q, "metrics"),
                                   tags=_columns(q, "tags"), indexing=indexing)
        indexing = ui.indexing(INDEX_GRACE)
        return ui.answer(request, "runs.html", build, api, needs_index=not indexing)

    def run(request: Request, api: bool = False) -> Response:
        indexing = ui.indexing(INDEX_GRACE)
        return ui.answer(request, "run.html", lambda ws: views.run_page(ws, request.path_params["run_id"], indexing),
                         api, needs_index=not indexing)

    def history(request: Request) -> Response:
        key = request.query_params.get("key", "")
        return ui.answer(request, "", lambda ws: views.metric_history(ws, request.path_params["run_id"], key), True,
                         needs_index=False)

    def status(request: Request) -> Response:
        return JSONResponse({"indexing": ui.indexing()}, headers=SECURITY_HEADERS)

    def artifact(request: Request, api: bool = False) -> Response:
        path = request.query_params.get("path", "")

        def build(ws):
            data = views.preview(ws, request.path_params["run_id"], path)
            data["run"] = views.resolve(ws, request.path_params["run_id"])
            return data
        return ui.answer(request, "artifact.html", build, api, needs_index=False)

    def download(request: Request, inline_images: bool = False) -> Response:
        path = request.query_params.get("path", "")
        try:
            with open_workspace(ui.root) as ws:
                name, local = views.artifact_file(ws, request.path_params["run_id"], path)
        except RunNotFoundError as exc:
            return ui.error(True, 404, exc.message)
        except BadInputError as exc:
            return ui.error(True, 404 if "has no artifact" in exc.message else 400, exc.message)
        except GitmlError as exc:
            return ui.error(True, 404, exc.message)
        suffix = Path(name).suffix.lower()
        if inline_images:
            if suffix not in views.IMAGE_TYPES:
                return ui.error(True, 400, f"{name} is not an image shown inline (PNG, JPEG, GIF or WebP)")
            problem = views.image_problem(local, suffix)
            if problem:
                return ui.error(True, 400, f"{name}: {problem}")
            return FileResponse(local, media_type=views.IMAGE_TYPES[suffix], headers=SECURITY_HEADERS)
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return FileResponse(local, media_type=media, filename=name, content_disposition_type="attachment",
                            headers=SECURITY_HEADERS)

    def compare(request: Request, api: bool = False) -> Response:
        ids = [item for value in request.query_params.getlist("runs") for item in value.split(",") if item]
        return ui.answer(request, "compare.html", lambda ws: views.compare_page(ws, ids), api)

    def branches(request: Request, api: bool = False) -> Response:
        q = request.query_params
        return ui.answer(request, "branches.html",
                         lambda ws: views.branches_page(ws, q.get("a") or None, q.get("b") or None,
                                                        q.get("experiment") or None), api)

    def experiments(request: Request, api: bool = False) -> Response:
        return ui.answer(request, "experiments.html", views.experiments_page, api)

    def registry(request: Request, api: bool = False) -> Response:
        return ui.answer(request, "registry.html", views.registry_page, api)

    def model(request: Request, api: bool = False) -> Response:
        return ui.answer(request, "model.html", lambda ws: views.model_page(ws, request.path_params["model"]), api)

    def api_of(view):
        return lambda request: view(request, api=True)

    routes = [
        Route("/", lambda request: RedirectResponse(ROOT_PATH.get() + "/runs", status_code=302)),
        Route("/favicon.ico", lambda request: FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml",
                                                           headers=SECURITY_HEADERS)),
        Route("/runs", runs),
        Route("/api/runs", api_of(runs)),
        Route("/api/status", status),
        Route("/runs/{run_id}", run),
        Route("/api/runs/{run_id}", api_of(run)),
        Route("/api/runs/{run_id}/history", history),
        Route("/runs/{run_id}/artifact", artifact),
        Route("/api/runs/{run_id}/artifact", api_of(artifact)),
        Route("/runs/{run_id}/download", download),
        Route("/runs/{run_id}/raw", lambda request: download(request, inline_images=True)),
        Route("/compare", compare),
        Route("/api/compare", api_of(compare)),
        Route("/branches", branches),
        Route("/api/branches", api_of(branches)),
        Route("/experiments", experiments),
        Route("/api/experiments", api_of(experiments)),
        Route("/registry", registry),
        Route("/api/registry", api_of(registry)),
        Route("/registry/{model:path}", model),
        Route("/api/registry/{model:path}", api_of(model)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        path = request.url.path.removeprefix(ROOT_PATH.get())
        return ui.error(path.startswith("/api/"), 404, f"no page {request.url.path[:200]}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        path = request.url.path.removeprefix(ROOT_PATH.get())
        return ui.error(path.startswith("/api/"), 405, f"{request.method} is not answered here: the UI only reads (GET)")

    async def internal(request: Request, exc: Exception) -> Response:
        log.error("%s: %s: %s", request.url.path[:200], type(exc).__name__, exc)
        path = request.url.path.removeprefix(ROOT_PATH.get())
        return ui.error(path.startswith("/api/"), 500, f"internal error: {type(exc).__name__} (the server's log says more)")

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed, 500: internal})
    checked = HostCheck(app, hosts if hosts is not None else set(LOOPBACK_NAMES))
    checked.ui = ui  # for the server's end: an index build still running is stopped
    return checked


def _config(root: str | os.PathLike, host: str, debug: bool):
    import uvicorn

    return uvicorn.Config(create_app(root, allowed_hosts(host)), log_config=None, log_level="info" if debug else "warning",
                          access_log=debug, lifespan="off", server_header=False, proxy_headers=False)


class Running:
    """A UI server started by :func:`start`, answering in a thread of this process.

    Attributes:
        url: ``http://host:port`` it answers on.
    """

    def __init__(self, server: Any, thread: threading.Thread, sock: Any, url: str) -> None:
        self._server, self._thread, self._sock, self.url = server, thread, sock, url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop answering and wait (at most ``timeout`` seconds) for the server to end."""
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
        if self._server.config.app.ui is not None:
            self._server.config.app.ui.close()

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(root: str | os.PathLike = ".", host: str = "127.0.0.1", port: int = 0) -> Running:
    """Serve the UI from a thread of this process (a notebook, a script), until ``stop()``.

    Args:
        root: a path inside the repository.
        host: the address to listen on (loopback by default).
        port: the port (0, the default: any free one; ``url`` says which).

    Returns:
        The :class:`Running` server, answering already; a context manager that stops it.

    Raises:
        NotARepositoryError: ``root`` is not inside a git repository.
        BadInputError: the address cannot be bound.
        GitmlError: the server did not start within 30 seconds.
    """
    config = _config(root, host, False)
    sock = bind(host, port)
    started = threading.Event()
    server = quiet_server(config, on_started=started.set)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="gitml-ui", daemon=True)
    thread.start()
    if not started.wait(30):
        server.should_exit = True
        sock.close()
        config.app.ui.close()
        raise GitmlError("the UI server did not start within 30 s")
    return Running(server, thread, sock, url_of(sock))


def serve(root: str | os.PathLike = ".", host: str = "127.0.0.1", port: int = 5000,
          on_listening: Callable[[str], None] | None = None, debug: bool = False) -> None:
    """Serve the UI of the repository at ``root`` until Ctrl-C or SIGTERM.

    Args:
        root: a path inside the repository.
        host: the address to listen on (loopback by default: another is an explicit choice).
        port: the port (0: any free one; ``on_listening`` gets the URL).
        on_listening: called with ``http://host:port`` once the port is bound.
        debug: uvicorn's request log on stderr.

    Raises:
        NotARepositoryError: ``root`` is not inside a git repository.
        BadInputError: the address cannot be bound.
    """
    config = _config(root, host, debug)
    sock = bind(host, port)
    url = url_of(sock)
    try:
        quiet_server(config, on_started=(lambda: on_listening(url)) if on_listening is not None else None
                     ).run(sockets=[sock])
    finally:
        sock.close()
        if config.app.ui is not None:
            config.app.ui.close()
