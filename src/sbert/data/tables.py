"""Rows of TSV, CSV and JSONL files: the one low-level reader under every data reader.

* TSV (``.tsv``, ``.txt`` or no suffix): a header row; fields are split on every tab with no
  quoting (sentences contain ``"``).
* CSV (``.csv``): a header row; standard (RFC 4180) quoting.
* JSONL (``.jsonl``): one object per line; a value that is not a string becomes its JSON
  text (``5``, ``4.5``, ``true``).

Any of them may be gzip-compressed (``.gz``). Text is UTF-8; a BOM is dropped and blank lines
are skipped. A malformed row raises :class:`~sbert.errors.DataError` naming ``file:line``;
columns are never shifted.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sbert.errors import DataError

FORMATS = {".tsv": "tsv", ".txt": "tsv", "": "tsv", ".csv": "csv", ".jsonl": "jsonl"}

Row = tuple[int, dict[str, str]]  # (line number, {column: text})
# fed to the csv module after the last line: it lands inside a field only if a quote is open
_END = "\ue000sbert:end-of-file\ue000"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def open_text(path: Path, newline: str = "\n") -> TextIO:
    """A UTF-8 text stream of a plain or ``.gz`` file; a BOM is dropped.

    Lines end only at ``\\n`` (a stray ``\\r`` inside a sentence does not split it); pass
    ``newline=""`` for the :mod:`csv` module.
    """
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline=newline)
    return path.open(encoding="utf-8-sig", newline=newline)


def lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line without its line end)`` for every line, blank ones included."""
    path = Path(path)
    lineno = 0
    with open_text(path) as f:
        try:
            for lineno, line in enumerate(f, 1):
                yield lineno, line.rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise _not_utf8(path, lineno, err) from None


def _not_utf8(path: Path, lineno: int, err: UnicodeDecodeError) -> DataError:
    # the decoder reads ahead, so the last line yielded may be far before the bad bytes
    bad = first_non_utf8_line(path)
    where = f"{path}:{bad}" if bad else f"{path}: after line {lineno}"
    return DataError(f"{where}: not valid UTF-8 ({err.reason}); save the file as UTF-8")


def first_non_utf8_line(path: Path) -> int:
    """The number of the first line of ``path`` (plain or ``.gz``) that is not valid UTF-8;
    0 if every line is."""
    raw = gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")
    with raw as f:
        for lineno, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return lineno
    return 0


def file_stem(path: Path) -> str:
    """The file name without ``.gz`` and its format suffix: the default dataset name."""
    name = path.name
    for suffix in (".gz", ".tsv", ".csv", ".txt", ".jsonl"):
        name = name.removesuffix(suffix)
    return name


def table_format(path: Path) -> str:
    """``tsv``, ``csv`` or ``jsonl``, from the file name (a ``.gz`` suffix is looked through)."""
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use .tsv, .csv or .jsonl "
                        "(optionally .gz)")
    return FORMATS[suffix]


