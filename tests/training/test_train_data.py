"""Readers, NLI triplets and the samplers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from sbert.errors import DataError
from sbert.training.batching import TokenizedExamples, epoch_plan, no_duplicate_batches
from sbert.training.data import (
    Examples,
    concat_examples,
    nli_triplets,
    read_nli,
    read_sts,
    read_triplets,
)
from tests.conftest import DATA_DIR, requires_data


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_nli_tsv_skips_no_majority_and_keeps_quotes(tmp_path: Path) -> None:
    path = _write(tmp_path / "nli.tsv", [
        "premise\thypothesis\tlabel",
        'He said "hi".\tHe spoke.\tentailment',
        "A\tB\t-",
        "C\tD\tcontradiction",
        "E\tF\t2",
    ])
    ex = read_nli(path)
    assert ex.columns == [['He said "hi".', "C", "E"], ["He spoke.", "D", "F"]]
    assert ex.labels == [1.0, 0.0, 2.0]


def test_read_nli_jsonl_gz_official_keys(tmp_path: Path) -> None:
    rows = [{"sentence1": "A", "sentence2": "B", "gold_label": "neutral", "pairID": "1"}]
    path = tmp_path / "snli.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    assert read_nli(path).labels == [2.0]


def test_bad_label_reports_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "nli.tsv", ["premise\thypothesis\tlabel", "A\tB\tentailment",
                                         "C\tD\tmaybe"])
    with pytest.raises(DataError, match=r"nli\.tsv:3: label 'maybe'"):
        read_nli(path)


def test_sts_scores_scaled_and_checked(tmp_path: Path) -> None:
    path = _write(tmp_path / "sts.tsv", ["sentence1\tsentence2\tscore", "A\tB\t5.000",
                                         "C\tD\t2.5"])
    assert read_sts(path).labels == [1.0, 0.5]
    bad = _write(tmp_path / "bad.tsv", ["sentence1\tsentence2\tscore", "A\tB\t7"])
    with pytest.raises(DataError, match=r"bad\.tsv:2: score 7.0 is outside"):
        read_sts(bad)
    text = _write(tmp_path / "text.tsv", ["sentence1\tsentence2\tscore", "A\tB\thigh"])
    with pytest.raises(DataError, match=r"text\.tsv:2: score 'high'"):
        read_sts(text)


def test_triplets_and_errors(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", [json.dumps({"anchor": "a", "positive": "p",
                                                     "negative": "n"})])
    assert read_triplets(path).columns == [["a"], ["p"], ["n"]]
    with pytest.raises(DataError, match="expected triplet columns"):
        read_triplets(_write(tmp_path / "x.tsv", ["q\tr", "1\t2"]))
    with pytest.raises(DataError, match="unsupported file type"):
        read_triplets(_write(tmp_path / "x.parquet", ["x"]))
    with pytest.raises(FileNotFoundError):
        read_triplets(tmp_path / "missing.tsv")


def test_nli_triplets_pairs_entailment_with_contradiction() -> None:
    nli = Examples(
        [["p1", "p1", "p1", "p2", "p3", "p3"], ["e1", "c1", "e2", "e3", "n", "c3"]],
        [1.0, 0.0, 1.0, 1.0, 2.0, 0.0],
    )
    trip = nli_triplets(nli)
    assert trip.columns == [["p1", "p1"], ["e1", "e2"], ["c1", "c1"]]
    both = concat_examples([nli, nli])
    assert len(both) == 12 and both.labels[:6] == both.labels[6:]


def test_no_duplicate_batches_cover_all_rows_once() -> None:
    rng = np.random.default_rng(0)
    text_ids = np.stack([rng.integers(0, 30, 200), rng.integers(30, 60, 200)], axis=1)
    batches = no_duplicate_batches(text_ids, 8, np.random.default_rng(1))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(200))
    for batch in batches:
        texts = text_ids[batch].ravel()
        assert len(set(texts.tolist())) == len(texts)
        assert len(batch) <= 8


def test_epoch_plan_is_seeded_round_robin(tiny_encoder, nli_examples, sts_examples) -> None:  # noqa: ANN001
    small = Examples([c[:5] for c in sts_examples.columns], sts_examples.labels[:5])
    data = [TokenizedExamples(nli_examples, tiny_encoder.tokenizer),
            TokenizedExamples(small, tiny_encoder.tokenizer)]
    plan = epoch_plan(data, 4, seed=3, epoch=0, no_duplicates=[False, True])
    assert [task for task, _ in plan] == [0, 1, 0, 1, 0]
    assert sorted(np.concatenate([r for t, r in plan if t == 0]).tolist()) == list(range(12))
    again = epoch_plan(data, 4, seed=3, epoch=0, no_duplicates=[False, True])
    assert all((a[1] == b[1]).all() for a, b in zip(plan, again, strict=True))
    other = epoch_plan(data, 4, seed=3, epoch=1, no_duplicates=[False, True])
    assert any((a[1] != b[1]).any() for a, b in zip(plan, other, strict=True) if a[0] == 0)


def test_tokenized_batch_shapes(tiny_encoder, nli_examples) -> None:  # noqa: ANN001
    data = TokenizedExamples(nli_examples, tiny_encoder.tokenizer)
    features, labels = data.batch(np.array([0, 3, 6]), "cpu")
    assert len(features) == 2 and labels.tolist() == [1.0, 0.0, 2.0]
    ids = features[0]["input_ids"]
    assert ids.shape[0] == 3 and ids.dtype.is_floating_point is False
    assert (features[0]["attention_mask"].sum(1) > 2).all()


@requires_data("nli", "snli_1.0_dev.tsv")
def test_real_nli_and_sts_files() -> None:
    snli = read_nli(DATA_DIR / "nli" / "snli_1.0_dev.tsv")
    assert len(snli) == 9842
    assert sorted(set(snli.labels)) == [0.0, 1.0, 2.0]
    assert len(nli_triplets(snli)) > 3000
    sts = read_sts(DATA_DIR / "stsbenchmark" / "train.tsv")
    assert len(sts) == 5749 and 0 <= min(sts.labels) and max(sts.labels) <= 1
