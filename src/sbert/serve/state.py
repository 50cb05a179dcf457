"""What a running server holds: the model, its batcher, the index, and whether it is ready.

The model loads after the server starts listening, so ``/health`` answers ``loading`` (503)
until the model is loaded and warmed, then ``ok``. A model that fails to load stops the server
with exit code 1.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from sbert.serve.batcher import Batcher
from sbert.serve.config import ServeConfig
from sbert.serve.metrics import Metrics

logger = logging.getLogger("sbert.serve")

T = TypeVar("T")

# ONNX graphs run padded: a batch runs as passes of similar lengths, one more pass costing
# about this many tokens' time (sbert.tokenization.length_chunks); benchmarks/split_cost.py
# times the choices on batches as a server meets them
SPLIT_COST = 8
# oneDNN kernels a torch server keeps (oneDNN's default: 1,024): every kernel kept holds
# memory, and under load the default cache filled for minutes, a slow climb of the resident
# size; at 64 the server's rate at 64 x 1 did not change (docs/serve.md, "Known limits")
ONEDNN_KERNELS = 64
# sentences run once before the server says it is ready: kernels are chosen on first use
WARMUP = ["A man is playing a guitar.",
          "The quick brown fox jumps over the lazy dog while the farmer watches from afar.",
          "Ok."]


class ServerState:
    """The model, batcher and index of one server process."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.status = "loading"
        self.message: str | None = None
        self.encoder: Any = None
        self.batcher: Batcher | None = None
        self.index: Any = None
        self.identity: Any = None
        self.created = int(time.time())
        self.on_failure: Callable[[], None] | None = None  # set by the runner: stop serving
        # one thread owns the index: SQLite connections stay in the thread that made them,
        # and changes run one at a time
        self._index_thread = ThreadPoolExecutor(1, thread_name_prefix="sbert-index")
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.status == "ok"

    def start(self) -> None:
        """Load in the background (the event loop keeps answering ``/health``)."""
        self._task = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        what = "the model could not be loaded"
        try:
            self.encoder = await loop.run_in_executor(None, self._build_encoder)
            cfg = self.config
            self.batcher = Batcher(self.encoder, cfg.max_batch_tokens, cfg.max_batch_size,
                                   cfg.max_queue, truncate=True,
                                   split_cost=None if cfg.backend == "torch" else SPLIT_COST)
            for text in WARMUP:
                await self.batcher.embed([text])
            await self.batcher.embed((WARMUP * 4)[:cfg.max_queue])  # fits any queue
            self.batcher.truncate = cfg.truncate
            if cfg.index is not None:
                what = f"the index {cfg.index} could not be opened"
                # the probe through the batcher: torch's passes stay on its threads
                probe = (await self.batcher.embed(["check"])).embeddings
                await self.in_index_thread(self._open_index, probe)
        except Exception as err:  # noqa: BLE001 - reported, then the server stops
            self.status, self.message = "failed", f"{type(err).__name__}: {err}"
            logger.error("%s: %s", what, self.message)
            if self.on_failure is not None:
                self.on_failure()
            return
        self.batcher.on_batch = self.metrics.observe_batch  # clients' passes, not warm-up
        self.status = "ok"
        logger.info("ready: %s (%s backend) in %.1f s", self.config.served_name,
                    self.encoder.backend_name, time.perf_counter() - start)

    def _build_encoder(self) -> Any:
        from sbert.encoder import SentenceEncoder

        if self.config.backend == "torch":
            from sbert.backends.torch.kernels import limit_primitive_cache

            limit_primitive_cache(ONEDNN_KERNELS)  # before the model's first oneDNN kernel
        return SentenceEncoder(self.config.model, **self.config.encoder_options())

    def _open_index(self, probe: np.ndarray) -> None:
        """Open the index and search it once with ``probe``, one embedding of this model (a
        folder of another model or dimension is refused here, before the server is ready)."""
        from sbert.search.index import Index, model_identity

        self.index = Index.open(self.config.index)  # type: ignore[arg-type]
        self.identity = model_identity(self.encoder)
        self.index.search(probe, k=1, model=self.identity)

    async def in_index_thread(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` on the thread that owns the index."""
        return await asyncio.get_running_loop().run_in_executor(self._index_thread, func, *args)

    async def close(self) -> None:
        """Finish queued work, then release the index."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.batcher is not None:
            await self.batcher.close()
        if self.index is not None:
            await self.in_index_thread(self.index.close)
        self._index_thread.shutdown(wait=True)
