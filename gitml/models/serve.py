"""``gitml models serve``: one loaded model behind MLflow's scoring protocol, on starlette and uvicorn.

Routes (docs/models.md, "Serving"): ``GET /ping`` and ``GET /health`` (200 once the model is
loaded, which is before the port is bound), ``GET /version``, ``POST /invocations`` (JSON or
CSV in, ``{"predictions": …}`` out; :mod:`gitml.models.scoring` reads and writes the bodies).
Every error is JSON ``{"error_code", "message"}`` with its HTTP status.

A request's parsing, predict and answer run in a thread of their own, so a slow model never
blocks the event loop and ``--timeout`` can answer 504 while the model is still busy (that
thread runs on to its end, as MLflow's does; it is a daemon, so it never holds up a stop).

This module imports starlette and uvicorn (``pip install 'gitml[serve]'``); nothing else in
gitml imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gitml.core.errors import BadInputError, GitmlError, SchemaError
from gitml.core.http import bind, quiet_server, url_of
from gitml.models import scoring
from gitml.models.pyfunc import PyFuncModel, load_from_folder

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 32 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
PREDICT_THREADS = 16  # threads per worker process; a few run at once (see _Predictors)
MLFLOW_PROTOCOL = "3.17"  # the MLflow release whose scoring server this one was checked against
# A body over the limit is read to its end (and dropped) up to this much more, so the client,
# still sending, gets the 413 rather than a reset connection; past it the connection is closed.
DRAIN_LIMIT = 64 * 1024 * 1024
# What app_from_env reads in each worker process (--workers N): set by serve() in the parent.
ENV_FOLDER, ENV_TIMEOUT, ENV_MAX_BODY, ENV_DEBUG, ENV_TRUSTED = (
    "GITML_SERVE_MODEL", "GITML_SERVE_TIMEOUT", "GITML_SERVE_MAX_BODY", "GITML_SERVE_DEBUG",
    "GITML_SERVE_SKOPS_TRUSTED")
JSON_TYPE, CSV_TYPE, PARQUET_TYPE = "application/json", "text/csv", "application/vnd.apache.parquet"
MEDIA_TYPES = (JSON_TYPE, CSV_TYPE, PARQUET_TYPE)


class ModelFailure(Exception):
    """The model's own predict raised; its exception is the cause.

    Answered 400 ``BAD_REQUEST``, as MLflow's server answers it: the input is what the model
    could not take.
    """


class RequestError(Exception):
    """A request answered with an error: HTTP status, MLflow-style error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def error_response(status: int, code: str, message: str, stack_trace: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error answer every failure gets."""
    body = {"error_code": code, "message": message}
    if stack_trace:
        body["stack_trace"] = stack_trace
    return JSONResponse(body, status_code=status, headers=headers)


def _media_type(header: str | None) -> str:
    """The body's kind (``JSON_TYPE``, ``CSV_TYPE`` or ``PARQUET_TYPE``) from its Content-Type header.

    Raises:
        RequestError: 415 for no header, another type, a charset other than UTF-8, or another
            parameter (MLflow refuses those too: they were the 1.x protocol's format flags).
    """
    choices = f"{JSON_TYPE}, {CSV_TYPE} or {PARQUET_TYPE}"
    if not header:
        raise RequestError(415, "UNSUPPORTED_MEDIA_TYPE", f"a Content-Type is required: {choices}")
    kind, *parameters = (part.strip() for part in header.split(";"))
    kind = kind.lower()
    if kind not in MEDIA_TYPES:
        raise RequestError(415, "UNSUPPORTED_MEDIA_TYPE", f"unsupported Content-Type {kind!r}: send {choices}")
    for parameter in filter(None, parameters):
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset":
            raise RequestError(415, "UNSUPPORTED_MEDIA_TYPE", f"unsupported Content-Type parameter {parameter!r}")
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestError(415, "UNSUPPORTED_MEDIA_TYPE", f"the body must be UTF-8, not {value.strip()!r}")
    return kind


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes held in memory.

    Raises:
        RequestError: 413 for a body over the limit (declared or sent), 400 for a bad
            Content-Length.
    """
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise RequestError(400, "BAD_REQUEST", f"bad Content-Length {declared!r}")
    if declared is not None and int(declared) > limit:  # refused before a byte of it is read
        raise RequestError(413, "PAYLOAD_TOO_LARGE",
                           f"the body is over the server's limit of {limit} bytes (--max-body)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks = []
            if size > limit + DRAIN_LIMIT:
                break
            continue
        chunks.append(chunk)
    if size > limit:
        raise RequestError(413, "PAYLOAD_TOO_LARGE",
                           f"the body is over the server's limit of {limit} bytes (--max-body)")
    return b"".join(chunks)


async def _within(seconds: float, awaitable: Any) -> Any:
    """``await awaitable``, cancelled after ``seconds`` (TimeoutError); no extra task on 3.11+."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


def _score(model: PyFuncModel, kind: str, body: bytes) -> bytes:
    """Parse, predict, write the answer: the part of a request that runs in its own thread.

    Raises:
        ProtocolError, SchemaError, ParquetUnavailable: the body (gitml's own checks).
        ModelFailure: the model raised.
        TypeError: predictions JSON cannot carry.
    """
    signature = model.metadata.signature
    if kind == CSV_TYPE:
        data, params = scoring.parse_csv(body, signature), None
    elif kind == PARQUET_TYPE:
        data, params = scoring.parse_parquet(body, signature), None
    else:
        data, params = scoring.parse_json(body, signature)
    try:
        predictions = model.predict(data, params=params)
    except GitmlError:  # the signature's checks: the input does not fit
        raise
    except (Exception, SystemExit) as exc:  # a model calling sys.exit() failed too
        raise ModelFailure() from exc
    return scoring.predictions_json(predictions)


class _Job:
    """One prediction: what to run, where to hand its outcome, and whether it holds a slot."""

    __slots__ = ("func", "loop", "settle", "deadline", "lock", "state", "slot")

    def __init__(self, func: Callable[[], Any], loop: asyncio.AbstractEventLoop,
                 settle: Callable[[Any, BaseException | None], None], deadline: float) -> None:
        self.func, self.loop, self.settle, self.deadline = func, loop, settle, deadline
        self.lock = threading.Lock()
        self.state = "queued"  # queued -> running -> done; or abandoned (its request answered 504)
        self.slot = False


class _Predictors:
    """Daemon threads that run predictions, fed through one queue, a few at a time.

    Starting a thread per request cost a tenth of a millisecond each; a pool of ordinary
    threads would keep the process from exiting while a prediction that timed out still runs.
    Daemon threads do neither.

    At most ``running`` predictions run at once (one per core, up to 4): a Python model holds
    the GIL, and eight threads taking turns at it cost a fifth more CPU per request than two
    (bench/bench_models.py measured it). A request over its timeout is answered 504: if it was
    still queued it is dropped unstarted; if its model was running, that thread runs on to
    the model's end (Python cannot stop it) but gives its slot back at once, so the next
    requests go on to other threads of the pool (``threads`` in all).
    """

    def __init__(self, threads: int = PREDICT_THREADS, running: int | None = None) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.slots = threading.Semaphore(running or min(4, os.cpu_count() or 1))
        for n in range(threads):
            threading.Thread(target=self._work, name=f"gitml-predict-{n}", daemon=True).start()

    def _work(self) -> None:
        while True:
            job: _Job = self.jobs.get()
            self.slots.acquire()
            with job.lock:
                # answered 504 while it waited, or about to be (its deadline passed while its
                # request's timer waits its turn on the event loop): never start it
                if job.state == "abandoned" or time.monotonic() >= job.deadline:
                    job.state = "abandoned"
                    self.slots.release()
                    continue
                job.state, job.slot = "running", True
            try:
                outcome = (job.func(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the request, which answers it
                outcome = (None, exc)
            with job.lock:
                job.state = "done"
                if job.slot:
                    job.slot = False
                    self.slots.release()
            with contextlib.suppress(RuntimeError):  # the loop closed while the model ran
                job.loop.call_soon_threadsafe(job.settle, *outcome)

    def _abandon(self, job: _Job) -> None:
        with job.lock:
            if job.state == "done":
                return
            job.state = "abandoned" if job.state == "queued" else job.state
            if job.slot:  # still running: its thread goes on alone, the slot serves the queue
                job.slot = False
                self.slots.release()

    async def run(self, func: Callable[[], Any], deadline: float = math.inf) -> Any:
        """``func()`` on a predictor thread: its result, or its exception raised here.

        ``func`` is not started past ``deadline`` (``time.monotonic()`` seconds). Cancelling the
        wait (a request's deadline) drops a queued ``func``, or leaves a running one to finish
        alone (its result is dropped).
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if not future.done():
                future.set_exception(error) if error is not None else future.set_result(result)

        job = _Job(func, loop, settle, deadline)
        self.jobs.put(job)
        try:
            return await future
        except asyncio.CancelledError:  # the request's deadline passed (or the server stops)
            self._abandon(job)
            raise


def create_app(model: PyFuncModel, *, timeout: float = DEFAULT_TIMEOUT, max_body: int = DEFAULT_MAX_BODY,
               debug: bool = False) -> Starlette:
    """The ASGI application serving ``model`` with MLflow's scoring protocol.

    Args:
        model: the loaded model.
        timeout: seconds a request may take to be read, predicted and answered (504 after).
        max_body: the largest request body accepted, in bytes (413 above).
        debug: add the traceback (``stack_trace``) to 500 answers.

    Returns:
        A starlette application (run it with uvicorn, or call it with any ASGI client).
    """
    from gitml import __version__

    version = {"gitml": __version__, "mlflow_protocol": MLFLOW_PROTOCOL, "model_uuid": model.metadata.model_uuid}
    predictors = _Predictors()

    async def ping(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def version_route(request: Request) -> Response:
        return JSONResponse(version)

    async def answer_of(request: Request, kind: str) -> bytes:
        deadline = time.monotonic() + timeout
        body = await _read_body(request, max_body)
        return await predictors.run(lambda: _score(model, kind, body), deadline)

    async def invocations(request: Request) -> Response:
        try:
            kind = _media_type(request.headers.get("content-type"))
            # reading the body counts against --timeout too: a client that stalls is cut off
            answer = await _within(timeout, answer_of(request, kind))
        except RequestError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except TimeoutError:
            return error_response(504, "DEADLINE_EXCEEDED",
                                  f"the model did not answer within {timeout:g} s (--timeout)")
        except scoring.ParquetUnavailable as exc:
            return error_response(415, "UNSUPPORTED_MEDIA_TYPE", f"{exc.message}: {exc.hint} next to the server")
        except scoring.ProtocolError as exc:
            return error_response(400, "BAD_REQUEST", exc.message)
        except BadInputError as exc:  # SchemaError: the input does not fit the signature
            code = "INVALID_PARAMETER_VALUE" if isinstance(exc, SchemaError) else "BAD_REQUEST"
            return error_response(400, code, exc.message)
        except ModelFailure as exc:
            cause = exc.__cause__
            log.warning("predict failed: %s: %s", type(cause).__name__, cause, exc_info=cause if debug else None)
            return error_response(400, "BAD_REQUEST", f"the model failed on this input: {type(cause).__name__}: "
                                  f"{cause}", _trace(cause) if debug else None)
        except Exception as exc:  # noqa: BLE001 - anything else is the server's fault: 500
            log.error("request failed: %s: %s", type(exc).__name__, exc, exc_info=exc if debug else None)
            return error_response(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}",
                                  _trace(exc) if debug else None)
        return Response(answer, media_type=JSON_TYPE)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        codes = {404: "ENDPOINT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        message = {404: f"no such endpoint: {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
        return error_response(exc.status_code, codes.get(exc.status_code, "BAD_REQUEST"), message,
                              headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}",
                              traceback.format_exc() if debug else None)

    routes = [Route("/ping", ping, methods=["GET"]), Route("/health", ping, methods=["GET"]),
              Route("/version", version_route, methods=["GET"]),
              Route("/invocations", invocations, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})


def _log_to_stderr() -> None:
    """Failed requests as one line each on stderr (gitml's loggers are otherwise silent)."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("gitml serve: %(message)s"))
        log.addHandler(handler)
        log.propagate = False  # not again through --debug's root handler


def app_from_env() -> Starlette:
    """The application for one worker process of ``--workers N`` (uvicorn's app factory).

    Reads the model folder, timeout, body limit and debug flag from the environment variables
    :func:`serve` sets before starting the workers (``GITML_SERVE_MODEL`` and friends).
    """
    _log_to_stderr()
    folder = os.environ.get(ENV_FOLDER)
    if not folder:
        raise GitmlError(f"{ENV_FOLDER} is not set: start the server with `gitml models serve`")
    trusted = [t for t in os.environ.get(ENV_TRUSTED, "").split(",") if t]
    options = {"skops_trusted_types": trusted} if trusted else {}
    return create_app(load_from_folder(folder, **options), timeout=float(os.environ.get(ENV_TIMEOUT, DEFAULT_TIMEOUT)),
                      max_body=int(os.environ.get(ENV_MAX_BODY, DEFAULT_MAX_BODY)),
                      debug=os.environ.get(ENV_DEBUG) == "1")


def serve(folder: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 5000, workers: int = 1,
          timeout: float = DEFAULT_TIMEOUT, max_body: int = DEFAULT_MAX_BODY, debug: bool = False,
          on_listening: Callable[[str], None] | None = None, skops_trusted_types: list[str] | None = None) -> None:
    """Serve the model in ``folder`` until SIGINT or SIGTERM.

    The model is loaded before the port is bound (a model that does not load is an error, and
    nothing listens); with ``workers`` > 1 each worker process loads it again from ``folder``.

    Args:
        folder: a local model folder (``gitml.models.model_folder`` resolves a URI to one).
        host: the address to listen on (loopback by default).
        port: the port (0: any free one; ``on_listening`` gets the one chosen).
        workers: server processes sharing the port.
        timeout: seconds a request may take (504 after).
        max_body: the largest request body, in bytes (413 above).
        debug: tracebacks in 500 answers, uvicorn's info logs.
        on_listening: called with the URL once the port is bound.
        skops_trusted_types: for a skops model, the types you allow beyond skops' defaults.

    Raises:
        ModelFormatError: the folder is not a model that loads.
        BadInputError: the address cannot be bound.
        GitmlError: the server failed to start.
    """
    _log_to_stderr()
    folder = Path(folder).resolve()
    trusted = sorted(skops_trusted_types or ())
    model = load_from_folder(folder, **({"skops_trusted_types": trusted} if trusted else {}))
    options = {"log_config": None, "log_level": "info" if debug else "warning", "access_log": debug,
               "lifespan": "off", "server_header": False,
               "proxy_headers": False}  # no X-Forwarded-* rewriting: nothing stands in front by default
    if workers > 1:
        del model  # the parent only checked it loads: each worker loads its own
        os.environ.update({ENV_FOLDER: str(folder), ENV_TIMEOUT: repr(float(timeout)),
                           ENV_MAX_BODY: str(int(max_body)), ENV_DEBUG: "1" if debug else "0",
                           ENV_TRUSTED: ",".join(trusted)})
        config = uvicorn.Config(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
    else:
        config = uvicorn.Config(create_app(model, timeout=timeout, max_body=max_body, debug=debug), **options)
    sock = bind(host, port)
    try:
        if on_listening is not None:
            on_listening(url_of(sock))
        if workers > 1:
            from uvicorn.supervisors import Multiprocess

            try:
                supervisor = Multiprocess(config, sockets=[sock])
            except TypeError:  # uvicorn before 0.50 took the workers' target itself
                supervisor = Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock])
            supervisor.run()
            return
        server = quiet_server(config)
        server.run(sockets=[sock])
        if not server.started:
            raise GitmlError("the server did not start (rerun with --debug)")
    finally:
        sock.close()
