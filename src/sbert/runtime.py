"""The process sbert runs in: cores, the one thread policy, optional extras, the cache folder.

Thread counts are decided here and nowhere else: :func:`resolve_threads` turns a caller's
``threads`` (or None) into a count, and :func:`set_torch_threads` is the only place that
changes torch's process-wide intra-op pool, and only when a caller asks for it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from sbert.errors import MissingExtraError, UsageError

# environment variables sbert reads
CACHE_ENV = "SBERT_CACHE"


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
    return threads


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Threads each of ``workers`` processes may use so that together they fit the cores."""
    if workers < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    return max(1, (cores or available_cores()) // workers)


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

    return importlib.util.find_spec(module) is not None


def cache_dir() -> Path:
    """Where sbert unpacks models and keeps exports (``$SBERT_CACHE`` or ``~/.cache/sbert``)."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "sbert"))
