"""Import guards for optional extras: a missing extra names the ``pip install`` that fixes it."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """Raised when a feature needs an optional dependency that is not installed."""


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
