"""sbert: Sentence-BERT sentence embeddings (Reimers & Gurevych, EMNLP 2019).

``import sbert`` stays light (numpy only); torch, transformers, onnxruntime and the other
heavy libraries load when the feature that needs them is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbert._lazy import lazy_exports
from sbert._version import __version__

# public name -> module that defines it; resolved on first attribute access
_LAZY: dict[str, str] = {
    "SentenceEncoder": "sbert.encoder",
    "read_folder": "sbert.folder",
    "resolve_model": "sbert.models",
    "DEFAULT_MODEL": "sbert.models",
    "cos_sim": "sbert.similarity",
    "dot_score": "sbert.similarity",
    "semantic_search": "sbert.search.semantic",
    "paraphrase_mining": "sbert.search.mining",
    "community_detection": "sbert.search.clustering",
    "Index": "sbert.search.index",
    "SbertError": "sbert.errors",
}

if TYPE_CHECKING:  # pragma: no cover - what type checkers see: every lazy name, typed
    from sbert.encoder import SentenceEncoder as SentenceEncoder
    from sbert.errors import SbertError as SbertError
    from sbert.folder import read_folder as read_folder
    from sbert.models import DEFAULT_MODEL as DEFAULT_MODEL
    from sbert.models import resolve_model as resolve_model
    from sbert.search.clustering import community_detection as community_detection
    from sbert.search.index import Index as Index
    from sbert.search.mining import paraphrase_mining as paraphrase_mining
    from sbert.search.semantic import semantic_search as semantic_search
    from sbert.similarity import cos_sim as cos_sim
    from sbert.similarity import dot_score as dot_score
else:  # at run time: resolved on first access, so `import sbert` stays light
    __getattr__, __dir__ = lazy_exports("sbert", _LAZY, globals())

__all__ = ["__version__", *_LAZY]
