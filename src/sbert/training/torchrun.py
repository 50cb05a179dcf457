"""What ``torchrun`` tells each process it starts, read without importing torch.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in every process it starts. The
CLI reads them before it loads torch (``sbert train`` checks its output folder in rank 0
only); :mod:`sbert.training.distributed` reads them to join the process group.
"""

from __future__ import annotations

import os

ENV_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (its rank variables are set)."""
    return all(name in os.environ for name in ENV_VARS)


def start_rank() -> int:
    """The rank ``torchrun`` gave this process (``RANK``; 0 when not under torchrun), known
    before the process group is joined."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's index on its machine (``LOCAL_RANK``; 0 when not under torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))
