"""Small in-memory training data for the trainer tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sbert.training.data import Examples


@pytest.fixture
def tiny_encoder(tiny_model_dir: Path) -> Any:
    """A fresh tiny encoder per test: training changes its weights in place, and the
    session-wide one must stay as loaded for the other tests."""
    from sbert import SentenceEncoder

    return SentenceEncoder(tiny_model_dir, device="cpu")

PAIRS = [
    ("a man is playing a guitar", "a man plays music", "entailment", 4.2),
    ("a woman is eating food", "a woman eats", "entailment", 4.8),
    ("a dog runs in the park", "a cat sits in the house", "contradiction", 0.6),
    ("the child is happy", "the child is sad", "contradiction", 1.0),
    ("a man is running outside", "a man is running", "entailment", 4.0),
    ("the red car is fast", "the blue car is slow", "contradiction", 0.8),
    ("a woman plays the piano", "a woman plays music today", "neutral", 3.0),
    ("a big dog is playing with a ball", "a small dog is playing", "neutral", 2.5),
    ("the man sits in the car", "the man is inside", "entailment", 3.6),
    ("children are playing a game", "a child plays", "neutral", 3.2),
    ("a cat is eating", "a dog is eating", "contradiction", 1.4),
    ("the old house is big", "the new house is small", "contradiction", 0.4),
]
NLI_IDS = {"contradiction": 0, "entailment": 1, "neutral": 2}


@pytest.fixture
def nli_examples() -> Examples:
    return Examples(
        [[p[0] for p in PAIRS], [p[1] for p in PAIRS]],
        [float(NLI_IDS[p[2]]) for p in PAIRS],
    )


@pytest.fixture
def sts_examples() -> Examples:
    return Examples([[p[0] for p in PAIRS], [p[1] for p in PAIRS]], [p[3] / 5 for p in PAIRS])


@pytest.fixture
def triplet_examples() -> Examples:
    n = len(PAIRS)
    return Examples(
        [[p[0] for p in PAIRS], [p[1] for p in PAIRS], [PAIRS[(i + 3) % n][1] for i in range(n)]]
    )
