"""Training in several processes (torch DDP): the process group, this rank, gathering.

``torchrun`` starts one process per device and tells each who it is through ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``. :func:`init_from_env` joins the process group (gloo on CPU, NCCL
on CUDA, where each process owns ``cuda:LOCAL_RANK``); without those variables nothing here
does anything and :func:`world_size` is 1.

Each global batch is split among the ranks (:func:`shard_sizes`). While a rank runs its loss
on its slice, :func:`batch_shard` says how many rows every rank holds, so that
:func:`gather_with_grad` can put the ranks' embeddings back together in the order of the
global batch, with gradients flowing back to every rank's own rows.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from sbert.errors import UsageError
from sbert.training.torchrun import launched_by_torchrun, local_rank

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # prctl option: the signal this process gets when its parent dies


def is_distributed() -> bool:
    """Whether a process group of more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """How many processes train together (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this is rank 0, the process that writes logs, checkpoints and the model."""
    return rank() == 0


def local_device(requested: str | None) -> str | None:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` under torchrun with CUDA.

    Args:
        requested: the user's device (None: CUDA if available). ``"cpu"`` stays on the CPU.
    """
    if not launched_by_torchrun():
        return requested
    wants_cuda = (requested is None and torch.cuda.is_available()) or (
        requested is not None and requested.startswith("cuda"))
    if not wants_cuda:
        return requested
    count = torch.cuda.device_count()
    if local_rank() >= count:
        raise UsageError(f"LOCAL_RANK {local_rank()} has no GPU: this machine has {count} CUDA "
                         "device(s); start at most that many processes per node")
    return f"cuda:{local_rank()}"


def init_from_env(device: str | torch.device | None = None) -> bool:
    """Join torchrun's process group, once; a no-op outside torchrun or when already joined.

    Args:
        device: the device this rank trains on: NCCL for CUDA, gloo otherwise.

    Returns:
        Whether this process now trains with others.
    """
    if dist.is_initialized():
        return is_distributed()
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) < 2:
        return False
    _die_with_launcher()
    cuda = torch.device(device).type == "cuda" if device is not None else False
    if cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    logger.info("rank %d of %d joined the process group (%s)", rank(), world_size(),
                dist.get_backend())
    return True


def _die_with_launcher() -> None:
    """Ask Linux to kill this worker when its launcher dies.

    torchrun starts its workers in sessions of their own, so killing the launcher's process
    group (a scheduler cancelling the job, Ctrl-C escalated to SIGKILL) would otherwise leave
    them training, and rank 0 writing into the output folder, with nobody to join.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() == 1:  # the launcher died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


def barrier() -> None:
    """Wait until every rank gets here (nothing when not distributed)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects; tensors come back on the CPU)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(value: float, device: torch.device) -> float:
    """The sum of ``value`` over the ranks."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


def shard_sizes(rows: int, world: int) -> list[int]:
    """How many of a global batch's ``rows`` each of ``world`` ranks takes, in rank order.

    Contiguous slices as even as possible, the first ranks one row longer; a batch with
    fewer rows than ranks leaves the last ranks empty.
    """
    base, extra = divmod(rows, world)
    return [base + (r < extra) for r in range(world)]


@dataclass(frozen=True)
class BatchShard:
    """This rank's part of one global batch: every rank's row count, and which is ours.

    A rank whose slice is empty still runs its loss on a stand-in row (its loss is then
    weighted 0), so that every rank takes part in the collectives of the step.
    """

    sizes: tuple[int, ...]
    rank: int

    @property
    def rows(self) -> int:
        """Rows of this rank (0: the rank runs on a stand-in row)."""
        return self.sizes[self.rank]

    @property
    def offset(self) -> int:
        """Index of this rank's first row in the global batch."""
        return sum(self.sizes[: self.rank])

    @property
    def total(self) -> int:
        """Rows of the global batch."""
        return sum(self.sizes)

    @property
    def weight(self) -> float:
        """Factor on this rank's mean loss so that DDP's averaged gradients are those of the
        mean loss over the global batch: ``world * rows / total`` (the factors sum to world).
        """
        return len(self.sizes) * self.rows / self.total


_current: BatchShard | None = None


@contextlib.contextmanager
def batch_shard(shard: BatchShard) -> Iterator[BatchShard]:
    """Declare, for the block, how the global batch being trained on is split."""
    global _current
    previous, _current = _current, shard
    try:
        yield shard
    finally:
        _current = previous


def split_batch(rows: np.ndarray) -> tuple[BatchShard, np.ndarray]:
    """This rank's slice of a global batch's ``rows``, and how the batch is split.

    A rank left without rows gets the batch's first row as a stand-in (weight 0).
    """
    shard = BatchShard(tuple(shard_sizes(len(rows), world_size())), rank())
    if shard.rows == 0:
        return shard, rows[:1]
    return shard, rows[shard.offset : shard.offset + shard.rows]


class Objectives(nn.Module):
    """The tasks' losses as one module (they share the network): what DDP wraps."""

    def __init__(self, losses: list[nn.Module]) -> None:
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, task: int, features: Any, labels: torch.Tensor) -> torch.Tensor:
        return self.losses[task](features, labels)


def wrap_losses(losses: list[nn.Module], device: torch.device) -> nn.Module:
    """The losses as one module; in DDP when distributed, so that backward all-reduces
    (averages) the gradients of everything trained, the network and the losses' own heads.

    ``find_unused_parameters``: a step trains one task, so other tasks' heads (and parts of
    the backbone no loss uses, such as BERT's pooler) get no gradient on it; DDP leaves the
    gradients of parameters unused on every rank untouched, as one process would.
    """
    module = Objectives(losses)
    if not is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda" and device.index != local_rank():
        raise UsageError(f"under torchrun rank {rank()} trains on cuda:{local_rank()}, but the "
                         f"encoder is on {device}; create it with device=f'cuda:{{LOCAL_RANK}}'")
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


def row_offset() -> int:
    """Index of this rank's first row in :func:`gather_with_grad`'s output.

    0 when not distributed, and on a rank that runs on a stand-in row (whose rows are not
    gathered; its loss is weighted 0).
    """
    shard = _current
    if not is_distributed() or shard is None or shard.rows == 0:
        return 0
    return shard.offset


def gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` (``(rows, ...)``), concatenated in rank order, differentiably.

    Gradients of the result flow back to each rank's own rows (summed over the ranks that
    use them), as sentence-transformers' ``gather_across_devices`` does. Ranks may hold
    different row counts; inside :func:`batch_shard` a stand-in row is left out. Not
    distributed: ``t`` itself.
    """
    if not is_distributed():
        return t
    import torch.distributed.nn.functional as dist_nn

    shard = _current
    if shard is not None:
        sizes = list(shard.sizes)
        t = t[: shard.rows]  # (rows, ...): a stand-in row is not part of the batch
    else:
        sizes = [int(n) for n in gather_objects(int(t.shape[0]))]
    longest = max(sizes)
    pad = t.new_zeros((longest - t.shape[0], *t.shape[1:]))
    parts = dist_nn.all_gather(torch.cat([t, pad]))  # world x (longest, ...)
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])  # (sum sizes, ...)


def destroy() -> None:
    """Leave the process group (after a last barrier), if one was joined."""
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.barrier()
        dist.destroy_process_group()


def check_launch(nproc: int, batch_size: int, device: str | None) -> None:
    """Refuse settings with which ``nproc`` processes on this machine cannot train.

    Raises:
        UsageError: ``batch_size`` does not split evenly, or CUDA has fewer devices than
            processes, or ``device`` names one GPU.
    """
    if nproc < 1:
        raise UsageError(f"--nproc must be >= 1, got {nproc}")
    if batch_size % nproc:
        raise UsageError(f"--batch-size {batch_size} is the global batch, split among {nproc} "
                         f"processes; make it a multiple of {nproc}")
    if device is not None and device.startswith("cuda:"):
        raise UsageError(f"--device {device} with --nproc: each process takes the GPU of its "
                         "rank; pass --device cuda")
    if device is not None and not device.startswith("cuda"):
        _warn_over_cores(nproc)
        return
    count = torch.cuda.device_count()
    if (device is not None or count > 0) and count < nproc:  # no device given: CUDA if any
        raise UsageError(f"--nproc {nproc} needs {nproc} CUDA devices, this machine has {count}; "
                         "lower --nproc or train on the CPU with --device cpu")
    if count == 0:
        _warn_over_cores(nproc)


def _warn_over_cores(nproc: int) -> None:
    """CPU processes beyond the cores share them, and each gloo step waits for the slowest."""
    from sbert.runtime import available_cores

    cores = available_cores()
    if nproc > cores:
        logger.warning("--nproc %d on %d cores: the processes share the cores and train "
                       "slower than --nproc %d would", nproc, cores, cores)


def launch(nproc: int, module_args: list[str], device: str | None = None) -> int:
    """Run ``python -m sbert MODULE_ARGS`` in ``nproc`` processes under torchrun, here.

    On the CPU each process gets ``cores / nproc`` threads. torchrun picks a free port
    (``--standalone``) and stops every process when one fails.

    Returns:
        torchrun's exit code.
    """
    import subprocess
    import sys

    from sbert.runtime import threads_per_worker

    env = dict(os.environ)
    cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    if cpu:
        env["OMP_NUM_THREADS"] = str(threads_per_worker(nproc))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "sbert", *module_args]
    logger.info("launching %s", " ".join(command))
    return subprocess.call(command, env=env)
