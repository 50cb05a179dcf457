"""Read sentences from text/CSV/TSV/JSONL files and write embeddings to .npy/.parquet/JSONL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from sbert.data.tables import csv_rows, first_non_utf8_line
from sbert.errors import InputFormatError
from sbert.files import atomic_path

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
OUTPUT_SUFFIXES = (".npy", ".parquet", ".jsonl")


def read_sentences(path: str | Path, column: str | None = None) -> list[str]:
    """Read sentences from a file.

    Args:
        path: ``.txt`` (one sentence per line), ``.csv``/``.tsv`` (a header row; TSV is read
            with no quoting), or ``.jsonl`` (one object per line).
        column: the column/key holding the text; required for CSV/TSV/JSONL unless the file
            has a single column or a ``sentence``/``text`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    try:
        return _read_sentences(path, column)
    except UnicodeDecodeError as err:
        raise InputFormatError(f"{path}:{first_non_utf8_line(path)}: not valid UTF-8 "
                               f"({err.reason}); save the file as UTF-8") from None


def _read_sentences(path: Path, column: str | None) -> list[str]:
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _read_table(path, TABLE_SUFFIXES[suffix], column)
    if suffix == ".jsonl":
        return _read_jsonl(path, column)
    if column is not None:
        raise InputFormatError(f"{path}: --column applies to CSV/TSV/JSONL, not a text file")
    with path.open(encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f]


def _pick_column(path: Path, header: list[str], column: str | None) -> int:
    if column is not None:
        if column not in header:
            raise InputFormatError(f"{path}: no column {column!r}; columns are {header}")
        return header.index(column)
    if len(header) == 1:
        return 0
    for name in ("sentence", "text", "sentence1"):
        if name in header:
            return header.index(name)
    raise InputFormatError(f"{path}: several columns {header}; choose one with --column")


def _read_table(path: Path, delimiter: str, column: str | None) -> list[str]:
    # our TSV files have no quoting: sentences contain '"'; an unclosed CSV quote is refused
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv_rows(path, f, delimiter=delimiter, quoting=quoting)
        first = next(rows, None)
        if first is None:
            return []
        header = first[1]
        col = _pick_column(path, header, column)
        out: list[str] = []
        for lineno, row in rows:
            if len(row) != len(header):
                raise InputFormatError(
                    f"{path}:{lineno}: {len(row)} fields, expected {len(header)}"
                )
            out.append(row[col])
    return out


def _read_jsonl(path: Path, column: str | None) -> list[str]:
    out: list[str] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputFormatError(f"{path}:{lineno}: invalid JSON ({err.msg})") from err
            if isinstance(obj, str):
                out.append(obj)
                continue
            if not isinstance(obj, dict):
                raise InputFormatError(f"{path}:{lineno}: expected an object or a string")
            key = column or next((k for k in ("sentence", "text") if k in obj), None)
            if key is None or key not in obj:
                raise InputFormatError(
                    f"{path}:{lineno}: no key {column or 'sentence/text'!r}; keys are {list(obj)}"
                )
            if not isinstance(obj[key], str):
                raise InputFormatError(f"{path}:{lineno}: {key!r} is not a string")
            out.append(obj[key])
    return out


def write_embeddings(path: str | Path, embeddings: np.ndarray, sentences: list[str]) -> None:
    """Write embeddings as ``.npy`` (matrix), ``.parquet`` (sentence + embedding) or JSONL."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputFormatError(f"output {path}: unknown format; use one of {OUTPUT_SUFFIXES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # a temporary file renamed at the end: a failure (disk full...) leaves nothing partial and
    # any previous output as it was
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with tmp.open("wb") as f:
                np.save(f, embeddings)
        elif suffix == ".parquet":
            from sbert.runtime import require

            pa = require("pyarrow", "io")
            pq = require("pyarrow.parquet", "io")
            dim = embeddings.shape[1]
            table = pa.table({
                "sentence": pa.array(sentences, pa.string()),
                "embedding": pa.FixedSizeListArray.from_arrays(
                    pa.array(embeddings.reshape(-1), pa.float32()), dim
                ),
            })
            pq.write_table(table, str(tmp))
        else:
            with tmp.open("w", encoding="utf-8") as f:
                for sentence, vec in zip(sentences, embeddings, strict=True):
                    f.write(json.dumps({"sentence": sentence, "embedding": vec.tolist()}) + "\n")
