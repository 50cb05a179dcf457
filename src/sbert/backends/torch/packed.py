"""BERT inference without padding: the dense layers run on the real tokens only.

A padded batch ``(batch, seq)`` spends most of its time in the Linear layers (query, key,
value, output, the two feed-forward layers), whose cost is linear in the number of token
rows. With sentences of mixed lengths (a server batching whatever requests are waiting)
half or more of those rows can be padding. Here the tokens are packed into one
``(real tokens, hidden)`` matrix; every Linear, LayerNorm and activation runs on it, and only
attention, which needs each sentence's tokens side by side, sees the padded layout
(``scaled_dot_product_attention`` with the padding mask). The result is the padded
``last_hidden_state`` (zeros at padding), as the Hugging Face forward returns it, so pooling
is unchanged; values agree with it to float rounding (tests compare them).

It runs for Hugging Face ``BertModel`` encoders with absolute positions (BERT, MiniLM...)
when no gradient is needed and at least 15 % of the batch is padding
(``SentenceNetwork.pack_min_padding``; a length-sorted batch runs faster on the stock path);
everything else takes the stock forward. ``SBERT_PACKED=0``
turns it off.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

ENV_SWITCH = "SBERT_PACKED"


def supports_packed(transformer: nn.Module) -> bool:
    """Whether ``transformer`` is a BERT encoder this module can run."""
    if os.environ.get(ENV_SWITCH, "1") == "0" or type(transformer).__name__ != "BertModel":
        return False
    config: Any = getattr(transformer, "config", None)
    return (config is not None
            and getattr(config, "position_embedding_type", "absolute") == "absolute"
            and not getattr(config, "is_decoder", False)
            and not getattr(config, "add_cross_attention", False)
            and hasattr(transformer, "embeddings") and hasattr(transformer, "encoder"))


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = layer(x)  # the layer's own kernel (oneDNN where it was switched)
    return out


class _FusedQKV:
    """The query, key and value weights of one layer side by side: one multiply, not three.

    Rebuilt when any of the three weights changes (training between two encodes).
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self.layer: nn.Linear | None = None

    def get(self, attention: Any) -> nn.Linear:
        parts = (attention.query, attention.key, attention.value)
        key = tuple((p.weight.data_ptr(), p.weight._version,
                     None if p.bias is None else p.bias._version) for p in parts)
        if key != self._key or self.layer is None:
            weight = torch.cat([p.weight.detach() for p in parts])  # (3 hidden, hidden)
            bias = torch.cat([p.bias.detach() if p.bias is not None
                              else torch.zeros(p.out_features, device=weight.device,
                                               dtype=weight.dtype) for p in parts])
            fused = type(attention.query)(weight.shape[1], weight.shape[0],
                                          device=weight.device, dtype=weight.dtype)
            with torch.no_grad():
                fused.weight.copy_(weight)
                fused.bias.copy_(bias)
            fused.requires_grad_(False)
            self.layer, self._key = fused, key
        return self.layer


class PackedBert:
    """Runs a Hugging Face ``BertModel`` on packed tokens (see the module doc)."""

    def __init__(self, transformer: nn.Module) -> None:
        self.model: Any = transformer
        self._qkv = [_FusedQKV() for _ in transformer.encoder.layer]  # type: ignore[union-attr, arg-type]

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
              where: torch.Tensor) -> torch.Tensor:
        """The embedding layer on the real tokens only: ``where`` indexes the flat batch."""
        batch, seq = input_ids.shape
        positions = torch.arange(seq, device=input_ids.device).expand(batch, seq)
        emb = self.model.embeddings
        x = (emb.word_embeddings(input_ids.reshape(-1)[where])
             + emb.position_embeddings(positions.reshape(-1)[where]))  # (tokens, hidden)
        types = (token_type_ids.reshape(-1)[where] if token_type_ids is not None
                 else torch.zeros_like(where))
        out: torch.Tensor = emb.LayerNorm(x + emb.token_type_embeddings(types))
        return out

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, seq)`` ids and mask -> ``(batch, seq, hidden)``, zeros at padding."""
        model = self.model
        batch, seq = input_ids.shape
        hidden = int(model.config.hidden_size)
        heads = int(model.config.num_attention_heads)
        keep = attention_mask.bool()  # (batch, seq)
        where = keep.reshape(-1).nonzero().squeeze(1)  # (tokens,) rows of the flat batch
        x = self.embed(input_ids, token_type_ids, where)  # (tokens, hidden)
        mask = keep[:, None, None, :]  # (batch, 1, 1, seq): keys each query may attend to

        flat = batch * seq
        for layer, qkv in zip(model.encoder.layer, self._qkv, strict=True):
            attention = layer.attention
            packed_qkv = _linear(qkv.get(attention.self), x)  # (tokens, 3 hidden)
            # one scatter into the padded layout for all three: (3, batch, heads, seq, d)
            grid = packed_qkv.new_zeros(flat, 3 * hidden).index_copy_(0, where, packed_qkv)
            q, k, v = grid.view(batch, seq, 3, heads, -1).permute(2, 0, 3, 1, 4)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (b, h, seq, d)
            context = context.transpose(1, 2).reshape(flat, hidden).index_select(0, where)
            out = attention.output
            x = out.LayerNorm(_linear(out.dense, context) + x)
            inner = layer.intermediate.intermediate_act_fn(_linear(layer.intermediate.dense, x))
            x = layer.output.LayerNorm(_linear(layer.output.dense, inner) + x)
        return x.new_zeros(flat, hidden).index_copy_(0, where, x).view(batch, seq, hidden)
