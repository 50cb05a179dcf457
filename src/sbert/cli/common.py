"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from sbert.backends import BACKENDS
from sbert.models import DEFAULT_MODEL

F = TypeVar("F", bound=Callable[..., Any])

_BACKEND_KEY = "sbert.backend_options"


def model_option(func: F) -> F:
    """``--model`` (default: all-MiniLM-L6-v2), ``--device`` and :func:`backend_flags`."""
    out: Any = backend_flags(func)
    out = click.option(
        "--device", default=None, help="torch device (cpu, cuda...); default: CUDA if available."
    )(out)
    out = click.option(
        "--model", "-m", "model", default=DEFAULT_MODEL, show_default=True,
        help="Model folder, bundled model name or hub id.",
    )(out)
    return cast(F, out)


def backend_flags(func: F) -> F:
    """``--backend``, ``--quantized``, ``--precision`` and ``--threads`` for a command.

    They do not reach the command's function: they are kept in the click context for
    :func:`load_encoder` (or :func:`current_backend_options`), so a command that loads its
    model through it takes them without a change to its signature.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, backend: str | None, quantized: bool, threads: int | None,
                precision: str, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.meta[_BACKEND_KEY] = backend_options(backend, quantized, threads, precision)
        return func(*args, **kwargs)

    out: Any = wrapper
    out = click.option(
        "--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
        help="torch backend: bf16 autocast (fast on CPUs with AVX512-BF16/AMX).",
    )(out)
    out = click.option(
        "--threads", default=None, type=click.IntRange(min=1),
        help="CPU threads for the forward pass; default: the cores this process may use.",
    )(out)
    out = click.option(
        "--quantized", is_flag=True,
        help="Use the int8 ONNX graph (implies --backend onnx; see `sbert export onnx`).",
    )(out)
    out = click.option(
        "--backend", type=click.Choice(BACKENDS), default=None,
        help="torch (default) or onnx (onnxruntime; needs an onnx/ graph in the folder).",
    )(out)
    return cast(F, out)


def backend_options(
    backend: str | None, quantized: bool, threads: int | None, precision: str = "fp32"
) -> dict[str, Any]:
    """Encoder keyword arguments for ``--backend/--quantized/--threads/--precision``."""
    from sbert.errors import UsageError

    if quantized and backend == "torch":
        raise UsageError("--quantized needs the ONNX backend; use --backend onnx --quantized")
    if precision != "fp32":
        if backend == "onnx" or quantized:
            raise UsageError("--precision bf16 is for the torch backend; ONNX has --quantized")
        return {"precision": precision, **({"threads": threads} if threads else {})}
    options: dict[str, Any] = {}
    if backend is not None or quantized:
        options["backend"] = backend or "onnx"
    if quantized:
        options["quantized"] = True
    if threads is not None:
        options["threads"] = threads
    return options


def current_backend_options() -> dict[str, Any]:
    """The backend options given to the running command (empty outside a command)."""
    ctx = click.get_current_context(silent=True)
    found: dict[str, Any] = {} if ctx is None else ctx.meta.get(_BACKEND_KEY, {})
    return dict(found)


def load_encoder(model: str, device: str | None = None, **options: Any) -> Any:
    """Load a :class:`~sbert.encoder.SentenceEncoder` with the command's backend options."""
    from sbert.encoder import SentenceEncoder
    from sbert.errors import UsageError

    options = {**current_backend_options(), **options}
    if options.get("backend") == "onnx" and device not in (None, "cpu"):
        raise UsageError(f"--backend onnx runs on the CPU; drop --device {device}")
    return SentenceEncoder(model, device=device, **options)
