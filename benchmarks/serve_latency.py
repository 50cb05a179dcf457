"""Where a one-sentence request's time goes: the model, the server's own work, and HTTP.

    .venv/bin/python benchmarks/serve_latency.py [--blocks 40] [--calls 50]

``benchmarks/serve.py``'s 1 x 1 latency goal sets the p50 of ``sbert serve``'s answer to one
sentence against one bare ``encode`` call: within 20 %. This script splits that p50 in
parts. All four are timed here on the same sentences, in ``--blocks`` alternating blocks of
``--calls`` each, so that every part is timed over the same seconds of a host whose speed
drifts:

- **bare**: ``SentenceEncoder.encode([sentence])`` in this process (all-MiniLM-L6-v2, ONNX
  int8, as serve.py's bare calls);
- **in-process app**: the same request to the server's ASGI application
  (``sbert.serve.create_app``, loaded in this process, model and batcher included), called
  directly with the ASGI messages uvicorn would send: the app's whole work (the guard, the
  body's JSON, tokenizing, the batcher, the model, the answer's JSON) with no socket and no
  HTTP parser;
- **over HTTP**: the same request to ``sbert serve --backend onnx --quantized``, started as
  serve.py starts it, on one keep-alive loopback connection with serve.py's client
  (benchmarks/_load.py);
- **health over HTTP**: a GET of that server's ``/health`` on the same connection: the HTTP
  round trip (client, kernel, uvicorn, a route with no model work).

The first table gives each part's median and its ratio to the bare call; the second the
differences: the app's own work beyond the bare call (in-process app - bare) and what
serving over HTTP adds (over HTTP - in-process app), beside the goal's allowance (20 % of the
bare call). The third sets the model's forward pass alone, as each app's batcher times it
(``sbert_batch_seconds``: the in-process app's registry, the server's ``/metrics``), in
the server against the in-process app: whether the pass itself runs slower when it follows
an idle wait for the next request instead of the previous call. Run it on an idle
machine, alone. Smoke run: ``--blocks 2 --calls 10 --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    add_output_options,
    is_full,
    median,
    print_tables,
    sts_test_sentences,
    table,
    write_result,
)
from _load import (  # noqa: E402
    Connection,
    HttpError,
    Target,
    answer_problem,
    client_loop,
    embeddings_body,
    run_async,
    timed_embed,
    timed_get,
)

from serve import (  # noqa: E402
    DIM,
    HOST,
    LOGS,
    MODEL,
    Offline,
    Server,
    block_of,
    free_port,
    ours_spec,
)

SERVER = "ours-onnx-int8"
ALLOWANCE = 0.20  # serve.py's 1x1 goal: p50 within 20 % of a bare call
WARMUP_CALLS = 50  # per part, before the blocks
PARTS = ("bare", "app", "http", "health")
LABELS = {"bare": "bare encode([sentence])", "app": "in-process app (no HTTP)",
          "http": "over HTTP (sbert serve)", "health": "GET /health over HTTP"}

Call = Callable[[str], Awaitable[float]]


class InProcessApp:
    """The server's ASGI app in this process, its lifespan run, called with ASGI messages."""

    def __init__(self, config: Any = None) -> None:
        from sbert.serve import ServeConfig, create_app

        self.app = create_app(config or ServeConfig(MODEL, backend="onnx", quantized=True))
        self.dim = DIM  # the model's, once started
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._lifespan: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 300.0) -> None:
        """Run the lifespan's startup and wait until the app says it is ready."""
        self._lifespan = asyncio.get_running_loop().create_task(self.app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        started = await self._from_app.get()
        if started["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {started}")
        state = self.app.sbert
        deadline = time.perf_counter() + timeout
        while not state.ready:
            if state.status == "failed" or time.perf_counter() > deadline:
                raise RuntimeError(f"the app's model did not load: {state.message}")
            await asyncio.sleep(0.05)
        self.dim = int(state.encoder.dimension)

    def passes(self) -> tuple[float, float]:
        """(seconds, passes) of this app's forward passes so far (its own metrics)."""
        value = self.app.sbert.metrics.registry.get_sample_value
        return value(PASS_METRIC + "_sum") or 0.0, value(PASS_METRIC + "_count") or 0.0

    async def stop(self) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        if self._lifespan is not None:
            await self._lifespan

    async def embed(self, sentence: str) -> float:
        """One embeddings request of ``sentence``; seconds from the call to the answer (the
        body is built before the clock starts, the answer checked after it stops)."""
        body = embeddings_body([sentence], MODEL)
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/embeddings",
                 "raw_path": b"/v1/embeddings", "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())],
                 "client": (HOST, 1), "server": (HOST, 8080), "state": {}}
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client stays: no disconnect message
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        begin = time.perf_counter()
        await self.app(scope, receive, send)
        seconds = time.perf_counter() - begin
        status = sent[0]["status"] if sent else 0
        payload = b"".join(m.get("body", b"") for m in sent[1:])
        problem = answer_problem(status, payload, 1, self.dim)
        if problem is not None:
            raise HttpError(f"in-process app: {': '.join(problem)}")
        return seconds


