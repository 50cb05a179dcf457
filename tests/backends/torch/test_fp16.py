"""The torch backend's fp16 autocast (meant for CUDA GPUs; torch runs it on the CPU too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SENTENCES = ["a man plays a guitar", "the dog runs in the park", ""]


def _embed(backend, tokenizer) -> np.ndarray:
    tok = tokenizer.encode(SENTENCES)
    ids, mask, types = tokenizer.pad(tok.ids, tok.type_ids)
    return np.asarray(backend.embed(ids, mask, types).numpy())


def test_fp16_autocast_close_to_fp32(tiny_model_dir: Path, tiny_encoder) -> None:
    import torch

    from sbert.backends.torch.backend import TorchBackend
    from sbert.folder import read_folder

    spec = read_folder(tiny_model_dir)
    fp16 = TorchBackend(spec, "cpu", precision="fp16")
    assert fp16.autocast and fp16.autocast_dtype == torch.float16
    assert {p.dtype for p in fp16.network.parameters()} == {torch.float32}  # weights stay fp32
    tok = tiny_encoder.tokenizer
    emb, ref = _embed(fp16, tok), _embed(TorchBackend(spec, "cpu"), tok)
    assert emb.dtype == np.float32 and np.isfinite(emb).all()
    cos = (emb * ref).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.999
    assert not np.array_equal(emb, ref)  # it did run in fp16


def test_bf16_still_bf16_and_unknown_precision_refused(tiny_model_dir: Path) -> None:
    import torch

    from sbert.backends.torch.backend import TorchBackend
    from sbert.errors import UsageError
    from sbert.folder import read_folder

    spec = read_folder(tiny_model_dir)
    assert TorchBackend(spec, "cpu", precision="bf16").autocast_dtype == torch.bfloat16
    assert not TorchBackend(spec, "cpu").autocast
    with pytest.raises(UsageError, match="fp16"):
        TorchBackend(spec, "cpu", precision="fp8")
