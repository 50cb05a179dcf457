"""Paraphrase mining; the reader's tests are in tests/data/test_duplicates.py."""

from __future__ import annotations

import numpy as np
import pytest

from sbert.evaluation.paraphrase import DuplicatesDataset, _mine, evaluate_paraphrase_mining
from tests.evaluation.conftest import BagOfWordsEncoder


def test_mined_pairs_equal_brute_force() -> None:
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((40, 8)).astype(np.float32)
    pairs, scores = _mine(emb, top_k=39, max_pairs=10_000)
    assert len(pairs) == 40 * 39 // 2
    norm = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = norm @ norm.T
    assert np.allclose(scores, sims[pairs[:, 0], pairs[:, 1]], atol=1e-6)
    assert (pairs[:, 0] < pairs[:, 1]).all() and (np.diff(scores) <= 1e-7).all()
    top, _ = _mine(emb, top_k=3, max_pairs=5)
    assert len(top) == 5 and tuple(top[0]) == tuple(pairs[0])


def test_perfect_embeddings_give_perfect_scores(bow: BagOfWordsEncoder) -> None:
    sentences = ["how do i learn python", "how can i learn python", "best pizza in town",
                 "where is the best pizza", "why is the sky blue", "what is a black hole"]
    ds = DuplicatesDataset("toy", sentences, {(0, 1), (2, 3)})
    emb = np.eye(6, dtype=np.float32)
    emb[1] = emb[0] + 0.1 * emb[1]
    emb[3] = emb[2] + 0.1 * emb[3]
    result = evaluate_paraphrase_mining(None, ds, embeddings=emb, top_k=2)
    assert result["average_precision"] == pytest.approx(100.0)
    assert result["f1"] == pytest.approx(100.0)
    assert result["gold_pairs"] == 2 and result["primary_metric"] == "average_precision"
    with_model = evaluate_paraphrase_mining(bow, ds, top_k=5)
    assert 0 < with_model["average_precision"] <= 100 and with_model["model"] == "bow"
    assert "precision_curve" not in with_model
    curve = evaluate_paraphrase_mining(None, ds, embeddings=emb, top_k=2, return_curve=True)
    # both gold pairs tie at the top score, the other mined pairs at 0
    assert curve["precision_curve"][0] == 1.0 and curve["recall_curve"][0] == 1.0
    assert curve["precision_curve"][-1] == pytest.approx(2 / curve["mined_pairs"])
