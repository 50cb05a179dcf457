"""A persistent, durable vector index: SQLite for texts and embeddings, usearch for the graph."""

from __future__ import annotations

from sbert.search.index.store import Hit, Index, model_id

__all__ = ["Hit", "Index", "model_id"]
