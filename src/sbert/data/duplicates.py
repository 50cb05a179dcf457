"""Labelled duplicate pairs (Quora question pairs) as a corpus and its gold duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from sbert.data.tables import file_stem, open_table
from sbert.errors import DataError

# column name and its aliases (the Quora release uses question1/2, is_duplicate)
DUPLICATE_COLUMNS = (
    ("sentence1", "question1"),
    ("sentence2", "question2"),
    ("label", "is_duplicate"),
)


@dataclass
class DuplicatesDataset:
    """Distinct sentences and the index pairs ``(i, j)``, ``i < j``, that are duplicates."""

    name: str
    sentences: list[str]
    duplicates: set[tuple[int, int]]


def read_duplicates(path: str | Path, name: str | None = None,
                    limit: int | None = None) -> DuplicatesDataset:
    """Pairs with a 0/1 label from a TSV (no quoting), CSV or JSONL file (optionally .gz).

    Columns: ``sentence1``, ``sentence2``, ``label`` (or Quora's ``question1``,
    ``question2``, ``is_duplicate``). Every distinct sentence of the rows read is part of the
    corpus; label-1 rows are the gold pairs.

    Args:
        path: the file.
        name: dataset name; default the file name without its suffixes.
        limit: read only the first ``limit`` pairs (rows); default all.
    """
    path = Path(path)
    index: dict[str, int] = {}
    duplicates: set[tuple[int, int]] = set()
    with open_table(path) as table:
        keys = table.require(*DUPLICATE_COLUMNS)
        for lineno, (first, second, label) in islice(table.select(keys), limit):
            if label not in ("0", "1"):
                raise DataError(f"{path}:{lineno}: label {label!r} is not 0 or 1")
            a = index.setdefault(first, len(index))
            b = index.setdefault(second, len(index))
            if label == "1" and a != b:
                duplicates.add((min(a, b), max(a, b)))
    return DuplicatesDataset(name or file_stem(path), list(index), duplicates)
