"""Training: data readers, the trainer loop, checkpoints, recipes and model cards.

Names are resolved lazily so that ``import sbert.training`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "Trainer": "sbert.training.trainer",
    "TrainConfig": "sbert.training.trainer",
    "TrainTask": "sbert.training.trainer",
    "TrainState": "sbert.training.trainer",
    "Callback": "sbert.training.trainer",
    "Examples": "sbert.training.data",
    "read_nli": "sbert.training.data",
    "read_sts": "sbert.training.data",
    "read_triplets": "sbert.training.data",
    "nli_triplets": "sbert.training.data",
    "STSEvaluator": "sbert.training.evaluate",
    "RECIPES": "sbert.training.recipes",
    "run_recipe": "sbert.training.recipes",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sbert.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = list(_LAZY)
