"""The ASGI application: FastAPI routes behind a small guard for size, keys and metrics.

    from sbert.serve import ServeConfig, create_app
    app = create_app(ServeConfig("all-MiniLM-L6-v2"))   # any ASGI server can run it

The guard is the outermost layer (inside CORS, when that is on): it answers the ordinary
``POST /v1/embeddings`` itself, before FastAPI's own middleware stack (error pages,
telemetry checks, body limits), which costs a few microseconds per request on the event loop.

``sbert serve`` runs it with uvicorn (:mod:`sbert.serve.server`).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from sbert._version import __version__
from sbert.runtime import LOG_FORMAT
from sbert.serve.config import LOG_LEVEL_ENV, ServeConfig
from sbert.serve.errors import ApiError, error_response, validation_message
from sbert.serve.metrics import endpoint_label
from sbert.serve.routes import add_routes, answer_embeddings, plain_embeddings_request
from sbert.serve.state import ServerState

logger = logging.getLogger("sbert.serve")

# paths that answer without an API key: probes, metrics, the page and the API's description
OPEN_PATHS = ("/health", "/metrics", "/", "/openapi.json", "/docs", "/docs/oauth2-redirect",
              "/redoc", "/favicon.ico")


class _BodyTooLarge(Exception):
    pass


class Guard:
    """Pure ASGI middleware around the FastAPI app: body size limit, API key, request count
    and latency.

    Runs before FastAPI, so an oversize body is refused before it is read whole, and every
    answer (errors included) is counted by endpoint and status. It also answers the ordinary
    ``POST /v1/embeddings`` itself (:func:`~sbert.serve.routes.plain_embeddings_request`);
    any other body of that route goes on to FastAPI.
    """

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app = app
        self.state = state
        self.limit = state.config.max_body_bytes
        key = state.config.api_key
        self.key = None if key is None else f"Bearer {key}".encode()
        self._series_of: dict[tuple[str, int], tuple[Any, Any]] = {}  # (label, status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope["path"]
        if scope["method"] == "HEAD":  # a GET whose body uvicorn leaves out (health checks)
            scope = {**scope, "method": "GET"}
        status = [500]
        started = [False]

        async def send_counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                started[0] = True
            await send(message)

        try:
            refusal = self._refuse(scope, path)
            if refusal is not None:
                await refusal(scope, receive, send_counted)
                return
            if (path == "/v1/embeddings" and scope["method"] == "POST" and self.state.ready
                    and _is_json(scope)):
                body = await self._read_body(receive)
                if body is None:
                    return  # the client left before sending its body
                request = plain_embeddings_request(body, self.state)
                if request is not None:
                    response = await self._answer(answer_embeddings(self.state, receive,
                                                                    *request))
                    await response(scope, receive, send_counted)
                    return
                receive = _replay(body, receive)  # FastAPI reads (and judges) it again
            seen = [0]

            async def receive_limited() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    seen[0] += len(message.get("body", b""))
                    if seen[0] > self.limit:
                        raise _BodyTooLarge
                return message

            await self.app(scope, receive_limited, send_counted)
        except _BodyTooLarge:
            if not started[0]:
                await self.too_large()(scope, receive, send_counted)
        finally:
            count, latency = self._series(path, status[0])
            count.inc()
            latency.observe(time.perf_counter() - start)

    def _series(self, path: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram of a path and status, kept by label
        (few: unknown paths share one), since the registry's own lookup takes a lock and
        builds its key on every request."""
        key = (endpoint_label(path), status)
        series = self._series_of.get(key)
        if series is None:
            metrics = self.state.metrics
            series = (metrics.requests.labels(key[0], str(status)), metrics.latency.labels(key[0]))
            self._series_of[key] = series
        return series

    async def _read_body(self, receive: Any) -> bytes | None:
        """The whole request body, or ``None`` if the client disconnected first.

        Raises:
            _BodyTooLarge: more than the limit arrived (chunked bodies state no length).
        """
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _answer(work: Any) -> Any:
        """The response of ``work``, with errors answered as the app's handlers answer them."""
        try:
            return await work
        except ApiError as err:
            return error_response(err.status, err.message, err.code, err.param, err.headers)
        except Exception as err:  # noqa: BLE001 - a bug: logged, answered 500 like the app does
            logger.exception("POST /v1/embeddings failed")
            return error_response(500, f"internal error ({type(err).__name__}); see the "
                                  "server log", "internal_error")

    def _refuse(self, scope: Scope, path: str) -> Any:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return self.too_large()
        if self.key is not None and path.startswith("/v1/"):
            given = headers.get(b"authorization")
            if given is None:
                return error_response(401, "no API key: send 'Authorization: Bearer KEY'",
                                      "missing_api_key")
            if not hmac.compare_digest(given, self.key):
                return error_response(401, "incorrect API key", "invalid_api_key")
        return None

    def too_large(self) -> Any:
        """The 413 answer to a body over the limit (counted)."""
        self.state.metrics.rejected.labels("body_too_large").inc()
        return error_response(413, f"the body is over {self.limit} bytes; send fewer or "
                              "shorter inputs per request", "body_too_large")


