"""NLI pairs: column aliases, label names and ids, ``-`` skipped, file:line errors."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from sbert.data.nli import NLI_LABELS, nli_to_triplets, read_nli
from sbert.errors import DataError
from tests.conftest import DATA_DIR, requires_data


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_tsv_skips_no_majority_keeps_quotes_and_reads_ids(tmp_path: Path) -> None:
    path = _write(tmp_path / "nli.tsv", [
        "premise\thypothesis\tlabel",
        'He said "hi".\tHe spoke.\tentailment',
        "A\tB\t-",
        "C\tD\tContradiction",
        "E\tF\t2",
    ])
    ds = read_nli(path)
    assert ds.name == "nli" and len(ds) == 3
    assert ds.premises == ['He said "hi".', "C", "E"]
    assert ds.hypotheses == ["He spoke.", "D", "F"]
    assert ds.labels == ["entailment", "contradiction", "neutral"]
    assert ds.label_ids == [NLI_LABELS[x] for x in ds.labels] == [1, 0, 2]


def test_jsonl_gz_official_keys(tmp_path: Path) -> None:
    rows = [{"sentence1": "A", "sentence2": "B", "gold_label": "neutral", "pairID": "1"},
            {"sentence1": "C", "sentence2": "D", "gold_label": 0, "pairID": "2"}]
    path = tmp_path / "snli.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = read_nli(path)
    assert ds.name == "snli" and ds.labels == ["neutral", "contradiction"]


def test_csv_with_quoting(tmp_path: Path) -> None:
    path = tmp_path / "nli.csv"
    path.write_text('pairID,sentence1,sentence2,label\n1,"A, b","say ""x""",entailment\n'
                    "2,C,D,-\n", encoding="utf-8")
    ds = read_nli(path)
    assert (ds.premises, ds.hypotheses, ds.labels) == (["A, b"], ['say "x"'], ["entailment"])


def test_bad_label_and_missing_column_name_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "nli.tsv", ["premise\thypothesis\tlabel", "A\tB\tentailment",
                                         "C\tD\tmaybe"])
    with pytest.raises(DataError, match=r"nli\.tsv:3: label 'maybe'"):
        read_nli(path)
    path = _write(tmp_path / "pairs.tsv", ["premise\thypothesis\tscore", "A\tB\t1"])
    with pytest.raises(DataError, match=r"pairs\.tsv:1: no column label \(or gold_label\)"):
        read_nli(path)


def test_nli_to_triplets_pairs_each_entailment_with_a_contradiction() -> None:
    rows = [("p1", "e1", "entailment"), ("p1", "n1", "neutral"), ("p1", "c1", "contradiction"),
            ("p1", "e2", "entailment"), ("p2", "e3", "entailment"),  # p2: no contradiction
            ("p3", "e4", 1), ("p3", "c3", 0), ("p3", "c4", 0)]
    assert nli_to_triplets(rows) == (["p1", "p1"], ["e1", "e2"], ["c1", "c1"])
    assert nli_to_triplets(rows, 1, 0) == (["p3"], ["e4"], ["c3"])


@requires_data("nli", "snli_1.0_dev.tsv")
def test_shared_nli_files_and_their_original_csvs() -> None:
    snli = read_nli(DATA_DIR / "nli" / "snli_1.0_dev.tsv")
    assert len(snli) == 9842
    assert Counter(snli.labels) == {"entailment": 3329, "neutral": 3235, "contradiction": 3278}
    for stem in ("snli_1.0_dev", "multinli_1.0_dev_mismatched"):
        tsv = read_nli(DATA_DIR / "nli" / f"{stem}.tsv")
        original = read_nli(DATA_DIR / "nli" / "original" / f"{stem}.csv.gz")  # with '-' rows
        assert original.name == tsv.name == stem
        # the shared TSV strips surrounding whitespace of sentences (see the data README)
        assert tsv.premises == [s.strip() for s in original.premises]
        assert tsv.hypotheses == [s.strip() for s in original.hypotheses]
        assert tsv.labels == original.labels
