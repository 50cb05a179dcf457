"""What every evaluator shares: the encoder interface and encoding each distinct text once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from sbert.errors import UsageError

logger = logging.getLogger(__name__)


class Encoder(Protocol):
    """Anything with ``encode`` like :class:`~sbert.encoder.SentenceEncoder` (baselines too)."""

    name: str

    @property
    def dimension(self) -> int: ...

    def encode(
        self, sentences: str | Sequence[str], batch_size: int = 32, normalize: bool = False,
        convert_to: Any = "numpy", show_progress: bool | None = None,
    ) -> Any: ...


def encode_unique(
    model: Encoder, sentences: Sequence[str], batch_size: int = 32,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Encode ``sentences``, each distinct text once; row ``i`` embeds ``sentences[i]``.

    Returns:
        ``(n, dim)`` float32.
    """
    index: dict[str, int] = {}
    positions = np.fromiter(
        (index.setdefault(s, len(index)) for s in sentences), dtype=np.int64, count=len(sentences)
    )
    unique = list(index)
    logger.info("encoding %d distinct of %d sentences", len(unique), len(sentences))
    emb = np.asarray(
        model.encode(unique, batch_size=batch_size, show_progress=show_progress), dtype=np.float32
    )  # (unique, dim)
    if emb.ndim != 2 or emb.shape[0] != len(unique):
        raise UsageError(f"the encoder returned shape {emb.shape} for {len(unique)} sentences")
    return emb[positions]  # (n, dim)


def model_name(model: Any) -> str:
    """A display name for an encoder."""
    return str(getattr(model, "name", type(model).__name__))
