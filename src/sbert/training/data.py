"""Training data: the readers of :mod:`sbert.data`, as :class:`Examples` a loss trains on.

Each reader here calls the one reader of its format in :mod:`sbert.data` (TSV with no
quoting, CSV, JSONL, optionally .gz) and only converts the result; a malformed row or a label
outside the expected set is reported with the file and line number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sbert.data import nli as nli_files
from sbert.data import sts as sts_files
from sbert.data import triplets as triplet_files
from sbert.data.nli import NLI_LABELS, NLI_NO_MAJORITY, nli_to_triplets
from sbert.errors import DataError, UsageError

__all__ = [
    "NLI_LABELS", "NLI_NO_MAJORITY", "Examples", "concat_examples", "nli_triplets", "read_nli",
    "read_sts", "read_triplets",
]


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


def read_nli(path: str | Path) -> Examples:
    """Read (premise, hypothesis, label) pairs (see :func:`sbert.data.nli.read_nli`).

    Returns:
        Two text columns and the :data:`NLI_LABELS` ids (as floats).
    """
    nli = nli_files.read_nli(path)
    if not nli:
        raise DataError(f"{path}: no labelled pairs")
    return Examples([nli.premises, nli.hypotheses], [float(i) for i in nli.label_ids], str(path))


def read_sts(path: str | Path, max_score: float = 5.0) -> Examples:
    """Read (sentence1, sentence2, score) pairs; scores in ``[0, max_score]`` become [0, 1].

    The file is read by :func:`sbert.data.sts.read_pairs_table`, as evaluation reads it.

    Returns:
        Two text columns and scores in [0, 1].
    """
    sts = sts_files.read_pairs_table(path, max_score=max_score)
    if not sts:
        raise DataError(f"{path}: no scored pairs")
    return Examples([sts.sentences1, sts.sentences2], [s / max_score for s in sts.scores],
                    str(path))


def read_triplets(path: str | Path) -> Examples:
    """Read (anchor, positive, negative) triplets (see :func:`sbert.data.triplets.read_triplets`).

    An NLI file gives its (premise, entailment, contradiction) triplets, as in evaluation.

    Returns:
        Three text columns, no labels.
    """
    triplets = triplet_files.read_triplets(path)
    if not triplets:
        raise DataError(f"{path}: no triplets")
    return Examples([triplets.anchors, triplets.positives, triplets.negatives], [], str(path))


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
        raise UsageError("no examples to concatenate")
    columns = [sum((p.columns[i] for p in parts), []) for i in range(len(parts[0].columns))]
    labels = sum((p.labels for p in parts), [])
    return Examples(columns, labels, ", ".join(p.source for p in parts))
