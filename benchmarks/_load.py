"""The load generator of benchmarks/serve.py: closed-loop HTTP clients on one event loop.

Each simulated client holds one HTTP/1.1 keep-alive connection (``asyncio.open_connection``)
and sends a request of ``per_request`` sentences, waits for the answer, checks it, sends the
next. The client is its own minimal HTTP/1.1 implementation (Content-Length and chunked
bodies) rather than aiohttp or httpx, so that the client's CPU stays small next to the
server's on a machine with few cores; answers are parsed with orjson where installed.

Sentences rotate deterministically through the given list; client ``k`` starts at offset
``k * n / clients`` so that the same sentences are not always in flight together. Requests
completing during the warm-up are not counted (their failures are); a request counts when it
completes inside the measured window.

:func:`run_async` runs the clients on uvloop where it is installed (it comes with
``uvicorn[standard]``, the servers' own loop): the pure-Python asyncio loop spends more of the
client's CPU per request, which on 2 cores is taken from the server and, with one client,
added to every latency it reports.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is in the venv
    _loads = json.loads

T = TypeVar("T")
MAX_EXAMPLES = 5  # failure messages kept per run


class HttpError(Exception):
    """The server's answer is not HTTP/1.1 as this client reads it."""


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened after an error or ``Connection: close``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> tuple[int, bytes]:
        """Send one request and read its whole answer: (status, body)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Accept: application/json\r\n\r\n").encode("ascii")
        try:
            self._writer.write(head + body)
            await self._writer.drain()
            status, headers = await _read_head(self._reader)
            payload = await _read_body(self._reader, headers, status, method)
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close" or (
                "content-length" not in headers
                and "chunked" not in headers.get("transfer-encoding", "").lower()):
            self.close()
        return status, payload

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    line = await reader.readline()
    if not line:
        raise ConnectionError("the server closed the connection before answering")
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HttpError(f"bad status line {line[:80]!r}")
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the connection closed inside the headers")
        if line in (b"\r\n", b"\n"):
            return int(parts[1]), headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise HttpError(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], status: int,
                     method: str) -> bytes:
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()  # no length: the body ends with the connection


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readline()
        if not size_line:
            raise ConnectionError("the connection closed inside a chunked body")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)  # CRLF after the chunk


def check_embeddings(payload: bytes, rows: int, dim: int) -> str | None:
    """None when ``payload`` is an OpenAI embeddings answer of ``rows`` x ``dim`` numbers."""
    try:
        doc = _loads(payload)
    except ValueError:
        return f"not JSON: {payload[:120]!r}"
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        return f"no 'data' list: {payload[:120]!r}"
    if len(data) != rows:
        return f"{len(data)} rows, expected {rows}"
    indexes = []
    for i, item in enumerate(data):
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or len(vector) != dim:
            size = len(vector) if isinstance(vector, list) else type(vector).__name__
            return f"row {i}: embedding of {size}, expected {dim} numbers"
        if not all(type(x) is float or type(x) is int for x in vector):
            return f"row {i}: an embedding value that is not a number"
        indexes.append(item.get("index", i))
    if sorted(indexes) != list(range(rows)):
        return f"indexes {indexes[:8]}... are not 0..{rows - 1}"
    return None


@dataclass
class LoadResult:
    """One closed-loop run: counted requests (inside the window) and every failure."""

    clients: int
    per_request: int
    duration: float
    latencies: list[float] = field(default_factory=list)  # seconds, successful, in window
    failures: int = 0  # warm-up included
    kinds: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    client_cpu: float = 0.0  # this process's CPU seconds per wall second over the run

    def fail(self, kind: str, message: str) -> None:
        self.failures += 1
        self.kinds[kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{kind}: {message}")

    def summary(self) -> dict[str, Any]:
        """Sentences/s, requests/s, latency percentiles (ms), failures."""
        lat = np.array(self.latencies) * 1000
        pct = (lambda q: float(np.percentile(lat, q))) if len(lat) else (lambda q: None)
        return {"sentences_s": len(lat) * self.per_request / self.duration,
                "requests_s": len(lat) / self.duration,
                "p50": pct(50), "p90": pct(90), "p99": pct(99),
                "requests": len(lat), "failures": self.failures,
                "failure_kinds": dict(self.kinds), "failure_examples": list(self.examples),
                "client_cpu": self.client_cpu}


@dataclass
class Target:
    """Where and what to send: the embeddings route, the model name, the expected width."""

    host: str
    port: int
    path: str
    model: str
    dim: int = 384
    timeout: float = 60.0  # seconds per request before it counts as a failure


async def _client(k: int, target: Target, sentences: Sequence[str], result: LoadResult,
                  start_counting: float, stop: float) -> None:
    n, per = len(sentences), result.per_request
    cursor = k * n // result.clients
    conn = Connection(target.host, target.port)
    try:
        while time.perf_counter() < stop:
            batch = [sentences[(cursor + j) % n] for j in range(per)]
            cursor = (cursor + per) % n
            body = json.dumps({"input": batch, "model": target.model}).encode()
            begin = time.perf_counter()
            try:
                status, payload = await asyncio.wait_for(
                    conn.request("POST", target.path, body), target.timeout)
            except (OSError, EOFError, HttpError, ValueError, asyncio.TimeoutError) as err:
                result.fail("connection", f"{type(err).__name__}: {err}")
                conn.close()
                await asyncio.sleep(0.05)  # no tight loop against a dead server
                continue
            end = time.perf_counter()
            if status != 200:
                result.fail(f"HTTP {status}", payload[:200].decode("utf-8", "replace"))
                continue
            problem = check_embeddings(payload, per, target.dim)
            if problem is not None:
                result.fail("malformed", problem)
            elif start_counting <= end <= stop:
                result.latencies.append(end - begin)
    finally:
        conn.close()


async def load(target: Target, sentences: Sequence[str], clients: int, per_request: int,
               warmup: float, duration: float) -> LoadResult:
    """``clients`` closed-loop clients for ``warmup`` + ``duration`` seconds."""
    if not sentences:
        raise ValueError("no sentences to send")
    result = LoadResult(clients, per_request, duration)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    start_counting = wall0 + warmup
    stop = start_counting + duration
    await asyncio.gather(*(_client(k, target, sentences, result, start_counting, stop)
                           for k in range(clients)))
    result.client_cpu = (time.process_time() - cpu0) / max(1e-9, time.perf_counter() - wall0)
    return result


async def round_trips(host: str, port: int, path: str, calls: int) -> list[float]:
    """Seconds of each of ``calls`` GETs of ``path``, one after another on one connection
    (a route that does no work: the HTTP round trip these clients and that server cost)."""
    conn = Connection(host, port)
    out = []
    try:
        for _ in range(calls):
            begin = time.perf_counter()
            status, payload = await conn.request("GET", path)
            out.append(time.perf_counter() - begin)
            if status != 200:
                raise HttpError(f"GET {path}: {status} {payload[:200]!r}")
    finally:
        conn.close()
    return out


def _uvloop() -> Any:
    """The uvloop module, or None where it is not installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    return uvloop


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` run to its end on a fresh event loop: uvloop's, else asyncio's."""
    uvloop = _uvloop()
    return asyncio.run(coro) if uvloop is None else uvloop.run(coro)


def client_loop() -> str:
    """The event loop :func:`run_async` runs the clients on, with its version."""
    uvloop = _uvloop()
    return "asyncio" if uvloop is None else f"uvloop {uvloop.__version__}"


def run_load(target: Target, sentences: Sequence[str], clients: int, per_request: int,
             warmup: float, duration: float) -> LoadResult:
    """:func:`load` on a fresh event loop."""
    return run_async(load(target, sentences, clients, per_request, warmup, duration))


async def get_status(host: str, port: int, path: str, timeout: float = 2.0) -> int:
    """The status of ``GET path`` (one fresh connection)."""
    conn = Connection(host, port)
    try:
        status, _ = await asyncio.wait_for(conn.request("GET", path), timeout)
        return status
    finally:
        conn.close()
