"""Using embeddings: semantic search, paraphrase mining, clustering and a persistent index.

Names resolve on first access, so ``import sbert.search`` imports numpy and little else.
"""

from __future__ import annotations

from sbert._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "semantic_search": "sbert.search.semantic",
    "paraphrase_mining": "sbert.search.mining",
    "topk": "sbert.search.topk",
    "RunningTopK": "sbert.search.topk",
    "community_detection": "sbert.search.clustering",
    "kmeans": "sbert.search.clustering",
    "agglomerative": "sbert.search.clustering",
    "Index": "sbert.search.index",
    "Hit": "sbert.search.index",
    "Item": "sbert.search.index",
}

__getattr__, __dir__ = lazy_exports("sbert.search", _LAZY, globals())

__all__ = list(_LAZY)
