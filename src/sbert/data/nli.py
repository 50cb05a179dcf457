"""NLI pairs to (anchor, positive, negative) triplets, shared by training and evaluation."""

from __future__ import annotations

from collections.abc import Hashable, Iterable


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
