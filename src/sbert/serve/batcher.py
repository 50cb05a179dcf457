"""Dynamic batching: sentences of concurrent requests share forward passes.

A request's sentences are tokenized (a short request on the event loop itself, where that
costs less than a hand-off to the tokenizer thread and back; a longer one off the loop), then
queued as items. Worker threads (one per backend stream: one for torch, one per core for
ONNX) take batches from the queue: each batch holds the oldest waiting sentence, so none
waits forever, and the sentences whose token lengths are closest to it, up to a budget of
padded tokens (batch size x longest sequence) and a batch size. Short sentences thus run
with short ones and long with long, as the paper's smart batching does offline, while a lone
request runs at once (a short one that finds nothing waiting or running, on the event loop
itself: two thread hand-offs cost more than the pass saves). Each request gets its own rows
back in its own order; one whose client went away is taken out of the queue.

The queue is bounded in sentences: a request that does not fit is refused (:class:`QueueFull`,
answered 429 with ``Retry-After``) rather than held in memory.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from sbert.errors import SbertError
from sbert.runtime import release_free_memory
from sbert.tokenization import length_chunks

_TOKENIZE_THREADS = 1  # tokenization runs here, off the event loop
# requests of at most this many characters are tokenized on the event loop: a few tens of
# microseconds, less than handing them to the tokenizer thread and back
INLINE_CHARS = 2048
# seconds without a batch after which freed memory goes back to the system (glibc
# malloc_trim): under load the allocator keeps and reuses it, so the resident size stays at
# the working set instead of swinging with each trim; after a burst it shrinks again
TRIM_AFTER_IDLE = 1.0
# a request of at most this many padded tokens that finds the batcher idle (nothing waiting,
# nothing running) runs on the event loop itself, as long as such lone runs take at most
# INLINE_SECONDS: handing it to a worker thread and its answer back costs two thread
# wake-ups, next to a one-sentence ONNX pass of a few milliseconds; any longer pass, a
# larger request, or a backend whose passes must come from one thread (torch on a CPU)
# goes to the workers and leaves the loop free
INLINE_TOKENS = 128
INLINE_SECONDS = 0.010
INLINE_YIELDS = 2  # event-loop turns a would-be inline request waits for others to arrive


class QueueFull(SbertError):
    """The queue has no room for a request; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooLong(SbertError):
    """Inputs are longer than the model's maximum length and truncation is off."""

    def __init__(self, message: str, rows: tuple[int, ...]) -> None:
        super().__init__(message)
        self.rows = rows


class Closed(SbertError):
    """The batcher is shutting down and takes no new work."""


@dataclass
class Embedded:
    """What one request gets back."""

    embeddings: np.ndarray  # (n, dim) float32, in the request's order
    tokens: int  # tokens the model ran (special tokens included, after truncation)
    truncated: int  # inputs cut at the model's maximum length


class _Job:
    """One request's sentences in flight."""

    __slots__ = ("out", "remaining", "future", "loop", "cancelled")

    def __init__(self, n: int, dim: int, loop: asyncio.AbstractEventLoop) -> None:
        self.out = np.empty((n, dim), dtype=np.float32)  # (n, dim)
        self.remaining = n
        self.future: asyncio.Future[None] = loop.create_future()
        self.loop = loop
        self.cancelled = False


class _Item:
    """One sentence waiting for the model."""

    __slots__ = ("job", "row", "ids", "type_ids", "length", "seq")

    def __init__(self, job: _Job, row: int, ids: list[int], type_ids: list[int],
                 seq: int) -> None:
        self.job = job
        self.row = row
        self.ids = ids
        self.type_ids = type_ids
        self.length = len(ids)
        self.seq = seq  # arrival order


def _resolve(jobs: list[_Job], error: BaseException | None) -> None:
    for job in jobs:
        if job.future.done():
            continue
        if error is None:
            job.future.set_result(None)
        else:
            job.future.set_exception(error)


