"""Encoding a corpus on Ray Data: a pool of actors, each holding one encoder.

:func:`encode_dataset` adds an ``embedding`` column to any ``ray.data.Dataset``;
:func:`encode_files` streams a file or a folder of shards through it and writes one Parquet
output per input shard, resuming after a crash. Ray does the scheduling, streaming and
back-pressure; sbert only says what each actor does with a batch.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbert.distributed.shards import (
    EMBEDDING_COLUMN,
    LINE_COLUMN,
    Shard,
    check_columns,
    has_no_rows,
    list_shards,
    stale_partials,
)
from sbert.errors import SbertError, UsageError
from sbert.runtime import require

logger = logging.getLogger(__name__)

# rows handed to an actor per call; the encoder sorts them by length into batch_size batches
ROWS_PER_CALL = 8192
# the column Ray adds with each row's file, to route rows to their shard's output
_PATH_COLUMN = "path"
# seconds between the polls of Ray Data's streaming executor during sbert's jobs, once rows
# reach the driver (Ray's own: 0.1). Each poll costs the driver milliseconds of Python
# (resource and metrics updates); an encode job has a few long tasks (one actor call per
# ROWS_PER_CALL rows, seconds each), and the executor still wakes at once when a task
# finishes. On 2 cores the driver's CPU during a 1-actor encode went from 0.08 to 0.05 of a
# core (benchmarks/ray_overhead.py).
EXECUTOR_POLL_S = 1.0
# ... and until then: while the job starts, the read and split tasks that feed the actors
# wait for a poll to be scheduled one after another (Ray Data holds them back while the
# actors take the CPUs), so a slow poll starves the pool: with 1 s, the second of 2 actors
# got its first rows about 4 s after the first did (docs/distributed.md)
START_POLL_S = 0.1
# in the output folder: the settings its shards were encoded with (a rerun must match them)
SETTINGS_FILE = "_sbert_encode.json"
# options that change how a job runs, not what it writes
_RUN_OPTIONS = ("device", "threads", "num_cpus", "num_gpus", "streams")


class _EncodeBatch:
    """The actor's work: one encoder, built once, embedding the text column of each batch."""

    def __init__(self, model_path: str, model_name: str, column: str, batch_size: int,
                 normalize: bool, encoder_options: dict[str, Any]) -> None:
        import ray

        from sbert.encoder import SentenceEncoder

        options = dict(encoder_options)
        if "threads" not in options and options.get("device") in (None, "cpu"):
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
            options["threads"] = max(1, int(cpus))
        # the driver resolved the model; a node without that path resolves it itself
        model = model_path if Path(model_path).exists() else model_name
        self.encoder = SentenceEncoder(model, **options)
        self.column, self.batch_size, self.normalize = column, batch_size, normalize

    def __call__(self, batch: Any) -> Any:  # (pyarrow.Table) -> pyarrow.Table
        import numpy as np
        import pyarrow as pa

        if self.column not in batch.column_names:
            raise UsageError(f"no column {self.column!r} in the dataset; its columns are "
                             f"{batch.column_names}: choose one with column=")
        if EMBEDDING_COLUMN in batch.column_names:
            raise UsageError(f"the dataset already has a column {EMBEDDING_COLUMN!r}; drop "
                             "or rename it first")
        texts = batch.column(self.column).to_pylist()
        valid = np.array([isinstance(t, str) for t in texts], dtype=bool)  # (rows,)
        emb = self.encoder.encode([t for t in texts if isinstance(t, str)],
                                  batch_size=self.batch_size, normalize=self.normalize,
                                  show_progress=False)  # (valid rows, dim)
        full = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)  # (rows, dim)
        full[valid] = emb
        mask = None if valid.all() else pa.array(~valid)  # a null text: a null embedding
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(full.reshape(-1)), emb.shape[1],
                                                    mask=mask)
        return batch.append_column(EMBEDDING_COLUMN, vectors)


