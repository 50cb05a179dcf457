"""The load generator of benchmarks/serve.py: closed-loop HTTP clients on one event loop.

Each simulated client holds one HTTP/1.1 keep-alive connection (an
``asyncio.Protocol`` that parses answers from the bytes as they arrive)
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
    _dumps: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - orjson is in the venv
    _loads = json.loads

    def _dumps(doc: Any) -> bytes:
        return json.dumps(doc).encode()

T = TypeVar("T")
MAX_EXAMPLES = 5  # failure messages kept per run
_NUMBERS = frozenset((float, int))  # JSON numbers as the parser gives them (no bool)


class HttpError(Exception):
    """The server's answer is not HTTP/1.1 as this client reads it."""


class _Reader(asyncio.Protocol):
    """The reading side of one connection: bytes as they arrive, parsed into one answer at a
    time (``data_received`` is called by the loop itself, with no task or stream per read)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.method = "GET"
        self.lost: BaseException | None = None
        self.head: tuple[int, dict[str, str], int] | None = None  # of the answer being read

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            self.answer(eof=False)

    def eof_received(self) -> bool:
        return False  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("the server closed the connection")
        if self.waiter is not None:
            self.answer(eof=True)

    def answer(self, eof: bool) -> None:
        """Hand the waiter a whole answer once the buffer holds one (or the reason none
        can come)."""
        waiter = self.waiter
        assert waiter is not None
        if waiter.done():
            return
        try:
            if self.head is None:  # parsed once per answer, not again with each read
                self.head = _parse_head(self.buf)
            body = None if self.head is None else _parse_body(self.buf, self.head,
                                                              self.method, eof)
        except HttpError as err:
            waiter.set_exception(err)
            return
        if body is not None:
            assert self.head is not None
            status, headers, _ = self.head
            self.head = None
            del self.buf[:body[1]]
            waiter.set_result((status, headers, body[0]))
        elif eof:
            where = "before answering" if not self.buf else "inside its answer"
            waiter.set_exception(ConnectionError(f"the server closed the connection {where}"))


def _parse_head(buf: bytearray) -> tuple[int, dict[str, str], int] | None:
    """``(status, headers, where the body starts)`` once ``buf`` holds an answer's whole
    head, else None (more bytes to come)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HttpError(f"bad status line {lines[0][:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return status, headers, end + 4


def _parse_body(buf: bytearray, head: tuple[int, dict[str, str], int], method: str,
                eof: bool) -> tuple[bytes, int] | None:
    """``(body, bytes used)`` once ``buf`` holds the body that ``head`` announces, else None
    (more bytes to come)."""
    status, headers, at = head
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b"", at
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _parse_chunked(buf, at)
    if "content-length" in headers:
        size = int(headers["content-length"])
        return (bytes(buf[at:at + size]), at + size) if len(buf) >= at + size else None
    # no length: the body ends with the connection
    return (bytes(buf[at:]), len(buf)) if eof else None


def _parse_chunked(buf: bytearray, at: int) -> tuple[bytes, int] | None:
    """A chunked body starting at ``at``: (body, end), or None while incomplete."""
    chunks: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", at)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[at:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HttpError(f"bad chunk size line {bytes(buf[at:eol])[:80]!r}") from None
        at = eol + 2
        if size == 0:
            while True:  # trailers, up to an empty line
                eol = buf.find(b"\r\n", at)
                if eol < 0:
                    return None
                if eol == at:
                    return b"".join(chunks), eol + 2
                at = eol + 2
        if len(buf) < at + size + 2:
            return None
        chunks.append(bytes(buf[at:at + size]))
        at += size + 2  # the chunk and its CRLF


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened after an error or ``Connection: close``.

    A protocol, not asyncio's streams: the answer is parsed from the bytes the loop hands
    over, with no coroutine per line read, so the load generator spends little of the
    machine's CPU on each request (on 2 cores, what it spends is taken from the server).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: _Reader | None = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json",
                      timeout: float | None = None) -> tuple[int, bytes]:
        """Send one request and read its whole answer: (status, body). ``timeout``: seconds
        for the whole exchange, else :class:`asyncio.TimeoutError`."""
        loop = asyncio.get_running_loop()
        if self._reader is None or self._reader.lost is not None:
            self.close()
            _, self._reader = await loop.create_connection(_Reader, self.host, self.port)
        reader = self._reader
        assert reader.transport is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Accept: application/json\r\n\r\n").encode("ascii")
        waiter = reader.waiter = loop.create_future()
        reader.method = method
        timer = None if timeout is None else loop.call_later(
            timeout, _expire, waiter, timeout)
        try:
            reader.transport.write(head + body)
            if reader.buf:  # bytes that came before this request was sent
                reader.answer(eof=False)
            status, headers, payload = await waiter
        except BaseException:
            self.close()
            raise
        finally:
            reader.waiter = None
            if timer is not None:
                timer.cancel()
        if headers.get("connection", "").lower() == "close" or (
                "content-length" not in headers
                and "chunked" not in headers.get("transfer-encoding", "").lower()):
            self.close()
        return status, payload

    def close(self) -> None:
        if self._reader is not None and self._reader.transport is not None:
            self._reader.transport.close()
        self._reader = None