def select_batch(lengths: list[int], max_tokens: int, max_size: int) -> list[int]:
    """Which waiting sentences run next: positions into ``lengths`` (oldest first).

    The batch always holds position 0 (the oldest), then grows by the sentence whose length
    adds the least padding, while ``size x longest <= max_tokens`` and ``size <= max_size``.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # longest first, stable
    at = order.index(0)
    lo = hi = at
    width = lengths[0]
    count = 1
    while count < max_size:
        longer = order[lo - 1] if lo > 0 else None
        shorter = order[hi + 1] if hi + 1 < len(order) else None
        # padding each choice adds: a shorter sentence pads itself, a longer pads the rest
        cost_short = width - lengths[shorter] if shorter is not None else math.inf
        cost_long = (count * (lengths[longer] - width) if longer is not None else math.inf)
        fits_short = shorter is not None and (count + 1) * width <= max_tokens
        fits_long = longer is not None and (count + 1) * lengths[longer] <= max_tokens
        if fits_short and (not fits_long or cost_short <= cost_long):
            hi += 1
        elif fits_long:
            lo -= 1
            width = lengths[longer]  # type: ignore[index]
        else:
            break
        count += 1
    return sorted(order[lo : hi + 1])


class Batcher:
    """Queues tokenized sentences and runs them in batches on an encoder's backend.

    Args:
        encoder: a :class:`~sbert.encoder.SentenceEncoder`.
        max_batch_tokens: padded tokens per forward pass.
        max_batch_size: sentences per forward pass.
        max_queue: sentences that may wait; a request that does not fit raises
            :class:`QueueFull`.
        truncate: cut over-long inputs (counted); False: raise :class:`TooLong`.
        on_batch: called after each forward pass with (sentences, padded tokens, seconds).
        split_cost: run a batch as several passes of similar lengths
            (:func:`~sbert.tokenization.length_chunks`, a pass costing this many tokens);
            None: one pass, for
            backends that skip padding themselves (torch's packed BERT).
    """

    def __init__(
        self,
        encoder: Any,
        max_batch_tokens: int = 4096,
        max_batch_size: int = 32,
        max_queue: int = 4096,
        truncate: bool = True,
        on_batch: Callable[[int, int, float], None] | None = None,
        split_cost: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.truncate = truncate
        self.on_batch = on_batch
        self.split_cost = split_cost
        self.dimension = int(encoder.dimension)
        self._prefix = encoder.resolve_prompt()  # the model's default prompt, if any
        self._cond = threading.Condition()
        self._pending: list[_Item] = []  # arrival order
        self._seq = 0
        self._running = 0  # batches on the backend now
        self._closing = False
        self._tokens_per_s = 0.0  # recent throughput, for Retry-After
        self._lone_seconds = math.inf  # recent lone passes of <= INLINE_TOKENS, seconds
        self._entered = 0  # requests inside embed() (the event loop's count, no lock)
        self._tokenize = ThreadPoolExecutor(_TOKENIZE_THREADS, thread_name_prefix="sbert-tok")
        # a backend whose intra-op pool belongs to the calling thread (torch on a CPU) runs
        # its multi-threaded (lone) passes on stream 0 only: never inline on the event loop,
        # never alone on another stream (TorchBackend.one_caller says why)
        self._one_caller = bool(getattr(encoder.backend, "one_caller", False))
        streams = max(1, int(getattr(encoder.backend, "streams", 1)))
        self._used = False  # a batch ran since memory was last given back
        self._workers = [threading.Thread(target=self._work, args=(i,), name=f"sbert-batch-{i}",
                                          daemon=True) for i in range(streams)]
        for worker in self._workers:
            worker.start()

    # -- the event loop's side ------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Sentences waiting for the model."""
        return len(self._pending)

    async def embed(self, texts: list[str],
                    watch: Callable[[], asyncio.Future[Any]] | None = None) -> Embedded:
        """Embed ``texts`` with the others waiting.

        ``watch``: called once the request is queued (not for one run at once on the event
        loop), it gives a future that is done when the client has gone: the work is dropped.

        Raises:
            QueueFull: no room for ``len(texts)`` more sentences.
            TooLong: an input is over the maximum length and ``truncate`` is off.
            Closed: the batcher is shutting down.
            asyncio.CancelledError: the client went first (``watch``'s future finished).
        """
        self._entered += 1
        try:
            return await self._embed_request(texts, watch)
        finally:
            self._entered -= 1

    async def _embed_request(self, texts: list[str],
                             watch: Callable[[], asyncio.Future[Any]] | None) -> Embedded:
        if self._closing:
            raise Closed("the server is shutting down")
        self._check_room(len(texts))
        loop = asyncio.get_running_loop()
        if self._prefix:
            texts = [self._prefix + t for t in texts]
        if sum(map(len, texts)) <= INLINE_CHARS:  # microseconds: less than a thread hop
            tok = self.encoder.tokenizer.encode(texts, hold_gil=True)
        else:
            tok = await loop.run_in_executor(self._tokenize, self.encoder.tokenizer.encode,
                                             texts)
        if tok.truncated and not self.truncate:
            raise TooLong(f"{tok.truncated} input(s) are longer than the model's "
                          f"{self.encoder.max_seq_length} tokens (first: input "
                          f"{tok.truncated_rows[0]}); shorten them, or start the server "
                          "with --truncate", tok.truncated_rows)
        job = _Job(len(texts), self.dimension, loop)
        tokens = sum(len(ids) for ids in tok.ids)
        if texts and self._idle() and self._short_and_quick(tok.ids):
            # the requests that arrived with this one reach the batcher first: each yield
            # lets the loop read its sockets, then start the handlers of what it read. Only
            # a request alone in the server runs inline, or under load each would (the loop
            # never queues, so the batcher always looks idle) and none would share a pass
            for _ in range(INLINE_YIELDS):
                await asyncio.sleep(0)
            if self._entered == 1 and self._run_inline(job, tok.ids, tok.type_ids):
                return Embedded(job.out, tokens, tok.truncated)
        if texts:
            with self._cond:
                if self._closing:
                    raise Closed("the server is shutting down")
                self._check_room(len(texts))
                for row, (ids, types) in enumerate(zip(tok.ids, tok.type_ids, strict=True)):
                    self._pending.append(_Item(job, row, ids, types, self._seq))
                    self._seq += 1
                self._cond.notify_all()
            await self._wait(job, None if watch is None else watch())
        return Embedded(job.out, tokens, tok.truncated)

    def _idle(self) -> bool:
        """Whether this request is the only one in the server and nothing runs (a hint,
        read without the lock: :meth:`_run_inline` checks again under it). Under load a
        request skips the yields that wait for company it already has."""
        return self._entered == 1 and not self._pending and not self._running

    def _short_and_quick(self, ids: list[list[int]]) -> bool:
        """Whether a request may run inline: at most ``INLINE_TOKENS`` padded tokens,
        recent lone passes that short took at most ``INLINE_SECONDS``, and a backend that may
        run on any thread."""
        return (not self._one_caller and len(ids) * max(map(len, ids)) <= INLINE_TOKENS
                and self._lone_seconds <= INLINE_SECONDS)

    def _run_inline(self, job: _Job, ids: list[list[int]], type_ids: list[list[int]]) -> bool:
        """Embed a request here, on the event loop, if nothing is waiting or running
        (False: nothing done)."""
        with self._cond:
            if self._pending or self._running or self._closing:
                return False
            self._running += 1
            self._used = True
        items = [_Item(job, row, row_ids, types, 0)
                 for row, (row_ids, types) in enumerate(zip(ids, type_ids, strict=True))]
        start = time.perf_counter()
        try:
            emb, padded = self._embed(items, alone=True)
        except BaseException:
            with self._cond:
                self._running -= 1
            raise
        seconds = time.perf_counter() - start
        job.out[:] = emb
        job.remaining = 0
        with self._cond:
            self._running -= 1
            self._note_pass(padded, seconds, alone=True)
        if self.on_batch is not None:
            self.on_batch(len(items), padded, seconds)
        return True

    def _note_pass(self, padded: int, seconds: float, alone: bool) -> None:
        """Keep the recent throughput (for Retry-After) and the lone short passes' time
        (called with the lock held)."""
        rate = padded / max(seconds, 1e-6)
        self._tokens_per_s = rate if not self._tokens_per_s else (
            0.8 * self._tokens_per_s + 0.2 * rate)
        if alone and padded <= INLINE_TOKENS:
            self._lone_seconds = seconds if math.isinf(self._lone_seconds) else (
                0.8 * self._lone_seconds + 0.2 * seconds)

    def _check_room(self, n: int) -> None:
        if len(self._pending) + n > self.max_queue:
            waiting = sum(item.length for item in self._pending)
            seconds = waiting / self._tokens_per_s if self._tokens_per_s else 1.0
            raise QueueFull(f"the server is busy: {len(self._pending)} sentences are waiting "
                            f"(the queue holds {self.max_queue}); retry later",
                            max(1, math.ceil(seconds)))

    async def _wait(self, job: _Job, disconnected: asyncio.Future[Any] | None) -> None:
        if disconnected is None:
            await job.future
            return
        # the client's disconnect cancels the job's future (a callback, not a second task
        # to wait on: this runs once per request on the event loop)
        def gone(_: Any) -> None:
            if not job.future.done():
                job.future.cancel()

        disconnected.add_done_callback(gone)
        try:
            await job.future  # re-raises a backend error
        except asyncio.CancelledError:
            if not disconnected.done():
                raise  # the server cancelled this request, not the client
            self.cancel(job)
            raise asyncio.CancelledError("the client disconnected") from None
        finally:
            disconnected.remove_done_callback(gone)

    def cancel(self, job: _Job) -> None:
        """Take a job's waiting sentences out of the queue (rows being computed finish)."""
        with self._cond:
            job.cancelled = True
            self._pending = [item for item in self._pending if item.job is not job]

    async def close(self) -> None:
        """Finish what is queued, then stop the workers."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            await loop.run_in_executor(None, worker.join)
        self._tokenize.shutdown(wait=True)

    # -- the workers' side ----------------------------------------------------------------
    def _take(self, stream: int) -> tuple[list[_Item], bool]:
        """The next batch for ``stream`` and whether it runs alone, on every core (called
        with the lock held). A one-caller backend runs alone on stream 0 only."""
        pending = self._pending
        chosen = select_batch([item.length for item in pending], self.max_batch_tokens,
                              self.max_batch_size)
        batch = [pending[i] for i in chosen]
        if len(chosen) == len(pending):
            self._pending = []
        else:
            taken = set(chosen)
            self._pending = [item for i, item in enumerate(pending) if i not in taken]
        self._running += 1
        if self._pending:
            self._cond.notify_all()  # another stream may take the rest
        alone = self._running == 1 and not self._pending
        return batch, alone and (stream == 0 or not self._one_caller)

    def _work(self, stream: int) -> None:
        while True:
            trim = False
            with self._cond:
                # stream 0 takes every batch it can; the others only join while a batch
                # runs, so a lone request always meets the same thread (and its warm
                # intra-op team) instead of two threads taking turns
                while not self._closing and (not self._pending
                                             or (stream > 0 and self._running == 0)):
                    idle = not self._cond.wait(TRIM_AFTER_IDLE)
                    if idle and stream == 0 and self._used and self._running == 0:
                        trim, self._used = True, False
                        break
                if not trim:
                    if not self._pending:
                        return  # closing and nothing left
                    batch, alone = self._take(stream)
                    self._used = True
            if trim:  # idle: outside the lock, so a new request does not wait for it
                release_free_memory()
                continue
            start = time.perf_counter()
            error: BaseException | None = None
            emb = None
            padded = len(batch) * max(item.length for item in batch)
            try:
                emb, padded = self._embed(batch, alone)
            except BaseException as err:  # noqa: BLE001 - handed to the waiting requests
                error = err
            seconds = time.perf_counter() - start
            self._deliver(batch, emb, error, seconds, padded, alone)

    def _embed(self, batch: list[_Item], alone: bool) -> tuple[np.ndarray, int]:
        """``(len(batch), dim)`` embeddings and the padded tokens the passes ran: one pass,
        or one per run of similar lengths."""
        lengths = [item.length for item in batch]
        runs = ([list(range(len(batch)))] if self.split_cost is None or len(batch) < 2
                else length_chunks(lengths, self.split_cost))
        padded = sum(len(run) * max(lengths[i] for i in run) for run in runs)
        if len(runs) == 1:
            out: np.ndarray = self.encoder.embed_tokens(
                [item.ids for item in batch], [item.type_ids for item in batch], alone=alone)
            return out, padded
        out = np.empty((len(batch), self.dimension), dtype=np.float32)
        for run in runs:
            out[run] = self.encoder.embed_tokens([batch[i].ids for i in run],
                                                 [batch[i].type_ids for i in run], alone=alone)
        return out, padded

    def _deliver(self, batch: list[_Item], emb: np.ndarray | None,
                 error: BaseException | None, seconds: float, padded: int,
                 alone: bool) -> None:
        finished: list[_Job] = []
        with self._cond:
            self._running -= 1
            if emb is not None:
                self._note_pass(padded, seconds, alone)
            for i, item in enumerate(batch):
                job = item.job
                if job.cancelled or job.remaining == 0:
                    continue
                if error is not None:
                    job.remaining = 0
                    job.cancelled = True  # its other sentences are not run
                    finished.append(job)
                    continue
                job.out[item.row] = emb[i]  # type: ignore[index]
                job.remaining -= 1
                if job.remaining == 0:
                    finished.append(job)
            if error is not None:  # the failed requests' other sentences are not run
                self._pending = [item for item in self._pending if not item.job.cancelled]
        # one wake-up of each event loop per batch, not one per request
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in finished:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            loop.call_soon_threadsafe(_resolve, jobs, error)
        if self.on_batch is not None and emb is not None:
            self.on_batch(len(batch), padded, seconds)
