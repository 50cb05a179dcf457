"""Duplicate pairs (Quora): distinct sentences and the gold index pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbert.data.duplicates import read_duplicates
from sbert.errors import InputFormatError
from tests.conftest import DATA_DIR, requires_data


def test_read_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "quora.tsv"
    path.write_text("sentence1\tsentence2\tlabel\nq1 ?\tq2 ?\t1\nq1 ?\tq3\t0\nq4\tq2 ?\t1\n",
                    encoding="utf-8")
    ds = read_duplicates(path)
    assert ds.sentences == ["q1 ?", "q2 ?", "q3", "q4"]
    assert ds.duplicates == {(0, 1), (1, 3)}
    first = read_duplicates(path, limit=2)  # the first 2 pairs (rows)
    assert first.sentences == ["q1 ?", "q2 ?", "q3"] and first.duplicates == {(0, 1)}
    path.write_text("sentence1\tsentence2\tlabel\na\tb\tyes\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"quora.tsv:2: label 'yes'"):
        read_duplicates(path)


def test_quora_release_columns_in_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "qqp.jsonl"
    rows = [{"id": 0, "question1": "a ?", "question2": "b ?", "is_duplicate": 1},
            {"id": 1, "question1": "b ?", "question2": "a ?", "is_duplicate": 1},
            {"id": 2, "question1": "c", "question2": "c", "is_duplicate": 1}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ds = read_duplicates(path)
    assert ds.name == "qqp" and ds.sentences == ["a ?", "b ?", "c"]
    assert ds.duplicates == {(0, 1)}  # one pair, both orders; a sentence is not its own pair


@requires_data("quora_qp", "quora_qp.dev.tsv")
def test_shared_quora_dev() -> None:
    ds = read_duplicates(DATA_DIR / "quora_qp" / "quora_qp.dev.tsv")
    assert ds.name == "quora_qp.dev"
    # 5,000 label-1 rows, 4 of which pair a question with itself
    assert len(ds.sentences) == 19056 and len(ds.duplicates) == 4996