PASS_METRIC = "sbert_batch_seconds"  # the server's histogram of forward passes


def pass_totals(metrics_text: str) -> tuple[float, float]:
    """(seconds, passes) of the forward passes so far, from the server's ``/metrics`` text."""
    from prometheus_client.parser import text_string_to_metric_families

    values = {sample.name: sample.value for family in text_string_to_metric_families(metrics_text)
              for sample in family.samples}
    return values.get(PASS_METRIC + "_sum", 0.0), values.get(PASS_METRIC + "_count", 0.0)


async def server_passes(conn: Connection) -> tuple[float, float]:
    """:func:`pass_totals` of the server on ``conn``."""
    status, payload = await conn.request("GET", "/metrics")
    if status != 200:
        raise HttpError(f"GET /metrics: {status} {payload[:200]!r}")
    return pass_totals(payload.decode("utf-8"))


def http_parts(conn: Connection, port: int) -> dict[str, Call]:
    """The two parts over HTTP on ``conn``: an embeddings request, and a GET of /health."""
    target = Target(HOST, port, "/v1/embeddings", MODEL, DIM)

    async def http(sentence: str) -> float:
        return await timed_embed(conn, target, [sentence])

    async def health(_: str) -> float:
        return await timed_get(conn, "/health")

    return {"http": http, "health": health}


async def measure(parts: dict[str, Call], sentences: list[str], blocks: int, calls: int
                  ) -> dict[str, list[float]]:
    """Each part's latencies, ms: ``WARMUP_CALLS`` each first, then ``blocks`` rounds in
    which every part runs the same ``calls`` sentences in turn, each part leading in turn."""
    names = [part for part in PARTS if part in parts]
    out: dict[str, list[float]] = {part: [] for part in names}
    for part in names:  # warm-up: each path's first calls choose kernels, open sockets
        for i in range(WARMUP_CALLS):
            await parts[part](sentences[i % len(sentences)])
    for b in range(blocks):
        block = block_of(sentences, b, calls)
        order = names[b % len(names):] + names[: b % len(names)]
        for part in order:
            out[part] += [await parts[part](s) * 1000 for s in block]
    return out


