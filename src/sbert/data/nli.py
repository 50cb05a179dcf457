"""NLI pairs (premise, hypothesis, label) and the triplets made from them.

Read by training (softmax classifier, in-batch negatives) and evaluation (triplet accuracy).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sbert.data.tables import file_stem, open_table
from sbert.errors import DataError

logger = logging.getLogger(__name__)

# the label ids sentence-transformers' NLI scripts use, so heads are interchangeable
NLI_LABELS: dict[str, int] = {"contradiction": 0, "entailment": 1, "neutral": 2}
NLI_NO_MAJORITY = "-"  # SNLI/MultiNLI pairs without an annotator majority: skipped

# column name and its aliases (the official SNLI/MultiNLI files use sentence1/2, gold_label)
NLI_COLUMNS = (
    ("premise", "sentence1", "text_a", "anchor"),
    ("hypothesis", "sentence2", "text_b"),
    ("label", "gold_label"),
)

_BY_NAME = {**{name: name for name in NLI_LABELS}, **{str(i): n for n, i in NLI_LABELS.items()}}


@dataclass
class NliDataset:
    """Premise/hypothesis pairs with a label name each (``entailment``, ``neutral``...)."""

    name: str
    premises: list[str]
    hypotheses: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def label_ids(self) -> list[int]:
        """The labels as :data:`NLI_LABELS` ids."""
        return [NLI_LABELS[label] for label in self.labels]


def read_nli(path: str | Path, name: str | None = None) -> NliDataset:
    """Read (premise, hypothesis, label) pairs from a TSV, CSV or JSONL file (optionally .gz).

    Columns are ``premise``/``hypothesis``/``label`` or as in the official SNLI and MultiNLI
    files (``sentence1``/``sentence2``/``gold_label``). Labels are ``entailment``,
    ``neutral``, ``contradiction`` (any case) or their ids in :data:`NLI_LABELS`; pairs
    labelled ``-`` (no annotator majority) are skipped.

    Args:
        path: the file.
        name: dataset name; default the file name without its suffixes.
    """
    path = Path(path)
    premises: list[str] = []
    hypotheses: list[str] = []
    labels: list[str] = []
    skipped = 0
    with open_table(path) as table:
        keys = table.require(*NLI_COLUMNS)
        for lineno, (premise, hypothesis, raw) in table.select(keys):
            raw = raw.strip()
            if raw == NLI_NO_MAJORITY:
                skipped += 1
                continue
            label = _BY_NAME.get(raw.lower())
            if label is None:
                raise DataError(
                    f"{path}:{lineno}: label {raw!r} is not one of {sorted(NLI_LABELS)} "
                    f"(or their ids {sorted(NLI_LABELS.values())}, or {NLI_NO_MAJORITY!r})"
                )
            premises.append(premise)
            hypotheses.append(hypothesis)
            labels.append(label)
    if skipped:
        logger.info("%s: skipped %d pairs labelled %r", path, skipped, NLI_NO_MAJORITY)
    return NliDataset(name or file_stem(path), premises, hypotheses, labels)


def nli_to_triplets(
    rows: Iterable[tuple[str, str, Hashable]],
    entailment: Hashable = "entailment",
    contradiction: Hashable = "contradiction",
) -> tuple[list[str], list[str], list[str]]:
    """(premise, entailed hypothesis, contradicting hypothesis) triplets from NLI rows.

    Each entailment hypothesis of a premise is paired with the premise's contradiction of the
    same index (cycling when there are fewer), so the set is deterministic; premises without
    both kinds give none.

    Args:
        rows: ``(premise, hypothesis, label)``.
        entailment: the label value meaning entailment.
        contradiction: the label value meaning contradiction.

    Returns:
        ``(anchors, positives, negatives)``.
    """
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for premise, hypothesis, label in rows:
        if label == entailment:
            groups.setdefault(premise, ([], []))[0].append(hypothesis)
        elif label == contradiction:
            groups.setdefault(premise, ([], []))[1].append(hypothesis)
    anchors: list[str] = []
    positives: list[str] = []
    negatives: list[str] = []
    for premise, (ent, con) in groups.items():
        if not con:
            continue
        for i, hyp in enumerate(ent):
            anchors.append(premise)
            positives.append(hyp)
            negatives.append(con[i % len(con)])
    return anchors, positives, negatives