@dataclass
class Table:
    """A data file's column names and its rows.

    For JSONL the columns are the keys of the first object. Use as a context manager to
    close the file when the rows are not read to the end.
    """

    path: Path
    header: list[str]
    rows: Iterator[Row]
    header_line: int = 1

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()

    def find(self, names: str | Sequence[str]) -> str | None:
        """The first of ``names`` that is a column, or None."""
        names = (names,) if isinstance(names, str) else names
        return next((n for n in names if n in self.header), None)

    def require(self, *wanted: str | Sequence[str]) -> list[str]:
        """The column found for each entry of ``wanted`` (a name, or a name and its aliases).

        Raises:
            DataError: naming the file, the missing columns and the columns there are.
        """
        found = [self.find(names) for names in wanted]
        expected = ", ".join(_alternatives(names) for names in wanted)
        if not self.header:
            raise DataError(f"{self.path}: empty file; expected a header with {expected}")
        missing = [_alternatives(n) for n, key in zip(wanted, found, strict=True) if key is None]
        if missing:
            # every expected column missing: most likely a file without a header row
            headless = " (is the header row missing?)" if len(missing) == len(wanted) else ""
            also = f"; it needs {expected}" if len(missing) < len(wanted) else ""
            raise DataError(
                f"{self.path}:{self.header_line}: no column {', '.join(missing)}{also}; the "
                f"columns are {self.header}{headless}"
            )
        return [key for key in found if key is not None]

    def select(self, keys: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
        """``(line number, [text of each key])`` for every row."""
        for lineno, row in self.rows:
            missing = [k for k in keys if k not in row]  # only a JSONL object can lack a key
            if missing:
                raise DataError(
                    f"{self.path}:{lineno}: no key {missing[0]!r}; every object needs "
                    f"{list(keys)}"
                )
            yield lineno, [row[k] for k in keys]


def _alternatives(names: str | Sequence[str]) -> str:
    if isinstance(names, str):
        return names
    return names[0] + (f" (or {', '.join(names[1:])})" if len(names) > 1 else "")


def open_table(path: str | Path) -> Table:
    """Open a TSV, CSV or JSONL file (optionally ``.gz``) and read its header.

    Raises:
        FileNotFoundError: when the file does not exist.
        DataError: for an unsupported file type, and (while reading the rows) a row whose
            number of fields differs from the header's or a line that is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    kind = table_format(path)
    if kind == "jsonl":
        objects = _jsonl(path)
        first = next(objects, None)
        if first is None:
            return Table(path, [], iter(()))
        return Table(path, list(first[1]), _prepend(first, objects), first[0])
    records = _csv(path) if kind == "csv" else _tsv(path)
    head = next(records, None)
    if head is None:
        return Table(path, [], iter(()))
    header = [name.strip() for name in head[1]]
    return Table(path, header, _dicts(path, header, records), head[0])


def _prepend(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest


def _tsv(path: Path) -> Iterator[tuple[int, list[str]]]:
    for lineno, line in lines(path):
        if line.strip():
            yield lineno, line.split("\t")


def _csv(path: Path) -> Iterator[tuple[int, list[str]]]:
    lineno = 0
    with open_text(path, newline="") as f:
        try:
            for lineno, fields in csv_rows(path, f):
                if any(field.strip() for field in fields):
                    yield lineno, fields
        except UnicodeDecodeError as err:
            raise _not_utf8(path, lineno, err) from None


def csv_rows(path: Path, f: Iterator[str], **dialect: Any) -> Iterator[tuple[int, list[str]]]:
    """``(line the row ends on, fields)`` of a :mod:`csv` stream (opened with ``newline=""``).

    A quote that is never closed would make the rest of the file one field; it is refused
    with the line it opened on, as is a field longer than the csv module's limit (131,072).
    """
    reader = csv.reader(itertools.chain(f, [_END]), **dialect)
    start = 1
    try:
        for fields in reader:
            if fields == [_END]:
                return
            if fields and fields[-1].endswith(_END):
                opened = reader.line_num - len(_LINE_BREAK.findall(fields[-1]))
                raise DataError(f"{path}:{opened}: a quoted field opens on this line and runs "
                                'to the end of the file; close it, or double a " inside it')
            yield reader.line_num, fields
            start = reader.line_num + 1
    except csv.Error as err:
        if "field limit" in str(err):
            raise DataError(
                f"{path}:{start}: a field of this row runs past {csv.field_size_limit():,} "
                'characters; check for a quote opened here and never closed') from None
        raise DataError(f"{path}:{reader.line_num}: {err}; check the quoting") from None


def _dicts(path: Path, header: list[str], records: Iterator[tuple[int, list[str]]],
           ) -> Iterator[Row]:
    n = len(header)
    for lineno, fields in records:
        if len(fields) > n and not "".join(fields[n:]).strip():
            fields = fields[:n]  # trailing tabs
        if len(fields) != n:
            raise DataError(
                f"{path}:{lineno}: {len(fields)} fields, expected {n} ({', '.join(header)}); "
                "check for a missing field or a tab inside one"
            )
        yield lineno, dict(zip(header, fields, strict=True))


def _jsonl(path: Path) -> Iterator[Row]:
    for lineno, line in lines(path):
        if not line.strip():
            continue
        try:
            obj: Any = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object per line, got "
                            f"{type(obj).__name__}")
        yield lineno, {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()}
