"""``read_sentences``: the reader of encode, mine, cluster, similarity and index add, on the
files users have (a BOM from Excel, gzip, blank rows, JSON escapes), on the one low-level
reader (:mod:`sbert.data.tables`)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from sbert.data.text import read_sentences
from sbert.errors import InputFormatError


def test_a_bom_is_dropped_from_text_and_tables(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfHello world\nbye\n")
    assert read_sentences(tmp_path / "a.txt") == ["Hello world", "bye"]
    (tmp_path / "a.csv").write_bytes(b"\xef\xbb\xbfsentence,id\nHello,1\n")
    assert read_sentences(tmp_path / "a.csv", "sentence") == ["Hello"]


def test_gzip_files_are_read(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "a.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("sentence\tlabel\na cat\t1\na dog\t0\n")
    assert read_sentences(tmp_path / "a.tsv.gz") == ["a cat", "a dog"]
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("one\ntwo\n")
    assert read_sentences(tmp_path / "b.txt.gz") == ["one", "two"]


def test_blank_table_rows_are_skipped_blank_text_lines_kept(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text('sentence,id\n"a, b",1\n\nc,2\n', encoding="utf-8")
    assert read_sentences(tmp_path / "a.csv", "sentence") == ["a, b", "c"]
    # a text file's row i is its line i + 1, so that outputs line up with the lines
    (tmp_path / "a.txt").write_text("a\n\nc\n", encoding="utf-8")
    assert read_sentences(tmp_path / "a.txt") == ["a", "", "c"]


def test_a_long_tsv_field_is_read(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("sentence\n" + "x" * 200_000 + "\n", encoding="utf-8")
    assert read_sentences(tmp_path / "a.tsv") == ["x" * 200_000]


def test_a_lone_surrogate_in_jsonl_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "ok"}\n{"text": "bad \\ud800 one"}\n',
                                      encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"a.jsonl:2: 'text' holds a lone UTF-16 "
                                               r"surrogate \(\\ud800 at character 4\)"):
        read_sentences(tmp_path / "a.jsonl")


def test_a_folder_is_not_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="is a folder; give a file of sentences"):
        read_sentences(tmp_path)


def test_encode_names_a_text_with_a_lone_surrogate(tiny_encoder) -> None:
    with pytest.raises(InputFormatError, match=r"text 1 holds a lone UTF-16 surrogate"):
        tiny_encoder.encode(["fine", "lone \udfff here"])
