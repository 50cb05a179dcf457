"""Run the app with uvicorn: one process, or ``workers`` processes sharing the port.

SIGTERM (or SIGINT) stops taking connections, lets the requests in flight finish, drains the
queue, and exits 0 (uvicorn itself re-raises the signal, which would exit 143).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from sbert.runtime import require
from sbert.serve.config import CONFIG_ENV, ServeConfig

uvicorn = require("uvicorn", "serve")
logger = logging.getLogger("sbert.serve")


def run_server(config: ServeConfig, host: str = "127.0.0.1", port: int = 8080,
               workers: int = 1, log_level: str = "info", access_log: bool = False) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code (1: the model failed to load)."""
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level,
                               "access_log": access_log, "timeout_graceful_shutdown": None,
                               "server_header": False}
    if workers > 1:
        os.environ[CONFIG_ENV] = config.to_json()
        uvicorn.run("sbert.serve.app:app_from_env", factory=True, workers=workers, **options)
        return 0
    from sbert.serve.app import create_app

    app = create_app(config)
    server = _Server(uvicorn.Config(app, **options))
    state = app.state.sbert

    def stop() -> None:
        server.should_exit = True

    state.on_failure = stop
    server.run()
    return 1 if state.status == "failed" else 0


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