def _is_json(scope: Mapping[str, Any]) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return bytes(value).split(b";")[0].strip().lower() == b"application/json"
    return False


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that gives ``body`` once, then what the client sends next."""
    sent = [False]

    async def replayed() -> dict[str, Any]:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, Any] = await receive()
        return message

    return replayed


class ServerApp:
    """The server's ASGI app: ``entry`` (the guard, or CORS around it) in front of ``api``.

    Attributes:
        api: the FastAPI app (routes, OpenAPI schema, error handlers).
        sbert: the server's state (model, batcher, index, metrics).
    """

    def __init__(self, entry: Any, api: FastAPI, state: ServerState) -> None:
        self.entry = entry
        self.api = api
        self.sbert = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.entry(scope, receive, send)


def create_app(config: ServeConfig | None = None) -> ServerApp:
    """The server's ASGI app for ``config`` (default: the bundled model, no index)."""
    config = config or ServeConfig()
    state = ServerState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        state.start()
        yield
        await state.close()

    app = FastAPI(
        title="sbert",
        version=__version__,
        description="Sentence embeddings over HTTP, OpenAI-compatible (POST /v1/embeddings), "
                    "with similarity, semantic search over an index and Prometheus metrics.",
        lifespan=lifespan,
    )
    guard = Guard(app, state)

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, err: ApiError) -> Any:
        return error_response(err.status, err.message, err.code, err.param, err.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> Any:
        status, message, param, code = validation_message(list(err.errors()), err.body)
        ctype = request.headers.get("content-type")
        if code == "invalid_body" and not _is_json(request.scope):
            # FastAPI reads a body of another type as a form or bytes, not as JSON
            message = (f"the body was sent as {ctype!r}, not JSON; send it with "
                       "'Content-Type: application/json'" if ctype else
                       "the body has no Content-Type; send it as JSON with "
                       "'Content-Type: application/json'")
            code = "invalid_content_type"
        return error_response(status, message, code, param)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> Any:
        messages = {404: f"no route {request.url.path}; see /docs for the API",
                    405: f"{request.method} is not allowed on {request.url.path}"}
        code = None
        if isinstance(err.__cause__, _BodyTooLarge):
            # the guard's receive cut the body at the limit; FastAPI's reader turns any
            # error while it reads the body into this 400
            return guard.too_large()
        if err.status_code == 400 and "parsing the body" in str(err.detail):
            # FastAPI's answer to a body its JSON reader raised on (not UTF-8, nested too deep)
            messages[400] = ("the body is not valid JSON (not UTF-8 text, or nested too "
                             "deeply); send a JSON object")
            code = "invalid_json"
        return error_response(err.status_code, messages.get(err.status_code, str(err.detail)),
                              code, headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, err: Exception) -> Any:
        logger.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, f"internal error ({type(err).__name__}); see the server log",
                              "internal_error")

    add_routes(app, state)
    entry: Any = guard
    if config.cors_origins:  # outside the guard: a browser's preflight carries no key
        from starlette.middleware.cors import CORSMiddleware

        entry = CORSMiddleware(guard, allow_origins=list(config.cors_origins),
                               allow_methods=["GET", "POST"],
                               allow_headers=["Authorization", "Content-Type"])
    return ServerApp(entry, app, state)


def app_from_env() -> ServerApp:
    """The app of a worker process (``--workers N``): settings from ``SBERT_SERVE_CONFIG``.

    The worker logs as the command line does; a model that fails to load ends the worker
    with uvicorn's start-up failure code, on which its supervisor stops every worker rather
    than start this one again (and ``sbert serve`` exits 1).
    """
    level = int(os.environ.get(LOG_LEVEL_ENV, logging.WARNING))
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logger.setLevel(min(level, logging.INFO))  # says when the model is ready, as one process
    app = create_app(ServeConfig.from_env())
    app.sbert.on_failure = _end_failed_worker
    return app


def _end_failed_worker() -> None:
    """Exit this worker process now, with the code its supervisor reads as a failed start."""
    from uvicorn.config import STARTUP_FAILURE

    logging.shutdown()  # the reason, logged just before, is out first
    os._exit(STARTUP_FAILURE)
