"""Community detection (blocked, against the reference), k-means and agglomerative wrappers."""

from __future__ import annotations

import numpy as np
import pytest

from sbert.search.clustering import (
    agglomerative,
    communities_from_labels,
    community_detection,
    kmeans,
    labels_from_communities,
)
from tests.conftest import has_module


def blobs(sizes: list[int], dim: int = 24, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), dim))
    rows = [centres[c] + noise * rng.standard_normal((size, dim)) for c, size in enumerate(sizes)]
    return np.vstack(rows).astype(np.float32)


def truth(sizes: list[int]) -> list[set[int]]:
    bounds = np.cumsum([0, *sizes])
    return [set(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def test_community_detection_finds_the_blobs() -> None:
    sizes = [30, 20, 12, 3]
    emb = blobs(sizes)
    groups = community_detection(emb, threshold=0.8, min_size=5, block_size=16)
    assert [set(g) for g in groups] == truth(sizes)[:3]
    assert [len(g) for g in groups] == [30, 20, 12]  # largest first, the tiny blob left out
    labels = labels_from_communities(groups, len(emb))
    assert (labels[-3:] == -1).all() and labels[0] == 0


def test_community_detection_edges() -> None:
    assert community_detection(np.zeros((0, 4)), min_size=1) == []
    assert community_detection(blobs([3]), min_size=5) == []
    with pytest.raises(ValueError, match="min_size"):
        community_detection(blobs([3]), min_size=0)


@pytest.mark.reference
@pytest.mark.skipif(not has_module("sentence_transformers"), reason="needs sentence-transformers")
def test_community_detection_matches_reference() -> None:
    from sentence_transformers import util

    emb = blobs([40, 25, 25, 10, 4], noise=0.45, seed=3)
    ours = community_detection(emb, threshold=0.7, min_size=5)
    ref = util.community_detection(emb, threshold=0.7, min_community_size=5)
    assert [sorted(g) for g in ours] == [sorted(g) for g in ref]
    assert [g[0] for g in ours] == [g[0] for g in ref]


@pytest.mark.skipif(not has_module("sklearn"), reason="needs scikit-learn (sbert[search])")
def test_kmeans_and_agglomerative_recover_blobs() -> None:
    sizes = [15, 10, 8]
    emb = blobs(sizes)
    for labels in (kmeans(emb, 3), agglomerative(emb, n_clusters=3),
                   agglomerative(emb, distance_threshold=0.3)):
        assert [set(g) for g in communities_from_labels(labels)] == truth(sizes)
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans(emb, 100)
    with pytest.raises(ValueError, match="exactly one"):
        agglomerative(emb)
