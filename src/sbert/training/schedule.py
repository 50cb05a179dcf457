"""The paper's optimizer setup: AdamW (no decay on bias and LayerNorm), linear warm-up/decay."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from sbert.errors import UsageError

_NO_DECAY = ("bias", "LayerNorm.weight", "LayerNorm.bias", "layer_norm", "layernorm", "norm.weight")


def param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """Split the trainable parameters into a decayed group and a bias/LayerNorm group.

    Parameters shared by several modules (the network inside every loss) are listed once.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in modules:
        for name, param in module.named_parameters():
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if any(key in name for key in _NO_DECAY) else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(
    modules: Iterable[nn.Module], lr: float, weight_decay: float, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW over the modules' parameters; the fused kernel where torch has one (same maths)."""
    groups = param_groups(modules, weight_decay)
    fused = device.type in ("cpu", "cuda")
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=fused)
    except (RuntimeError, TypeError):  # a device or dtype without the fused kernel
        return torch.optim.AdamW(groups, lr=lr)


def warmup_steps_for(total_steps: int, warmup: float) -> int:
    """``warmup`` < 1 is a fraction of the steps (rounded up), otherwise a step count."""
    if warmup < 0:
        raise UsageError(f"warmup must be >= 0, got {warmup}")
    return math.ceil(total_steps * warmup) if warmup < 1 else int(warmup)


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rises linearly from 0 over ``warmup_steps``, then falls linearly to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
