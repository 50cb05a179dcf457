from __future__ import annotations

import numpy as np
import pytest

from sbert.evaluation.stats import (
    average_precision,
    best_f1,
    pearson,
    precision_recall_curve,
    rankdata,
    spearman,
)
from sbert.similarity import pairwise_similarity
from tests.conftest import has_module


def test_rankdata_averages_ties() -> None:
    assert rankdata(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


@pytest.mark.skipif(not has_module("scipy"), reason="needs scipy to compare with")
def test_correlations_equal_scipy() -> None:
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    gold = rng.integers(0, 6, 300).astype(float)  # many ties, like STS scores
    pred = gold + rng.normal(0, 2, 300)
    assert spearman(gold, pred) == pytest.approx(spearmanr(gold, pred)[0], abs=1e-12)
    assert pearson(gold, pred) == pytest.approx(pearsonr(gold, pred)[0], abs=1e-12)


def test_constant_input_gives_nan() -> None:
    assert np.isnan(pearson(np.ones(5), np.arange(5.0)))


def test_pairwise_similarities_are_higher_for_closer_rows() -> None:
    a = np.array([[1.0, 0.0], [1.0, 0.0]])
    b = np.array([[2.0, 0.0], [0.0, 1.0]])
    assert pairwise_similarity(a, b, "cosine").tolist() == pytest.approx([1.0, 0.0])
    assert pairwise_similarity(a, b, "dot").tolist() == pytest.approx([2.0, 0.0])
    assert pairwise_similarity(a, b, "euclidean").tolist() == pytest.approx([-1.0, -(2**0.5)])
    assert pairwise_similarity(a, b, "manhattan").tolist() == pytest.approx([-1.0, -2.0])
    with pytest.raises(ValueError, match="unknown score"):
        pairwise_similarity(a, b, "jaccard")


def test_average_precision_counts_unretrieved_positives_as_missed() -> None:
    scores = np.array([0.9, 0.8, 0.7])
    labels = np.array([1, 0, 1])
    assert average_precision(scores, labels) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(scores, labels, n_positive=4) == pytest.approx((1 + 2 / 3) / 4)


def test_best_f1_picks_the_best_cut() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    labels = np.array([1, 1, 0, 1])
    best = best_f1(scores, labels)
    # top 2: P=1, R=2/3 -> F1 0.8; top 4: P=3/4, R=1 -> F1 0.857
    assert best["f1"] == pytest.approx(6 / 7)
    assert best["recall"] == 1.0
    assert best["threshold"] == pytest.approx(0.1)
    assert best_f1(scores, np.zeros(4))["f1"] == 0.0


def test_best_f1_never_splits_tied_scores() -> None:
    best = best_f1(np.array([0.5, 0.5, 0.1]), np.array([1, 0, 0]))
    assert best["precision"] == 0.5 and best["recall"] == 1.0


def test_precision_recall_curve_cuts_between_distinct_scores() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.1])
    labels = np.array([1, 1, 0, 0])
    precision, recall, thresholds = precision_recall_curve(scores, labels, n_positive=3)
    assert thresholds.tolist() == [0.9, 0.5, 0.1]
    assert precision.tolist() == pytest.approx([1.0, 2 / 3, 2 / 4])
    assert recall.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])  # one gold never retrieved
    assert all(len(a) == 0 for a in precision_recall_curve(scores, np.zeros(4)))
