"""(anchor, positive, negative) triplets, from a triplet file or built from an NLI file.

Training (triplet loss, in-batch negatives) and evaluation (triplet accuracy, the paper's
Table 4) read them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sbert.data.nli import NLI_COLUMNS, nli_to_triplets, read_nli
from sbert.data.tables import file_stem, open_table
from sbert.errors import DataError

# accepted column sets, tried in order
TRIPLET_COLUMNS = (
    ("anchor", "positive", "negative"),
    ("sentence1", "sentence2", "sentence3"),
    ("query", "positive", "negative"),
)


@dataclass
class TripletDataset:
    """(anchor, positive, negative) texts."""

    name: str
    anchors: list[str]
    positives: list[str]
    negatives: list[str]

    def __len__(self) -> int:
        return len(self.anchors)


def read_triplets(path: str | Path, name: str | None = None) -> TripletDataset:
    """Triplets from a TSV, CSV or JSONL file (optionally .gz), or from an NLI file.

    A triplet file has the columns ``anchor, positive, negative`` (or ``sentence1, sentence2,
    sentence3`` or ``query, positive, negative``); no text may be empty. An NLI file
    (``premise, hypothesis, label``, see :func:`~sbert.data.nli.read_nli`) gives the
    (premise, entailment, contradiction) triplets of :func:`triplets_from_nli`.

    Args:
        path: the file.
        name: dataset name; default the file name without its suffixes.
    """
    path = Path(path)
    anchors: list[str] = []
    positives: list[str] = []
    negatives: list[str] = []
    with open_table(path) as table:
        keys = next((k for k in TRIPLET_COLUMNS if all(c in table.header for c in k)), None)
        if keys is None:
            if all(table.find(names) for names in NLI_COLUMNS):
                return triplets_from_nli(path, name)
            expected = " or ".join(", ".join(k) for k in TRIPLET_COLUMNS)
            raise DataError(
                f"{path}:{table.header_line}: expected triplet columns {expected} (or an NLI "
                f"file: premise, hypothesis, label); got {table.header}"
            )
        for lineno, texts in table.select(keys):
            for key, text in zip(keys, texts, strict=True):
                if not text:
                    raise DataError(f"{path}:{lineno}: empty {key!r}; every triplet needs "
                                    "three texts")
            anchors.append(texts[0])
            positives.append(texts[1])
            negatives.append(texts[2])
    return TripletDataset(name or file_stem(path), anchors, positives, negatives)


def triplets_from_nli(path: str | Path, name: str | None = None) -> TripletDataset:
    """(premise, entailed hypothesis, contradicting hypothesis) triplets from an NLI file.

    Each entailment hypothesis of a premise is paired with the premise's contradiction
    hypothesis of the same index (cycling when there are fewer), so the set is deterministic
    (see :func:`~sbert.data.nli.nli_to_triplets`).
    """
    nli = read_nli(path)
    anchors, positives, negatives = nli_to_triplets(zip(nli.premises, nli.hypotheses,
                                                        nli.labels, strict=True))
    return TripletDataset(name or nli.name, anchors, positives, negatives)
