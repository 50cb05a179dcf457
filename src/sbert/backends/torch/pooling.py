"""Pooling token embeddings into one vector per sentence (torch)."""

from __future__ import annotations

import torch

from sbert.errors import UsageError
from sbert.folder import POOLING_MODES


def pool(
    token_embeddings: torch.Tensor, attention_mask: torch.Tensor, modes: tuple[str, ...]
) -> torch.Tensor:
    """Pool ``(batch, seq, hidden)`` token embeddings to ``(batch, hidden * len(modes))``.

    Padding positions (mask 0) never contribute. Nothing is written into the inputs.

    Args:
        token_embeddings: the transformer's last hidden state.
        attention_mask: 1 for real tokens, 0 for padding.
        modes: any of ``cls``, ``max``, ``mean``, ``mean_sqrt_len``, concatenated in order.
    """
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)  # (batch, seq, 1)
    outputs: list[torch.Tensor] = []
    summed: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    for mode in modes:
        if mode == "cls":
            outputs.append(token_embeddings[:, 0])  # (batch, hidden)
        elif mode == "max":
            # masked_fill returns a new tensor: the caller's embeddings stay untouched
            filled = token_embeddings.masked_fill(mask == 0, -1e9)  # (batch, seq, hidden)
            outputs.append(filled.max(dim=1).values)  # (batch, hidden)
        elif mode in ("mean", "mean_sqrt_len"):
            if summed is None or counts is None:
                summed = (token_embeddings * mask).sum(dim=1)  # (batch, hidden)
                counts = mask.sum(dim=1).clamp(min=1e-9)  # (batch, 1)
            divisor = counts if mode == "mean" else counts.sqrt()
            outputs.append(summed / divisor)
        else:
            raise UsageError(f"unknown pooling mode {mode!r}; expected one of {POOLING_MODES}")
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)
