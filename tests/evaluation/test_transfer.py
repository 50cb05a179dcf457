"""Transfer protocol on small synthetic data (the real table is measured by the CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sbert.errors import InputFormatError
from sbert.evaluation.senteval import TASKS, LabelledSplit, TransferTask, load_task
from sbert.evaluation.transfer import (
    C_GRID,
    check_task,
    choose_c,
    cross_validate,
    evaluate_task,
    evaluate_transfer,
    pair_features,
    train_test,
)
from tests.conftest import DATA_DIR, has_module, requires_data
from tests.evaluation.conftest import BagOfWordsEncoder

pytestmark = pytest.mark.skipif(not has_module("sklearn"), reason="needs sbert[eval]")


def _blobs(n: int, seed: int, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centers = rng.standard_normal((classes, 16)) * 2
    return centers[y] + rng.standard_normal((n, 16)), y


def test_cross_validation_is_accurate_and_reproducible() -> None:
    x, y = _blobs(200, 0)
    first = cross_validate(x, y, folds=5, seed=1111)
    assert first["accuracy"] > 90 and first["folds"] == 5
    assert all(c in C_GRID for c in first["C"])
    assert cross_validate(x, y, folds=5, seed=1111) == first


def test_random_labels_stay_near_chance() -> None:
    x, _ = _blobs(200, 1)
    y = np.random.default_rng(2).integers(0, 2, 200)
    assert cross_validate(x, y, folds=5)["accuracy"] < 70


def test_choose_c_with_inner_folds_and_split() -> None:
    x, y = _blobs(120, 3)
    assert choose_c(x, y) in C_GRID
    assert choose_c(x, y, inner_folds=3) in C_GRID


def test_train_test_reports_f1_for_binary_and_uses_dev() -> None:
    x, y = _blobs(300, 4)
    result = train_test(x[:200], y[:200], x[200:], y[200:], dev=(x[150:200], y[150:200]))
    assert result["accuracy"] > 90 and result["f1"] > 90 and result["C"] in C_GRID
    x3, y3 = _blobs(300, 5, classes=3)
    multi = train_test(x3[:200], y3[:200], x3[200:], y3[200:])
    assert multi["accuracy"] > 90 and "f1" not in multi


def test_small_samples_use_fewer_folds_and_an_untuned_c() -> None:
    x, y = _blobs(12, 6)  # 6 of each class: 10 folds cannot stratify
    result = cross_validate(x, y)
    assert result["folds"] == 6 and len(result["C"]) == 6
    x6, y6 = _blobs(30, 7, classes=6)  # 10 % of 30 is 3 validation examples for 6 classes
    assert choose_c(x6, y6) in C_GRID and choose_c(x6, y6, inner_folds=10) in C_GRID
    assert train_test(x6, y6, x6, y6)["accuracy"] > 90
    one = np.array([0, 0, 0, 1, 1, 2])  # a class with one example: no validation split
    assert choose_c(x6[:6], one) == 1.0 and choose_c(x6[:6], one, inner_folds=10) == 1.0


def test_too_small_samples_say_what_is_missing() -> None:
    x, y = _blobs(6, 8)
    with pytest.raises(ValueError, match=r"needs 2 examples of every class; it has 1 of 1"):
        cross_validate(x, np.array([0, 0, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match=r"training split needs 2 classes; .* all 0"):
        train_test(x, np.zeros(6, dtype=np.int64), x, y)
    mr = TransferTask("MR", {"all": LabelledSplit(["a", "b", "c"], ["pos", "pos", "neg"])})
    with pytest.raises(ValueError, match=r"cross-validation .* 1 of 'neg'"):
        check_task(mr)


@requires_data("senteval")
def test_a_small_sample_of_the_shared_trec_runs(bow: BagOfWordsEncoder) -> None:
    trec = load_task(DATA_DIR / "senteval", "TREC")  # 6 classes; ABBR is 1.6 %
    for limit in (20, 85):  # 20: 2 validation examples for 5 classes; 85: one ABBR example
        result = evaluate_task(bow, trec.sample(limit, 1111))
        assert result["n"] == 2 * limit and 0 <= result["accuracy"] <= 100


def test_pair_features_follow_senteval() -> None:
    u, v = np.array([[1.0, -2.0]]), np.array([[3.0, 1.0]])
    assert pair_features(u, v).tolist() == [[2.0, 3.0, 3.0, -2.0]]
    assert pair_features(u, v, "full").tolist() == [[1, -2, 3, 1, 2, 3, 3, -2]]
    with pytest.raises(ValueError, match="unknown pair features"):
        pair_features(u, v, "concat")


def _write_tsv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


GOOD = "great good fine lovely superb".split()
BAD = "awful bad poor terrible dull".split()


def _sentence(rng: np.random.Generator, words: list[str]) -> str:
    filler = "the movie was a film story plot".split()
    return " ".join(rng.choice(filler, 3).tolist() + rng.choice(words, 2).tolist())


def _senteval_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = [f"{_sentence(rng, GOOD)}\tpositive" if i % 2 else f"{_sentence(rng, BAD)}\tnegative"
            for i in range(60)]
    _write_tsv(root / "MR" / "mr.tsv", "sentence\tlabel", rows)
    for split in ("train", "dev", "test"):
        _write_tsv(root / "SST2" / f"sst2.{split}.tsv", "sentence\tlabel",
                   [r.replace("positive", "1").replace("negative", "0") for r in rows[:40]])
    pairs = []
    for i in range(60):
        s = _sentence(rng, GOOD)
        pairs.append(f"{s}\t{s if i % 2 else _sentence(rng, BAD)}\t{i % 2}\t{i}\t{i + 100}")
    for split in ("train", "test"):
        _write_tsv(root / "MRPC" / f"mrpc.{split}.tsv", "sentence1\tsentence2\tlabel\tid1\tid2",
                   pairs)
    return root


def test_evaluate_tasks_on_a_small_senteval_folder(tmp_path: Path, bow: BagOfWordsEncoder) -> None:
    root = _senteval_folder(tmp_path)
    rows = evaluate_transfer(bow, root, ["MR", "SST2", "MRPC"])
    by_name = {r["dataset"]: r for r in rows}
    assert by_name["MR"]["protocol"] == "10-fold CV" and by_name["MR"]["n"] == 60
    assert by_name["SST2"]["protocol"] == "train/dev/test"
    assert by_name["MRPC"]["protocol"] == "train/test" and "f1" in by_name["MRPC"]
    for name in ("MR", "SST2", "MRPC"):
        assert by_name[name]["accuracy"] >= 80, by_name[name]
    mean = np.mean([by_name[n]["accuracy"] for n in ("MR", "SST2", "MRPC")])
    assert by_name["average"]["accuracy"] == pytest.approx(mean)
    full = evaluate_task(bow, load_task(root, "MRPC"), mrpc_features="full")
    assert full["accuracy"] >= 80


def test_load_task_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown transfer task"):
        load_task(tmp_path, "IMDB")
    with pytest.raises(FileNotFoundError, match="CR"):
        load_task(tmp_path, "CR")
    _write_tsv(tmp_path / "CR" / "cr.tsv", "sentence\tlabel", ["ok\tpositive", "a\tb\tc"])
    with pytest.raises(InputFormatError, match=r"cr.tsv:3: 3 fields, expected 2"):
        load_task(tmp_path, "CR")


@requires_data("senteval")
def test_shared_senteval_tasks_have_the_senteval_sizes() -> None:
    sizes = {"MR": 10662, "CR": 3775, "SUBJ": 10000, "MPQA": 10606, "TREC": 5452 + 500,
             "MRPC": 4076 + 1725}
    for name in TASKS:
        if name == "SST2":
            continue  # the 67k-phrase training file is slow to read for a unit test
        task = load_task(DATA_DIR / "senteval", name)
        assert sum(len(s.labels) for s in task.splits.values()) == sizes[name], name
    trec = load_task(DATA_DIR / "senteval", "TREC")
    assert sorted(set(trec.splits["train"].labels)) == ["ABBR", "DESC", "ENTY", "HUM", "LOC",
                                                         "NUM"]
