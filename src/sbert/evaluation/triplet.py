"""Triplet accuracy (the paper's Table 4): is the anchor nearer the positive than the negative?"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sbert.data.nli import nli_to_triplets
from sbert.data.sts import _lines
from sbert.errors import InputFormatError
from sbert.evaluation.common import Encoder, encode_unique, model_name
from sbert.similarity import SIMILARITY_FNS as SIMILARITIES
from sbert.similarity import pairwise_similarity

logger = logging.getLogger(__name__)


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
    """A TSV (no quoting) with a header holding ``anchor``, ``positive``, ``negative`` columns.

    An NLI file (``premise``, ``hypothesis``, ``label``) is turned into triplets with
    :func:`triplets_from_nli` instead.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"triplet data {path} does not exist")
    header: list[str] | None = None
    cols: list[list[str]] = [[], [], []]
    idx: list[int] = []
    for lineno, line in _lines(path):
        row = line.split("\t")
        if header is None:
            header = row
            if {"premise", "hypothesis", "label"} <= set(header):
                return triplets_from_nli(path, name)
            missing = [c for c in ("anchor", "positive", "negative") if c not in header]
            if missing:
                raise InputFormatError(
                    f"{path}:1: no column(s) {missing} in header {header}; expected anchor, "
                    "positive, negative (or an NLI file: premise, hypothesis, label)"
                )
            idx = [header.index(c) for c in ("anchor", "positive", "negative")]
            continue
        if len(row) != len(header):
            raise InputFormatError(f"{path}:{lineno}: {len(row)} fields, expected {len(header)}")
        for col, i in zip(cols, idx, strict=True):
            col.append(row[i])
    if header is None:
        raise InputFormatError(f"{path}: empty file; expected a header anchor, positive, negative")
    return TripletDataset(name or path.name.split(".")[0], *cols)


def triplets_from_nli(path: str | Path, name: str | None = None) -> TripletDataset:
    """Triplets (premise, entailed hypothesis, contradicting hypothesis) from an NLI TSV.

    Each entailment hypothesis of a premise is paired with the premise's contradiction
    hypothesis of the same index (cycling when there are fewer), so the set is deterministic.
    """
    path = Path(path)
    header: list[str] | None = None
    rows: list[tuple[str, str, str]] = []
    for lineno, line in _lines(path):
        row = line.split("\t")
        if header is None:
            header = row
            ip, ih, il = (header.index(c) for c in ("premise", "hypothesis", "label"))
            continue
        if len(row) != len(header):
            raise InputFormatError(f"{path}:{lineno}: {len(row)} fields, expected {len(header)}")
        rows.append((row[ip], row[ih], row[il]))
    anchors, positives, negatives = nli_to_triplets(rows)
    return TripletDataset(name or path.name.split(".tsv")[0], anchors, positives, negatives)


def triplet_metrics(anchors: np.ndarray, positives: np.ndarray, negatives: np.ndarray,
                    similarities: Sequence[str] = SIMILARITIES) -> dict[str, Any]:
    """Accuracy (x100) of ``sim(a, p) > sim(a, n)`` per similarity, from ``(n, dim)`` embeddings.

    A tie counts as wrong. The primary metric is ``accuracy_cosine``; the paper's Table 4
    uses ``accuracy_euclidean``.
    """
    out: dict[str, Any] = {"triplets": int(len(anchors))}
    for kind in similarities:
        pos = pairwise_similarity(anchors, positives, kind)  # (n,)
        neg = pairwise_similarity(anchors, negatives, kind)  # (n,)
        out[f"accuracy_{kind}"] = 100 * float((pos > neg).mean()) if len(pos) else float("nan")
    out["primary_metric"] = "accuracy_cosine"
    return out


def evaluate_triplets(
    model: Encoder | None, dataset: TripletDataset, *, batch_size: int = 32,
    embeddings: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Triplet accuracy of an encoder (or of precomputed ``(anchor, pos, neg)`` embeddings)."""
    if embeddings is None:
        if model is None:
            raise ValueError("give a model or precomputed embeddings")
        n = len(dataset)
        emb = encode_unique(model, dataset.anchors + dataset.positives + dataset.negatives,
                            batch_size, show_progress)  # (3n, dim)
        embeddings = (emb[:n], emb[n : 2 * n], emb[2 * n :])
    result: dict[str, Any] = {"dataset": dataset.name}
    if model is not None:
        result["model"] = model_name(model)
    result.update(triplet_metrics(*embeddings))
    return result
