"""``sbert serve``: an OpenAI-compatible embedding server (see docs/serve.md)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from sbert.backends.auto import BACKEND_CHOICES, PRECISION_CHOICES
from sbert.models import DEFAULT_MODEL


@click.command()
@click.argument("model", default=DEFAULT_MODEL, required=False)
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="auto", show_default=True,
              help="torch or onnx (onnxruntime); auto: the fastest exact path on this machine "
              "(`sbert info` shows it).")
@click.option("--quantized", is_flag=True, help="Run the int8 ONNX graph (implies --backend onnx).")
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="auto",
              show_default=True, help="fp32, bf16 or fp16 (torch autocast; fp16 for CUDA "
              "GPUs); auto: bf16 on a CPU with AMX, else fp32.")
@click.option("--device", default=None, help="torch device (cpu, cuda...); default: CUDA if "
              "available.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads of the forward pass; default: the backend's.")
@click.option("--index", "index", type=click.Path(path_type=Path), default=None,
              help="An index folder (`sbert index create`): adds /v1/search and /v1/index/*.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--api-key", default=None, envvar="SBERT_API_KEY", show_envvar=True,
              help="Every /v1 call must send 'Authorization: Bearer KEY'; also allows index "
              "changes over HTTP.")
@click.option("--max-batch-tokens", default=4096, show_default=True, type=click.IntRange(min=1),
              help="Padded tokens (sentences x longest) per forward pass.")
@click.option("--max-batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Sentences per forward pass.")
@click.option("--max-inputs", default=2048, show_default=True, type=click.IntRange(min=1),
              help="Sentences per request (more: 422).")
@click.option("--max-input-chars", default=100_000, show_default=True,
              type=click.IntRange(min=1), help="Characters per sentence (more: 413).")
@click.option("--max-queue", default=4096, show_default=True, type=click.IntRange(min=1),
              help="Sentences waiting for the model (more: 429 with Retry-After).")
@click.option("--truncate/--no-truncate", default=True, show_default=True,
              help="Cut inputs over the model's maximum length (counted in /metrics), or "
              "refuse them with 413.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Server processes sharing the port, each with its own copy of the model.")
@click.option("--shutdown-timeout", default=30.0, show_default=True,
              type=click.FloatRange(min=0),
              help="Seconds SIGTERM waits for open connections before it cuts them (0: no "
              "limit).")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="A web origin whose pages may call the API from a browser (repeat it; "
              "'*' for any). Default: none.")
@click.option("--model-name", default=None,
              help="The name answered in 'model' fields; default: MODEL's last part.")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (costs time under load).")
def serve(model: str, backend: str, quantized: bool, precision: str, device: str | None,
          threads: int | None, index: Path | None, host: str, port: int, api_key: str | None,
          max_batch_tokens: int, max_batch_size: int, max_inputs: int, max_input_chars: int,
          max_queue: int, truncate: bool, workers: int, shutdown_timeout: float,
          cors_origins: tuple[str, ...], model_name: str | None, access_log: bool) -> None:
    """Serve MODEL (default: the bundled all-MiniLM-L6-v2) over HTTP, OpenAI-compatible.

    POST /v1/embeddings takes OpenAI's body; concurrent requests share forward passes.
    GET /health is 200 once the model is loaded and warmed, GET /metrics is Prometheus,
    GET / is a search page (with --index). SIGTERM finishes the requests in flight, then
    exits 0; a model that fails to load exits 1.
    """
    from sbert.backends.auto import path_for
    from sbert.cli.common import backend_options
    from sbert.errors import UsageError
    from sbert.folder import read_folder
    from sbert.models import resolve_model
    from sbert.serve.config import ServeConfig
    from sbert.serve.server import check_port, run_server

    if logging.getLogger().level > logging.INFO:  # say when the model is ready (unless -q)
        logging.getLogger("sbert.serve").setLevel(logging.INFO)
    options = backend_options(backend, quantized, threads, precision)
    if options.get("backend") == "onnx" and device not in (None, "cpu"):
        raise UsageError(f"--backend onnx runs on the CPU; drop --device {device}")
    spec = read_folder(resolve_model(model))  # a wrong model is one line now, not a failed start
    # decided here, once: every worker process runs the same path, and /health names it
    path = path_for(spec, backend=options.pop("backend", "auto"),
                    precision=options.pop("precision", "auto"), device=device, options=options)
    if index is not None and not (index / "index.sqlite").is_file():
        raise UsageError(f"{index} is not an index folder (no index.sqlite); make one with "
                         "`sbert index create`")
    config = ServeConfig(model=model, backend=path.backend, quantized=quantized,
                         precision="fp32" if path.backend == "onnx" else path.precision,
                         device=device, threads=threads,
                         index=None if index is None else os.fspath(index), api_key=api_key,
                         max_batch_tokens=max_batch_tokens, max_batch_size=max_batch_size,
                         max_inputs=max_inputs, max_input_chars=max_input_chars,
                         max_queue=max_queue, truncate=truncate, model_name=model_name,
                         cors_origins=cors_origins)
    check_port(host, port)
    click.echo(f"sbert serve: {config.served_name} ({path.describe()}) on http://{host}:{port} "
               "(loading; GET /health says when ready)", err=True)
    sys.exit(run_server(config, host, port, workers, access_log=access_log,
                        shutdown_timeout=shutdown_timeout or None))
