"""sbert: Sentence-BERT sentence embeddings (Reimers & Gurevych, EMNLP 2019).

``import sbert`` stays light (numpy only); torch, transformers, onnxruntime and the other
heavy libraries load when the feature that needs them is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it; resolved on first attribute access
_LAZY: dict[str, str] = {
    "SentenceEncoder": "sbert.encoder",
    "load_folder": "sbert.folder",
    "resolve_model": "sbert.resolve",
    "DEFAULT_MODEL": "sbert.resolve",
    "cos_sim": "sbert.similarity",
    "semantic_search": "sbert.search",
    "paraphrase_mining": "sbert.search",
    "community_detection": "sbert.clustering",
}

if TYPE_CHECKING:  # pragma: no cover
    from sbert.encoder import SentenceEncoder as SentenceEncoder


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sbert' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", *_LAZY]
