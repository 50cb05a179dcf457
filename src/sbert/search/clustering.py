"""Clustering of sentence embeddings: fast community detection, k-means, agglomerative.

``community_detection`` follows sentence-transformers' algorithm (each point with at least
``min_size`` neighbours above ``threshold`` is a candidate centre; the largest non-overlapping
communities win), computed in row blocks so memory stays bounded. The k-means and
agglomerative wrappers use scikit-learn (the ``search`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sbert.errors import UsageError
from sbert.runtime import require
from sbert.similarity import normalize

METHODS = ("community", "kmeans", "agglomerative")


def community_detection(
    embeddings: Any,
    threshold: float = 0.75,
    min_size: int = 10,
    *,
    block_size: int = 1024,
    show_progress: bool | None = None,
) -> list[list[int]]:
    """Groups of sentences whose cosine similarity to a central sentence is >= ``threshold``.

    Args:
        embeddings: ``(n, dim)`` numpy array or torch tensor.
        threshold: minimum cosine similarity to the centre.
        min_size: smallest community returned.
        block_size: most rows scored at once (fewer when ``block_size * n`` floats would
            pass 128 MB).
        show_progress: progress bar; default: on from 20,000 rows.

    Returns:
        Communities, largest first; each lists its centre first, then the other members by
        decreasing similarity to it. A sentence belongs to at most one community.
    """
    from tqdm.auto import tqdm

    if min_size < 1:
        raise UsageError(f"min_size must be >= 1, got {min_size}")
    emb = normalize(embeddings)
    n = emb.shape[0]
    if n < min_size or n == 0:
        return []
    if show_progress is None:
        show_progress = n >= 20_000
    block_size = max(1, min(block_size, 2**25 // n))
    candidates: list[tuple[int, np.ndarray]] = []
    for start in tqdm(range(0, n, block_size), desc="communities", unit="block",
                      disable=not show_progress):
        scores = emb[start:start + block_size] @ emb.T  # (b, n)
        close = scores >= threshold  # (b, n)
        counts = np.count_nonzero(close, axis=1)  # (b,)
        for row in np.flatnonzero(counts >= min_size):
            members = np.flatnonzero(close[row])
            members = members[np.argsort(-scores[row, members], kind="stable")]
            candidates.append((start + int(row), members))
    candidates.sort(key=lambda item: len(item[1]), reverse=True)  # stable: ties by centre
    used = np.zeros(n, dtype=bool)
    communities: list[list[int]] = []
    for centre, members in candidates:
        if used[centre]:
            continue
        free = members[~used[members]]
        if len(free) < min_size:
            continue
        community = [centre, *(int(m) for m in free if m != centre)]
        used[community] = True
        communities.append(community)
    communities.sort(key=len, reverse=True)
    return communities


def kmeans(embeddings: Any, n_clusters: int, seed: int = 0) -> np.ndarray:
    """k-means on the normalized embeddings (scikit-learn).

    Args:
        embeddings: ``(n, dim)``.
        n_clusters: number of clusters (at most ``n``).
        seed: random seed, for reproducible labels.

    Returns:
        ``(n,)`` int64 cluster labels in ``0..n_clusters-1``.
    """
    cluster = require("sklearn.cluster", "search")
    emb = normalize(embeddings)
    if not 1 <= n_clusters <= emb.shape[0]:
        raise UsageError(f"n_clusters must be between 1 and {emb.shape[0]}, got {n_clusters}")
    model = cluster.KMeans(n_clusters=n_clusters, n_init="auto", random_state=seed)
    return np.asarray(model.fit_predict(emb), dtype=np.int64)


def agglomerative(
    embeddings: Any,
    n_clusters: int | None = None,
    distance_threshold: float | None = None,
    linkage: str = "average",
) -> np.ndarray:
    """Agglomerative clustering with cosine distance (scikit-learn; O(n^2) memory).

    Args:
        embeddings: ``(n, dim)``.
        n_clusters: number of clusters; or None with ``distance_threshold``.
        distance_threshold: merge clusters closer than this cosine distance (1 - similarity).
        linkage: ``"average"``, ``"complete"`` or ``"single"``.

    Returns:
        ``(n,)`` int64 cluster labels.
    """
    cluster = require("sklearn.cluster", "search")
    if (n_clusters is None) == (distance_threshold is None):
        raise UsageError("give exactly one of n_clusters and distance_threshold")
    emb = normalize(embeddings)
    if emb.shape[0] < 2:
        return np.zeros(emb.shape[0], dtype=np.int64)
    model = cluster.AgglomerativeClustering(
        n_clusters=n_clusters, distance_threshold=distance_threshold, metric="cosine",
        linkage=linkage,
    )
    return np.asarray(model.fit_predict(emb), dtype=np.int64)


def labels_from_communities(communities: list[list[int]], n: int) -> np.ndarray:
    """``(n,)`` labels: the community's rank for members, -1 for the rest."""
    labels = np.full(n, -1, dtype=np.int64)
    for rank, members in enumerate(communities):
        labels[members] = rank
    return labels


def communities_from_labels(labels: np.ndarray) -> list[list[int]]:
    """Members of each label (``-1`` skipped), largest cluster first."""
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(np.asarray(labels).tolist()):
        if label >= 0:
            groups.setdefault(label, []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))
