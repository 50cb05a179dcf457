"""An experiment for encode_gpu.py: BERT on packed tokens with variable-length attention.

``sbert.backends.torch.packed.PackedBert`` runs every Linear on the real tokens only but
scatters query, key and value back into the padded layout for attention. Here attention
runs on the packed tokens too: each sentence attends to its own tokens through
``torch.nn.attention.varlen.varlen_attn`` (FlashAttention on a CUDA GPU, fp16/bf16), so no
padded tensor exists between the embeddings and the pooling. Elsewhere (the CPU smoke run,
fp32) a loop of ``scaled_dot_product_attention`` over the sentences stands in for it, with
the same result. Not in the library: encode_gpu.py measures whether it pays first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from sbert.backends.torch.packed import PackedBert


def flash_varlen() -> Any | None:
    """torch's variable-length attention function, where this torch has it."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor,
            lengths: list[int], max_len: int) -> torch.Tensor:
    """``(tokens, heads, d)`` each -> ``(tokens, heads, d)``: each sentence on its own."""
    varlen = flash_varlen()
    if varlen is not None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        out: torch.Tensor = varlen(q, k, v, cu, cu, max_len, max_len)
        return out
    parts = []
    start = 0
    for n in lengths:  # (1, heads, n, d) per sentence
        sl = slice(start, start + n)
        parts.append(F.scaled_dot_product_attention(
            q[sl].transpose(0, 1)[None], k[sl].transpose(0, 1)[None],
            v[sl].transpose(0, 1)[None])[0].transpose(0, 1))
        start += n
    return torch.cat(parts)


class VarlenBert(PackedBert):
    """:class:`PackedBert` with attention on the packed tokens (see the module doc)."""

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, seq)`` right-padded ids and mask -> ``(batch, seq, hidden)``, zeros at
        padding."""
        model = self.model
        batch, seq = input_ids.shape
        hidden = int(model.config.hidden_size)
        heads = int(model.config.num_attention_heads)
        keep = attention_mask.bool()  # (batch, seq)
        where = keep.reshape(-1).nonzero().squeeze(1)  # (tokens,)
        counts = keep.sum(1, dtype=torch.int32)  # (batch,)
        cu = torch.zeros(batch + 1, dtype=torch.int32, device=input_ids.device)
        cu[1:] = counts.cumsum(0)
        lengths = counts.tolist()
        max_len = max(lengths)
        x = self.embed(input_ids, token_type_ids, where)  # (tokens, hidden)
        tokens = x.shape[0]
        for layer, qkv in zip(model.encoder.layer, self._qkv, strict=True):
            attention = layer.attention
            packed = qkv.get(attention.self)(x).view(tokens, 3, heads, -1)
            q, k, v = (t.contiguous() for t in packed.unbind(1))  # (tokens, heads, d)
            context = _attend(q, k, v, cu, lengths, max_len).reshape(tokens, hidden)
            out = attention.output
            x = out.LayerNorm(out.dense(context) + x)
            inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
            x = layer.output.LayerNorm(layer.output.dense(inner) + x)
        return x.new_zeros(batch * seq, hidden).index_copy_(0, where, x).view(batch, seq, hidden)


def use_varlen(network: Any) -> bool:
    """Run ``network`` (a ``SentenceNetwork``) on :class:`VarlenBert` for every batch.

    Returns:
        False where the network has no packed path (not a BERT encoder).
    """
    if network.packed is None:
        return False
    network.packed = VarlenBert(network.transformer)
    network.pack_min_padding = -1.0  # pack every batch, padded or not
    return True


def use_packed(network: Any) -> bool:
    """Run ``network`` on the library's :class:`PackedBert` for every batch (False: none)."""
    if network.packed is None:
        return False
    network.pack_min_padding = -1.0
    return True
