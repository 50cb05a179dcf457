"""Options and helpers shared by the subcommands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def model_option(func: F) -> F:
    """``--model`` (default: the bundled all-MiniLM-L6-v2) and ``--device``."""
    func = click.option(
        "--device", default=None, help="torch device (cpu, cuda...); default: CUDA if available."
    )(func)
    func = click.option(
        "--model", "-m", "model", default="all-MiniLM-L6-v2", show_default=True,
        help="Model folder, bundled model name or hub id.",
    )(func)
    return func


def load_encoder(model: str, device: str | None = None, **options: Any) -> Any:
    """Load a :class:`~sbert.encoder.SentenceEncoder`; errors become one-line messages."""
    from sbert.encoder import SentenceEncoder

    return SentenceEncoder(model, device=device, **options)
