"""Pooling modes: masks respected, inputs never written."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sbert.backends.torch.pooling import pool  # noqa: E402


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    emb = torch.randn(3, 5, 4)  # (batch, seq, hidden)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    return emb, mask


def test_mean_ignores_padding() -> None:
    emb, mask = _batch()
    out = pool(emb, mask, ("mean",))
    assert torch.allclose(out[1], emb[1, :3].mean(0))
    assert torch.allclose(out[2], emb[2, 0])


def test_max_ignores_padding_and_does_not_write_input() -> None:
    emb, mask = _batch()
    before = emb.clone()
    out = pool(emb, mask, ("max",))
    assert torch.equal(emb, before)
    assert torch.allclose(out[1], emb[1, :3].max(0).values)


def test_cls_and_sqrt_len_and_concat() -> None:
    emb, mask = _batch()
    out = pool(emb, mask, ("cls", "mean_sqrt_len"))
    assert out.shape == (3, 8)
    assert torch.allclose(out[:, :4], emb[:, 0])
    assert torch.allclose(out[1, 4:], emb[1, :3].sum(0) / 3**0.5)


def test_unknown_mode() -> None:
    emb, mask = _batch()
    with pytest.raises(ValueError, match="expected one of"):
        pool(emb, mask, ("median",))
