"""The shared row reader: TSV/CSV/JSONL, gzip, BOM, blank lines, file:line errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from sbert.data.tables import file_stem, lines, open_table, table_format
from sbert.errors import DataError, InputFormatError


def _rows(path: Path, *keys: str) -> list[tuple[int, list[str]]]:
    with open_table(path) as table:
        return list(table.select(table.require(*keys)))


def test_tsv_has_no_quoting_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b'\xef\xbb\xbfa\tb \r\n"x\t y"\r\n\n  \nz\t\n')
    with open_table(path) as table:
        assert table.header == ["a", "b"]  # BOM dropped, names stripped
        assert list(table.rows) == [(2, {"a": '"x', "b": ' y"'}), (5, {"a": "z", "b": ""})]


def test_a_stray_carriage_return_does_not_split_a_line(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b"a\tb\nx\ry\tz\n")
    assert _rows(path, "a", "b") == [(2, ["x\ry", "z"])]
    assert list(lines(path)) == [(1, "a\tb"), (2, "x\ry\tz")]


def test_csv_uses_standard_quoting(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n"x, y","say ""hi""\nthere"\n,\n3,4\n', encoding="utf-8")
    assert _rows(path, "a", "b") == [(3, ["x, y", 'say "hi"\nthere']), (5, ["3", "4"])]


def test_jsonl_values_become_text(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"a": "x", "b": 5, "c": True}) + "\n\n"
                    + json.dumps({"a": "y", "b": 4.5}) + "\n", encoding="utf-8")
    with open_table(path) as table:
        assert table.header == ["a", "b", "c"]  # the first object's keys
    assert _rows(path, "a", "b") == [(1, ["x", "5"]), (3, ["y", "4.5"])]
    with open_table(path) as table, pytest.raises(DataError, match=r"t\.jsonl:3: no key 'c'"):
        list(table.select(["a", "c"]))


def test_gzip_of_each_format(tmp_path: Path) -> None:
    for name, text in (("t.tsv.gz", "a\tb\n1\t2\n"), ("t.csv.gz", "a,b\n1,2\n"),
                       ("t.jsonl.gz", '{"a": "1", "b": "2"}\n')):
        with gzip.open(tmp_path / name, "wt", encoding="utf-8") as f:
            f.write(text)
        assert _rows(tmp_path / name, "a", "b") == [(2 if "jsonl" not in name else 1,
                                                     ["1", "2"])], name


def test_aliases_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("text_a\tscore\n", encoding="utf-8")
    with open_table(path) as table:
        assert table.require(("sentence1", "text_a"), "score") == ["text_a", "score"]
        assert table.find(("sentence2", "text_b")) is None
        with pytest.raises(DataError, match=r"t\.tsv:1: no column sentence2 \(or text_b\)"):
            table.require(("sentence1", "text_a"), ("sentence2", "text_b"))
    path.write_text("", encoding="utf-8")
    with open_table(path) as table, pytest.raises(DataError, match="empty file; expected"):
        table.require("a")


def test_row_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("a\tb\n1\t2\t\t\n1\t2\t3\n", encoding="utf-8")  # trailing tabs are fine
    with pytest.raises(DataError, match=r"bad\.tsv:3: 3 fields, expected 2 \(a, b\)"):
        _rows(path, "a", "b")
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: expected a JSON object"):
        _rows(path, "a")
    path.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid JSON"):
        _rows(path, "a")
    path = tmp_path / "latin1.tsv"
    path.write_bytes(b"a\n" + b"caf\xe9\n")
    with pytest.raises(DataError, match=r"latin1\.tsv:2: not valid UTF-8"):
        _rows(path, "a")
    assert issubclass(DataError, InputFormatError)  # callers catching either still do


def test_file_type_and_missing_file(tmp_path: Path) -> None:
    assert [table_format(Path(n)) for n in ("a.tsv", "a.TXT", "a", "a.csv.gz", "a.jsonl")] == [
        "tsv", "tsv", "tsv", "csv", "jsonl"]
    with pytest.raises(DataError, match=r"unsupported file type '\.parquet'"):
        table_format(Path("x.parquet"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_table(tmp_path / "missing.tsv")
    assert [file_stem(Path(n)) for n in ("a.tsv.gz", "snli_1.0_dev.tsv", "q.dev.jsonl")] == [
        "a", "snli_1.0_dev", "q.dev"]


def test_a_missing_header_row_is_named_and_columns_listed_once(tmp_path: Path) -> None:
    from sbert.data.tables import open_table
    from sbert.errors import DataError

    path = tmp_path / "sts.tsv"
    path.write_text("a man eats\ta man is eating\t4.5\n", encoding="utf-8")
    with open_table(path) as table, pytest.raises(DataError) as info:
        table.require(("sentence1", "text_a"), "sentence2", "score")
    message = str(info.value)
    assert "is the header row missing?" in message
    assert message.count("text_a") == 1
