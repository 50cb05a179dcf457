"""The process sbert runs in: cores, the one thread policy, optional extras, the cache folder.

Thread counts are decided here and nowhere else: :func:`resolve_threads` turns a caller's
``threads`` (or None) into a count, and :func:`set_torch_threads` is the only place that
changes torch's process-wide intra-op pool, and only when a caller asks for it.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from sbert.errors import MissingExtraError, UsageError

logger = logging.getLogger(__name__)

# environment variables sbert reads
CACHE_ENV = "SBERT_CACHE"
# the log lines of the command line, and of the server's worker processes
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

# a thread count above this many times the cores is clamped: more only adds switching
MAX_THREADS_PER_CORE = 4
# memory a worker process needs, as a multiple of the model's weights (weights, activations,
# the tokenizer and the interpreter)
WORKER_MEMORY_FACTOR = 3


def available_cores() -> int:
    """The number of cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None) -> int:
    """``threads`` if given (checked), else every core this process may use."""
    if threads is None:
        return available_cores()
    if threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")
    limit = MAX_THREADS_PER_CORE * available_cores()
    if threads > limit:
        logger.warning("threads=%d clamped to %d (%d x the %d available cores)",
                       threads, limit, MAX_THREADS_PER_CORE, available_cores())
        return limit
    return threads


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Threads each of ``workers`` processes may use so that together they fit the cores."""
    if workers < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    return max(1, (cores or available_cores()) // workers)


def available_memory() -> int | None:
    """Bytes of memory available for new processes (``MemAvailable``), None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def cap_workers(requested: int, bytes_per_worker: int | None = None) -> int:
    """``requested`` worker processes, capped by the available cores and memory.

    Each worker gets at least one core; with ``bytes_per_worker`` given and the available
    memory known, the workers must also fit in it (at least one worker is always allowed).
    A cap is logged as one warning that says why.
    """
    if requested < 1:
        raise UsageError(f"workers must be >= 1, got {requested}")
    workers, reasons = requested, []
    cores = available_cores()
    if workers > cores:
        workers = cores
        reasons.append(f"{cores} cores available")
    memory = available_memory() if bytes_per_worker and bytes_per_worker > 0 else None
    if memory is not None and bytes_per_worker:
        fit = max(1, memory // bytes_per_worker)
        if workers > fit:
            workers = fit
            reasons.append(f"{memory / 2**30:.1f} GiB memory available, about "
                           f"{bytes_per_worker / 2**30:.1f} GiB per worker")
    if workers < requested:
        logger.warning("workers=%d capped to %d: %s", requested, workers, "; ".join(reasons))
    return workers


def set_torch_threads(threads: int) -> None:
    """Set torch's intra-op thread count (process-wide: torch has one pool)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an error that names the extra providing it.

    Args:
        module: dotted module name, e.g. ``"onnxruntime"``.
        extra: the ``sbert`` extra that installs it, e.g. ``"onnx"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{module!r} is required for this feature; install it with "
            f"`pip install 'sbert[{extra}]'`"
        ) from err


def has_module(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    import importlib.util
    import sys

    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # an import hook that refuses it
        return False
    except ValueError:  # imported already, without a spec
        return module in sys.modules


def cache_dir() -> Path:
    """Where sbert unpacks models and keeps exports (``$SBERT_CACHE`` or ``~/.cache/sbert``)."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "sbert"))


def release_free_memory() -> bool:
    """Give memory freed by the C allocator back to the system (glibc ``malloc_trim``).

    Tensors of many different sizes (a server's batches) leave glibc's heaps fragmented: the
    resident size climbs although the memory is free. Returns whether it ran (False where the
    C library has no ``malloc_trim``).
    """
    import ctypes
    import ctypes.util

    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _LIBC = False
    trim = getattr(_LIBC, "malloc_trim", None) if _LIBC else None
    if trim is None:
        return False
    trim(0)
    return True


_LIBC: Any = None