def _expire(waiter: asyncio.Future[Any], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError(f"no answer within {timeout:g} s"))


def answer_problem(status: int, payload: bytes, rows: int, dim: int) -> tuple[str, str] | None:
    """None when an embeddings request's answer is 200 with ``rows`` x ``dim`` numbers, else
    (kind, message): kind ``HTTP <status>`` or ``malformed``."""
    if status != 200:
        return f"HTTP {status}", payload[:200].decode("utf-8", "replace")
    problem = check_embeddings(payload, rows, dim)
    return None if problem is None else ("malformed", problem)


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
        if not _NUMBERS.issuperset(map(type, vector)):
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


def embeddings_body(batch: list[str], model: str) -> bytes:
    """The JSON body of an embeddings request of ``batch``."""
    return _dumps({"input": batch, "model": model})


async def embed_request(conn: Connection, target: Target, batch: list[str]
                        ) -> tuple[int, bytes, float, float]:
    """One embeddings request of ``batch`` on ``conn``: (status, body, sent, answered), the
    times from ``time.perf_counter`` (the body is built before the clock starts)."""
    body = embeddings_body(batch, target.model)
    begin = time.perf_counter()
    status, payload = await conn.request("POST", target.path, body, timeout=target.timeout)
    return status, payload, begin, time.perf_counter()


async def timed_embed(conn: Connection, target: Target, batch: list[str]) -> float:
    """Seconds of one embeddings request of ``batch`` on ``conn``, its answer checked after
    the clock stops (:class:`HttpError` when it is not ``len(batch)`` rows of embeddings)."""
    status, payload, begin, end = await embed_request(conn, target, batch)
    problem = answer_problem(status, payload, len(batch), target.dim)
    if problem is not None:
        raise HttpError(": ".join(problem))
    return end - begin


async def _client(k: int, target: Target, sentences: Sequence[str], result: LoadResult,
                  start_counting: float, stop: float) -> None:
    n, per = len(sentences), result.per_request
    cursor = k * n // result.clients
    conn = Connection(target.host, target.port)
    try:
        while time.perf_counter() < stop:
            batch = [sentences[(cursor + j) % n] for j in range(per)]
            cursor = (cursor + per) % n
            try:
                status, payload, begin, end = await embed_request(conn, target, batch)
            except (OSError, EOFError, HttpError, ValueError, asyncio.TimeoutError) as err:
                result.fail("connection", f"{type(err).__name__}: {err}")
                conn.close()
                await asyncio.sleep(0.05)  # no tight loop against a dead server
                continue
            problem = answer_problem(status, payload, per, target.dim)
            if problem is not None:
                result.fail(*problem)
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


async def timed_get(conn: Connection, path: str) -> float:
    """Seconds of one ``GET path`` on ``conn`` (:class:`HttpError` unless it answers 200)."""
    begin = time.perf_counter()
    status, payload = await conn.request("GET", path)
    seconds = time.perf_counter() - begin
    if status != 200:
        raise HttpError(f"GET {path}: {status} {payload[:200]!r}")
    return seconds


async def round_trips(host: str, port: int, path: str, calls: int) -> list[float]:
    """Seconds of each of ``calls`` GETs of ``path``, one after another on one connection
    (a route that does no work: the HTTP round trip these clients and that server cost)."""
    conn = Connection(host, port)
    try:
        return [await timed_get(conn, path) for _ in range(calls)]
    finally:
        conn.close()


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
        status, _ = await conn.request("GET", path, timeout=timeout)
        return status
    finally:
        conn.close()
