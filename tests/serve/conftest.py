"""Real server processes on loopback, started and stopped by the tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the server needs sbert[serve] (fastapi, uvicorn)")
pytest.importorskip("uvicorn", reason="the server needs sbert[serve] (fastapi, uvicorn)")

START_TIMEOUT = 120.0  # seconds for the model to load and warm up (a busy CI machine)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``sbert serve ARGS`` in a subprocess on a free loopback port."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None,
                 log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "w+b") if log is not None else None  # noqa: SIM115
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                    **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sbert", "serve", *args, "--port", str(self.port)],
            stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT, env=full_env)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n"
                                   f"{self.output()}")
            try:
                status, _ = self.request("GET", "/health")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready in {timeout} s:\n{self.output()}")

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None,
                timeout: float = 60.0) -> tuple[int, Any]:
        """(status, parsed JSON body or text) of one request."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, payload, ctype = resp.status, resp.read(), resp.headers["content-type"]
        except urllib.error.HTTPError as err:
            status, payload, ctype = err.code, err.read(), err.headers["content-type"]
        if ctype and ctype.startswith("application/json"):
            return status, json.loads(payload)
        return status, payload.decode("utf-8", "replace")

    def output(self) -> str:
        if self._log is None:
            return "(no log)"
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-4000:]

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        return int(self.proc.returncode)


def start_server(args: list[str], tmp: Path, env: dict[str, str] | None = None) -> Server:
    return Server(args, env, log=tmp / f"server-{time.monotonic_ns()}.log").wait_ready()


# the index of the index servers: five sentences, each with metadata {"n": i}
INDEX_SENTENCES = ["a man is playing a guitar", "a woman eats food", "the dog runs in the park",
                   "the cat sits on the car", "a child plays with a red ball"]


def start_index_server(tiny_model_dir: Path, tiny_encoder: Any, tmp: Path, key: str,
                       *args: str) -> Server:
    """The tiny model (served as ``tiny``) with an index of :data:`INDEX_SENTENCES`, behind
    ``--api-key key``, with more ``args``."""
    from sbert.search.index import Index, model_identity

    with Index.create(tmp / "index", model=model_identity(tiny_encoder),
                      dimension=tiny_encoder.dimension, source=str(tiny_model_dir)) as index:
        index.add_texts(INDEX_SENTENCES, tiny_encoder,
                        metadata=[{"n": i} for i in range(len(INDEX_SENTENCES))])
    return start_server([str(tiny_model_dir), "--model-name", "tiny", "--index",
                         str(tmp / "index"), "--api-key", key, *args], tmp)


@pytest.fixture(scope="module")
def tiny_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Server]:
    """The tiny random model served with the torch backend."""
    server = start_server([str(tiny_model_dir), "--model-name", "tiny"],
                          tmp_path_factory.mktemp("serve"))
    yield server
    assert server.stop() == 0, server.output()
