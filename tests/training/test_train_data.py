"""Training's readers (the sbert.data ones, converted to Examples), NLI triplets, samplers."""

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


def test_triplets_are_three_columns_without_labels(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", [json.dumps({"anchor": "a", "positive": "p",
                                                     "negative": "n"})])
    ex = read_triplets(path)
    assert ex.columns == [["a"], ["p"], ["n"]] and ex.labels == [] and ex.source == str(path)
    with pytest.raises(DataError, match="expected triplet columns"):
        read_triplets(_write(tmp_path / "x.tsv", ["q\tr", "1\t2"]))
    with pytest.raises(DataError, match=r"empty\.tsv: no triplets"):
        read_triplets(_write(tmp_path / "empty.tsv", ["anchor\tpositive\tnegative"]))
    with pytest.raises(FileNotFoundError):
        read_triplets(tmp_path / "missing.tsv")


def test_empty_files_are_errors_for_training(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nli\.tsv: no labelled pairs"):
        read_nli(_write(tmp_path / "nli.tsv", ["premise\thypothesis\tlabel", "A\tB\t-"]))
    with pytest.raises(DataError, match=r"sts\.tsv: no scored pairs"):
        read_sts(_write(tmp_path / "sts.tsv", ["sentence1\tsentence2\tscore"]))


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


def test_epoch_plan_is_seeded_round_robin(tiny_encoder, nli_examples, sts_examples) -> None:
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


def test_tokenized_batch_shapes(tiny_encoder, nli_examples) -> None:
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


# Training and evaluation read a file through the same sbert.data reader.


def test_training_and_evaluation_read_the_same_pairs(tmp_path: Path) -> None:
    from sbert.data.sts import load_sts

    rows = [("A man eats.", 'He said "food".', 4.8), ("A dog runs.", "A cat sits.", 0.5)]
    tsv = _write(tmp_path / "pairs.tsv", ["sentence1\tsentence2\tscore",
                                         *(f"{a}\t{b}\t{s}" for a, b, s in rows)])
    jsonl = tmp_path / "pairs.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"text_a": a, "text_b": b, "similarity": s}) + "\n"
                     for a, b, s in rows)
    for path in (tsv, jsonl):
        train, [evaluation] = read_sts(path), load_sts(path)
        assert train.columns == [evaluation.sentences1, evaluation.sentences2]
        assert train.labels == [s / 5 for s in evaluation.scores] == [0.96, 0.1]


def test_training_and_evaluation_build_the_same_nli_triplets(tmp_path: Path) -> None:
    from sbert.data.nli import read_nli as read_nli_pairs
    from sbert.evaluation import read_triplets as read_eval_triplets

    rows = [{"sentence1": p, "sentence2": h, "gold_label": g} for p, h, g in (
        ("p1", "e1", "entailment"), ("p1", "c1", "contradiction"), ("p1", "x", "-"),
        ("p1", "e2", "entailment"), ("p2", "n", "neutral"), ("p2", "c2", "contradiction"))]
    path = tmp_path / "snli.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    assert read_nli(path).labels == [1.0, 0.0, 1.0, 2.0, 0.0]
    assert read_nli(path).columns == [read_nli_pairs(path).premises,
                                      read_nli_pairs(path).hypotheses]
    evaluation = read_eval_triplets(path)
    expected = [evaluation.anchors, evaluation.positives, evaluation.negatives]
    assert expected == [["p1", "p1"], ["e1", "e2"], ["c1", "c1"]]
    assert nli_triplets(read_nli(path)).columns == expected
    assert read_triplets(path).columns == expected  # an NLI file is triplets for both


def test_the_same_malformed_file_gives_the_same_error(tmp_path: Path) -> None:
    from sbert.data.sts import read_sts_file
    from sbert.evaluation import read_triplets as read_eval_triplets

    bad = _write(tmp_path / "bad.tsv", ["sentence1\tsentence2\tscore", "a\tb"])
    messages = []
    for read in (read_sts, read_sts_file):
        with pytest.raises(DataError, match=r"bad\.tsv:2: 2 fields, expected 3") as err:
            read(bad)
        messages.append(str(err.value))
    trip = _write(tmp_path / "trip.tsv", ["anchor\tpositive\tnegative", "a\tb\t"])
    for read in (read_triplets, read_eval_triplets):
        with pytest.raises(DataError, match=r"trip\.tsv:2: empty 'negative'") as err:
            read(trip)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and messages[2] == messages[3]


def test_public_reader_names_are_the_sbert_data_readers() -> None:
    import sbert.evaluation
    import sbert.training
    from sbert.data import duplicates, sts, triplets
    from sbert.evaluation import paraphrase, triplet

    assert sbert.evaluation.read_triplets is triplet.read_triplets is triplets.read_triplets
    assert sbert.evaluation.TripletDataset is triplet.TripletDataset is triplets.TripletDataset
    assert sbert.evaluation.read_duplicates is paraphrase.read_duplicates \
        is duplicates.read_duplicates
    assert sbert.evaluation.load_sts is sts.load_sts
    assert sbert.evaluation.read_pairs_table is sts.read_pairs_table
    assert (sbert.training.read_nli, sbert.training.read_sts, sbert.training.read_triplets,
            sbert.training.nli_triplets, sbert.training.Examples) == (
        read_nli, read_sts, read_triplets, nli_triplets, Examples)


@requires_data("stsbenchmark", "test.tsv")
def test_shared_sts_and_nli_read_alike_for_training_and_evaluation() -> None:
    from sbert.data.sts import read_pairs_table
    from sbert.data.triplets import read_triplets as read_data_triplets

    sts = read_pairs_table(DATA_DIR / "stsbenchmark" / "test.tsv")
    train = read_sts(DATA_DIR / "stsbenchmark" / "test.tsv")
    assert train.columns == [sts.sentences1, sts.sentences2]
    assert train.labels == [s / 5 for s in sts.scores]
    snli = DATA_DIR / "nli" / "snli_1.0_dev.tsv"
    if snli.exists():
        trip = read_data_triplets(snli)
        assert nli_triplets(read_nli(snli)).columns == [trip.anchors, trip.positives,
                                                        trip.negatives]
