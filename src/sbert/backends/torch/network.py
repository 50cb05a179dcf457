"""The siamese network as a torch module: transformer -> pooling -> dense -> normalize."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from sbert.backends.torch.packed import PackedBert, supports_packed
from sbert.backends.torch.pooling import pool
from sbert.errors import UsageError
from sbert.folder import POOLING_MODES, DenseConfig, FolderSpec, PoolingConfig

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


class Dense(nn.Module):
    """``activation(W x + b)``; parameter names match sentence-transformers' Dense."""

    def __init__(self, config: DenseConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_features, config.out_features, bias=config.bias)
        self.activation = _ACTIVATIONS[config.activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x))  # (batch, out_features)


class SentenceNetwork(nn.Module):
    """One tower of the siamese network; both sentences of a pair go through the same weights.

    Args:
        transformer: a Hugging Face encoder (``AutoModel``).
        pooling: pooling configuration.
        dense: optional dense layers after pooling.
        normalize: L2-normalize the output.
    """

    def __init__(
        self,
        transformer: nn.Module,
        pooling: PoolingConfig,
        dense: list[DenseConfig] | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.transformer = transformer
        self.pooling = pooling
        self.dense = nn.ModuleList([Dense(cfg) for cfg in dense or []])
        self.normalize = normalize
        self.uses_token_types = "token_type_ids" in _forward_params(transformer)
        # inference on the real tokens only, for BERT encoders (backends/torch/packed.py)
        self.packed = PackedBert(transformer) if supports_packed(transformer) else None
        # pack when at least this share of the batch is padding; a length-sorted batch (as
        # encode() makes) has little, and runs faster on the stock path (benchmarks/packed.py)
        self.pack_min_padding = 0.15

    @property
    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.dense if isinstance(layer, Dense)]

    @property
    def dense_configs(self) -> list[DenseConfig]:
        return [layer.config for layer in self.dense_layers]

    @property
    def dimension(self) -> int:
        if len(self.dense):
            return self.dense_layers[-1].config.out_features
        return self.pooling.output_dimension

    def set_pooling(self, modes: tuple[str, ...], head: bool = True) -> None:
        """Pool with ``modes`` from now on; ``head=False`` also drops Dense and Normalize.

        A Dense layer sized for the old pooling no longer fits a new output size: change the
        pooling of such a model with ``head=False``.
        """
        for mode in modes:
            if mode not in POOLING_MODES:
                raise UsageError(f"unknown pooling mode {mode!r}; expected one of {POOLING_MODES}")
        pooling = dataclasses.replace(self.pooling, modes=tuple(modes))
        if head and len(self.dense) and pooling.output_dimension != self.pooling.output_dimension:
            raise UsageError(
                f"pooling {'+'.join(modes)} gives {pooling.output_dimension} values but the "
                f"Dense layer takes {self.pooling.output_dimension}; drop the head (head=False)"
            )
        self.pooling = pooling
        if not head:
            self.dense = nn.ModuleList()
            self.normalize = False

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Embed a padded batch ``(batch, seq)`` to ``(batch, dim)``."""
        if token_type_ids is not None and not self.uses_token_types:
            token_type_ids = None
        if (self.packed is not None and not self.training and not torch.is_grad_enabled()
                and attention_mask.numel() * (1 - self.pack_min_padding) > attention_mask.sum()):
            hidden = self.packed(input_ids, attention_mask, token_type_ids)  # (b, seq, hidden)
        else:
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            hidden = self.transformer(**kwargs).last_hidden_state  # (batch, seq, hidden)
        emb = pool(hidden, attention_mask, self.pooling.modes)  # (batch, pooled)
        for layer in self.dense:
            emb = layer(emb)  # (batch, out)
        if self.normalize:
            emb = nn.functional.normalize(emb, p=2, dim=1)
        return emb

    @classmethod
    def from_spec(cls, spec: FolderSpec) -> SentenceNetwork:
        """Build the network and load its weights from a parsed folder."""
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a bar per model load is noise for a library user
        try:
            transformer = AutoModel.from_pretrained(str(spec.transformer_path))
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()
        pooling = spec.pooling
        if pooling.dimension == 0:  # a copy: the spec stays as the folder says
            pooling = dataclasses.replace(pooling, dimension=int(transformer.config.hidden_size))
        net = cls(transformer, pooling, spec.dense, spec.normalize)
        for layer in net.dense_layers:
            _load_dense_weights(layer, layer.config.path)
        return net.eval()

    def save(self, root: Path, dense_dirs: list[Path]) -> None:
        """Write the transformer's weights and config into ``root`` and each Dense into its dir."""
        from transformers.utils import logging as hf_logging

        hf_model = cast(Any, self.transformer)  # a transformers PreTrainedModel
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # its "Writing model shards" bar on every save
        try:
            hf_model.save_pretrained(str(root), safe_serialization=True)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        _usual_modes(root)
        from safetensors.torch import save_file

        for layer, folder in zip(self.dense_layers, dense_dirs, strict=True):
            state = {k: v.detach().contiguous().cpu() for k, v in layer.state_dict().items()}
            save_file(state, str(folder / "model.safetensors"))


def _usual_modes(root: Path) -> None:
    """Give the files in ``root`` the mode any new file gets (0644 under umask 022):
    transformers 5 writes ``model.safetensors`` as 0600, unreadable to the other users of a
    shared model folder."""
    mask = os.umask(0)
    os.umask(mask)
    for path in root.iterdir():
        if path.is_file() and path.stat().st_mode & 0o777 != 0o666 & ~mask:
            path.chmod(0o666 & ~mask)


def _forward_params(module: nn.Module) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        return set()


def _load_dense_weights(layer: Dense, folder: Path | None) -> None:
    if folder is None:
        return
    if (folder / "model.safetensors").exists():
        from safetensors.torch import load_file

        state = load_file(str(folder / "model.safetensors"))
    elif (folder / "pytorch_model.bin").exists():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"{folder}: no model.safetensors or pytorch_model.bin for Dense")
    layer.load_state_dict(state)
