"""Scored sentence pairs: generic tables, STS benchmark ``sts-*.csv``, SICK, SemEval STS12-16.

Every reader returns :class:`StsDataset` objects; training reads the same tables through
:func:`read_pairs_table`. A malformed row raises :class:`~sbert.errors.DataError` naming the
file and line; columns are never shifted. TSV files are read with no quoting (sentences
contain ``"``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from sbert.data.tables import file_stem, lines, open_table
from sbert.errors import DataError, InputFormatError, UsageError

_SEMEVAL_INPUT = re.compile(r"^STS\.input\.(?P<name>.+)\.txt$")

# column name and its aliases, for sentence 1, sentence 2 and the score
PAIR_COLUMNS = (
    ("sentence1", "text_a", "premise"),
    ("sentence2", "text_b", "hypothesis"),
    ("score", "similarity", "label"),
)


@dataclass
class StsDataset:
    """Sentence pairs with gold similarity scores.

    ``subsets`` names the sub-dataset of each pair (e.g. ``MSRpar`` in STS12); a dataset made
    of several subsets is scored pooled ("all") and per subset.
    """

    name: str
    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]
    subsets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.scores)
        if len(self.sentences1) != n or len(self.sentences2) != n:
            raise UsageError(
                f"{self.name}: {len(self.sentences1)} / {len(self.sentences2)} sentences for "
                f"{n} scores"
            )
        if not self.subsets:
            self.subsets = [self.name] * n
        elif len(self.subsets) != n:
            raise UsageError(f"{self.name}: {len(self.subsets)} subset labels for {n} pairs")

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def subset_names(self) -> list[str]:
        """Subset names in order of first appearance."""
        return list(dict.fromkeys(self.subsets))


def _score(path: Path, lineno: int, text: str) -> float:
    try:
        score = float(text)
    except ValueError:
        raise DataError(f"{path}:{lineno}: score {text!r} is not a number") from None
    if not math.isfinite(score):  # float() takes 'nan' and 'inf'; they poison correlations
        raise DataError(f"{path}:{lineno}: score {text!r} is not a finite number")
    return score


def read_pairs_table(path: str | Path, name: str | None = None, *,
                     max_score: float | None = None) -> StsDataset:
    """A table of sentence pairs with a similarity score (see :mod:`sbert.data.tables`).

    TSV (``.tsv``, ``.txt``) is split on tabs with no quoting, CSV uses standard quoting,
    JSONL holds one object per line; any may be ``.gz``. Columns: ``sentence1`` (or
    ``text_a``, ``premise``), ``sentence2`` (or ``text_b``, ``hypothesis``) and ``score``
    (or ``similarity``, ``label``).

    Args:
        path: the file.
        name: dataset name; default the file name without its suffixes.
        max_score: when given, a score outside ``[0, max_score]`` is an error naming the line.
    """
    path = Path(path)
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    with open_table(path) as table:
        keys = table.require(*PAIR_COLUMNS)
        for lineno, (first, second, raw) in table.select(keys):
            score = _score(path, lineno, raw)
            if max_score is not None and not 0.0 <= score <= max_score:
                raise DataError(f"{path}:{lineno}: score {score} is outside [0, {max_score}]")
            s1.append(first)
            s2.append(second)
            scores.append(score)
    return StsDataset(name or file_stem(path), s1, s2, scores)


def read_stsb_csv(path: str | Path, name: str | None = None) -> StsDataset:
    """The original STS benchmark ``sts-{train,dev,test}.csv``: tab-separated, no header.

    Columns: genre, file, year, id, score, sentence1, sentence2, then optional licence
    columns (ignored). Subsets are the ``file`` column (MSRvid, headlines...).
    """
    path = Path(path)
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    subsets: list[str] = []
    for lineno, line in lines(path):
        if not line:
            continue
        row = line.split("\t")
        if len(row) < 7:
            raise DataError(
                f"{path}:{lineno}: {len(row)} fields, expected at least 7 "
                "(genre, file, year, id, score, sentence1, sentence2)"
            )
        scores.append(_score(path, lineno, row[4]))
        s1.append(row[5])
        s2.append(row[6])
        subsets.append(row[1])
    return StsDataset(name or file_stem(path), s1, s2, scores, subsets)


SICK_SPLITS = ("TRAIN", "TRIAL", "TEST")


def read_sick(path: str | Path, split: str = "TEST", name: str | None = None) -> StsDataset:
    """SICK relatedness (SICK-R): ``SICK_test_annotated.txt`` or the full ``SICK.txt``.

    Both are tab-separated with a header naming ``sentence_A``, ``sentence_B`` and
    ``relatedness_score``. The full ``SICK.txt`` also has ``SemEval_set``; only the rows of
    ``split`` are kept (the paper's SICK-R numbers are on TEST, 4,927 pairs).

    Args:
        path: the file.
        split: ``TEST``, ``TRAIN`` or ``TRIAL`` (used when the file has a ``SemEval_set`` column).
        name: dataset name; default ``SICK-R``.
    """
    path = Path(path)
    split = split.upper()
    if split not in SICK_SPLITS:
        raise UsageError(f"unknown SICK split {split!r}; expected one of {SICK_SPLITS}")
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    with open_table(path) as table:
        keys = table.require("sentence_A", "sentence_B", "relatedness_score")  # else not SICK
        semeval_set = table.find("SemEval_set")
        if semeval_set is not None:
            keys.append(semeval_set)
        for lineno, (a, b, raw, *subset) in table.select(keys):
            if subset and subset[0].strip().upper() != split:
                continue
            s1.append(a)
            s2.append(b)
            scores.append(_score(path, lineno, raw))
    return StsDataset(name or "SICK-R", s1, s2, scores)


def read_semeval_pair(input_path: str | Path, gold_path: str | Path, subset: str) -> StsDataset:
    """One SemEval STS subset: ``STS.input.<set>.txt`` + ``STS.gs.<set>.txt``.

    The input has ``sentence1<TAB>sentence2`` (STS16 adds source columns, ignored); the gold
    file has one score per line, and an empty gold line means the pair was not scored: it is
    skipped, as SentEval does.
    """
    input_path, gold_path = Path(input_path), Path(gold_path)
    inputs = list(lines(input_path))
    golds = list(lines(gold_path))
    if len(inputs) != len(golds):
        raise DataError(
            f"{gold_path}: {len(golds)} lines but {input_path} has {len(inputs)}; they must "
            "align line by line"
        )
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for (lineno, line), (_, gold) in zip(inputs, golds, strict=True):
        if not gold.strip():
            continue
        row = line.split("\t")
        if len(row) < 2:
            raise DataError(f"{input_path}:{lineno}: expected sentence1<TAB>sentence2")
        s1.append(row[0])
        s2.append(row[1])
        scores.append(_score(gold_path, lineno, gold.strip()))
    return StsDataset(subset, s1, s2, scores, [subset] * len(scores))


def read_semeval_folder(folder: str | Path, name: str | None = None) -> StsDataset:
    """Every ``STS.input.<set>.txt`` / ``STS.gs.<set>.txt`` pair of a folder (one STS year).

    The subsets are concatenated in file-name order; the evaluator scores them pooled ("all")
    and one by one.
    """
    folder = Path(folder)
    parts: list[StsDataset] = []
    for path in sorted(folder.iterdir()):
        match = _SEMEVAL_INPUT.match(path.name)
        if not match:
            continue
        gold = folder / f"STS.gs.{match['name']}.txt"
        if not gold.exists():
            raise InputFormatError(f"{path}: no gold file {gold.name} beside it")
        parts.append(read_semeval_pair(path, gold, match["name"]))
    if not parts:
        raise InputFormatError(f"{folder}: no STS.input.<set>.txt files")
    return StsDataset(
        name or folder.name,
        [s for p in parts for s in p.sentences1],
        [s for p in parts for s in p.sentences2],
        [s for p in parts for s in p.scores],
        [s for p in parts for s in p.subsets],
    )


def read_sts_file(path: str | Path) -> StsDataset:
    """Read one file, choosing the reader from its name and header."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"STS data {path} does not exist")
    if path.name.startswith("SICK"):
        return read_sick(path)
    match = _SEMEVAL_INPUT.match(path.name)
    if match:
        return read_semeval_pair(path, path.with_name(f"STS.gs.{match['name']}.txt"),
                                 match["name"])
    if path.name.startswith("sts-") and ".csv" in path.suffixes:
        return read_stsb_csv(path)
    if {".tsv", ".csv", ".jsonl"} & set(path.suffixes):
        return read_pairs_table(path)
    raise InputFormatError(
        f"{path}: unknown STS format; expected a .tsv/.csv/.jsonl with sentence1, sentence2, "
        "score, an sts-*.csv, a SICK*.txt or an STS.input.<set>.txt"
    )


def load_sts(path: str | Path) -> list[StsDataset]:
    """Load STS data from a file or a folder.

    A folder with ``STS.input.*`` files is one SemEval year; any other folder yields each
    readable file in it (and each SemEval-year sub-folder), sorted by name.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"STS data {path} does not exist")
    if path.is_file():
        return [read_sts_file(path)]
    if any(_SEMEVAL_INPUT.match(p.name) for p in path.iterdir()):
        return [read_semeval_folder(path)]
    out: list[StsDataset] = []
    for child in sorted(path.iterdir()):
        if child.is_dir():
            if any(_SEMEVAL_INPUT.match(p.name) for p in child.iterdir()):
                out.append(read_semeval_folder(child))
        elif _is_sts_file(child):
            out.append(read_sts_file(child))
    if not out:
        raise InputFormatError(f"{path}: no STS files found (.tsv/.csv, SICK*.txt, STS.input.*)")
    return out


def _is_sts_file(path: Path) -> bool:
    if path.name.startswith("SICK") and path.suffix == ".txt":
        return True
    return ".tsv" in path.suffixes or ".csv" in path.suffixes
