"""What ``sbert serve`` is asked to run: one frozen settings object, passed whole to workers."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

from sbert.errors import UsageError
from sbert.models import DEFAULT_MODEL
from sbert.runtime import available_cores

API_KEY_ENV = "SBERT_API_KEY"
CONFIG_ENV = "SBERT_SERVE_CONFIG"  # the settings, as JSON, for worker processes
LOG_LEVEL_ENV = "SBERT_SERVE_LOG_LEVEL"  # the command line's log level, for worker processes


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server.

    Args:
        model: model folder, bundled model name or hub id.
        backend: ``"torch"`` or ``"onnx"``.
        quantized: run the int8 ONNX graph.
        precision: torch ``"fp32"`` or ``"bf16"``.
        device: torch device; default: CUDA when available.
        threads: CPU threads of the forward pass; default: the backend's.
        index: an index folder to search (``/v1/search``) and edit (``/v1/index/...``).
        api_key: the key every ``/v1`` call must bring as ``Authorization: Bearer KEY``;
            None: no key is asked for, and the index cannot be changed over HTTP.
        max_batch_tokens: padded tokens (batch size x longest sequence) per forward pass.
        max_batch_size: sentences per forward pass.
        max_inputs: sentences per request.
        max_input_chars: characters per sentence (longer: 413).
        max_queue: sentences waiting for the model; more: 429 with ``Retry-After``.
        max_body_bytes: request body size (larger: 413).
        truncate: cut inputs longer than the model's maximum length (and count them);
            False: refuse them with 413.
        model_name: the name answered in ``model`` fields; default: ``model``'s.
        cors_origins: web origins whose pages may call the API from a browser
            (``https://app.example.com``, or ``*`` for any); none: no CORS headers.
    """

    model: str = DEFAULT_MODEL
    backend: str = "torch"
    quantized: bool = False
    precision: str = "fp32"
    device: str | None = None
    threads: int | None = None
    index: str | None = None
    api_key: str | None = None
    max_batch_tokens: int = 4096
    max_batch_size: int = 32
    max_inputs: int = 2048
    max_input_chars: int = 100_000
    max_queue: int = 4096
    max_body_bytes: int = 64 * 1024 * 1024
    truncate: bool = True
    model_name: str | None = None
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))  # JSON gives lists
        for name in ("max_batch_tokens", "max_batch_size", "max_inputs", "max_input_chars",
                     "max_queue", "max_body_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if self.max_queue < self.max_inputs:
            raise UsageError(f"--max-queue ({self.max_queue}) must be at least --max-inputs "
                             f"({self.max_inputs}): a full request must fit in the queue")
        if self.api_key is not None and not self.api_key.strip():
            raise UsageError("the API key is empty; give a key or leave it out")

    @property
    def served_name(self) -> str:
        """The model's name in answers (``model`` fields and ``/v1/models``)."""
        if self.model_name:
            return self.model_name
        return os.path.basename(os.path.normpath(self.model)) or self.model

    def encoder_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~sbert.encoder.SentenceEncoder` for this backend."""
        options: dict[str, Any] = {"backend": self.backend}
        if self.device is not None:
            options["device"] = self.device
        if self.threads is not None:
            options["threads"] = self.threads
        if self.quantized:
            options["quantized"] = True
        if self.backend == "torch":  # always: left out, the encoder would choose one
            options["precision"] = self.precision
        if self.backend == "torch" and self.device in (None, "cpu"):
            # one batch per core, each on its own thread: the event loop's work does not
            # stall a batch at an intra-op barrier (a lone batch still gets every core)
            options["streams"] = self.threads or available_cores()
        return options

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        """The settings a parent process put in ``SBERT_SERVE_CONFIG`` (worker processes)."""
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise UsageError(f"{CONFIG_ENV} is not set; start the server with `sbert serve`")
        return cls(**json.loads(raw))
