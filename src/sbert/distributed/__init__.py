"""Encoding on many cores, GPUs or machines with Ray Data.

Names resolve lazily: ``import sbert.distributed`` does not import Ray (the ``ray`` extra).
"""

from __future__ import annotations

from sbert._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "encode_dataset": "sbert.distributed.ray_encode",
    "encode_files": "sbert.distributed.ray_encode",
    "EncodeSummary": "sbert.distributed.ray_encode",
}

__getattr__, __dir__ = lazy_exports("sbert.distributed", _LAZY, globals())

__all__ = list(_LAZY)
