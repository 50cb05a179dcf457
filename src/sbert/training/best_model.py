"""The best evaluated model of a run: ``checkpoints/best`` (a model folder plus loss heads).

Written atomically (a temporary folder renamed into place) each time the evaluator's primary
metric improves; read back at the end of a run that asks for the best weights.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sbert.files import write_json

HEADS_FILE = "loss_heads.pt"
INFO_FILE = "best.json"


def head_state(loss: nn.Module) -> dict[str, torch.Tensor]:
    """The loss's own parameters (e.g. SoftmaxLoss' classifier), without the shared network."""
    return {k: v for k, v in loss.state_dict().items() if not k.startswith("model.")}


def save_best(folder: Path, encoder: Any, losses: Sequence[nn.Module], step: int,
              metrics: dict[str, float]) -> None:
    """Write the encoder, the losses' heads and ``{step, metrics}`` as ``folder``."""
    tmp = folder.with_name(".tmp-best")
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.save(tmp)
    torch.save({i: head_state(loss) for i, loss in enumerate(losses)}, tmp / HEADS_FILE)
    write_json(tmp / INFO_FILE, {"step": step, "metrics": metrics})
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def load_best(folder: Path, network: nn.Module, losses: Sequence[nn.Module],
              device: torch.device) -> None:
    """Load the weights saved by :func:`save_best` into ``network`` and the losses' heads."""
    from sbert.backends.torch.network import SentenceNetwork
    from sbert.folder import read_folder

    best = SentenceNetwork.from_spec(read_folder(folder)).to(device)
    network.load_state_dict(best.state_dict())
    heads = torch.load(folder / HEADS_FILE, map_location=device, weights_only=True)
    for i, loss in enumerate(losses):
        loss.load_state_dict(heads[i], strict=False)