def encode_dataset(
    dataset: Any,
    model: str | Path,
    column: str = "text",
    *,
    batch_size: int = 32,
    actors: int | None = None,
    num_gpus: float = 0,
    num_cpus: float = 1,
    normalize: bool = False,
    **encoder_options: Any,
) -> Any:
    """Add an ``embedding`` column to a Ray dataset, encoded by a pool of actors.

    Each actor loads one :class:`~sbert.encoder.SentenceEncoder` once (any backend:
    ``backend="onnx"``, ``quantized=True``...) and runs it with as many threads as it has
    CPUs. Every other column is kept; the embedding is a fixed-size list of float32, null
    where the text is null (or not a string). The dataset is lazy: nothing runs until it is
    consumed or written.

    Args:
        dataset: a ``ray.data.Dataset`` with a text column.
        model: a model folder or name, resolved once here (a bundled model is unpacked on
            the driver, not in every actor).
        column: the column holding the sentences.
        batch_size: sentences per forward pass.
        actors: actors in the pool; default: Ray scales between 1 and what the cluster fits.
        num_gpus: GPUs per actor; above 0 the encoder runs on ``cuda``.
        num_cpus: CPUs per actor, and the encoder's threads.
        normalize: L2-normalize the embeddings.
        **encoder_options: passed to :class:`~sbert.encoder.SentenceEncoder`.

    Returns:
        the dataset with an ``embedding`` column.
    """
    require("ray", "ray")
    from ray.data import ActorPoolStrategy

    from sbert.folder import read_folder
    from sbert.models import resolve_model

    if actors is not None and actors < 1:
        raise UsageError(f"actors must be >= 1, got {actors}")
    options = dict(encoder_options)
    if num_gpus > 0:
        if options.get("backend") == "onnx" or options.get("quantized"):
            raise UsageError("the onnx backend runs on the CPU; drop num_gpus (or --device) or "
                             "use the torch backend")
        options.setdefault("device", "cuda")
    path = resolve_model(model)
    read_folder(path)  # a malformed folder fails here, in one line, not in every actor
    compute = ActorPoolStrategy(size=actors) if actors else ActorPoolStrategy(min_size=1)
    return dataset.map_batches(
        _EncodeBatch,
        fn_constructor_args=(str(path), str(model), column, batch_size,
                             normalize, options),
        batch_size=max(ROWS_PER_CALL, batch_size),
        batch_format="pyarrow",
        compute=compute,
        num_cpus=num_cpus,
        num_gpus=num_gpus or None,
        zero_copy_batch=True,
    )


@dataclass
class EncodeSummary:
    """What :func:`encode_files` did."""

    out_dir: Path
    written: list[Path] = field(default_factory=list)  # outputs finished by this run
    skipped: list[Path] = field(default_factory=list)  # outputs already there, left as were
    rows: int = 0  # rows encoded by this run
    seconds: float = 0.0


# the logger of Ray's notice that a cluster started by ray.init() uses token authentication
_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


class _DropAuthNotice(logging.Filter):
    """Drops Ray's "Token authentication is enabled for this Ray cluster" warning.

    Every ``--ray local`` run printed it: a cluster sbert starts itself on this machine uses
    Ray's default (tokens on), and the line tells the user of ``sbert encode`` nothing to do.
    Token authentication stays as Ray sets it; other warnings of that logger still show.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Token authentication is enabled" not in record.getMessage()


@contextlib.contextmanager
def ray_session(address: str = "local", num_cpus: int | None = None) -> Iterator[bool]:
    """Connect to Ray (``"local"``: start a cluster on this machine) unless connected.

    A Ray this process already runs is used as it is; a cluster started here is shut down
    on exit. Yields whether this call started a local cluster (one that cannot grow).
    """
    ray = require("ray", "ray")
    if ray.is_initialized():
        yield False
        return
    from sbert.runtime import available_cores

    local = address == "local"
    if not local:
        _check_reachable(address)
    notice = logging.getLogger(_AUTH_LOGGER)
    quiet = _DropAuthNotice()
    notice.addFilter(quiet)
    try:
        ray.init(address="local" if local else address,
                 num_cpus=(num_cpus or available_cores()) if local else None,
                 include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, ValueError) as err:  # no cluster there, or not an address
        raise UsageError(f"cannot join a Ray cluster at {address!r} ({err}); give the head "
                         "node's host:port (`ray start --head` prints it) or use local") from None
    finally:
        notice.removeFilter(quiet)
    try:
        yield local
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Refuse a ``host:port`` where nothing listens (Ray would retry for many minutes)."""
    host, sep, port = address.rpartition(":")
    if address == "auto" or "://" in address or not sep or not port.isdigit():
        return  # Ray's own address forms; ray.init says what is wrong with the rest
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as err:
        raise UsageError(f"nothing answers at {address} ({err.strerror or err}); start the "
                         "head node with `ray start --head` and give the address it prints, "
                         "or use local") from None


