"""Save and restore everything a run needs to continue exactly where it stopped.

A checkpoint holds the network and loss-head weights, the optimizer, scheduler and grad-scaler
states, the RNG states (python, numpy, torch, CUDA) and the data position. It is written to a
temporary folder and renamed into place, so a run killed while saving leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sbert.errors import InputFormatError

logger = logging.getLogger(__name__)

STATE_FILE = "training_state.pt"
_PREFIX = "step-"


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The state of every random generator training uses, as plain values and tensors.

    Plain values only, so that :func:`load_checkpoint` can read it back with
    ``weights_only=True``: the numpy state's key array becomes a tensor.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos),
                  int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generators saved by :func:`rng_state`."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as ``folder/step-<step>/`` atomically; keep the newest ``keep``.

    Returns:
        The checkpoint folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(folder, step)
    tmp = folder / f".tmp-{_PREFIX}{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("saved checkpoint %s", final)
    return final


def checkpoint_path(folder: Path, step: int) -> Path:
    """The folder :func:`save_checkpoint` writes for ``step``."""
    return folder / f"{_PREFIX}{step:08d}"


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(f"{_PREFIX}*") if (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX):]))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint folder (or its state file).

    Read with ``weights_only=True``: tensors and plain values only, so a planted file cannot
    run code; anything else is refused with :class:`~sbert.errors.InputFormatError`.
    """
    file = path / STATE_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; expected {file}")
    try:
        state: dict[str, Any] = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or the file is damaged
        raise InputFormatError(
            f"{file} is not a checkpoint sbert can read safely ({type(err).__name__}); delete "
            "the checkpoints folder to start the run again"
        ) from err
    if not isinstance(state, dict):
        raise InputFormatError(f"{file} is not a checkpoint written by sbert")
    return state
