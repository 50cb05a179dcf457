"""Faster CPU inference for ``nn.Linear``: oneDNN's matrix multiply instead of the BLAS one.

PyTorch's CPU wheels run fp32 ``F.linear`` through Intel MKL, which on some processors (AMD
EPYC here) takes a slow code path: ~200 GFLOP/s on 2 cores where oneDNN, which picks its
kernels by instruction set, reaches ~430. :func:`use_onednn_linears` routes every Linear of a
model through oneDNN, but only for fp32 CPU tensors under ``torch.inference_mode`` and outside
autocast, so training, autograd, GPUs and bf16 autocast keep the stock path. Results agree
with ``F.linear`` to fp32 rounding.
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

logger = logging.getLogger(__name__)

ENV_SWITCH = "SBERT_ONEDNN"  # set to 0 to keep the stock BLAS path


def onednn_linear_available() -> bool:
    """Whether this torch build can run oneDNN's linear on plain CPU tensors."""
    if os.environ.get(ENV_SWITCH, "1") == "0" or not torch.backends.mkldnn.is_available():
        return False
    try:
        x, w, b = torch.ones(2, 3, 4), torch.ones(5, 4), torch.zeros(5)
        with torch.inference_mode():
            out = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
        return bool(out.shape == (2, 3, 5) and torch.allclose(out, torch.full((2, 3, 5), 4.0)))
    except (RuntimeError, AttributeError):
        return False


def _cpu_autocast_enabled() -> bool:
    try:
        return bool(torch.is_autocast_enabled("cpu"))  # torch >= 2.4
    except TypeError:
        return bool(torch.is_autocast_cpu_enabled())


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` whose CPU fp32 inference runs on oneDNN; identical parameters and state."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            torch.is_inference_mode_enabled()
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and not _cpu_autocast_enabled()
        ):
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return nn.functional.linear(x, self.weight, self.bias)


def use_onednn_linears(model: nn.Module) -> int:
    """Route the model's ``nn.Linear`` layers through oneDNN for CPU inference.

    The layers change class (to :class:`OneDNNLinear`), not parameters: copies, state dicts
    and training behave as before.

    Returns:
        How many layers were switched (0 where this build has no usable oneDNN).
    """
    if not onednn_linear_available():
        return 0
    count = 0
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDNNLinear
            count += 1
    logger.debug("oneDNN linear for %d layers", count)
    return count


def stock_linears(model: nn.Module) -> nn.Module:
    """Undo :func:`use_onednn_linears`."""
    for module in model.modules():
        if type(module) is OneDNNLinear:
            module.__class__ = nn.Linear  # type: ignore[assignment]
    return model
