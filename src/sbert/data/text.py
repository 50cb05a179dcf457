"""Read sentences from text/CSV/TSV/JSONL files and write embeddings to .npy/.parquet/JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sbert.data.tables import lines, open_table
from sbert.errors import InputFormatError
from sbert.files import atomic_path
from sbert.unicode import lone_surrogate, surrogate_error

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
OUTPUT_SUFFIXES = (".npy", ".parquet", ".jsonl")


def read_sentences(path: str | Path, column: str | None = None) -> list[str]:
    """Read sentences from a file.

    Args:
        path: ``.txt`` (one sentence per line; blank lines are sentences too, so that row
            ``i`` is line ``i + 1``), ``.csv``/``.tsv`` (a header row; TSV is read with no
            quoting; blank rows are skipped), or ``.jsonl`` (one object per line), each
            optionally gzip-compressed (``.gz``). Text is UTF-8; a BOM is dropped.
        column: the column/key holding the text; required for CSV/TSV/JSONL unless the file
            has a single column or a ``sentence``/``text`` column.
    """
    return read_records(path, column)[0]


def read_records(path: str | Path, column: str | None = None
                 ) -> tuple[list[str], list[Any] | None]:
    """The sentences of a file (see :func:`read_sentences`), and for JSONL each line's
    object (None for a line that is a bare string), read in the same pass."""
    path = Path(path)
    if path.is_dir():
        raise InputFormatError(f"{path} is a folder; give a file of sentences")
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    suffix = Path(name).suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _read_table(path, column), None
    if suffix == ".jsonl":
        return _read_jsonl(path, column)
    if column is not None:
        raise InputFormatError(f"{path}: --column applies to CSV/TSV/JSONL, not a text file")
    return [line for _, line in lines(path)], None


def _pick_column(path: Path, header: list[str], column: str | None) -> str:
    if column is not None:
        if column not in header:
            raise InputFormatError(f"{path}: no column {column!r}; columns are {header}")
        return column
    if len(header) == 1:
        return header[0]
    for name in ("sentence", "text"):
        if name in header:
            return name
    raise InputFormatError(f"{path}: several columns {header}; choose one with --column")


def _read_table(path: Path, column: str | None) -> list[str]:
    with open_table(path) as table:
        if not table.header:
            return []
        col = _pick_column(path, table.header, column)
        return [row[col] for _, row in table.rows]


def _read_jsonl(path: Path, column: str | None) -> tuple[list[str], list[Any]]:
    out: list[str] = []
    objects: list[Any] = []
    for lineno, line in lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputFormatError(f"{path}:{lineno}: invalid JSON ({err.msg})") from err
        if isinstance(obj, str):
            key, text, obj = None, obj, None
        elif isinstance(obj, dict):
            key = column or next((k for k in ("sentence", "text") if k in obj), None)
            if key is None or key not in obj:
                raise InputFormatError(
                    f"{path}:{lineno}: no key {column or 'sentence/text'!r}; keys are {list(obj)}"
                )
            text = obj[key]
            if not isinstance(text, str):
                raise InputFormatError(f"{path}:{lineno}: {key!r} is not a string")
        else:
            raise InputFormatError(f"{path}:{lineno}: expected an object or a string")
        at = lone_surrogate(text)
        if at is not None:
            raise surrogate_error(f"{path}:{lineno}: {key or 'the string'!r}", text, at)
        out.append(text)
        objects.append(obj)
    return out, objects


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
