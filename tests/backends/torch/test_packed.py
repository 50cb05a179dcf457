"""BERT inference on packed tokens agrees with the Hugging Face forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbert.backends.torch.packed import PackedBert, supports_packed


def _batch(encoder, texts: list[str]) -> tuple[torch.Tensor, ...]:
    tok = encoder.tokenizer.encode(texts)
    ids, mask, types = encoder.tokenizer.pad(tok.ids, tok.type_ids)
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)


TEXTS = ["a", "the man is eating food in the park with a dog and a cat today",
         "a woman plays the guitar", "dog", "the child is running outside and playing ball"]


def test_packed_hidden_states_match_the_stock_forward(tiny_encoder) -> None:
    net = tiny_encoder.network
    assert net.packed is not None  # the tiny model is a BertModel
    ids, mask, types = _batch(tiny_encoder, TEXTS)
    types[1, 3:] = 1  # a second segment: token types reach the embeddings
    with torch.inference_mode():
        packed = net.packed(ids, mask, types)
        stock = net.transformer(input_ids=ids, attention_mask=mask,
                                token_type_ids=types).last_hidden_state
    keep = mask.bool()
    torch.testing.assert_close(packed[keep], stock[keep], atol=1e-5, rtol=1e-4)
    assert torch.count_nonzero(packed[~keep]) == 0  # zeros at padding


def test_encode_is_the_same_with_and_without_packing(tiny_encoder, monkeypatch) -> None:
    tiny_encoder.network.pack_min_padding = 0.0  # pack every batch
    packed = tiny_encoder.encode(TEXTS, batch_size=5)
    tiny_encoder.network.pack_min_padding = 0.15
    monkeypatch.setattr(tiny_encoder.network, "packed", None)
    stock = tiny_encoder.encode(TEXTS, batch_size=5)
    np.testing.assert_allclose(packed, stock, atol=1e-5)


def test_training_and_gradients_use_the_stock_forward(tiny_encoder, monkeypatch) -> None:
    net = tiny_encoder.network
    calls = []
    monkeypatch.setattr(net, "packed", lambda *a: calls.append(a))
    ids, mask, types = _batch(tiny_encoder, TEXTS[:2])
    out = net(ids, mask, types)  # grad enabled: the autograd path
    assert out.requires_grad and not calls


def test_fused_weights_follow_a_weight_change(tiny_model_dir) -> None:
    from sbert import SentenceEncoder

    enc = SentenceEncoder(tiny_model_dir, device="cpu")
    before = enc.encode(TEXTS)
    with torch.no_grad():
        enc.network.transformer.encoder.layer[0].attention.self.value.weight.mul_(2.0)
    after = enc.encode(TEXTS)
    enc.network.packed = None
    stock = enc.encode(TEXTS)
    assert not np.allclose(before, after, atol=1e-4)
    np.testing.assert_allclose(after, stock, atol=1e-5)


def test_switch_and_other_architectures(tiny_encoder, monkeypatch) -> None:
    assert supports_packed(tiny_encoder.network.transformer)
    monkeypatch.setenv("SBERT_PACKED", "0")
    assert not supports_packed(tiny_encoder.network.transformer)
    monkeypatch.delenv("SBERT_PACKED")
    assert not supports_packed(torch.nn.Linear(2, 2))


@pytest.mark.slow
def test_minilm_packed_matches_stock_on_mixed_lengths(minilm) -> None:
    texts = ["Hi.", "A man is playing a large flute on the stage while people listen.",
             "Two dogs run.", "The quick brown fox jumps over the lazy dog " * 6]
    ids, mask, types = _batch(minilm, texts)
    with torch.inference_mode():
        packed = PackedBert(minilm.network.transformer)(ids, mask, types)
        stock = minilm.network.transformer(input_ids=ids, attention_mask=mask,
                                           token_type_ids=types).last_hidden_state
    keep = mask.bool()
    cos = torch.nn.functional.cosine_similarity(packed[keep], stock[keep], dim=-1)
    assert cos.min() >= 0.99999
