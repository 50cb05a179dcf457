"""Exact semantic search and paraphrase mining over embeddings, in bounded memory.

Both work tile by tile: a score tile is one float32 matrix product; the entries of a tile
that can still enter a row's top-k (those at least the row's current k-th best) are found by
a comparison and merged into running per-row top-k lists. No ``n x n`` matrix is ever held,
so 100,000 x 384 mine in about 0.7 GB peak. Mining computes only the upper triangle of the
score matrix, merging each tile into the lists of its rows and of its columns.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from sbert.similarity import check_score, prepare

logger = logging.getLogger(__name__)

# show a progress bar by default when mining at least this many embeddings
PROGRESS_MIN_ROWS = 20_000


def _transposed(tile: np.ndarray, block: int = 64) -> np.ndarray:
    """A C-contiguous copy of ``tile.T``, copied in cache-sized blocks (~5x numpy's own)."""
    out = np.empty((tile.shape[1], tile.shape[0]), dtype=tile.dtype)
    for i in range(0, tile.shape[0], block):
        for j in range(0, tile.shape[1], block):
            out[j:j + block, i:i + block] = tile[i:i + block, j:j + block].T
    return out


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest values of each row, in no particular order.

    Args:
        scores: ``(rows, m)`` float32.
        k: how many to keep, at most ``m``.

    Returns:
        ``(values, positions)``, both ``(rows, k)``.
    """
    if k >= scores.shape[1]:
        return scores, np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    positions = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (rows, k)
    return np.take_along_axis(scores, positions, axis=1), positions


class RunningTopK:
    """For each of ``n`` rows, the ``k`` best ``(score, id)`` seen so far."""

    def __init__(self, n: int, k: int) -> None:
        self.k = k
        self.values = np.full((n, k), -np.inf, dtype=np.float32)  # (n, k)
        self.ids = np.full((n, k), -1, dtype=np.int64)  # (n, k)

    def merge(self, start: int, values: np.ndarray, ids: np.ndarray) -> None:
        """Merge candidates for rows ``start:start + len(values)``.

        Args:
            start: first row the candidates belong to.
            values: ``(rows, m)`` candidate scores.
            ids: ``(rows, m)`` their ids.
        """
        stop = start + values.shape[0]
        all_values = np.concatenate([self.values[start:stop], values], axis=1)  # (rows, k + m)
        all_ids = np.concatenate([self.ids[start:stop], ids], axis=1)  # (rows, k + m)
        best_values, pos = topk(all_values, self.k)  # (rows, k)
        self.values[start:stop] = best_values
        self.ids[start:stop] = np.take_along_axis(all_ids, pos, axis=1)

    def merge_tile(self, start: int, tile: np.ndarray, offset: int, axis: int = 1) -> None:
        """Merge the rows (``axis=1``) or the columns (``axis=0``) of a score tile.

        Line ``r`` of the tile (a row, or a column for ``axis=0``) belongs to row
        ``start + r``; its entry ``c`` scores id ``offset + c``. Only entries at least as
        good as both the row's current ``k``-th best and the line's own ``k``-th best can
        enter the row's top-k: a comparison finds them and only they are merged.

        Args:
            start: first row the tile's lines belong to.
            tile: ``(b, c)`` scores.
            offset: id of entry 0 along the line.
            axis: 1 to merge the tile's rows, 0 its columns.
        """
        lines = tile.shape[0] if axis == 1 else tile.shape[1]
        floor = self.values[start:start + lines].min(axis=1)  # (lines,) current k-th best
        passed, counts = _survivors(tile, floor, axis)
        if int(counts.max(initial=0)) > 2 * self.k:  # lists not full yet: tighten the floor
            if axis == 0:
                tile, axis = _transposed(tile), 1  # (c, b): a line per row again
            m = tile.shape[1]
            k = min(self.k, m)
            kth = np.partition(tile, m - k, axis=1)[:, m - k]  # (lines,)
            passed, counts = _survivors(tile, np.maximum(floor, kth), 1)
        width = int(counts.max(initial=0))
        if width == 0:
            return
        r, c = np.nonzero(passed)  # row-major
        line, other = (r, c) if axis == 1 else (c, r)
        scores = tile[r, c]
        if axis == 0:  # group the survivors by line
            order = np.argsort(line, kind="stable")
            line, other, scores = line[order], other[order], scores[order]
        slot = np.arange(line.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
        values = np.full((lines, width), -np.inf, dtype=np.float32)  # (lines, width)
        ids = np.full((lines, width), -1, dtype=np.int64)  # (lines, width)
        values[line, slot] = scores
        ids[line, slot] = other + offset
        self.merge(start, values, ids)

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row best first (ties by smaller id); empty slots hold ``-inf`` / ``-1``."""
        order = np.lexsort((self.ids, -self.values), axis=-1)  # (n, k)
        return (np.take_along_axis(self.values, order, axis=1),
                np.take_along_axis(self.ids, order, axis=1))


def _survivors(tile: np.ndarray, floor: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the entries at least ``floor`` of their line, and the count per line."""
    passed = tile >= (floor[:, None] if axis == 1 else floor[None, :])  # (b, c)
    return passed, np.count_nonzero(passed, axis=axis)


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
        raise ValueError(
            f"queries have dimension {queries.shape[1]} but the corpus {corpus.shape[1]}; "
            "encode both with the same model"
        )
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
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


def paraphrase_mining(
    embeddings_or_sentences: Any,
    top_k: int = 100,
    threshold: float | None = None,
    encoder: Any = None,
    *,
    max_pairs: int = 500_000,
    score: str = "cosine",
    block_size: int = 2048,
    batch_size: int = 32,
    show_progress: bool | None = None,
) -> list[tuple[float, int, int]]:
    """The most similar pairs among sentences (or their embeddings), exact and blocked.

    As in sentence-transformers, each sentence's ``top_k`` nearest other sentences are the
    candidate pairs; the best ``max_pairs`` of them are returned. The score matrix is
    computed tile by tile over its upper triangle only, so memory stays bounded (about
    ``block_size**2`` floats plus ``n * top_k`` candidates).

    Args:
        embeddings_or_sentences: ``(n, dim)`` embeddings (numpy or torch), or a list of
            sentences to encode with ``encoder``.
        top_k: candidate neighbours kept per sentence.
        threshold: keep only pairs scoring at least this much.
        encoder: a :class:`~sbert.encoder.SentenceEncoder` for sentences; default: the
            bundled all-MiniLM-L6-v2.
        max_pairs: most pairs returned.
        score: ``"cosine"`` or ``"dot"``.
        block_size: rows and columns of one score tile.
        batch_size: encoding batch size (sentences only).
        show_progress: progress bar; default: on from 20,000 rows.

    Returns:
        ``(score, i, j)`` with ``i < j``, each pair once, best first (ties by ``(i, j)``).
    """
    check_score(score)
    if top_k < 1 or max_pairs < 1 or block_size < 1:
        raise ValueError("top_k, max_pairs and block_size must be >= 1")
    emb = prepare(_embed(embeddings_or_sentences, encoder, batch_size), score)
    n = emb.shape[0]
    if n < 2:
        return []
    k = min(top_k, n - 1)
    best = _mine_rows_torch(emb, k, show_progress) if _has_torch() else None
    if best is None:  # numpy only (e.g. an ONNX-only install): the upper-triangle tiles
        best = _mine_blocks(emb, k, block_size, show_progress)
    return _collect_pairs(best, threshold, max_pairs)


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


# score floats held at once by the torch path (256 MB): the row block shrinks as n grows
_TORCH_SCORE_BUDGET = 64 * 1024 * 1024


def _mine_rows_torch(emb: np.ndarray, k: int, show_progress: bool | None) -> RunningTopK | None:
    """Each row's ``k`` best other rows: full score rows in blocks, multi-threaded top-k.

    Computes every score twice (both triangles) but selects with ``torch.topk`` on all
    cores and multiplies through oneDNN where available, which is ~3x faster than the
    numpy tile merge at 10,000 rows. Memory stays bounded by ``_TORCH_SCORE_BUDGET``.
    """
    import torch
    from tqdm.auto import tqdm

    from sbert.cpu_kernels import onednn_linear_available

    n = emb.shape[0]
    block = max(1, min(4096, _TORCH_SCORE_BUDGET // max(n, 1)))
    best = RunningTopK(n, k)
    matrix = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))  # (n, dim)
    onednn = onednn_linear_available()
    if show_progress is None:
        show_progress = n >= PROGRESS_MIN_ROWS
    with torch.inference_mode():
        for start in tqdm(range(0, n, block), desc="mine", unit="block",
                          disable=not show_progress):
            rows = matrix[start:start + block]  # (b, dim)
            if onednn:
                scores = torch.ops.mkldnn._linear_pointwise(rows, matrix, None, "none", [], "")
            else:
                scores = rows @ matrix.T  # (b, n)
            own = torch.arange(rows.shape[0])
            scores[own, own + start] = -float("inf")  # a sentence is not its own pair
            values, ids = torch.topk(scores, k, dim=1, sorted=False)  # (b, k)
            best.values[start:start + rows.shape[0]] = values.numpy()
            best.ids[start:start + rows.shape[0]] = ids.numpy()
    return best


def _embed(data: Any, encoder: Any, batch_size: int) -> Any:
    """Embeddings as given, or sentences encoded with ``encoder`` (default model if None)."""
    is_text = isinstance(data, Sequence) and not isinstance(data, str) and (
        len(data) == 0 or isinstance(data[0], str)
    )
    if not is_text:
        return data
    if encoder is None:
        from sbert.encoder import SentenceEncoder

        encoder = SentenceEncoder()
    if len(data) == 0:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    return encoder.encode(list(data), batch_size=batch_size)


def _mine_blocks(emb: np.ndarray, k: int, block: int, show_progress: bool | None) -> RunningTopK:
    """Each row's ``k`` best other rows, from the upper-triangle tiles of ``emb @ emb.T``."""
    from tqdm.auto import tqdm

    n = emb.shape[0]
    best = RunningTopK(n, k)
    starts = range(0, n, block)
    n_tiles = len(starts) * (len(starts) + 1) // 2
    if show_progress is None:
        show_progress = n >= PROGRESS_MIN_ROWS
    below_diagonal = np.tri(min(block, n), dtype=bool)  # (block, block), True where j <= i
    # an off-diagonal tile updates two disjoint sets of rows: merge them on two threads
    # (numpy releases the GIL in the comparisons, selections and partitions)
    pool = ThreadPoolExecutor(max_workers=1) if (os.cpu_count() or 1) > 1 else None
    with tqdm(total=n_tiles, desc="mine", unit="tile", disable=not show_progress) as bar:
        for r_start in starts:
            rows = emb[r_start:r_start + block]  # (b, dim)
            b = rows.shape[0]
            for c_start in range(r_start, n, block):
                tile = rows @ emb[c_start:c_start + block].T  # (b, c)
                diagonal = c_start == r_start
                if diagonal:  # keep j > i only
                    tile[below_diagonal[:b, :b]] = -np.inf
                columns = None
                if pool is not None and not diagonal:  # row j, i < j
                    columns = pool.submit(best.merge_tile, c_start, tile, r_start, 0)
                best.merge_tile(r_start, tile, c_start)  # row i, columns j > i
                if columns is None:
                    best.merge_tile(c_start, tile, r_start, axis=0)
                else:
                    columns.result()
                bar.update(1)
    if pool is not None:
        pool.shutdown()
    return best


def _collect_pairs(
    best: RunningTopK, threshold: float | None, max_pairs: int
) -> list[tuple[float, int, int]]:
    """Deduplicated ``(score, i, j)`` pairs from the per-row candidates, best first."""
    n, k = best.values.shape
    values = best.values.reshape(-1)  # (n * k,) views, no copies
    ids = best.ids.reshape(-1)  # (n * k,)
    keep = ids >= 0
    if threshold is not None:
        keep &= values >= threshold
    else:
        keep &= np.isfinite(values)
    flat = np.flatnonzero(keep)  # (m,) positions of the candidates
    del keep
    scores = values[flat]
    if scores.shape[0] > 2 * max_pairs:  # each pair appears at most twice: cut early
        part = np.argpartition(-scores, 2 * max_pairs - 1)[:2 * max_pairs]
        flat, scores = flat[part], scores[part]
    row, other = flat // k, ids[flat]
    del flat
    i, j = np.minimum(row, other), np.maximum(row, other)
    del row, other
    key = i * n + j  # (m,) one id per pair
    order = np.argsort(key)  # a pair's two copies (same score) side by side
    key, scores = key[order], scores[order]
    first = np.ones(key.shape[0], dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, scores = key[first], scores[first]
    order = _descending(scores)[:max_pairs]  # ties keep the (i, j) order
    i, j = np.divmod(key[order], n)
    return list(zip(scores[order].tolist(), i.tolist(), j.tolist(), strict=True))


def _descending(scores: np.ndarray) -> np.ndarray:
    """Positions of float32 ``scores`` best first; equal scores keep their order."""
    if scores.shape[0] >= 2**32:  # the position does not fit beside the score: slower path
        return np.argsort(-scores, kind="stable")
    bits = scores.astype(np.float32).view(np.uint32)
    ascending = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))  # float order
    rank = (~ascending).astype(np.uint64) << np.uint64(32)  # larger score, smaller rank
    packed = np.sort(rank | np.arange(scores.shape[0], dtype=np.uint64))
    return (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)


__all__ = ["paraphrase_mining", "semantic_search", "topk"]
