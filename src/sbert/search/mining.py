"""Paraphrase mining: the most similar pairs among n embeddings, exact, in bounded memory.

Two engines, chosen in :func:`paraphrase_mining`: with torch, full score rows in blocks and a
multi-threaded ``torch.topk`` (every score computed twice, but fast); without torch (an
ONNX-only install), the upper triangle of the score matrix tile by tile, each tile merged into
the running top-k lists of its rows and of its columns. Peak memory is bounded either way;
``benchmarks/mining.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from sbert.errors import UsageError
from sbert.runtime import available_cores, has_module
from sbert.search.topk import RunningTopK
from sbert.similarity import check_score, prepare

# show a progress bar by default when mining at least this many embeddings
PROGRESS_MIN_ROWS = 20_000


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
        raise UsageError("top_k, max_pairs and block_size must be >= 1")
    emb = prepare(_embed(embeddings_or_sentences, encoder, batch_size), score)
    n = emb.shape[0]
    if n < 2:
        return []
    k = min(top_k, n - 1)
    if has_module("torch"):
        best = _mine_rows_torch(emb, k, show_progress)
    else:  # numpy only (e.g. an ONNX-only install): the upper-triangle tiles
        best = _mine_blocks(emb, k, block_size, show_progress)
    return _collect_pairs(best, threshold, max_pairs)


# score floats held at once by the torch path (256 MB): the row block shrinks as n grows
_TORCH_SCORE_BUDGET = 64 * 1024 * 1024


def _mine_rows_torch(emb: np.ndarray, k: int, show_progress: bool | None) -> RunningTopK:
    """Each row's ``k`` best other rows: full score rows in blocks, multi-threaded top-k.

    Computes every score twice (both triangles) but selects with ``torch.topk`` on all
    cores and multiplies through oneDNN where available. Memory stays bounded by
    ``_TORCH_SCORE_BUDGET``.
    """
    import torch
    from tqdm.auto import tqdm

    from sbert.backends.torch.kernels import onednn_linear_available

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
    kind = getattr(getattr(data, "dtype", None), "kind", None)
    if kind in ("U", "O") and hasattr(data, "tolist"):  # numpy or pandas strings, as encode
        data = data.tolist()
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
    pool = ThreadPoolExecutor(max_workers=1) if available_cores() > 1 else None
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
