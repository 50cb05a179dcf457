"""``sbert encode``, ``sbert similarity`` and ``sbert info``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click

from sbert.cli.common import check_not_input, load_encoder, model_option
from sbert.errors import UsageError
from sbert.similarity import SIMILARITY_FNS, pairwise_similarity


@click.command()
@click.argument("input_file", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True,
              help="Output file: .npy, .parquet or .jsonl; with --ray, a folder of Parquet "
                   "shards.")
@click.option("--column", "-c", default=None,
              help="Text column (CSV/TSV; Parquet with --ray) or key (JSONL); with --ray the "
                   "default is 'text'.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--normalize/--no-normalize", default=False, help="L2-normalize the embeddings.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Encoding processes, each with cores/N threads, capped by the cores and "
                   "memory available; output order is kept.")
@click.option("--ray", "ray_address", default=None, is_flag=False, flag_value="local",
              metavar="[local|ADDRESS]",
              help="Encode with Ray Data: on this machine (local, the default value) or on the "
                   "Ray cluster at ADDRESS. INPUT_FILE may be a folder of .parquet/.jsonl/.txt "
                   "shards; --output is then a folder with one Parquet file per input shard "
                   "(input columns, in input order, plus embedding). A rerun skips the "
                   "shards already written. Put --ray last or give it a value. Needs `pip "
                   "install 'sbert[ray]'`.")
@click.option("--actors", default=None, type=click.IntRange(min=1),
              help="With --ray: encoder actors (default: as many as the cluster's CPUs fit). "
                   "With --device cuda each actor takes one GPU.")
@click.option("--id-column", default=None,
              help="With --ray: write only this column, the text and the embedding (text "
                   "files always get a 'line' number column).")
@model_option
def encode(input_file: Path, output: Path, column: str | None, batch_size: int,
           normalize: bool, workers: int, ray_address: str | None, actors: int | None,
           id_column: str | None, model: str, device: str | None) -> None:
    """Embed every sentence of INPUT_FILE (.txt one per line, .csv/.tsv/.jsonl with --column).

    With --ray, INPUT_FILE may be a folder of shards and the output is a folder of Parquet
    files.
    """
    from sbert.data.text import OUTPUT_SUFFIXES, read_sentences, write_embeddings

    if ray_address is not None:
        _encode_ray(input_file, output, ray_address, column, id_column, actors, batch_size,
                    normalize, workers, model, device)
        return
    if actors is not None or id_column is not None:
        raise UsageError("--actors and --id-column go with --ray; add --ray or drop them")
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"output {output}: unknown format; use one of {OUTPUT_SUFFIXES}")
    check_not_input(output, input_file)
    sentences = read_sentences(input_file, column)
    if workers > 1:
        emb = _encode_workers(model, device, sentences, workers, batch_size, normalize)
    else:
        encoder = load_encoder(model, device)
        emb = encoder.encode(sentences, batch_size=batch_size, normalize=normalize)
    write_embeddings(output, emb, sentences)
    click.echo(f"wrote {emb.shape[0]} x {emb.shape[1]} embeddings to {output}", err=True)


def _encode_ray(source: Path, out_dir: Path, address: str, column: str | None,
                id_column: str | None, actors: int | None, batch_size: int, normalize: bool,
                workers: int, model: str, device: str | None) -> None:
    from sbert.cli.common import current_backend_options, plural
    from sbert.runtime import require

    if workers > 1:
        raise UsageError("--workers and --ray: Ray runs the encoders; use --actors instead")
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        # without -v, Ray Data's INFO lines (plans, and progress where stderr is no terminal)
        # are noise on the console
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")
    require("ray", "ray")
    from sbert.distributed import encode_files

    options = current_backend_options()
    if device not in (None, "cpu"):
        options["num_gpus"] = 1  # one GPU per actor
        options["device"] = device
    summary = encode_files(source, out_dir, model, column=column or "text",
                           id_column=id_column, address=address, actors=actors,
                           batch_size=batch_size, normalize=normalize, **options)
    skipped = f", skipped {len(summary.skipped)} finished" if summary.skipped else ""
    click.echo(f"wrote {plural(len(summary.written), 'shard')} "
               f"({plural(summary.rows, 'row')}) to {out_dir}{skipped}", err=True)


def _encode_workers(model: str, device: str | None, sentences: list[str], workers: int,
                    batch_size: int, normalize: bool) -> Any:
    from tqdm.auto import tqdm

    from sbert.cli.common import current_backend_options
    from sbert.errors import WorkerError
    from sbert.models import resolve_model
    from sbert.parallel import encode_parallel

    options = current_backend_options()
    if "threads" in options:
        raise UsageError("--threads and --workers: each worker gets cores/N threads; drop one")
    if device not in (None, "cpu"):
        raise UsageError("--workers splits the CPU cores; drop --device or use one worker")
    path = str(resolve_model(model))  # unpack a bundled model once, not in every worker
    with tqdm(total=len(sentences), desc="encode", unit="sent",
              disable=len(sentences) < 2048) as bar:
        try:
            return encode_parallel(path, sentences, workers, batch_size, normalize,
                                   progress=bar.update, device="cpu", **options)
        except WorkerError as err:
            raise UsageError(str(err)) from err


@click.command()
@click.argument("first")
@click.argument("second")
@click.option("--files", is_flag=True,
              help="FIRST and SECOND are files of sentences, compared line by line.")
@click.option("--column", "-c", default=None, help="Text column for CSV/TSV/JSONL files.")
@click.option("--function", "-f", default=None, type=click.Choice(SIMILARITY_FNS), metavar="FN",
              help=f"{', '.join(SIMILARITY_FNS)}; default: the model's similarity_fn_name.")
@model_option
def similarity(first: str, second: str, files: bool, column: str | None, function: str | None,
               model: str, device: str | None) -> None:
    """Similarity of two sentences, or of two files of sentences line by line.

    Uses the model's similarity function (cosine unless its folder names dot, euclidean or
    manhattan; the last two as negative distances) and names it on stderr.
    """
    from sbert.data.text import read_sentences

    if files:
        left, right = read_sentences(first, column), read_sentences(second, column)
        if len(left) != len(right):
            raise UsageError(f"{first} has {len(left)} sentences but {second} has {len(right)}")
    else:
        left, right = [first], [second]
    encoder = load_encoder(model, device)
    fn = function or encoder.similarity_fn_name
    scores = pairwise_similarity(encoder.encode(left), encoder.encode(right), fn)  # (n,)
    source = "--function" if function else "the model's similarity_fn_name"
    click.echo(f"similarity function: {fn} ({source})", err=True)
    for i, score in enumerate(scores):
        if files:
            click.echo(f"{score:.4f}\t{left[i]}\t{right[i]}")
        else:
            click.echo(f"{score:.4f}")


@click.command()
@model_option
def info(model: str, device: str | None) -> None:
    """Summary of a model and of this machine: the model's architecture, dimension, pooling,
    max length and parameters; the CPU, its ISA features, cores, CUDA devices, and the path
    (backend and precision) that runs fastest here.
    """
    import json

    from sbert.folder import read_folder
    from sbert.models import resolve_model

    folder = resolve_model(model)
    source_spec = read_folder(folder)
    encoder = load_encoder(model, device)
    spec = encoder.spec
    cfg_file = spec.transformer_path / "config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8")) if cfg_file.exists() else {}
    if encoder.backend_name == "torch":
        n_params = f"{sum(p.numel() for p in encoder.network.parameters()):,}"
    else:
        n_params = f"{_onnx_parameters(encoder.backend.path):,} (ONNX graph)"
    rows = [
        ("model", encoder.name),
        ("folder", str(folder)),
        *_cached_graph(encoder, folder),
        ("format", "sentence-transformers" if spec.is_sentence_transformers else "Hugging Face"),
        ("architecture", ",".join(cfg.get("architectures") or [cfg.get("model_type", "?")])),
        ("layers", str(cfg.get("num_hidden_layers", "?"))),
        ("hidden size", str(cfg.get("hidden_size", "?"))),
        ("dimension", str(encoder.dimension)),
        ("pooling", "+".join(spec.pooling.modes)),
        ("dense layers", str(len(spec.dense))),
        ("normalize", str(spec.normalize).lower()),
        ("max_seq_length", str(encoder.max_seq_length)),
        ("parameters", n_params),
        ("loaded with", _loaded_with(encoder)),
        ("backends", ", ".join(backends_of(spec))),
    ]
    _table(rows)
    click.echo("\nhardware")
    _table(hardware_rows(source_spec, device), indent="  ")


def _cached_graph(encoder: Any, folder: Path) -> list[tuple[str, str]]:
    """The ``onnx graph`` row when the encoder runs the export of ``folder`` that the sbert
    cache keeps (the folder has no graph of its own), else none."""
    if encoder.backend_name != "onnx" or encoder.path == folder:
        return []
    return [("onnx graph", f"{encoder.backend.path} (exported from the folder into the "
                           "sbert cache)")]


def _loaded_with(encoder: Any) -> str:
    """``torch bf16 (why)`` or ``onnx (onnx/model.onnx) fp32 (why)``."""
    choice = encoder.path_choice
    if encoder.backend_name != "onnx":
        return str(choice.describe())
    graph = encoder.backend.path.relative_to(encoder.spec.root)
    return f"onnx ({graph}) {choice.precision} ({choice.reason})"


def _table(rows: list[tuple[str, str]], indent: str = "") -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{indent}{key:<{width}}  {value}")


def hardware_rows(spec: Any, device: str | None = None) -> list[tuple[str, str]]:
    """``sbert info``'s hardware section: CPU, ISA features (and caps), cores, CUDA devices,
    and the path ``backend="auto"`` picks for ``spec`` here (SBERT_* pins aside)."""
    from sbert.backends.auto import path_for
    from sbert.backends.onnx.targets import int8_file_for, int8_target
    from sbert.runtime.hardware import ISA_FLAGS, cuda_available, detect

    hw = detect(cuda=cuda_available())

    def flags(features: frozenset[str]) -> str:
        return " ".join(f for f in ISA_FLAGS if f in features) or "none known"

    caps = "none"
    if hw.caps:
        caps = (f"{', '.join(hw.caps)} (the CPU has: {flags(hw.cpu_features)}; onnxruntime "
                "ignores these caps)")
    best = path_for(spec, device=device, hw=hw, pins=False)
    pins = [f"{k}={os.environ[k]}" for k in ("SBERT_BACKEND", "SBERT_PRECISION")
            if os.environ.get(k)]
    return [
        ("cpu", hw.model),
        ("vendor", f"{hw.vendor or 'unknown'} ({hw.arch}, class {hw.machine_class})"),
        ("isa", flags(hw.features)),
        ("caps", caps),
        ("cores", f"{hw.cores} available to this process"),
        ("cuda", ", ".join(hw.cuda) or "none"),
        ("recommended", best.describe() + (f"; set here: {', '.join(pins)}" if pins else "")),
        ("int8", f"{int8_file_for(hw)} (target {int8_target(hw)}; only with --quantized, "
                 "which changes results)"),
    ]


def _onnx_parameters(path: Path) -> int:
    """Number of weights in an ONNX graph's initializers."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    total = 0
    for init in graph.initializer:
        count = 1
        for dim in init.dims:
            count *= dim
        total += count
    return total


def backends_of(spec: object) -> list[str]:
    """Backends a folder supports: torch with weights, onnx with a graph."""
    out = []
    if getattr(spec, "has_torch_weights", False):
        out.append("torch")
    if getattr(spec, "onnx_files", None):
        out.append("onnx (" + ", ".join(spec.onnx_files) + ")")  # type: ignore[attr-defined]
    return out
