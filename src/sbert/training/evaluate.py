"""Small evaluators used during training: STS Spearman of cosine, NLI head accuracy.

The evaluation package (``sbert.evaluation``) holds the full evaluators; these two are what
the trainer needs to pick the best checkpoint and what the parity benchmark reports, and
they work on any function that embeds sentences (ours or the reference's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from sbert.training.data import Examples

EmbedFn = Callable[[list[str]], np.ndarray]


class Evaluator(Protocol):
    """Called with the encoder; returns metrics, one of which is ``primary_metric``."""

    primary_metric: str

    def __call__(self, encoder: Any) -> dict[str, float]: ...


def sts_scores(embed: EmbedFn, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
    """Cosine similarity of each pair ``(n,)``, each distinct sentence embedded once."""
    texts = list(dict.fromkeys([*first, *second]))
    emb = np.asarray(embed(texts), dtype=np.float64)  # (distinct, dim)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    pos = {t: i for i, t in enumerate(texts)}
    a = emb[[pos[t] for t in first]]  # (n, dim)
    b = emb[[pos[t] for t in second]]  # (n, dim)
    return np.einsum("nd,nd->n", a, b)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (ties get their average rank)."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


class STSEvaluator:
    """Spearman (x100) between cosine similarity and gold scores on sentence pairs.

    Uses ``sbert.evaluation``'s STS evaluation where it is installed (all its metrics are
    returned), else a scipy Spearman of cosine. The primary metric is
    ``<name>_spearman_cosine`` either way.

    Args:
        examples: two text columns and gold scores (see :func:`~sbert.training.data.read_sts`).
        name: prefix of the metric names.
        batch_size: encoding batch size.
    """

    def __init__(self, examples: Examples, name: str = "sts", batch_size: int = 64) -> None:
        self.examples = examples
        self.name = name
        self.batch_size = batch_size
        self.primary_metric = f"{name}_spearman_cosine"

    def __call__(self, encoder: Any) -> dict[str, float]:
        first, second = self.examples.columns
        try:
            from sbert.evaluation.readers import StsDataset
            from sbert.evaluation.sts import evaluate_sts
        except ImportError:

            def embed(texts: list[str]) -> np.ndarray:
                return encoder.encode(texts, batch_size=self.batch_size, show_progress=False)

            return {self.primary_metric: self.score(embed)}
        data = StsDataset(self.name, first, second, list(self.examples.labels))
        result = evaluate_sts(encoder, data, batch_size=self.batch_size, show_progress=False)
        return {
            f"{self.name}_{k}": float(v) for k, v in result.items()
            if isinstance(v, int | float) and k != "pairs"
        }

    def score(self, embed: EmbedFn) -> float:
        """Spearman x100 of cosine for any embedding function."""
        first, second = self.examples.columns
        cos = sts_scores(embed, first, second)
        return 100.0 * spearman(cos, np.asarray(self.examples.labels))


def head_accuracy(embed: EmbedFn, logits: Callable[[Any, Any], Any], nli: Examples) -> float:
    """Accuracy (x100) of a softmax head on NLI pairs.

    Args:
        embed: sentence embedding function (numpy in, numpy out).
        logits: ``(u, v) -> (n, labels)`` torch tensors, e.g. ``SoftmaxLoss.logits``.
        nli: pairs with integer labels.
    """
    import torch

    first, second = nli.columns
    texts = list(dict.fromkeys([*first, *second]))
    emb = torch.from_numpy(np.asarray(embed(texts), dtype=np.float32))  # (distinct, dim)
    pos = {t: i for i, t in enumerate(texts)}
    u = emb[[pos[t] for t in first]]  # (n, dim)
    v = emb[[pos[t] for t in second]]  # (n, dim)
    with torch.inference_mode():
        pred = logits(u, v).argmax(dim=1).numpy()  # (n,)
    return 100.0 * float(np.mean(pred == np.asarray(nli.labels)))
