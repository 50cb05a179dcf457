from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sbert.data.sts import StsDataset, read_pairs_table
from sbert.evaluation.sts import EmbeddingSimilarityEvaluator, evaluate_sts, sts_metrics
from tests.conftest import DATA_DIR, has_module, requires_data
from tests.evaluation.conftest import BagOfWordsEncoder

STSB_TEST = DATA_DIR / "stsbenchmark" / "test.tsv"


def test_metrics_from_precomputed_embeddings() -> None:
    rng = np.random.default_rng(0)
    e1 = rng.standard_normal((50, 8))
    gold = np.linspace(0, 5, 50)
    # e2 drifts away from e1 as the gold score falls: perfect rank agreement
    direction = rng.standard_normal((50, 8))
    e2 = e1 + (5 - gold)[:, None] * 0.3 * direction / np.linalg.norm(direction, axis=1)[:, None]
    m = sts_metrics(e1, e2, gold)
    assert m["pairs"] == 50 and m["primary_metric"] == "spearman_cosine"
    assert m["spearman_euclidean"] == pytest.approx(100.0)
    for key in ("pearson_cosine", "spearman_cosine", "pearson_dot", "spearman_dot",
                "pearson_manhattan", "spearman_manhattan"):
        assert -100.0 <= m[key] <= 100.0
    assert "subsets" not in m


def test_subsets_give_senteval_mean_and_weighted_mean() -> None:
    rng = np.random.default_rng(1)
    e1, e2 = rng.standard_normal((2, 30, 4))
    gold = rng.uniform(0, 5, 30)
    subsets = ["a"] * 10 + ["b"] * 20
    m = sts_metrics(e1, e2, gold, subsets)
    a, b = m["subsets"]["a"], m["subsets"]["b"]
    assert (a["pairs"], b["pairs"]) == (10, 20)
    assert a["spearman_cosine"] == pytest.approx(sts_metrics(e1[:10], e2[:10], gold[:10])
                                                 ["spearman_cosine"])
    mean = (a["spearman_cosine"] + b["spearman_cosine"]) / 2
    wmean = (10 * a["spearman_cosine"] + 20 * b["spearman_cosine"]) / 30
    assert m["senteval_mean_spearman_cosine"] == pytest.approx(mean)
    assert m["senteval_wmean_spearman_cosine"] == pytest.approx(wmean)


def test_evaluate_sts_encodes_each_distinct_sentence_once(bow: BagOfWordsEncoder) -> None:
    ds = StsDataset("toy", ["a man eats", "a dog runs", "a man eats"],
                    ["a man eats food", "a cat sleeps", "the sky"], [4.5, 1.0, 0.2])
    result = evaluate_sts(bow, ds, return_similarities=True)
    assert bow.calls == [5]
    assert result["dataset"] == "toy" and result["model"] == "bow"
    assert result["cosine"].shape == (3,) and result["gold"].tolist() == [4.5, 1.0, 0.2]
    same = evaluate_sts(None, ds, embeddings=(bow.encode(ds.sentences1),
                                              bow.encode(ds.sentences2)))
    assert same["spearman_cosine"] == pytest.approx(result["spearman_cosine"])
    assert EmbeddingSimilarityEvaluator(ds)(bow)["spearman_cosine"] == pytest.approx(
        result["spearman_cosine"])


def test_too_few_pairs_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        sts_metrics(np.ones((1, 3)), np.ones((1, 3)), [1.0])


def test_tiny_transformer_end_to_end(tiny_encoder: Any) -> None:
    ds = StsDataset("tiny", ["a man is eating", "the dog runs", "a red car"],
                    ["a man eats food", "a cat sits", "the blue car"], [4.0, 1.0, 2.5])
    result = evaluate_sts(tiny_encoder, ds)
    assert -100 <= result["spearman_cosine"] <= 100


@pytest.fixture(scope="module")
def minilm_stsb(minilm: Any) -> dict[str, Any]:
    return evaluate_sts(minilm, read_pairs_table(STSB_TEST))


@pytest.mark.slow
@requires_data("stsbenchmark", "test.tsv")
def test_minilm_stsb_test_matches_the_published_number(minilm_stsb: dict[str, Any]) -> None:
    assert minilm_stsb["pairs"] == 1379
    assert round(minilm_stsb["spearman_cosine"], 2) == 82.03


@pytest.mark.slow
@pytest.mark.reference
@requires_data("stsbenchmark", "test.tsv")
@pytest.mark.skipif(not has_module("sentence_transformers"),
                    reason="needs sentence-transformers (the reference), a test dependency")
def test_minilm_stsb_equals_reference_evaluator(minilm: Any,
                                                minilm_stsb: dict[str, Any]) -> None:
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.evaluation import (
            EmbeddingSimilarityEvaluator as Reference,
        )
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator as Reference
    ds = read_pairs_table(STSB_TEST)
    fns = ["cosine", "euclidean", "manhattan", "dot"]
    reference = Reference(ds.sentences1, ds.sentences2, ds.scores, name="sts-test",
                          similarity_fn_names=fns)
    metrics = reference(SentenceTransformer(str(minilm.path), device="cpu"))
    assert minilm_stsb["spearman_cosine"] == pytest.approx(
        100 * metrics[reference.primary_metric], abs=0.01)
    for fn in fns:
        for kind in ("spearman", "pearson"):
            ours = minilm_stsb[f"{kind}_{fn}"]
            assert ours == pytest.approx(100 * metrics[f"sts-test_{kind}_{fn}"], abs=0.01)


@pytest.mark.reference
@pytest.mark.skipif(not has_module("sentence_transformers"),
                    reason="needs sentence-transformers (the reference), a test dependency")
def test_tiny_model_equals_reference_evaluator(tiny_model_dir: Any, tiny_encoder: Any) -> None:
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.evaluation import (
            EmbeddingSimilarityEvaluator as Reference,
        )
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator as Reference
    rng = np.random.default_rng(0)
    words = "a the man woman dog cat is eating playing guitar food park car red blue".split()
    s1 = [" ".join(rng.choice(words, 5)) for _ in range(40)]
    s2 = [" ".join(rng.choice(words, 4)) for _ in range(40)]
    gold = rng.uniform(0, 5, 40).round(1).tolist()
    ours = evaluate_sts(tiny_encoder, StsDataset("toy", s1, s2, gold))
    reference = Reference(s1, s2, gold, name="toy",
                          similarity_fn_names=["cosine", "euclidean", "manhattan", "dot"])
    metrics = reference(SentenceTransformer(str(tiny_model_dir), device="cpu"))
    for key in ("spearman_cosine", "pearson_cosine", "spearman_manhattan", "pearson_dot"):
        assert ours[key] == pytest.approx(100 * metrics[f"toy_{key}"], abs=0.01), key
