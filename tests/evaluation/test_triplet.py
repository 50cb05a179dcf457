"""Triplet accuracy; the reader's tests are in tests/data/test_triplets.py."""

from __future__ import annotations

import numpy as np
import pytest

from sbert.evaluation.triplet import TripletDataset, evaluate_triplets, triplet_metrics
from tests.evaluation.conftest import BagOfWordsEncoder


def test_metrics_count_wins_and_ties_as_wrong() -> None:
    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    p = np.array([[1.0, 0.1], [0.0, 1.0], [0.0, 1.0]])
    n = np.array([[0.0, 1.0], [1.0, 0.1], [0.0, 1.0]])  # win, loss, tie
    m = triplet_metrics(a, p, n)
    assert m["triplets"] == 3 and m["primary_metric"] == "accuracy_cosine"
    for kind in ("cosine", "euclidean", "manhattan", "dot"):
        assert m[f"accuracy_{kind}"] == pytest.approx(100 / 3), kind


def test_evaluate_with_model_and_embeddings(bow: BagOfWordsEncoder) -> None:
    ds = TripletDataset("toy", ["a man eats food", "the dog runs fast"],
                        ["a man eats a lot of food", "the dog runs very fast"],
                        ["a blue car", "piano music"])
    result = evaluate_triplets(bow, ds)
    assert result["accuracy_cosine"] == 100.0 and result["model"] == "bow"
    emb = tuple(bow.encode(x) for x in (ds.anchors, ds.positives, ds.negatives))
    again = evaluate_triplets(None, ds, embeddings=emb)  # type: ignore[arg-type]
    assert again["accuracy_euclidean"] == result["accuracy_euclidean"]
