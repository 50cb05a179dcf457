"""Encoding a large input with several worker processes on one machine.

Each worker process loads its own encoder with ``cores // workers`` threads, so the workers
never oversubscribe the CPU; chunks come back in input order, each worker reports every
finished batch to the parent (a progress bar moves by batch, not by chunk), and an error in a
worker is raised in the parent instead of hanging it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sbert.errors import SbertError, WorkerError
from sbert.runtime import WORKER_MEMORY_FACTOR, cap_workers, threads_per_worker

if TYPE_CHECKING:
    from concurrent.futures import Future
    from multiprocessing.queues import SimpleQueue

logger = logging.getLogger(__name__)

# most sentences per task: big enough for smart batching, small enough to balance the workers
CHUNK_SIZE = 2048

# files holding a model's weights; a folder may hold several formats, a worker loads one
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".onnx_data", ".pt", ".pth")


def weights_bytes(model: str | os.PathLike[str]) -> int | None:
    """Size of the weights of one format in a model folder (the largest), None if unknown."""
    from pathlib import Path

    root = Path(model)
    if not root.is_dir():
        return None
    totals: dict[str, int] = {}
    for path in root.rglob("*"):
        suffix = path.suffix.lower()
        if suffix in _WEIGHT_SUFFIXES and path.is_file():
            key = ".onnx" if suffix == ".onnx_data" else suffix
            totals[key] = totals.get(key, 0) + path.stat().st_size
    return max(totals.values()) if totals else None


def split_even(n: int, workers: int, max_chunk: int = CHUNK_SIZE) -> list[tuple[int, int]]:
    """``(start, stop)`` of chunks covering ``range(n)``, in order, sizes differing by <= 1.

    The number of chunks is a multiple of ``workers`` (so each worker gets a similar share)
    and large enough that no chunk exceeds ``max_chunk``.
    """
    if n <= 0:
        return []
    max_chunk, workers = max(1, max_chunk), max(1, workers)
    count = -(-n // max_chunk)  # ceil
    count = min(n, -(-count // workers) * workers)  # round up to a multiple of the workers
    return [(k * n // count, (k + 1) * n // count) for k in range(count)]


# -- worker side (module-level so that "spawn" can pickle them) ----------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(model: str, encoder_options: dict[str, Any],
                 done: SimpleQueue[int] | None = None) -> None:
    """``done``: a queue that takes the sentence count of each finished batch, or None."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # the tokenizer's threads would compete
    _WORKER["done"] = done
    try:
        from sbert.encoder import SentenceEncoder

        _WORKER["encoder"] = SentenceEncoder(model, **encoder_options)
    except Exception as err:  # re-raised with each task, in the parent
        _WORKER["error"] = f"{type(err).__name__}: {err}"


def _encode_chunk(sentences: list[str], batch_size: int, normalize: bool) -> np.ndarray:
    if "error" in _WORKER:
        raise WorkerError(f"worker could not load the model: {_WORKER['error']}")
    done = _WORKER["done"]
    emb: np.ndarray = _WORKER["encoder"].encode(
        sentences, batch_size=batch_size, normalize=normalize, show_progress=False,
        progress=None if done is None else done.put,
    )
    return emb


def settle_path(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the backend and precision decided here, once, for every worker.

    A backend left to ``auto`` is resolved in the parent, and an ONNX export it needs is made
    here: the workers then neither choose apart nor export the same graph at once.
    """
    from sbert.backends.auto import AUTO, onnx_source, path_for
    from sbert.folder import read_folder
    from sbert.models import resolve_model

    backend, precision = options.get("backend", AUTO), options.get("precision", AUTO)
    if backend != AUTO and precision != AUTO:
        return dict(options)
    rest = {k: v for k, v in options.items()
            if k not in ("backend", "precision", "device", "threads", "max_seq_length")}
    try:
        path = resolve_model(model)
        spec = read_folder(path)
    except SbertError:  # each worker reports it with its load, as for any load error
        return dict(options)
    choice = path_for(spec, backend=backend, precision=precision,
                      device=options.get("device"), options=rest)
    choice = onnx_source(path, spec, choice, rest, str(model))[2]
    logger.info("workers run %s", choice.describe())
    out = {**options, "backend": choice.backend}
    if choice.backend == "torch":
        out["precision"] = choice.precision
    return out


def encode_parallel(
    model: str,
    sentences: Sequence[str],
    workers: int,
    batch_size: int = 32,
    normalize: bool = False,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
    **encoder_options: Any,
) -> np.ndarray:
    """Encode ``sentences`` with ``workers`` processes, each running its own encoder.

    Args:
        model: a model folder or name (each worker loads it).
        sentences: the texts; the output keeps their order.
        workers: number of processes, capped by the cores and the memory available
            (:func:`~sbert.runtime.cap_workers`); each gets ``cores // workers`` threads.
        batch_size: sentences per forward pass inside a worker.
        normalize: L2-normalize the embeddings.
        progress: called with the number of sentences of each batch a worker finishes.
        chunk_size: most sentences per task; the input is split into evenly sized chunks,
            a multiple of ``workers`` of them.
        **encoder_options: passed to :class:`~sbert.encoder.SentenceEncoder`
            (``backend``, ``quantized``, ``device``...); ``threads`` is set here.

    Returns:
        ``(n, dim)`` float32 embeddings in input order.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    texts = list(sentences)
    if not texts:  # nothing to spread: the shape (0, dim) still needs the model
        from sbert.encoder import SentenceEncoder

        return np.asarray(SentenceEncoder(model, **encoder_options).encode([]))
    weights = weights_bytes(model)
    workers = cap_workers(workers, None if weights is None else WORKER_MEMORY_FACTOR * weights)
    options = {**settle_path(model, encoder_options), "threads": threads_per_worker(workers)}
    chunks = [texts[a:b] for a, b in split_even(len(texts), workers, chunk_size)]
    logger.info("encoding %d sentences in %d chunks with %d workers x %d threads",
                len(texts), len(chunks), workers, options["threads"])
    # spawn, not fork: a forked copy of a process whose torch/onnxruntime thread pools are
    # running can deadlock
    ctx = multiprocessing.get_context("spawn")
    # a SimpleQueue's put has written when it returns: a batch's count is in the pipe before
    # its chunk's result is sent
    done: SimpleQueue[int] | None = None if progress is None else ctx.SimpleQueue()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(model, options, done))
    try:
        futures: list[Future[np.ndarray]] = [
            pool.submit(_encode_chunk, chunk, batch_size, normalize) for chunk in chunks
        ]
        if done is not None and progress is not None:
            _report_until_done(futures, done, progress)
        parts = [future.result() for future in futures]
    except BrokenProcessPool as err:
        raise WorkerError(
            "a worker process died (out of memory or killed?); try fewer --workers"
        ) from err
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if done is not None:
            done.close()
    return np.concatenate(parts, axis=0)


def _report_until_done(futures: Sequence[Future[np.ndarray]], done: SimpleQueue[int],
                       progress: Callable[[int], None]) -> None:
    """Pass the workers' batch counts from ``done`` to ``progress`` until every chunk is
    finished; a failed chunk ends it at once (its error is raised by ``future.result()``)."""
    from concurrent.futures import FIRST_EXCEPTION, wait

    pending = set(futures)
    while True:
        while not done.empty():
            progress(done.get())
        if not pending:
            return
        finished, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
        if any(future.exception() is not None for future in finished):
            return
