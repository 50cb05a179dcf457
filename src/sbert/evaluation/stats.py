"""Correlations and ranking metrics in plain numpy (no scipy needed)."""

from __future__ import annotations

import numpy as np

from sbert.errors import UsageError


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties get their average rank (scipy's ``rankdata(method="average")``)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    # start index of each run of equal values
    starts = np.concatenate(([True], sorted_vals[1:] != sorted_vals[:-1]))
    run_id = np.cumsum(starts) - 1  # (n,) run index of each sorted element
    run_start = np.flatnonzero(starts)
    run_end = np.append(run_start[1:], len(values))  # exclusive
    avg_rank = (run_start + run_end + 1) / 2.0  # mean of ranks run_start+1 .. run_end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = avg_rank[run_id]
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; ``nan`` when either input is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise UsageError(f"pearson needs two 1-D arrays of equal length, got {x.shape}, {y.shape}")
    xm = x - x.mean()
    ym = y - y.mean()
    denom = np.sqrt((xm * xm).sum() * (ym * ym).sum())
    if denom == 0:
        return float("nan")
    return float(np.clip((xm * ym).sum() / denom, -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (Pearson of average ranks, as scipy computes it)."""
    return pearson(rankdata(x), rankdata(y))


def average_precision(
    scores: np.ndarray, labels: np.ndarray, n_positive: int | None = None
) -> float:
    """Average precision of a ranking by descending score.

    Args:
        scores: one score per candidate.
        labels: 1 for a correct candidate, 0 otherwise.
        n_positive: total number of correct items, when some were never retrieved (they count
            as missed); default: ``labels.sum()``.
    """
    labels = np.asarray(labels, dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    hits = labels[order]
    total = float(labels.sum()) if n_positive is None else float(n_positive)
    if total == 0:
        return float("nan")
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision_at * hits).sum() / total)


def precision_recall_curve(
    scores: np.ndarray, labels: np.ndarray, n_positive: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall when the candidates with ``score >= threshold`` are predicted
    positive, for each distinct score as the threshold.

    Args:
        scores: one score per candidate.
        labels: 1 for a correct candidate, 0 otherwise.
        n_positive: total number of correct items, when some were never retrieved (they count
            as missed, so recall stops short of 1); default: ``labels.sum()``.

    Returns:
        ``(precision, recall, thresholds)`` (fractions; each ``(distinct scores,)``, highest
        threshold first); empty when there are no candidates or nothing is correct.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    total = float(labels.sum()) if n_positive is None else float(n_positive)
    if total == 0 or len(scores) == 0:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty, empty
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    tp = np.cumsum(labels[order])  # (n,) true positives when the top i+1 are predicted
    # only cut between different scores: all candidates with an equal score share a fate
    cut = np.flatnonzero(np.append(s[1:] != s[:-1], True))  # (distinct,) last of each run
    return tp[cut] / (cut + 1), tp[cut] / total, s[cut]


def best_f1(
    scores: np.ndarray, labels: np.ndarray, n_positive: int | None = None
) -> dict[str, float]:
    """F1 at the best threshold: predict positive when ``score >= threshold``.

    Args:
        scores: one score per candidate.
        labels: 1 for a correct candidate, 0 otherwise.
        n_positive: total number of correct items (default: ``labels.sum()``).

    Returns:
        ``f1``, ``precision``, ``recall`` (fractions) and the ``threshold``.
    """
    best = {"f1": 0.0, "precision": 0.0, "recall": 0.0, "threshold": float("nan")}
    precision, recall, thresholds = precision_recall_curve(scores, labels, n_positive)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    if not len(f1) or f1.max() <= 0:
        return best
    i = int(np.argmax(f1))
    # the threshold halfway to the next lower score, as sentence-transformers reports it
    t = thresholds
    threshold = (t[i] + t[i + 1]) / 2 if i + 1 < len(t) else t[i]
    return {"f1": float(f1[i]), "precision": float(precision[i]), "recall": float(recall[i]),
            "threshold": float(threshold)}
