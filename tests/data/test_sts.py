"""Readers on small files written in the exact formats of the real distributions."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from sbert.data.sts import (
    load_sts,
    read_pairs_table,
    read_semeval_folder,
    read_sick,
    read_sts_file,
    read_stsb_csv,
)
from sbert.errors import DataError, InputFormatError
from tests.conftest import DATA_DIR, requires_data

SICK_FULL_HEADER = (
    "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tentailment_AB\t"
    "entailment_BA\tsentence_A_original\tsentence_B_original\tsentence_A_dataset\t"
    "sentence_B_dataset\tSemEval_set"
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_keeps_quotes_and_reads_scores(tmp_path: Path) -> None:
    path = _write(tmp_path / "pairs.tsv",
                  'sentence1\tsentence2\tscore\nHe said "hi.\tA "quoted" one\t4.0\nA\tB\t1\n')
    ds = read_pairs_table(path)
    assert ds.name == "pairs"
    assert ds.sentences1 == ['He said "hi.', "A"]
    assert ds.sentences2 == ['A "quoted" one', "B"]
    assert ds.scores == [4.0, 1.0]


def test_csv_uses_standard_quoting(tmp_path: Path) -> None:
    path = _write(tmp_path / "pairs.csv",
                  '\ufeffscore,sentence1,sentence2\n2.5,"a, b","say ""x"""\n')
    ds = read_pairs_table(path)
    assert (ds.sentences1, ds.sentences2, ds.scores) == (["a, b"], ['say "x"'], [2.5])


def test_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.tsv", "sentence1\tsentence2\tscore\na\tb\t1\na\tb\n")
    with pytest.raises(InputFormatError, match=r"bad\.tsv:3: 2 fields, expected 3"):
        read_pairs_table(path)
    path = _write(tmp_path / "bad2.tsv", "sentence1\tsentence2\tscore\na\tb\thigh\n")
    with pytest.raises(InputFormatError, match=r"bad2\.tsv:2: score 'high'"):
        read_pairs_table(path)
    path = _write(tmp_path / "bad3.tsv", "s1\ts2\tscore\n")
    with pytest.raises(InputFormatError, match="sentence1"):
        read_pairs_table(path)


def test_jsonl_gz_with_aliases_and_a_score_range(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl.gz"
    rows = [{"text_a": "A", "text_b": 'say "x"', "similarity": 5}, {"text_a": "C",
                                                                      "text_b": "D",
                                                                      "similarity": 2.5}]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = read_pairs_table(path)
    assert ds.name == "pairs"
    assert (ds.sentences1, ds.sentences2, ds.scores) == (["A", "C"], ['say "x"', "D"], [5.0, 2.5])
    assert read_sts_file(path).scores == ds.scores
    assert read_pairs_table(path, max_score=5).scores == ds.scores
    with pytest.raises(DataError, match=r"pairs\.jsonl\.gz:1: score 5\.0 is outside \[0, 4\]"):
        read_pairs_table(path, max_score=4)


def test_stsb_original_csv_ignores_licence_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "sts-test.csv", (
        "main-captions\tMSRvid\t2012test\t0024\t2.500\tA girl is styling her hair.\t"
        "A girl is brushing her hair.\n"
        "main-news\theadlines\t2016\t0001\t4.0\tSay \"x\".\tSaid x.\tsource-a\tsource-b\n"
    ))
    ds = read_sts_file(path)
    assert ds.name == "sts-test"
    assert ds.scores == [2.5, 4.0]
    assert ds.sentences1[1] == 'Say "x".'
    assert ds.subsets == ["MSRvid", "headlines"]
    with pytest.raises(InputFormatError, match=r"sts-bad.csv:1: 5 fields"):
        read_stsb_csv(_write(tmp_path / "sts-bad.csv", "a\tb\tc\td\t1\n"))


def test_sick_test_annotated(tmp_path: Path) -> None:
    path = _write(tmp_path / "SICK_test_annotated.txt", (
        "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
        "6\tThere is no boy playing outdoors\tA boy is playing outdoors\t3.3\tCONTRADICTION\n"
        "7\tA man is eating\tA man eats\t4.9\tENTAILMENT\n"
    ))
    ds = read_sts_file(path)
    assert ds.name == "SICK-R"
    assert ds.scores == [3.3, 4.9]
    assert ds.sentences2 == ["A boy is playing outdoors", "A man eats"]


