"""Small evaluators used during training: STS Spearman of cosine, NLI head accuracy.

The STS one is :mod:`sbert.evaluation.sts` under the name and shape the trainer wants; both
also score any function that embeds sentences (ours or the reference's), for the parity
benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from sbert.data.sts import StsDataset
from sbert.evaluation.sts import evaluate_sts, sts_metrics
from sbert.training.data import Examples

EmbedFn = Callable[[list[str]], np.ndarray]


class Evaluator(Protocol):
    """Called with the encoder; returns metrics, one of which is ``primary_metric``."""

    primary_metric: str

    def __call__(self, encoder: Any) -> dict[str, float]: ...


class STSEvaluator:
    """Spearman (x100) between cosine similarity and gold scores on sentence pairs.

    Runs :func:`sbert.evaluation.sts.evaluate_sts` and returns all its metrics, prefixed with
    ``name``; the primary metric is ``<name>_spearman_cosine``.

    Args:
        examples: two text columns and gold scores (see :func:`~sbert.training.data.read_sts`).
        name: prefix of the metric names.
        batch_size: encoding batch size.
        show_progress: the encoder's progress bar while the dev set is encoded; default: as
            :meth:`~sbert.encoder.SentenceEncoder.encode` decides (from 2,048 sentences).
    """

    def __init__(self, examples: Examples, name: str = "sts", batch_size: int = 64,
                 show_progress: bool | None = None) -> None:
        first, second = examples.columns
        self.dataset = StsDataset(name, first, second, list(examples.labels))
        self.name = name
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.primary_metric = f"{name}_spearman_cosine"

    def __call__(self, encoder: Any) -> dict[str, float]:
        result = evaluate_sts(encoder, self.dataset, batch_size=self.batch_size,
                              show_progress=self.show_progress)
        return {
            f"{self.name}_{k}": float(v) for k, v in result.items()
            if isinstance(v, int | float) and k != "pairs"
        }

    def score(self, embed: EmbedFn) -> float:
        """Spearman x100 of cosine for any embedding function (ours or the reference's)."""
        data = self.dataset
        texts = list(dict.fromkeys([*data.sentences1, *data.sentences2]))
        emb = np.asarray(embed(texts), dtype=np.float32)  # (distinct, dim)
        pos = {t: i for i, t in enumerate(texts)}
        first = emb[[pos[t] for t in data.sentences1]]  # (n, dim)
        second = emb[[pos[t] for t in data.sentences2]]  # (n, dim)
        return float(sts_metrics(first, second, data.scores)["spearman_cosine"])


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
