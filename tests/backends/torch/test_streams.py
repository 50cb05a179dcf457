"""Torch streams: batches run side by side, each thread with its own intra-op count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbert import SentenceEncoder


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """threads= and streams change torch's thread count: put it back for the other tests."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


TEXTS = [f"the man {'is eating food ' * (i % 5)}in the park {i}" for i in range(40)]


def test_streams_encode_the_same_and_leave_the_caller_threads_alone(tiny_model_dir) -> None:
    one = SentenceEncoder(tiny_model_dir, device="cpu")
    two = SentenceEncoder(tiny_model_dir, device="cpu", streams=2, threads=2)
    assert two.backend.streams == 2 and one.backend.streams == 1
    np.testing.assert_allclose(two.encode(TEXTS, batch_size=4), one.encode(TEXTS, batch_size=4),
                               atol=1e-6)


def test_alone_batch_gets_every_core_else_its_share(tiny_model_dir) -> None:
    enc = SentenceEncoder(tiny_model_dir, device="cpu", streams=2, threads=2)
    tok = enc.tokenizer.encode(TEXTS[:3])
    enc.embed_tokens(tok.ids, tok.type_ids, alone=False)
    assert torch.get_num_threads() == 1
    enc.embed_tokens(tok.ids, tok.type_ids, alone=True)
    assert torch.get_num_threads() == 2


def test_bad_streams(tiny_model_dir) -> None:
    from sbert.errors import UsageError

    with pytest.raises(UsageError, match="streams"):
        SentenceEncoder(tiny_model_dir, device="cpu", streams=0)


def test_the_server_runs_a_cpu_encoders_lone_passes_on_one_thread(tiny_model_dir) -> None:
    """libgomp keeps an intra-op pool per calling thread and stops spinning once the pools
    outnumber the cores: the batcher keeps torch's multi-threaded passes on stream 0 (the
    tiny model's passes are quick enough to run inline, were it another backend)."""
    import asyncio
    import threading

    from sbert.serve.batcher import Batcher

    enc = SentenceEncoder(tiny_model_dir, device="cpu", streams=2, threads=2)
    assert enc.backend.one_caller
    calls: list[tuple[str, bool]] = []
    inner = enc.backend.embed

    def record(*args, alone=False):
        calls.append((threading.current_thread().name, alone))
        return inner(*args, alone=alone)

    enc.backend.embed = record

    async def main() -> None:
        batcher = Batcher(enc)
        for text in TEXTS[:8]:
            await batcher.embed([text])
        await batcher.close()

    asyncio.run(main())
    assert calls == [("sbert-batch-0", True)] * 8
