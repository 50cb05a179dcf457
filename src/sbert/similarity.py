"""Similarity helpers (cosine, dot) that accept numpy arrays and torch tensors alike.

Everything here works on numpy float32 matrices; torch tensors are converted (on the CPU)
without importing torch unless the caller already passed one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
        raise ValueError(f"{name} must be 2-D (n, dim) or 1-D (dim,), got shape {arr.shape}")
    return arr


def normalize(embeddings: Any) -> np.ndarray:
    """Rows scaled to unit L2 length (zero rows stay zero).

    Returns:
        ``(n, dim)`` float32, a new array.
    """
    arr = as_matrix(embeddings)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)  # (n, 1)
    return arr / np.maximum(norms, 1e-12)


def check_score(score: str) -> None:
    """Raise a ValueError naming the valid options for an unknown score name."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; expected one of {SCORES}")


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
    return normalize(a) @ normalize(b).T  # (n, m)


def dot_score(a: Any, b: Any) -> np.ndarray:
    """Dot product of every row of ``a`` with every row of ``b``.

    Returns:
        ``(n, m)`` float32 numpy array.
    """
    return as_matrix(a, "a") @ as_matrix(b, "b").T  # (n, m)
