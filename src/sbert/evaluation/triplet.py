"""Triplet accuracy (the paper's Table 4): is the anchor nearer the positive than the negative?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sbert.data.triplets import TripletDataset, read_triplets, triplets_from_nli
from sbert.evaluation.common import Encoder, encode_unique, model_name
from sbert.similarity import SIMILARITY_FNS as SIMILARITIES
from sbert.similarity import pairwise_similarity

# the readers live in sbert.data.triplets; re-exported for ``sbert.evaluation.triplet`` users
__all__ = ["TripletDataset", "evaluate_triplets", "read_triplets", "triplet_metrics",
           "triplets_from_nli"]


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
