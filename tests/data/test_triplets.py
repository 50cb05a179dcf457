"""Triplet files (TSV, JSONL, column sets) and triplets built from NLI files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbert.data.triplets import read_triplets, triplets_from_nli
from sbert.errors import DataError, InputFormatError
from tests.conftest import DATA_DIR, requires_data


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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


def test_jsonl_column_sets_and_errors(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", [json.dumps({"anchor": "a", "positive": "p",
                                                     "negative": "n"})])
    ds = read_triplets(path)
    assert (ds.anchors, ds.positives, ds.negatives) == (["a"], ["p"], ["n"])
    other = _write(tmp_path / "s.tsv", ["sentence1\tsentence2\tsentence3", "a\tp\tn"])
    query = _write(tmp_path / "q.tsv", ["query\tpositive\tnegative", "a\tp\tn"])
    assert len(read_triplets(other)) == len(read_triplets(query)) == 1
    with pytest.raises(DataError, match="expected triplet columns"):
        read_triplets(_write(tmp_path / "x.tsv", ["q\tr", "1\t2"]))
    with pytest.raises(DataError, match=r"e\.tsv:2: empty 'negative'"):
        read_triplets(_write(tmp_path / "e.tsv", ["anchor\tpositive\tnegative", "a\tp\t"]))
    with pytest.raises(DataError, match="unsupported file type"):
        read_triplets(_write(tmp_path / "x.parquet", ["x"]))
    with pytest.raises(FileNotFoundError):
        read_triplets(tmp_path / "missing.tsv")


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
    assert ds.name == "snli_dev" and triplets_from_nli(path, "x").anchors == ds.anchors


def test_official_nli_columns_also_give_triplets(tmp_path: Path) -> None:
    path = _write(tmp_path / "snli.jsonl", [
        json.dumps({"sentence1": "p", "sentence2": h, "gold_label": g})
        for h, g in (("e", "entailment"), ("c", "contradiction"), ("x", "-"))
    ])
    ds = read_triplets(path)
    assert (ds.anchors, ds.positives, ds.negatives) == (["p"], ["e"], ["c"])


@requires_data("nli", "snli_1.0_dev.tsv")
def test_shared_snli_dev_triplets() -> None:
    ds = read_triplets(DATA_DIR / "nli" / "snli_1.0_dev.tsv")
    assert ds.name == "snli_1.0_dev" and len(ds) == 3172
    assert len(ds.anchors) == len(ds.positives) == len(ds.negatives)
