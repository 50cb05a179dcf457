"""Training: data readers, the trainer loop, checkpoints, recipes and model cards.

Names are resolved lazily so that ``import sbert.training`` does not import torch.
"""

from __future__ import annotations

from sbert._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports("sbert.training", _LAZY, globals())

__all__ = list(_LAZY)
