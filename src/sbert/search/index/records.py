"""What the index hands back: search hits and stored items."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: str
    text: str
    score: float
    metadata: Any = None


@dataclass(frozen=True)
class Item:
    """One stored sentence, as :meth:`Index.get` returns it."""

    id: str
    text: str
    metadata: Any = None
