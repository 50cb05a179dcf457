"""A persistent, durable vector index: SQLite for texts and embeddings, usearch for the graph."""

from __future__ import annotations

from sbert.search.index.identity import ModelIdentity, model_id, model_identity
from sbert.search.index.store import Hit, Index, Item

__all__ = ["Hit", "Index", "Item", "ModelIdentity", "model_id", "model_identity"]
