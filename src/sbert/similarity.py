"""Similarity of embeddings: normalisation, the four similarity functions, matrix and pairwise.

The one owner of row normalisation and of the similarity functions sentence-transformers
names in a model folder (``similarity_fn_name``): ``cosine``, ``dot``, ``euclidean`` and
``manhattan`` (the last two as negative distances, so that higher always means more similar).
Everything works on numpy float32 matrices; torch tensors are converted (on the CPU) without
importing torch unless the caller already passed one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sbert.errors import UsageError

SIMILARITY_FNS = ("cosine", "dot", "euclidean", "manhattan")
# search and mining rank by a dot product: the functions that are one
SCORES = ("cosine", "dot")


def as_matrix(embeddings: Any, name: str = "embeddings") -> np.ndarray:
    """A 2-D C-contiguous float32 numpy view/copy of a numpy array, torch tensor or list.

    Args:
        embeddings: ``(n, dim)`` or ``(dim,)`` (treated as one row).
        name: how to call the argument in error messages.

    Returns:
        ``(n, dim)`` float32.
    """
    if hasattr(embeddings, "detach") and hasattr(embeddings, "cpu"):  # a torch tensor
        embeddings = embeddings.detach().cpu().float().numpy()
    arr = np.ascontiguousarray(embeddings, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise UsageError(f"{name} must be 2-D (n, dim) or 1-D (dim,), got shape {arr.shape}")
    return arr


def normalize(embeddings: Any, out: np.ndarray | None = None) -> np.ndarray:
    """Rows scaled to unit L2 length (zero rows stay zero).

    Args:
        embeddings: ``(n, dim)`` (numpy, torch or a list) or ``(dim,)``.
        out: write the result here (may be the input array itself).

    Returns:
        ``(n, dim)`` float32: ``out``, or a new array.
    """
    arr = as_matrix(embeddings)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)  # (n, 1)
    return np.divide(arr, np.maximum(norms, 1e-12), out=out)


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """``embeddings`` itself when its rows are already unit length (no copy), else normalized."""
    norms = np.linalg.norm(embeddings, axis=1)  # (n,)
    return embeddings if np.allclose(norms, 1.0, atol=1e-5) else normalize(embeddings)


def check_score(score: str, allowed: tuple[str, ...] = SCORES) -> None:
    """Raise a ValueError naming the valid options for an unknown score name."""
    if score not in allowed:
        raise UsageError(f"unknown score {score!r}; expected one of {allowed}")


def prepare(embeddings: Any, score: str, name: str = "embeddings") -> np.ndarray:
    """Embeddings ready for a dot product: normalized for ``cosine``, as-is for ``dot``."""
    check_score(score)
    return normalize(embeddings) if score == "cosine" else as_matrix(embeddings, name)


def cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b``.

    Args:
        a: ``(n, dim)`` or ``(dim,)`` numpy array or torch tensor.
        b: ``(m, dim)`` or ``(dim,)``.

    Returns:
        ``(n, m)`` float32 numpy array.
    """
    x, y = _pair(a, b)
    return normalize(x) @ normalize(y).T  # (n, m)


def dot_score(a: Any, b: Any) -> np.ndarray:
    """Dot product of every row of ``a`` with every row of ``b``: ``(n, m)`` float32."""
    x, y = _pair(a, b)
    return x @ y.T  # (n, m)


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as matrices of one dimension (else a UsageError, not numpy's)."""
    x, y = as_matrix(a, "a"), as_matrix(b, "b")
    if x.shape[1] != y.shape[1]:
        raise UsageError(f"embedding dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    return x, y


def euclidean_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Euclidean distance of every row of ``a`` to every row of ``b``: ``(n, m)``.

    Computed as ``|x|^2 + |y|^2 - 2 x.y`` in float64, so that the distance of a vector to
    itself stays 0 (in float32 the cancellation can leave 0.01 or more).
    """
    x, y = (m.astype(np.float64) for m in _pair(a, b))  # (n, dim), (m, dim)
    squared = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * (x @ y.T)  # (n, m)
    return (-np.sqrt(np.maximum(squared, 0))).astype(np.float32)


# elements of the (rows, m, dim) difference block manhattan_sim holds at once (64 MiB)
_BLOCK_ELEMENTS = 1 << 24


def manhattan_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Manhattan distance of every row of ``a`` to every row of ``b``: ``(n, m)``."""
    x, y = _pair(a, b)
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.float32)  # (n, m)
    rows = max(1, _BLOCK_ELEMENTS // max(1, y.shape[0] * y.shape[1]))
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows, None, :] - y[None, :, :]  # (rows, m, dim)
        out[start : start + rows] = -np.abs(block).sum(axis=2)
    return out


MATRIX_FNS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim, "manhattan": manhattan_sim,
}


def similarity(a: Any, b: Any, fn: str = "cosine") -> np.ndarray:
    """Every row of ``a`` against every row of ``b`` with the named function: ``(n, m)``."""
    check_score(fn, SIMILARITY_FNS)
    return MATRIX_FNS[fn](a, b)


def pairwise_similarity(a: Any, b: Any, fn: str = "cosine") -> np.ndarray:
    """Row ``i`` of ``a`` against row ``i`` of ``b``, in float64: ``(n,)``, higher = closer."""
    check_score(fn, SIMILARITY_FNS)
    x = np.asarray(as_matrix(a, "a"), dtype=np.float64)  # (n, dim)
    y = np.asarray(as_matrix(b, "b"), dtype=np.float64)  # (n, dim)
    if x.shape != y.shape:
        raise UsageError(f"embedding shapes differ: {x.shape} vs {y.shape}")
    if fn == "cosine":
        nx = np.maximum(np.linalg.norm(x, axis=1), 1e-12)  # (n,)
        ny = np.maximum(np.linalg.norm(y, axis=1), 1e-12)  # (n,)
        return (x * y).sum(axis=1) / (nx * ny)
    if fn == "dot":
        return (x * y).sum(axis=1)
    if fn == "euclidean":
        return -np.linalg.norm(x - y, axis=1)
    return -np.abs(x - y).sum(axis=1)  # manhattan
