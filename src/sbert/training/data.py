"""Readers for training data: NLI pairs, STS pairs with scores, triplets (TSV or JSONL).

TSV files have a header row and no quoting (sentences contain ``"``); JSONL files hold one
object per line. A malformed row or a label outside the expected set is reported with the
file and line number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sbert.data.nli import nli_to_triplets
from sbert.errors import DataError

logger = logging.getLogger(__name__)

# the label ids sentence-transformers' NLI scripts use, so heads are interchangeable
NLI_LABELS: dict[str, int] = {"contradiction": 0, "entailment": 1, "neutral": 2}
NLI_NO_MAJORITY = "-"  # SNLI/MultiNLI pairs without an annotator majority: skipped

_PREMISE_KEYS = ("premise", "sentence1", "text_a", "anchor")
_HYPOTHESIS_KEYS = ("hypothesis", "sentence2", "text_b")
_LABEL_KEYS = ("label", "gold_label")
_SCORE_KEYS = ("score", "similarity", "label")
_TRIPLET_KEYS = (
    ("anchor", "positive", "negative"),
    ("sentence1", "sentence2", "sentence3"),
    ("query", "positive", "negative"),
)


@dataclass
class Examples:
    """Columns of texts and one label per row: what a loss trains on."""

    columns: list[list[str]]  # columns x rows
    labels: list[float] = field(default_factory=list)  # empty: the loss takes no labels
    source: str = ""

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def subset(self, limit: int | None) -> Examples:
        """The first ``limit`` rows (all when None)."""
        if limit is None:
            return self
        return Examples([c[:limit] for c in self.columns], self.labels[:limit], self.source)


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` from a TSV (header row) or JSONL file."""
    if not path.is_file():
        raise FileNotFoundError(f"training file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".gz":
        suffix = Path(path.stem).suffix.lower()
    with _open_text(path) as f:
        if suffix == ".jsonl":
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from err
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{number}: expected a JSON object per line")
                yield number, {k: _text(v) for k, v in row.items()}
        elif suffix in (".tsv", ".txt", ".csv"):
            if suffix == ".csv":
                raise DataError(f"{path}: CSV is ambiguous with quoting; use TSV or JSONL")
            header = f.readline().rstrip("\r\n").split("\t")
            for number, line in enumerate(f, start=2):
                if not line.strip():
                    continue
                values = line.rstrip("\r\n").split("\t")
                if len(values) < len(header):
                    raise DataError(
                        f"{path}:{number}: {len(values)} fields, the header has {len(header)}"
                    )
                yield number, dict(zip(header, values, strict=False))
        else:
            raise DataError(f"{path}: unsupported file type {suffix!r}; use .tsv or .jsonl")


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _pick(path: Path, row: dict[str, str], keys: Sequence[str], what: str) -> str:
    for key in keys:
        if key in row:
            return key
    raise DataError(f"{path}: no {what} column; expected one of {list(keys)}, got {list(row)}")


def read_nli(path: str | Path) -> Examples:
    """Read (premise, hypothesis, label) pairs; labels are contradiction/entailment/neutral.

    Columns may be named ``premise``/``hypothesis``/``label`` or as in the official SNLI and
    MultiNLI files (``sentence1``/``sentence2``/``gold_label``). Pairs labelled ``-`` (no
    annotator majority) are skipped. Integer labels follow :data:`NLI_LABELS`.

    Returns:
        Two text columns and integer labels (as floats).
    """
    path = Path(path)
    premises: list[str] = []
    hypotheses: list[str] = []
    labels: list[float] = []
    keys: tuple[str, str, str] | None = None
    skipped = 0
    by_id = {str(v): v for v in NLI_LABELS.values()}
    for number, row in _rows(path):
        if keys is None:
            keys = (
                _pick(path, row, _PREMISE_KEYS, "premise"),
                _pick(path, row, _HYPOTHESIS_KEYS, "hypothesis"),
                _pick(path, row, _LABEL_KEYS, "label"),
            )
        raw = row.get(keys[2], "").strip()
        if raw == NLI_NO_MAJORITY:
            skipped += 1
            continue
        label = NLI_LABELS.get(raw.lower(), by_id.get(raw))
        if label is None:
            raise DataError(
                f"{path}:{number}: label {raw!r} is not one of {sorted(NLI_LABELS)} "
                f"(or their ids {sorted(by_id)})"
            )
        premises.append(row.get(keys[0], ""))
        hypotheses.append(row.get(keys[1], ""))
        labels.append(float(label))
    if skipped:
        logger.info("%s: skipped %d pairs labelled %r", path, skipped, NLI_NO_MAJORITY)
    if not labels:
        raise DataError(f"{path}: no labelled pairs")
    return Examples([premises, hypotheses], labels, str(path))


def read_sts(path: str | Path, max_score: float = 5.0) -> Examples:
    """Read (sentence1, sentence2, score) pairs; scores in ``[0, max_score]`` become [0, 1].

    Returns:
        Two text columns and scores in [0, 1].
    """
    path = Path(path)
    first: list[str] = []
    second: list[str] = []
    scores: list[float] = []
    keys: tuple[str, str, str] | None = None
    for number, row in _rows(path):
        if keys is None:
            keys = (
                _pick(path, row, ("sentence1", "text_a", "premise"), "first sentence"),
                _pick(path, row, ("sentence2", "text_b", "hypothesis"), "second sentence"),
                _pick(path, row, _SCORE_KEYS, "score"),
            )
        raw = row.get(keys[2], "")
        try:
            score = float(raw)
        except ValueError:
            raise DataError(f"{path}:{number}: score {raw!r} is not a number") from None
        if not 0.0 <= score <= max_score:
            raise DataError(f"{path}:{number}: score {score} is outside [0, {max_score}]")
        first.append(row.get(keys[0], ""))
        second.append(row.get(keys[1], ""))
        scores.append(score / max_score)
    if not scores:
        raise DataError(f"{path}: no scored pairs")
    return Examples([first, second], scores, str(path))


def read_triplets(path: str | Path) -> Examples:
    """Read (anchor, positive, negative) triplets (columns named as in :data:`_TRIPLET_KEYS`).

    Returns:
        Three text columns, no labels.
    """
    path = Path(path)
    columns: list[list[str]] = [[], [], []]
    keys: tuple[str, ...] | None = None
    for number, row in _rows(path):
        if keys is None:
            keys = next((k for k in _TRIPLET_KEYS if all(c in row for c in k)), None)
            if keys is None:
                raise DataError(
                    f"{path}: expected triplet columns, one of {list(_TRIPLET_KEYS)}; "
                    f"got {list(row)}"
                )
        for col, key in zip(columns, keys, strict=True):
            text = row.get(key, "")
            if not text:
                raise DataError(f"{path}:{number}: empty {key!r}")
            col.append(text)
    if not columns[0]:
        raise DataError(f"{path}: no triplets")
    return Examples(columns, [], str(path))


def nli_triplets(nli: Examples) -> Examples:
    """(anchor, entailed, contradicted) triplets from NLI pairs, for in-batch negatives.

    Each entailed hypothesis of a premise with at least one contradiction gives one triplet
    (see :func:`sbert.data.nli.nli_to_triplets`).

    Returns:
        Three text columns (anchor, positive, hard negative), no labels.
    """
    rows = zip(*nli.columns, nli.labels, strict=True)
    anchors, positives, negatives = nli_to_triplets(
        rows, NLI_LABELS["entailment"], NLI_LABELS["contradiction"]
    )
    return Examples([anchors, positives, negatives], [], nli.source)


def concat_examples(parts: Sequence[Examples]) -> Examples:
    """Rows of several files of the same kind, one after the other."""
    if not parts:
        raise ValueError("no examples to concatenate")
    columns = [sum((p.columns[i] for p in parts), []) for i in range(len(parts[0].columns))]
    labels = sum((p.labels for p in parts), [])
    return Examples(columns, labels, ", ".join(p.source for p in parts))
