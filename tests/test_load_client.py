"""benchmarks/_load.py's HTTP client reads every answer shape a server may send, over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


load = load_script("sbert_bench_load", ROOT / "benchmarks" / "_load.py")

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


async def _with_server(answer: Answer, body: Callable[[int], Awaitable[Any]]) -> Any:
    """Run ``body(port)`` against a loopback server that reads each request's head and
    body, then calls ``answer(path, writer)``; connections are kept alive."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                size = next(int(line.split(":", 1)[1]) for line in lines
                            if line.lower().startswith("content-length:"))
                await reader.readexactly(size)
                await answer(lines[0].split()[1].encode(), writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await body(port)
    finally:
        server.close()
        await server.wait_closed()


async def _pieces(writer: asyncio.StreamWriter, data: bytes, size: int) -> None:
    """Write ``data`` a few bytes at a time, letting the loop turn between writes."""
    for at in range(0, len(data), size):
        writer.write(data[at:at + size])
        await writer.drain()
        await asyncio.sleep(0.001)


def test_answers_split_across_reads_and_kept_alive_connections() -> None:
    payload = b'{"ok": true, "text": "' + b"x" * 3000 + b'"}'

    async def answer(path: bytes, writer: asyncio.StreamWriter) -> None:
        if path == b"/length":
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            await _pieces(writer, head + payload, 7)
        else:  # chunked, chunk sizes in hex, a chunk extension and a trailer
            body = (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + b"a;ext=1\r\n" + payload[:10] + b"\r\n"
                    + f"{len(payload) - 10:x}\r\n".encode() + payload[10:] + b"\r\n"
                    + b"0\r\nX-Trailer: yes\r\n\r\n")
            await _pieces(writer, body, 5)

    async def body(port: int) -> list[tuple[int, bytes]]:
        conn = load.Connection("127.0.0.1", port)
        out = [await conn.request("POST", "/length", b"{}"),
               await conn.request("POST", "/chunked", b"{}"),
               await conn.request("GET", "/length")]
        conn.close()
        return out

    got = load.run_async(_with_server(answer, body))
    assert got == [(200, payload), (201, payload), (200, payload)]


def test_a_body_without_length_ends_with_the_connection() -> None:
    async def answer(path: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    async def body(port: int) -> list[tuple[int, bytes]]:
        conn = load.Connection("127.0.0.1", port)
        # the second request opens a new connection: the first was closed by the server
        return [await conn.request("GET", "/", timeout=5.0),
                await conn.request("GET", "/", timeout=5.0)]

    assert load.run_async(_with_server(answer, body)) == [(200, b"all of it")] * 2


@pytest.mark.parametrize(("reply", "error"), [
    (b"", ConnectionError),  # closed before answering
    (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", ConnectionError),
    (b"SPDY/9 what\r\n\r\n", "HttpError"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "HttpError"),
])
def test_a_broken_answer_is_an_error_not_a_hang(reply: bytes, error: Any) -> None:
    async def answer(path: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await writer.drain()
        writer.close()

    async def body(port: int) -> None:
        conn = load.Connection("127.0.0.1", port)
        await conn.request("GET", "/", timeout=5.0)

    expected = load.HttpError if error == "HttpError" else error
    with pytest.raises(expected):
        load.run_async(_with_server(answer, body))


def test_a_server_that_does_not_answer_times_out() -> None:
    async def answer(path: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def body(port: int) -> None:
        conn = load.Connection("127.0.0.1", port)
        await conn.request("GET", "/", timeout=0.2)

    with pytest.raises(asyncio.TimeoutError):
        load.run_async(_with_server(answer, body))


def test_only_numbers_pass_as_an_embedding() -> None:
    good = b'{"data": [{"index": 0, "embedding": [0.5, 1, -2.0]}]}'
    assert load.check_embeddings(good, 1, 3) is None
    for bad in (b'{"data": [{"index": 0, "embedding": [0.5, true, -2.0]}]}',
                b'{"data": [{"index": 0, "embedding": [0.5, "1", -2.0]}]}',
                b'{"data": [{"index": 0, "embedding": [0.5, null, -2.0]}]}'):
        assert "not a number" in load.check_embeddings(bad, 1, 3)
    assert "2 numbers" not in (load.check_embeddings(good, 1, 3) or "")
    assert "expected 4" in load.check_embeddings(good, 1, 4)


def test_an_answer_is_judged_by_status_then_by_its_rows() -> None:
    good = b'{"data": [{"index": 0, "embedding": [0.5, 1, -2.0]}]}'
    assert load.answer_problem(200, good, 1, 3) is None
    assert load.answer_problem(429, b'{"error": "busy"}', 1, 3) == ("HTTP 429",
                                                                    '{"error": "busy"}')
    kind, message = load.answer_problem(200, good, 2, 3)
    assert kind == "malformed" and "expected 2" in message


def test_timed_requests_return_seconds_and_refuse_a_wrong_answer() -> None:
    good = b'{"data": [{"index": 0, "embedding": [0.5, 0.25]}]}'

    async def answer(path: bytes, writer: asyncio.StreamWriter) -> None:
        status, payload = {b"/good": (200, good), b"/short": (200, b'{"data": []}'),
                           b"/health": (200, b"{}")}.get(path, (503, b"{}"))
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                     + payload)
        await writer.drain()

    async def body(port: int) -> list[Any]:
        conn = load.Connection("127.0.0.1", port)
        out: list[Any] = [await load.timed_embed(conn, load.Target(
            "127.0.0.1", port, "/good", "m", 2), ["a"]), await load.timed_get(conn, "/health")]
        for call in (load.timed_embed(conn, load.Target("127.0.0.1", port, "/short", "m", 2),
                                      ["a"]),
                     load.timed_get(conn, "/down")):
            try:
                await call
                out.append(None)
            except load.HttpError as err:
                out.append(str(err))
        conn.close()
        return out

    got = load.run_async(_with_server(answer, body))
    assert all(isinstance(s, float) and 0 < s < 5 for s in got[:2])
    assert got[2].startswith("malformed")
    assert got[3].startswith("GET /down: 503")
