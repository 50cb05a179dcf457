"""A deterministic bag-of-words encoder: fast, no torch, same interface as SentenceEncoder."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest


class BagOfWordsEncoder:
    """Each word hashes to a fixed random vector; a sentence is the sum of its words."""

    name = "bow"

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim
        self.calls: list[int] = []  # sentences per encode() call

    @property
    def dimension(self) -> int:
        return self._dim

    def _word(self, word: str) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(word.encode()))
        return rng.standard_normal(self._dim).astype(np.float32)

    def encode(self, sentences: str | Sequence[str], batch_size: int = 32,
               normalize: bool = False, convert_to: Any = "numpy",
               show_progress: bool | None = None) -> np.ndarray:
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i] += self._word(word)
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


@pytest.fixture
def bow() -> BagOfWordsEncoder:
    return BagOfWordsEncoder()
