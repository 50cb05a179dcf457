"""Exact semantic search: every query's top-k corpus rows, tile by tile in bounded memory."""

from __future__ import annotations

from typing import Any

from sbert.errors import UsageError
from sbert.search.topk import RunningTopK
from sbert.similarity import check_score, prepare


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    score: str = "cosine",
    *,
    query_chunk_size: int = 256,
    corpus_chunk_size: int = 32_768,
) -> list[list[tuple[int, float]]]:
    """Exact top-k search of every query in a corpus of embeddings.

    Args:
        query_embeddings: ``(q, dim)`` or ``(dim,)``, numpy or torch.
        corpus_embeddings: ``(n, dim)``, numpy or torch.
        top_k: hits per query.
        score: ``"cosine"`` or ``"dot"``.
        query_chunk_size: queries scored at once.
        corpus_chunk_size: corpus rows scored at once; memory is bounded by
            ``query_chunk_size * corpus_chunk_size`` floats whatever the corpus size.

    Returns:
        For each query, up to ``top_k`` ``(corpus_id, score)`` pairs, best first (ties by id).
    """
    check_score(score)
    queries = prepare(query_embeddings, score, "query_embeddings")
    corpus = prepare(corpus_embeddings, score, "corpus_embeddings")
    if queries.shape[1] != corpus.shape[1]:
        raise UsageError(
            f"queries have dimension {queries.shape[1]} but the corpus {corpus.shape[1]}; "
            "encode both with the same model"
        )
    if top_k < 1:
        raise UsageError(f"top_k must be >= 1, got {top_k}")
    n = corpus.shape[0]
    if n == 0:
        return [[] for _ in range(queries.shape[0])]
    k = min(top_k, n)
    results: list[list[tuple[int, float]]] = []
    for q_start in range(0, queries.shape[0], query_chunk_size):
        chunk = queries[q_start:q_start + query_chunk_size]  # (b, dim)
        best = RunningTopK(chunk.shape[0], k)
        for c_start in range(0, n, corpus_chunk_size):
            tile = chunk @ corpus[c_start:c_start + corpus_chunk_size].T  # (b, c)
            best.merge_tile(0, tile, c_start)
        values, ids = best.sorted()
        for row_values, row_ids in zip(values.tolist(), ids.tolist(), strict=True):
            results.append([(i, v) for i, v in zip(row_ids, row_values, strict=True) if i >= 0])
    return results
