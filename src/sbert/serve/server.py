"""Run the app with uvicorn: one process, or ``workers`` processes sharing the port.

SIGTERM (or SIGINT) stops taking connections, lets the requests in flight finish, drains the
queue, and exits 0 (uvicorn itself re-raises the signal, which would exit 143). A connection
still open after the shutdown timeout (a client that stalls mid-body) is cut.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

from sbert.errors import UsageError
from sbert.runtime import require
from sbert.serve.config import CONFIG_ENV, LOG_LEVEL_ENV, ServeConfig

uvicorn = require("uvicorn", "serve")
logger = logging.getLogger("sbert.serve")

SHUTDOWN_TIMEOUT_S = 30.0  # a signal's wait for open connections (``--shutdown-timeout``)


def run_server(config: ServeConfig, host: str = "127.0.0.1", port: int = 8080,
               workers: int = 1, log_level: str = "info", access_log: bool = False,
               shutdown_timeout: float | None = SHUTDOWN_TIMEOUT_S) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code (1: the model failed to load).

    ``shutdown_timeout``: seconds a signal waits for open connections (a client sending a
    body slowly holds one) before it cancels what is left; None: as long as they take.
    """
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level,
                               "access_log": access_log,
                               "timeout_graceful_shutdown": shutdown_timeout,
                               "server_header": False}
    if workers > 1:
        return _run_workers(config, workers, options)
    from sbert.serve.app import create_app

    app = create_app(config)
    server = _Server(uvicorn.Config(app, **options))
    state = app.sbert

    def stop() -> None:
        server.should_exit = True

    state.on_failure = stop
    server.run()
    return 1 if state.status == "failed" else 0


def check_port(host: str, port: int) -> None:
    """Refuse a port that cannot be bound now, before the model loads (uvicorn would find
    out after the start-up line, and exit 3). Port 0 (any free port) always binds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as err:
            raise UsageError(f"cannot listen on {host}:{port} ({err.strerror}); choose "
                             "another --port or --host, or stop what holds it") from None


def _run_workers(config: ServeConfig, workers: int, options: dict[str, Any]) -> int:
    """``workers`` processes on one socket, under uvicorn's supervisor (which starts a worker
    again when it dies); 1 when a worker's model failed to load (which stops them all)."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    os.environ[CONFIG_ENV] = config.to_json()
    os.environ[LOG_LEVEL_ENV] = str(logging.getLogger().getEffectiveLevel())
    settings = uvicorn.Config("sbert.serve.app:app_from_env", factory=True, workers=workers,
                              **options)
    supervisor = Multiprocess(settings, sockets=[settings.bind_socket()])
    supervisor.run()
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return 1 if failed else 0


_UvicornServer: Any = uvicorn.Server


class _Server(_UvicornServer):
    """uvicorn's server, but a signal ends it with exit code 0 after the drain."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
