"""Paraphrase mining evaluation: mine the most similar pairs, compare with gold duplicates.

Like sentence-transformers' ``ParaphraseMiningEvaluator``: every distinct sentence is compared
with every other (cosine), the ``top_k`` neighbours of each are kept, the pairs are ranked by
score, and the ranking is scored against the gold duplicate pairs: average precision (gold
pairs that were never mined count as missed) and F1 at the best threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sbert.data.duplicates import DuplicatesDataset, read_duplicates
from sbert.evaluation.common import Encoder, model_name
from sbert.evaluation.stats import average_precision, best_f1, precision_recall_curve
from sbert.search.mining import paraphrase_mining

# the reader lives in sbert.data.duplicates; re-exported for ``sbert.evaluation.paraphrase``
__all__ = ["DuplicatesDataset", "evaluate_paraphrase_mining", "read_duplicates"]


def _mine(embeddings: np.ndarray, top_k: int, max_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """The mined pairs ``(m, 2)`` and their scores ``(m,)``, best first."""
    found = paraphrase_mining(embeddings, top_k=top_k, max_pairs=max_pairs)
    pairs = np.array([(i, j) for _, i, j in found], dtype=np.int64).reshape(-1, 2)
    scores = np.array([score for score, _, _ in found], dtype=np.float32)
    return pairs, scores


def evaluate_paraphrase_mining(
    model: Encoder | None, dataset: DuplicatesDataset, *, batch_size: int = 32,
    embeddings: np.ndarray | None = None, top_k: int = 100, max_pairs: int = 500_000,
    show_progress: bool | None = None, return_curve: bool = False,
) -> dict[str, Any]:
    """Mine paraphrases among ``dataset.sentences`` and score them against the gold pairs.

    Args:
        return_curve: add ``precision_curve`` and ``recall_curve`` (fractions, one per
            distinct mined score, highest first) for plotting.

    Returns:
        ``average_precision`` (x100, primary), ``f1``, ``precision``, ``recall`` (x100) at the
        best ``threshold``, and the numbers of ``sentences``, ``gold_pairs``, ``mined_pairs``.
    """
    if embeddings is None:
        if model is None:
            raise ValueError("give a model or precomputed embeddings")
        embeddings = np.asarray(model.encode(dataset.sentences, batch_size=batch_size,
                                             show_progress=show_progress))
    pairs, scores = _mine(np.asarray(embeddings, dtype=np.float32), top_k, max_pairs)
    gold = dataset.duplicates
    labels = np.fromiter(((int(i), int(j)) in gold for i, j in pairs), dtype=np.float64,
                         count=len(pairs))
    f1 = best_f1(scores, labels, n_positive=len(gold))
    result: dict[str, Any] = {"dataset": dataset.name}
    if model is not None:
        result["model"] = model_name(model)
    result.update({
        "sentences": len(dataset.sentences), "gold_pairs": len(gold),
        "mined_pairs": int(len(pairs)),
        "average_precision": 100 * average_precision(scores, labels, n_positive=len(gold)),
        "f1": 100 * f1["f1"], "precision": 100 * f1["precision"], "recall": 100 * f1["recall"],
        "threshold": f1["threshold"], "primary_metric": "average_precision",
    })
    if return_curve:
        precision, recall, _ = precision_recall_curve(scores, labels, n_positive=len(gold))
        result["precision_curve"], result["recall_curve"] = precision, recall
    return result
