"""The batcher alone, with a fake encoder: who runs with whom, and who gets which rows."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from sbert.serve.batcher import (
    Batcher,
    Closed,
    QueueFull,
    TooLong,
    select_batch,
)
from sbert.tokenization import Tokenized, length_chunks


class FakeTokenizer:
    max_seq_length = 8

    def encode(self, texts: list[str], threads: int = 1, hold_gil: bool = False) -> Tokenized:
        ids = [[len(t)] + [ord(c) for c in t.split()[0]] * (len(t.split()) - 1) + [0]
               for t in texts]
        cut = tuple(i for i, x in enumerate(ids) if len(x) > self.max_seq_length)
        ids = [x[: self.max_seq_length] for x in ids]
        return Tokenized(ids, [[0] * len(x) for x in ids], len(cut), cut)


class FakeEncoder:
    """Row i of a batch is (first token id, length, batch number): traceable answers."""

    dimension = 3
    max_seq_length = 8

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.tokenizer = FakeTokenizer()
        self.backend = type("B", (), {"streams": 1})()
        self.batches: list[list[int]] = []
        self.delay = delay
        self.fail = fail
        self.gate = threading.Event()
        self.gate.set()

    def resolve_prompt(self) -> str:
        return ""

    def embed_tokens(self, ids: list[list[int]], type_ids: list[list[int]],
                     alone: bool = False) -> np.ndarray:
        self.gate.wait(10)
        if self.fail:
            raise RuntimeError("backend broke")
        time.sleep(self.delay)
        self.batches.append([len(x) for x in ids])
        n = len(self.batches)
        return np.array([[x[0], len(x), n] for x in ids], dtype=np.float32)


def test_select_batch_keeps_the_oldest_and_groups_similar_lengths() -> None:
    lengths = [10, 50, 11, 9, 48, 10, 52]
    chosen = select_batch(lengths, max_tokens=40, max_size=8)
    assert 0 in chosen
    assert all(lengths[i] <= 11 for i in chosen)
    assert len(chosen) * max(lengths[i] for i in chosen) <= 40
    # the long ones go together once the oldest is long
    chosen = select_batch([50, 10, 48, 9, 52], max_tokens=160, max_size=8)
    assert sorted(chosen) == [0, 2, 4]


def test_select_batch_limits() -> None:
    assert select_batch([100], max_tokens=10, max_size=4) == [0]  # the oldest always runs
    assert len(select_batch([5] * 20, max_tokens=1000, max_size=4)) == 4
    assert len(select_batch([5] * 20, max_tokens=25, max_size=100)) == 5


def test_split_by_length_cuts_where_padding_costs_more_than_a_call() -> None:
    lengths = [40, 8, 9, 41, 8, 10]
    runs = length_chunks(lengths, cost=32)
    assert sorted(i for run in runs for i in run) == list(range(6))  # each row once
    assert [sorted(lengths[i] for i in run) for run in runs] == [[8, 8, 9, 10], [40, 41]]
    # a call dearer than the padding it saves: one run
    assert len(length_chunks(lengths, cost=1000)) == 1
    assert length_chunks([7], cost=0) == [[0]]
    # free calls: one run per distinct length
    assert len(length_chunks([3, 5, 3, 5, 9], cost=0)) == 3


def test_split_batches_answer_each_request_in_order() -> None:
    encoder = FakeEncoder(delay=0.01)
    requests = [[("x" * (1 + i % 3)) + " w" * (1 + 5 * (i % 2))] for i in range(24)]

    async def main() -> list:
        batcher = Batcher(encoder, max_batch_tokens=256, max_batch_size=16, split_cost=2)
        try:
            return await _embed_all(batcher, requests)
        finally:
            await batcher.close()

    results = asyncio.run(main())
    tok = FakeTokenizer()
    for texts, done in zip(requests, results, strict=True):
        expected = tok.encode(texts)
        assert done.embeddings[:, 0].tolist() == [x[0] for x in expected.ids]
        assert done.embeddings[:, 1].tolist() == [len(x) for x in expected.ids]
    # short and long sentences (3 and 8 tokens) never shared a pass
    assert all(len(set(b)) == 1 for b in encoder.batches)


async def _embed_all(batcher: Batcher, requests: list[list[str]]) -> list:
    return await asyncio.gather(*(batcher.embed(texts) for texts in requests))


def test_each_request_gets_its_own_rows_in_order() -> None:
    encoder = FakeEncoder(delay=0.01)
    requests = [[f"{'x' * (i % 7 + 1)} " + "w " * (j % 5) for j in range(i % 6 + 1)]
                for i in range(40)]

    async def main() -> list:
        batcher = Batcher(encoder, max_batch_tokens=64, max_batch_size=8)
        try:
            return await _embed_all(batcher, requests)
        finally:
            await batcher.close()

    results = asyncio.run(main())
    tok = FakeTokenizer()
    for texts, done in zip(requests, results, strict=True):
        expected = tok.encode(texts)
        assert done.embeddings.shape == (len(texts), 3)
        assert done.embeddings[:, 0].tolist() == [x[0] for x in expected.ids]
        assert done.embeddings[:, 1].tolist() == [len(x) for x in expected.ids]
        assert done.tokens == sum(len(x) for x in expected.ids)
    # requests shared forward passes, within the limits
    assert len(encoder.batches) < sum(len(r) for r in requests)
    assert all(len(b) <= 8 and len(b) * max(b) <= 64 for b in encoder.batches)


def test_full_queue_refuses_with_retry_after_then_recovers() -> None:
    encoder = FakeEncoder()

    async def main() -> None:
        batcher = Batcher(encoder, max_queue=4)
        encoder.gate.clear()  # the backend is stuck: work piles up
        first = asyncio.ensure_future(batcher.embed(["a b"]))
        await asyncio.sleep(0.05)  # taken by the worker
        waiting = asyncio.ensure_future(batcher.embed(["c d", "e f", "g h", "i j"]))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as info:
            await batcher.embed(["k"])
        assert info.value.retry_after >= 1
        encoder.gate.set()
        await asyncio.gather(first, waiting)
        done = await batcher.embed(["k"])  # room again
        assert done.embeddings.shape == (1, 3)
        await batcher.close()

    asyncio.run(main())


def test_disconnected_client_leaves_the_queue() -> None:
    encoder = FakeEncoder()

    async def main() -> None:
        batcher = Batcher(encoder)
        encoder.gate.clear()
        busy = asyncio.ensure_future(batcher.embed(["a"]))
        await asyncio.sleep(0.05)
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        leaving = asyncio.ensure_future(batcher.embed(["b c", "d e", "f g"], lambda: gone))
        await asyncio.sleep(0.05)
        assert batcher.depth == 3
        gone.set_result(None)
        with pytest.raises(asyncio.CancelledError):
            await leaving
        assert batcher.depth == 0  # its sentences will not run
        encoder.gate.set()
        await busy
        await batcher.close()
        assert sum(len(b) for b in encoder.batches) == 1

    asyncio.run(main())


def test_too_long_inputs_are_counted_or_refused() -> None:
    long = "x " * 20

    async def main(truncate: bool) -> int:
        batcher = Batcher(FakeEncoder(), truncate=truncate)
        try:
            return (await batcher.embed(["short", long])).truncated
        finally:
            await batcher.close()

    assert asyncio.run(main(True)) == 1
    with pytest.raises(TooLong) as info:
        asyncio.run(main(False))
    assert info.value.rows == (1,)


def test_backend_error_reaches_every_waiting_request() -> None:
    async def main() -> None:
        batcher = Batcher(FakeEncoder(fail=True))
        results = await asyncio.gather(batcher.embed(["a"]), batcher.embed(["b", "c"]),
                                       return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert batcher.depth == 0
        await batcher.close()

    asyncio.run(main())


def test_close_finishes_queued_work() -> None:
    encoder = FakeEncoder()

    async def main() -> None:
        batcher = Batcher(encoder, max_batch_size=2)
        encoder.gate.clear()
        tasks = [asyncio.ensure_future(batcher.embed([f"s{i}"])) for i in range(6)]
        for _ in range(200):  # until all six are queued or running
            await asyncio.sleep(0.01)
            if batcher._seq == 6:  # all queued; one batch (of 1 or 2) is stuck at the gate
                break
        assert batcher._seq == 6 and batcher.depth >= 4
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.05)
        with pytest.raises(Closed):
            await batcher.embed(["late"])
        encoder.gate.set()
        await closing
        done = await asyncio.gather(*tasks)
        assert [d.embeddings.shape for d in done] == [(1, 3)] * 6

    asyncio.run(main())


def _recording(encoder: FakeEncoder) -> list[tuple[str, bool, int]]:
    """(thread, alone, rows) of each pass the encoder runs, from now on."""
    calls: list[tuple[str, bool, int]] = []
    inner = encoder.embed_tokens

    def record(ids, type_ids, alone=False):
        calls.append((threading.current_thread().name, alone, len(ids)))
        return inner(ids, type_ids, alone)

    encoder.embed_tokens = record  # type: ignore[method-assign]
    return calls


def test_short_lone_requests_run_on_the_event_loop() -> None:
    """Once a lone short pass is known to be quick, a short request that finds the batcher
    idle runs on the loop; a long one still goes to a worker, and answers are the same."""
    encoder = FakeEncoder()
    encoder.backend.streams = 2
    calls = _recording(encoder)
    long_request = ["a b c d e f g h"] * 20  # 20 x 8 tokens > INLINE_TOKENS

    async def main() -> list[np.ndarray]:
        batcher = Batcher(encoder)
        outs = [(await batcher.embed([f"s{i}"])).embeddings for i in range(10)]
        outs.append((await batcher.embed(long_request)).embeddings)
        await batcher.close()
        return outs

    outs = asyncio.run(main())
    # the first pass's time is not known yet: a worker runs it, on the stream that takes
    # every lone batch
    assert calls[0] == ("sbert-batch-0", True, 1)
    assert calls[1:10] == [("MainThread", True, 1)] * 9
    assert calls[10] == ("sbert-batch-0", True, 20)
    for i, out in enumerate(outs[:10]):
        assert out.shape == (1, 3) and out[0, 0] == len(f"s{i}")
    assert outs[10].shape == (20, 3) and (outs[10][:, 0] == len(long_request[0])).all()


def test_requests_arriving_together_share_a_pass_instead_of_running_inline() -> None:
    """Short requests that reach the server in the same loop turn are not alone: none runs
    inline (each would, one after another, and none would share a pass)."""
    encoder = FakeEncoder()
    calls = _recording(encoder)

    async def main() -> list[np.ndarray]:
        batcher = Batcher(encoder)
        await batcher.embed(["warm"])
        await batcher.embed(["inline"])
        outs = await asyncio.gather(*(batcher.embed([f"s{i}"]) for i in range(8)))
        await batcher.close()
        return [out.embeddings for out in outs]

    outs = asyncio.run(main())
    assert [thread for thread, _, _ in calls[:2]] == ["sbert-batch-0", "MainThread"]
    together = calls[2:]
    assert all(thread != "MainThread" for thread, _, _ in together)
    assert sum(rows for _, _, rows in together) == 8 and len(together) < 8
    for i, out in enumerate(outs):
        assert out.shape == (1, 3) and out[0, 0] == len(f"s{i}")


def test_slow_lone_requests_meet_the_same_stream() -> None:
    """Lone passes slower than INLINE_SECONDS stay off the loop, all on stream 0 (its warm
    threads)."""
    encoder = FakeEncoder(delay=0.015)
    encoder.backend.streams = 2
    calls = _recording(encoder)

    async def main() -> None:
        batcher = Batcher(encoder)
        for i in range(6):
            await batcher.embed([f"s{i}"])
        await batcher.close()

    asyncio.run(main())
    assert calls == [("sbert-batch-0", True, 1)] * 6


def test_a_one_caller_backend_runs_its_lone_passes_on_stream_0_only() -> None:
    """torch on a CPU keeps an intra-op pool per calling thread (TorchBackend.one_caller):
    its quick lone passes stay on stream 0, not on the loop, and the other stream only runs
    passes that share the cores."""
    encoder = FakeEncoder()
    encoder.backend.streams = 2
    encoder.backend.one_caller = True
    calls = _recording(encoder)

    async def main() -> None:
        batcher = Batcher(encoder, max_batch_size=2)
        for i in range(6):
            await batcher.embed([f"s{i}"])
        encoder.delay = 0.01
        for _ in range(3):
            await asyncio.gather(*(batcher.embed([f"s{i}"]) for i in range(9)))
        await batcher.close()

    asyncio.run(main())
    assert calls[:6] == [("sbert-batch-0", True, 1)] * 6
    assert {thread for thread, _, _ in calls} == {"sbert-batch-0", "sbert-batch-1"}
    assert all(thread == "sbert-batch-0" for thread, alone, _ in calls if alone)


def test_a_short_request_waits_its_turn_while_a_batch_runs() -> None:
    """Inline only when idle: a short request arriving while a batch runs is queued behind
    it, and runs on a worker."""
    encoder = FakeEncoder()
    calls = _recording(encoder)

    async def main() -> None:
        batcher = Batcher(encoder)
        await batcher.embed(["warm"])  # a quick lone pass: short requests may run inline
        await batcher.embed(["inline"])
        encoder.gate.clear()  # the next pass blocks inside the backend
        # a request too long to run inline: a worker takes it, and holds it at the gate
        first = asyncio.ensure_future(batcher.embed(["a b c d e f g h"] * 20))
        while batcher._running == 0:  # noqa: SLF001 - the worker has taken it
            await asyncio.sleep(0.001)
        second = asyncio.ensure_future(batcher.embed(["queued"]))
        await asyncio.sleep(0.02)
        assert batcher.depth == 1 and not second.done()
        encoder.gate.set()
        await asyncio.gather(first, second)
        await batcher.close()

    asyncio.run(main())
    assert calls == [("sbert-batch-0", True, 1), ("MainThread", True, 1),
                     ("sbert-batch-0", True, 20), ("sbert-batch-0", True, 1)]


def test_second_stream_joins_under_load() -> None:
    encoder = FakeEncoder(delay=0.02)
    encoder.backend.streams = 2
    names: set[str] = set()
    inner = encoder.embed_tokens

    def record(ids, type_ids, alone=False):
        names.add(threading.current_thread().name)
        return inner(ids, type_ids, alone)

    encoder.embed_tokens = record  # type: ignore[method-assign]

    async def main() -> None:
        batcher = Batcher(encoder, max_batch_size=2)
        await asyncio.gather(*(batcher.embed([f"s{i}"]) for i in range(20)))
        await batcher.close()

    asyncio.run(main())
    assert names == {"sbert-batch-0", "sbert-batch-1"}


def test_memory_goes_back_only_after_an_idle_spell(monkeypatch: pytest.MonkeyPatch) -> None:
    import sbert.serve.batcher as batcher_module

    trims: list[float] = []
    monkeypatch.setattr(batcher_module, "release_free_memory",
                        lambda: trims.append(time.monotonic()) or True)
    monkeypatch.setattr(batcher_module, "TRIM_AFTER_IDLE", 0.2)
    encoder = FakeEncoder(delay=0.02)

    async def main() -> None:
        batcher = Batcher(encoder, max_batch_tokens=64, max_batch_size=2)
        try:
            await asyncio.sleep(0.5)
            assert trims == []  # nothing ran: nothing to give back
            # steady work, never idle for TRIM_AFTER_IDLE: the allocator keeps its memory
            end = time.monotonic() + 0.6
            while time.monotonic() < end:
                await batcher.embed(["a b", "c"])
            assert trims == []
            await asyncio.sleep(0.5)
            assert len(trims) == 1  # idle after work: once, not every TRIM_AFTER_IDLE
            await batcher.embed(["d"])
            await asyncio.sleep(0.5)
            assert len(trims) == 2
        finally:
            await batcher.close()

    asyncio.run(main())


def test_a_pass_wakes_the_event_loop_once_for_all_its_requests() -> None:
    """The workers hand every finished request of a pass to the event loop in one call: a
    wake-up per request cost the loop (and the worker, holding the GIL) once per sentence."""
    encoder = FakeEncoder()

    async def main() -> tuple[list[str], list[np.ndarray]]:
        loop = asyncio.get_running_loop()
        wakeups: list[str] = []
        original = loop.call_soon_threadsafe

        def counting(callback: object, *args: object, **kwargs: object) -> object:
            wakeups.append(threading.current_thread().name)
            return original(callback, *args, **kwargs)  # type: ignore[arg-type]

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        batcher = Batcher(encoder)
        encoder.gate.clear()
        busy = asyncio.ensure_future(batcher.embed(["a"]))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(batcher.embed([f"s{i}", "t u"])) for i in range(5)]
        await asyncio.sleep(0.05)
        encoder.gate.set()
        await busy
        outs = [done.embeddings for done in await asyncio.gather(*waiting)]
        await batcher.close()
        return [name for name in wakeups if name.startswith("sbert-batch")], outs

    wakeups, outs = asyncio.run(main())
    assert [len(batch) for batch in encoder.batches] == [1, 10]  # the 5 requests: one pass
    assert len(wakeups) == 2  # one per pass
    for i, out in enumerate(outs):
        assert out[:, 0].tolist() == [len(f"s{i}"), len("t u")]


def test_the_disconnect_watch_starts_only_for_a_request_that_waits_in_the_queue() -> None:
    """A request run at once on the event loop never waits, so no task watches its client."""
    encoder = FakeEncoder()
    calls = _recording(encoder)
    made: list[asyncio.Future[None]] = []

    def watch() -> asyncio.Future[None]:
        made.append(asyncio.get_running_loop().create_future())
        return made[-1]

    async def main() -> None:
        batcher = Batcher(encoder)
        await batcher.embed(["warm"], watch)  # no lone pass timed yet: to a worker
        await batcher.embed(["inline"], watch)  # alone and quick: on the event loop
        await batcher.close()

    asyncio.run(main())
    assert [thread for thread, _, _ in calls] == ["sbert-batch-0", "MainThread"]
    assert len(made) == 1
