"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from sbert.backends.auto import BACKEND_CHOICES, PRECISION_CHOICES
from sbert.errors import UsageError
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
    def wrapper(*args: Any, backend: str, quantized: bool, threads: int | None,
                precision: str, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.meta[_BACKEND_KEY] = backend_options(backend, quantized, threads, precision)
        return func(*args, **kwargs)

    out: Any = wrapper
    out = click.option(
        "--precision", type=click.Choice(PRECISION_CHOICES), default="auto", show_default=True,
        help="fp32, bf16 (torch autocast; fast on CPUs with AVX512-BF16/AMX only) or fp16 "
             "(torch autocast, for CUDA GPUs); auto: bf16 where the CPU has AMX, else fp32.",
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
        "--backend", type=click.Choice(BACKEND_CHOICES), default="auto", show_default=True,
        help="torch or onnx (onnxruntime; a folder without an onnx/ graph is exported once "
             "into the cache); auto: the fastest exact path on this machine (`sbert info` "
             "shows it; SBERT_BACKEND pins it).",
    )(out)
    return cast(F, out)


def backend_options(
    backend: str | None, quantized: bool, threads: int | None, precision: str | None = None
) -> dict[str, Any]:
    """Encoder keyword arguments for ``--backend/--quantized/--threads/--precision``.

    ``auto`` (or None) is left out: the encoder's default chooses.
    """
    from sbert.errors import UsageError

    if quantized and backend == "torch":
        raise UsageError("--quantized needs the ONNX backend; use --backend onnx --quantized")
    if precision in ("bf16", "fp16") and (backend == "onnx" or quantized):
        raise UsageError(f"--precision {precision} is for the torch backend; ONNX has "
                         "--quantized")
    options: dict[str, Any] = {}
    if quantized:
        options["backend"] = "onnx"
        options["quantized"] = True
    elif backend not in (None, "auto"):
        options["backend"] = backend
    if precision not in (None, "auto"):
        options["precision"] = precision
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


def plural(n: int, word: str) -> str:
    """``"1 shard"``, ``"2 shards"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_not_input(output: Path | None, *inputs: Path) -> None:
    """Refuse an output path that is one of the command's input files (written over, the
    input would be lost)."""
    if output is None or not output.exists():
        return
    for given in inputs:
        if given.exists() and output.resolve() == given.resolve():
            raise UsageError(f"-o {output} is the input file; write the output to another path")


def drop_blank(sentences: list[str], source: Path) -> list[int]:
    """Positions of the sentences that are not blank (a text file's empty lines are rows),
    saying how many were left out: blank texts are all alike, so they would top a mining,
    form a cluster and answer every empty query."""
    kept = [i for i, text in enumerate(sentences) if text.strip()]
    if len(kept) < len(sentences):
        click.echo(f"{source}: left out {plural(len(sentences) - len(kept), 'blank text')}",
                   err=True)
    return kept
