from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sbert.errors import InputFormatError
from sbert.evaluation.triplet import (
    TripletDataset,
    evaluate_triplets,
    read_triplets,
    triplet_metrics,
)
from tests.evaluation.conftest import BagOfWordsEncoder


def test_metrics_count_wins_and_ties_as_wrong() -> None:
    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    p = np.array([[1.0, 0.1], [0.0, 1.0], [0.0, 1.0]])
    n = np.array([[0.0, 1.0], [1.0, 0.1], [0.0, 1.0]])  # win, loss, tie
    m = triplet_metrics(a, p, n)
    assert m["triplets"] == 3 and m["primary_metric"] == "accuracy_cosine"
    for kind in ("cosine", "euclidean", "manhattan", "dot"):
        assert m[f"accuracy_{kind}"] == pytest.approx(100 / 3), kind


def test_read_triplet_tsv(tmp_path: Path) -> None:
    path = tmp_path / "wiki.tsv"
    path.write_text('anchor\tpositive\tnegative\nsay "a"\tb\tc\n', encoding="utf-8")
    ds = read_triplets(path)
    assert (ds.name, ds.anchors, ds.positives, ds.negatives) == ("wiki", ['say "a"'], ["b"], ["c"])
    path.write_text("anchor\tpositive\tnegative\na\tb\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"wiki.tsv:2: 2 fields"):
        read_triplets(path)
    path.write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="anchor, positive, negative"):
        read_triplets(path)


def test_nli_file_becomes_premise_entailment_contradiction(tmp_path: Path) -> None:
    path = tmp_path / "snli_dev.tsv"
    path.write_text(
        "premise\thypothesis\tlabel\n"
        "p1\te1\tentailment\np1\tn1\tneutral\np1\tc1\tcontradiction\np1\te2\tentailment\n"
        "p2\te3\tentailment\n",  # no contradiction: no triplet
        encoding="utf-8",
    )
    ds = read_triplets(path)
    assert ds.anchors == ["p1", "p1"]
    assert ds.positives == ["e1", "e2"]
    assert ds.negatives == ["c1", "c1"]


def test_evaluate_with_model_and_embeddings(bow: BagOfWordsEncoder) -> None:
    ds = TripletDataset("toy", ["a man eats food", "the dog runs fast"],
                        ["a man eats a lot of food", "the dog runs very fast"],
                        ["a blue car", "piano music"])
    result = evaluate_triplets(bow, ds)
    assert result["accuracy_cosine"] == 100.0 and result["model"] == "bow"
    emb = tuple(bow.encode(x) for x in (ds.anchors, ds.positives, ds.negatives))
    again = evaluate_triplets(None, ds, embeddings=emb)  # type: ignore[arg-type]
    assert again["accuracy_euclidean"] == result["accuracy_euclidean"]