def check_resources(actors: int | None, num_cpus: float, num_gpus: float,
                    strict: bool) -> None:
    """Refuse (``strict``: a cluster started here, which cannot grow) or warn about a pool
    the cluster cannot run: Ray Data would wait for it forever, without a word.

    A pool of a fixed size must fit, and leave a CPU to the tasks that read the shards (a
    pool holding every CPU starves them); a pool Ray sizes (no ``actors``) needs room for one.
    """
    import ray

    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
    n = actors or 1
    short = []
    if num_gpus and n * num_gpus > gpus:
        short.append(f"{n} actor(s) x {num_gpus:g} GPU, and the cluster has {gpus:g} GPU")
    if num_cpus and (n * num_cpus >= cpus if actors else num_cpus > cpus):
        most = max(0, int((cpus - 1e-9) // num_cpus)) if actors else 0
        short.append(f"{n} actor(s) x {num_cpus:g} CPU, and the cluster has {cpus:g} CPU"
                     + (f", of which the reading needs one: at most {most} actor(s)"
                        if actors else ""))
    if not short:
        return
    message = f"the actors do not fit the Ray cluster ({'; '.join(short)}), so the job would wait"
    if strict:
        raise UsageError(f"{message} forever; ask for fewer --actors, leave --actors out (Ray "
                         "then sizes the pool), or drop --device on a machine without a GPU")
    logger.warning("%s until the cluster grows", message)


def check_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Refuse to add to an output folder encoded with other settings (a model, a column,
    normalize...): its finished shards would be kept as they are, mixing two encodings."""
    path = out_dir / SETTINGS_FILE
    if path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
        if isinstance(before, dict) and before != settings:
            changed = ", ".join(f"{key}: {before.get(key)!r} then, {value!r} now"
                                for key, value in settings.items() if before.get(key) != value)
            raise UsageError(f"{out_dir} holds shards encoded with other settings ({changed}); "
                             "their outputs would be kept as they are: write to another "
                             "folder, or delete this one to start again")


def record_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Write the settings file of an output folder that has none (new, or from an older
    sbert), for :func:`check_settings` to read on the next run."""
    path = out_dir / SETTINGS_FILE
    if not path.is_file():
        from sbert.files import write_json

        write_json(path, settings)


def encode_files(
    source: str | Path,
    out_dir: str | Path,
    model: str | Path,
    *,
    column: str = "text",
    id_column: str | None = None,
    address: str = "local",
    actors: int | None = None,
    batch_size: int = 32,
    normalize: bool = False,
    progress: bool = True,
    **encoder_options: Any,
) -> EncodeSummary:
    """Encode a file or a folder of shards into ``out_dir/<stem>.parquet``, one per shard.

    Inputs stream through Ray (a folder larger than memory is fine); each output keeps its
    input's row order and columns and adds ``embedding``. Outputs appear by a rename when
    complete, so a rerun after a crash skips finished shards and redoes only the rest.

    Args:
        source: a ``.parquet``, ``.jsonl`` or ``.txt`` file (one sentence per line), or a
            folder of them.
        out_dir: the output folder (created).
        model: a model folder or name.
        column: the text column of Parquet/JSONL shards (text files: their lines).
        id_column: keep only this column, the text and the embedding (text files: ``line``,
            the 1-based line number, is always added).
        address: ``"local"`` (a cluster on this machine) or a Ray cluster's address; a Ray
            already running in this process is used as it is.
        actors: encoder actors; default: as many as the cluster's CPUs fit.
        batch_size: sentences per forward pass.
        normalize: L2-normalize the embeddings.
        progress: show Ray's progress bars.
        **encoder_options: passed to :func:`encode_dataset` (``num_gpus``, ``num_cpus``,
            ``backend``, ``quantized``...).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file; the output is a folder of Parquet shards")
    shards = list_shards(source, out_dir)
    summary = EncodeSummary(out_dir, skipped=[s.output for s in shards if s.done])
    pending = [s for s in shards if not s.done]
    check_columns(pending, column, id_column)
    settings = {"model": str(model), "column": column, "id_column": id_column,
                "normalize": normalize,
                "encoder": {k: v for k, v in sorted(encoder_options.items())
                            if k not in _RUN_OPTIONS}}
    check_settings(out_dir, settings)
    if not pending:
        return summary
    out_dir.mkdir(parents=True, exist_ok=True)
    record_settings(out_dir, settings)
    for shard in pending:
        for stale in stale_partials(shard):
            stale.unlink(missing_ok=True)
    start = time.perf_counter()
    with ray_session(address) as started_here:
        check_resources(actors, float(encoder_options.get("num_cpus", 1)),
                        float(encoder_options.get("num_gpus", 0)), strict=started_here)
        for kind in ("parquet", "json", "text"):
            group = [s for s in pending if s.kind == kind]
            if group:
                _encode_group(group, model, column, id_column, actors, batch_size, normalize,
                              progress, encoder_options, summary)
    summary.seconds = time.perf_counter() - start
    return summary


def read_blocks(paths: list[str], kind: str, progress: bool = False) -> Any:
    """Shards of one format (``parquet``, ``json`` lines or ``text``) as a Ray Dataset in
    blocks of :data:`ROWS_PER_CALL` rows, in input order, each row with its file's ``path``."""
    import ray.data

    if kind == "parquet":
        # Ray Data's default Parquet reader (V2) first runs a listing task that starts 32
        # footer-reader actors, seconds per job on a small machine before any row is read
        # (docs/distributed.md, benchmarks/ray_overhead.py). The V1 reader samples the
        # files right here, with its own progress bar: hence the flag during the read too.
        ctx = ray.data.DataContext.get_current()
        before = ctx.use_datasource_v2, ctx.enable_progress_bars
        ctx.use_datasource_v2, ctx.enable_progress_bars = False, progress
        try:
            ds = ray.data.read_parquet(paths, include_paths=True)
        finally:
            ctx.use_datasource_v2, ctx.enable_progress_bars = before
    elif kind == "json":
        ds = ray.data.read_json(paths, lines=True, include_paths=True)
    else:
        ds = ray.data.read_text(paths, drop_empty_lines=False, include_paths=True)
    # blocks of one actor call each (streaming, no shuffle): a map over an actor pool runs a
    # task per input block, and Ray reads small shards as one block, which would leave all
    # but one actor idle
    ds = ds.repartition(target_num_rows_per_block=ROWS_PER_CALL)
    ctx = ds.context
    ctx.execution_options.preserve_order = True  # rows leave in input order, shard by shard
    ctx.enable_progress_bars = progress
    ctx.print_on_execution_start = False
    return ds


def _encode_group(shards: list[Shard], model: str | Path, column: str, id_column: str | None,
                  actors: int | None, batch_size: int, normalize: bool, progress: bool,
                  encoder_options: dict[str, Any], summary: EncodeSummary) -> None:
    """Encode shards of one format as one dataset (one actor pool) and write their outputs."""
    from sbert.distributed.writer import ShardWriter

    kind = shards[0].kind
    text = shards[0].text_column(column)
    keep = _kept_columns(kind, text, id_column)
    writer = ShardWriter(shards, text, keep, number_lines=kind == "text",
                         empty_schema=lambda: _empty_schema(model, keep, text))
    if all(has_no_rows(shard) for shard in shards):  # empty files: outputs without a job
        writer.finish()
        summary.written += writer.written
        return
    ds = read_blocks([str(s.path) for s in shards], kind, progress)
    ds = encode_dataset(ds, model, text, batch_size=batch_size, actors=actors,
                        normalize=normalize, **encoder_options)
    try:
        with executor_poll(START_POLL_S, EXECUTOR_POLL_S) as flowing:
            for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                flowing()
                writer.write(batch)
        writer.finish()
    except Exception as err:
        writer.abort()
        raise _user_error(err) from None
    summary.written += writer.written
    summary.rows += writer.rows


@contextlib.contextmanager
def executor_poll(start: float, steady: float) -> Iterator[Callable[[], None]]:
    """Ray Data's streaming executor polls its tasks every ``start`` seconds inside the
    block, and every ``steady`` seconds once the function it yields has been called (the
    caller calls it for each batch that reaches it: the job is flowing).

    The interval is a module constant of Ray Data
    (``streaming_executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S``), read at each poll;
    it is put back on exit. A Ray without it is left as it is.
    """
    try:
        state: Any = importlib.import_module(
            "ray.data._internal.execution.streaming_executor_state")
    except ImportError:  # another Ray Data layout: its own polling
        state = None
    name = "WAIT_FOR_TASK_COMPLETION_TIMEOUT_S"
    before = getattr(state, name, None)
    if not isinstance(before, (int, float)):
        yield lambda: None
        return

    def flowing() -> None:
        setattr(state, name, steady)

    setattr(state, name, start)
    try:
        yield flowing
    finally:
        setattr(state, name, before)


def _empty_schema(model: str | Path, keep: list[str] | None, text: str) -> Any:
    """The output schema of a group of shards that had no rows at all (empty files): the
    kept columns (the text, and the id as text) and the model's embedding. Shards with rows
    take their schema from the rows."""
    import pyarrow as pa

    from sbert.folder import output_dimension, read_folder
    from sbert.models import resolve_model

    spec = read_folder(resolve_model(model))
    dim = output_dimension(spec.pooling, spec.dense)  # 0: unknown from the configs
    vector = pa.list_(pa.float32(), dim) if dim else pa.list_(pa.float32())
    types = {LINE_COLUMN: pa.int64(), EMBEDDING_COLUMN: vector}
    return pa.schema([(name, types.get(name, pa.string()))
                      for name in keep or [text, EMBEDDING_COLUMN]])


def _kept_columns(kind: str, text: str, id_column: str | None) -> list[str] | None:
    """Output columns in order (None: every input column, then the embedding)."""
    if kind == "text":
        return [LINE_COLUMN, text, EMBEDDING_COLUMN]
    if id_column:
        return [id_column, text, EMBEDDING_COLUMN]
    return None


def _user_error(err: Exception) -> Exception:
    """The sbert error an actor raised, out of Ray's wrapping; else ``err`` itself.

    Ray raises an actor's exception as a ``RayTaskError`` whose ``cause`` is the original.
    """
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, SbertError) else err
