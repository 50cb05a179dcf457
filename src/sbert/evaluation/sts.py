"""STS evaluation: correlation of gold scores with embedding similarities (the paper's Table 1).

Two protocols, both reported:

* **all** (pooled): every pair of the dataset (all subsets of an STS year concatenated), one
  Spearman/Pearson correlation. This is how the paper's STS12-16 numbers were computed and
  what sentence-transformers' ``EmbeddingSimilarityEvaluator`` computes on one file.
* **SentEval**: one correlation per subset, then their mean and their mean weighted by the
  number of pairs (``senteval_mean_*``, ``senteval_wmean_*``).

Correlations are reported x100.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from sbert.data.sts import StsDataset
from sbert.errors import UsageError
from sbert.evaluation.common import Encoder, encode_unique, model_name
from sbert.evaluation.stats import pearson, spearman
from sbert.similarity import SIMILARITY_FNS as SIMILARITIES
from sbert.similarity import pairwise_similarity

logger = logging.getLogger(__name__)


def sts_metrics(
    embeddings1: np.ndarray, embeddings2: np.ndarray, scores: Sequence[float],
    subsets: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score precomputed embeddings of sentence pairs against gold scores.

    Args:
        embeddings1: ``(n, dim)`` embeddings of the first sentences.
        embeddings2: ``(n, dim)`` embeddings of the second sentences.
        scores: ``n`` gold scores.
        subsets: the subset of each pair; with two or more subsets the SentEval per-subset,
            mean and weighted-mean correlations are added.

    Returns:
        ``pairs``, ``{pearson,spearman}_{cosine,dot,euclidean,manhattan}`` (pooled "all", x100),
        ``primary_metric`` (``spearman_cosine``) and, for several subsets, ``subsets`` plus
        ``senteval_{mean,wmean}_{pearson,spearman}_cosine``.
    """
    gold = np.asarray(scores, dtype=np.float64)
    if len(gold) < 2:
        raise UsageError(f"need at least 2 scored pairs for a correlation, got {len(gold)}")
    sims = {kind: pairwise_similarity(embeddings1, embeddings2, kind) for kind in SIMILARITIES}
    out: dict[str, Any] = {"pairs": int(len(gold)), "protocol": "all (pooled)"}
    for kind, sim in sims.items():
        out[f"pearson_{kind}"] = 100 * pearson(gold, sim)
        out[f"spearman_{kind}"] = 100 * spearman(gold, sim)
    out["primary_metric"] = "spearman_cosine"
    names = list(dict.fromkeys(subsets)) if subsets is not None else []
    if len(names) > 1:
        assert subsets is not None
        labels = np.asarray(subsets)
        per: dict[str, dict[str, float]] = {}
        for name in names:
            mask = labels == name
            per[name] = {
                "pairs": int(mask.sum()),
                "pearson_cosine": 100 * pearson(gold[mask], sims["cosine"][mask]),
                "spearman_cosine": 100 * spearman(gold[mask], sims["cosine"][mask]),
            }
        weights = np.array([p["pairs"] for p in per.values()], dtype=np.float64)
        for metric in ("pearson_cosine", "spearman_cosine"):
            values = np.array([p[metric] for p in per.values()])
            out[f"senteval_mean_{metric}"] = float(values.mean())
            out[f"senteval_wmean_{metric}"] = float((values * weights).sum() / weights.sum())
        out["subsets"] = per
    return out


def evaluate_sts(
    model: Encoder | None, dataset: StsDataset, *, batch_size: int = 32,
    embeddings: tuple[np.ndarray, np.ndarray] | None = None, return_similarities: bool = False,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Evaluate an encoder (or precomputed embeddings) on one STS dataset.

    Args:
        model: the encoder; may be ``None`` when ``embeddings`` are given.
        dataset: the sentence pairs and gold scores.
        batch_size: encoding batch size.
        embeddings: precomputed ``(embeddings1, embeddings2)``, each ``(n, dim)``.
        return_similarities: add ``cosine`` (the ``(n,)`` predicted similarities) and ``gold``
            for plotting.
        show_progress: progress bar while encoding (default: for large inputs).

    Returns:
        ``dataset`` and ``model`` names plus the metrics of :func:`sts_metrics`.
    """
    if embeddings is None:
        if model is None:
            raise UsageError("give a model or precomputed embeddings")
        n = len(dataset)
        emb = encode_unique(
            model, dataset.sentences1 + dataset.sentences2, batch_size, show_progress
        )  # (2n, dim)
        embeddings = (emb[:n], emb[n:])
    e1, e2 = embeddings
    result: dict[str, Any] = {"dataset": dataset.name}
    if model is not None:
        result["model"] = model_name(model)
    result.update(sts_metrics(e1, e2, dataset.scores, dataset.subsets))
    logger.info("%s: spearman_cosine %.2f", dataset.name, result["spearman_cosine"])
    if return_similarities:
        result["cosine"] = pairwise_similarity(e1, e2, "cosine")
        result["gold"] = np.asarray(dataset.scores, dtype=np.float64)
    return result


class EmbeddingSimilarityEvaluator:
    """STS evaluator in the sentence-transformers style: call it with a model, get metrics.

    Args:
        dataset: the sentence pairs and gold scores.
        batch_size: encoding batch size.

    Example:
        >>> ev = EmbeddingSimilarityEvaluator(read_pairs_table("stsbenchmark/test.tsv"))
        >>> ev(SentenceEncoder())["spearman_cosine"]
    """

    primary_metric = "spearman_cosine"

    def __init__(self, dataset: StsDataset, batch_size: int = 32) -> None:
        self.dataset = dataset
        self.batch_size = batch_size

    def __call__(self, model: Encoder) -> dict[str, Any]:
        return evaluate_sts(model, self.dataset, batch_size=self.batch_size)