def test_full_sick_keeps_only_the_requested_split(tmp_path: Path) -> None:
    rows = [
        "1\tA a\tB b\tNEUTRAL\t4.5\tA_neutral_B\tB_neutral_A\tA a.\tB b.\tFLICKR\tFLICKR\tTRAIN",
        "2\tC c\tD d\tENTAILMENT\t3.6\tA_entails_B\tB_neutral_A\tC c.\tD d.\tSEMEVAL\tSEMEVAL"
        "\tTEST",
        "3\tE e\tF f\tNEUTRAL\t1.0\tA_neutral_B\tB_neutral_A\tE e.\tF f.\tFLICKR\tFLICKR\tTRIAL",
    ]
    path = _write(tmp_path / "SICK.txt", SICK_FULL_HEADER + "\n" + "\n".join(rows) + "\n")
    test = read_sick(path)
    assert (test.sentences1, test.scores) == (["C c"], [3.6])
    assert read_sick(path, split="train").sentences1 == ["A a"]
    with pytest.raises(ValueError, match="unknown SICK split"):
        read_sick(path, split="dev")


def _semeval_year(folder: Path) -> Path:
    folder.mkdir()
    _write(folder / "STS.input.MSRpar.txt", "a b\tc d\ne f\tg h\ni j\tk l\n")
    _write(folder / "STS.gs.MSRpar.txt", "4.0\n\n1.5\n")  # the 2nd pair has no gold score
    # STS16 inputs carry two extra source columns
    _write(folder / "STS.input.headlines.txt", "m n\to p\tsrc1\tsrc2\nq r\ts t\tsrc1\tsrc2\n")
    _write(folder / "STS.gs.headlines.txt", "5\n0\n")
    _write(folder / "LICENSE.txt", "not data\n")
    return folder


def test_semeval_folder_skips_empty_gold_lines(tmp_path: Path) -> None:
    ds = read_semeval_folder(_semeval_year(tmp_path / "STS12"))
    assert ds.name == "STS12"
    assert ds.sentences1 == ["a b", "i j", "m n", "q r"]
    assert ds.sentences2 == ["c d", "k l", "o p", "s t"]
    assert ds.scores == [4.0, 1.5, 5.0, 0.0]
    assert ds.subsets == ["MSRpar", "MSRpar", "headlines", "headlines"]
    assert ds.subset_names == ["MSRpar", "headlines"]
    single = read_sts_file(tmp_path / "STS12" / "STS.input.MSRpar.txt")
    assert single.scores == [4.0, 1.5]


def test_semeval_misaligned_gold_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "STS13"
    folder.mkdir()
    _write(folder / "STS.input.FNWN.txt", "a\tb\nc\td\n")
    _write(folder / "STS.gs.FNWN.txt", "1\n")
    with pytest.raises(InputFormatError, match="must align"):
        read_semeval_folder(folder)
    (folder / "STS.gs.FNWN.txt").unlink()
    with pytest.raises(InputFormatError, match="no gold file STS.gs.FNWN.txt"):
        read_semeval_folder(folder)


def test_load_sts_reads_a_tree_of_years_and_files(tmp_path: Path) -> None:
    _semeval_year(tmp_path / "STS12")
    _write(tmp_path / "extra.tsv", "sentence1\tsentence2\tscore\na\tb\t1\nc\td\t2\n")
    names = [d.name for d in load_sts(tmp_path)]
    assert names == ["STS12", "extra"]
    assert [d.name for d in load_sts(tmp_path / "STS12")] == ["STS12"]
    with pytest.raises(FileNotFoundError):
        load_sts(tmp_path / "missing")
    with pytest.raises(InputFormatError, match="unknown STS format"):
        read_sts_file(_write(tmp_path / "notes.txt", "hello\n"))


@requires_data("stsbenchmark", "test.tsv")
def test_shared_stsb_test_has_the_official_size() -> None:
    tsv = read_pairs_table(DATA_DIR / "stsbenchmark" / "test.tsv")
    csv = read_sts_file(DATA_DIR / "stsbenchmark" / "original" / "sts-test.csv")
    assert len(tsv) == len(csv) == 1379
    # the shared TSV strips surrounding whitespace of sentences (see the data README)
    assert tsv.sentences1 == [s.strip() for s in csv.sentences1]
    assert tsv.scores == csv.scores