def summarize(ms: dict[str, list[float]], passes: dict[str, tuple[float, float]]
              ) -> tuple[dict[str, Any], ...]:
    """The parts table, the split of the HTTP p50 against the goal's allowance, and the mean
    forward pass of each app (``passes``: where -> (seconds, passes) over the run)."""
    p50 = {part: median(ms[part]) for part in PARTS}
    bare = p50["bare"]
    parts = table("parts", "one sentence, all-MiniLM-L6-v2, ONNX int8: each part's median",
                  [("part", "part", ""), ("ms", "p50, ms", "{:.3f}"),
                   ("vs_bare", "x bare call", "{:.2f}x"), ("calls", "calls", "")],
                  [{"part": LABELS[part], "ms": p50[part], "vs_bare": p50[part] / bare,
                    "calls": len(ms[part])} for part in PARTS])
    rows = [
        ("the goal's allowance: 20 % of a bare call", ALLOWANCE * bare),
        ("the server's own work beyond the bare call: in-process app - bare",
         p50["app"] - bare),
        ("what HTTP adds: over HTTP - in-process app", p50["http"] - p50["app"]),
        ("all of it: over HTTP - bare", p50["http"] - bare),
        ("the HTTP round trip with no model work: GET /health", p50["health"]),
    ]
    split = table("split", "the 1x1 p50 beyond a bare call, by part",
                  [("what", "what", ""), ("ms", "ms", "{:.3f}"),
                   ("of_bare", "of a bare call", "{:.0%}")],
                  [{"what": what, "ms": value, "of_bare": value / bare} for what, value in rows])
    mean = table("passes", "the forward pass alone, as each app times it (sbert_batch_seconds)",
                 [("where", "where", ""), ("ms", "mean pass, ms", "{:.3f}"),
                  ("vs_bare", "x bare call's p50", "{:.2f}x"), ("passes", "passes", "")],
                 [{"where": where, "ms": 1000 * seconds / count,
                   "vs_bare": 1000 * seconds / count / bare, "passes": int(count)}
                  for where, (seconds, count) in passes.items() if count])
    return parts, split, mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=40, help="rounds of the four parts")
    parser.add_argument("--calls", type=int, default=50, help="calls per part and block")
    add_output_options(parser)
    args = parser.parse_args()
    if args.blocks < 1 or args.calls < 1:
        parser.error("--blocks and --calls must be at least 1")
    sentences = sts_test_sentences()
    port = free_port()
    server = Server(ours_spec(SERVER, port), port, LOGS / f"{SERVER}.latency.log")
    print(f"starting {SERVER} on port {port}...", flush=True)
    server.start(timeout=300)
    try:
        offline = Offline("onnx-int8", sentences)

        async def run() -> tuple[dict[str, list[float]], dict[str, tuple[float, float]]]:
            app = InProcessApp()
            await app.start()
            conn = Connection(HOST, port)

            async def bare(sentence: str) -> float:  # the loop waits: nothing in flight
                return offline.bare_calls([sentence])[0] / 1000

            try:
                app0, server0 = app.passes(), await server_passes(conn)
                out = await measure({"bare": bare, "app": app.embed, **http_parts(conn, port)},
                                    sentences, args.blocks, args.calls)
                app1, server1 = app.passes(), await server_passes(conn)
            finally:
                conn.close()
                await app.stop()
            passes = {where: (after[0] - before[0], after[1] - before[1])
                      for where, before, after in ((LABELS["app"], app0, app1),
                                                   (LABELS["http"], server0, server1))}
            return out, passes

        ms, passes = run_async(run())
    finally:
        server.stop()
    tables = summarize(ms, passes)
    notes = [f"model {MODEL}, ONNX int8 (the server: `sbert serve {MODEL} --backend onnx "
             "--quantized`), the STS benchmark test sentences; every part timed on the same "
             f"sentences in {args.blocks} alternating blocks of {args.calls} (each part "
             f"leading in turn) after {WARMUP_CALLS} warm-up calls each; medians",
             "bare and the in-process app run in this process (each its own ONNX Runtime "
             "session); the server in its own process; HTTP: one keep-alive loopback "
             f"connection, the client on {client_loop()}; answers checked (200, 1 x {DIM})",
             "mean pass: each app's own sbert_batch_seconds (the batcher's clock around the "
             "model's pass, tokenizing and HTTP excluded) over the warm-up and the blocks"]
    print_tables(tables)
    for line in notes:
        print(line)
    write_result("serve_latency", tables, args,
                 full=is_full(args, parser, ("blocks", "calls")), notes=notes,
                 raw={"ms": {part: [round(v, 4) for v in values] for part, values in ms.items()}})


if __name__ == "__main__":
    main()

