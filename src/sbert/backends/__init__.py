"""Backends run the network on padded batches: ``torch`` (default) and ``onnx`` (onnxruntime).

Tokenization and batching stay in :class:`~sbert.encoder.SentenceEncoder`; a backend maps
``(batch, seq)`` token ids to ``(batch, dim)`` sentence embeddings.
"""

from __future__ import annotations

from sbert.backends.base import BACKENDS, Backend, load_tokenizer

__all__ = ["BACKENDS", "Backend", "load_tokenizer"]
