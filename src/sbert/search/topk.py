"""Per-row top-k selection over score tiles: the building block of search and mining.

A score tile is one float32 matrix product; the entries of a tile that can still enter a
row's top-k (those at least the row's current k-th best) are found by a comparison and merged
into running per-row top-k lists, so no ``n x n`` matrix is ever held.
"""

from __future__ import annotations

import numpy as np


def _transposed(tile: np.ndarray, block: int = 64) -> np.ndarray:
    """A C-contiguous copy of ``tile.T``, copied in cache-sized blocks (faster than numpy's)."""
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
