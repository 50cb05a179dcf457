"""sbert: Sentence-BERT sentence embeddings (Reimers & Gurevych, EMNLP 2019).

``import sbert`` stays light (numpy only); torch, transformers, onnxruntime and the other
heavy libraries load when the feature that needs them is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbert._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it; resolved on first attribute access
_LAZY: dict[str, str] = {
    "SentenceEncoder": "sbert.encoder",
    "read_folder": "sbert.folder",
    "resolve_model": "sbert.resolve",
    "DEFAULT_MODEL": "sbert.resolve",
    "cos_sim": "sbert.similarity",
    "semantic_search": "sbert.search",
    "paraphrase_mining": "sbert.search",
    "community_detection": "sbert.clustering",
}

if TYPE_CHECKING:  # pragma: no cover
    from sbert.encoder import SentenceEncoder as SentenceEncoder


__getattr__, __dir__ = lazy_exports("sbert", _LAZY, globals())

__all__ = ["__version__", *_LAZY]
