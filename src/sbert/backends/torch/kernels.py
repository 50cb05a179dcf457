"""Faster CPU inference for ``nn.Linear``: oneDNN's matrix multiply instead of the BLAS one.

PyTorch's CPU wheels run fp32 ``F.linear`` through Intel MKL, which on some processors (AMD
EPYC) takes a slow code path, while oneDNN picks its kernels by instruction set
(``benchmarks/encode.py`` measures both limits). :func:`use_onednn_linears` routes every Linear of a
model through oneDNN for fp32 CPU tensors outside autocast. In training the backward pass runs
on oneDNN as well (:class:`OneDNNLinearFunction`: the input and weight gradients are two more
oneDNN inner products). GPUs and bf16 autocast keep the stock path. Results agree with
``F.linear`` to fp32 rounding.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

ENV_SWITCH = "SBERT_ONEDNN"  # set to 0 to keep the stock BLAS path
# oneDNN's own setting: how many kernels a process keeps (its default: 1,024)
PRIMITIVE_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


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


def limit_primitive_cache(entries: int) -> bool:
    """Keep at most ``entries`` oneDNN kernels in this process, unless the environment already
    sets ``ONEDNN_PRIMITIVE_CACHE_CAPACITY``; returns whether this call set it.

    oneDNN reads the setting when it first caches a kernel, so call this before the process
    runs its first oneDNN operation (before a torch model loads). A server meets many row
    counts even once they are rounded (:func:`bucket_rows`), and each kept kernel holds memory:
    under a steady load the cache fills for minutes, which reads as a slow climb.
    """
    if PRIMITIVE_CACHE_ENV in os.environ:
        return False
    os.environ[PRIMITIVE_CACHE_ENV] = str(entries)
    return True


def bucket_rows(rows: int) -> int:
    """``rows`` rounded up to one of a few sizes: eight steps per power of two, at least 8.

    oneDNN builds (and keeps, up to its primitive cache's 1,024 entries) a kernel for every
    input shape it meets. A server meets a new row count with nearly every batch, and its
    memory grew by hundreds of megabytes within minutes; rounded like this, a model meets at
    most a few dozen shapes per linear layer, at the cost of at most 1/8 more rows.
    """
    if rows <= 8:
        return 8
    step = max(8, 1 << (rows.bit_length() - 4))  # 1/8 of the power of two below rows
    return -(-rows // step) * step


def _bucketed_inner_product(x: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None) -> torch.Tensor:
    """:func:`_inner_product` with the row count rounded by :func:`bucket_rows` (inference)."""
    rows = x.numel() // x.shape[-1]
    padded = bucket_rows(rows)
    if padded == rows:
        return _inner_product(x, weight, bias)
    flat = nn.functional.pad(x.reshape(rows, x.shape[-1]), (0, 0, 0, padded - rows))
    return _inner_product(flat, weight, bias)[:rows].reshape(*x.shape[:-1], weight.shape[0])


def _inner_product(x: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` on oneDNN (``x``: ``(..., in)``, ``weight``: ``(out, in)``)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class OneDNNLinearFunction(torch.autograd.Function):
    """``F.linear`` with forward and backward on oneDNN.

    Backward: ``grad_x = grad @ W`` and ``grad_W = grad.T @ x`` are inner products too, so
    the weight (resp. the two activations) are transposed into contiguous copies first: a few
    megabytes per layer, cheap next to the multiply they speed up.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _inner_product(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _inner_product(grad, weight.t().contiguous())  # (..., in)
        grad_2d = grad.reshape(-1, grad.shape[-1])  # (rows, out)
        if ctx.needs_input_grad[1]:
            x_2d = x.reshape(-1, x.shape[-1])  # (rows, in)
            grad_w = _inner_product(grad_2d.t().contiguous(), x_2d.t().contiguous())  # (out, in)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_2d.sum(dim=0)
        return grad_x, grad_w, grad_b


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` whose CPU fp32 forward (and backward) run on oneDNN; same parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and not _cpu_autocast_enabled()
        ):
            if torch.is_inference_mode_enabled():
                return _bucketed_inner_product(x, self.weight, self.bias)
            if (
                torch.is_grad_enabled()
                and (x.requires_grad or self.weight.requires_grad)
                and not torch.jit.is_tracing()  # exporters trace F.linear, not this op
            ):
                out: torch.Tensor = OneDNNLinearFunction.apply(x, self.weight, self.bias)
                return out
        return nn.functional.linear(x, self.weight, self.bias)


def use_onednn_linears(model: nn.Module) -> int:
    """Route the model's ``nn.Linear`` layers through oneDNN on CPU (inference and training).

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
