"""The ONNX Runtime backend: onnxruntime runs the transformer, numpy does the rest; no torch.

The graph (``onnx/model.onnx`` or an int8 ``onnx/model_qint8_*.onnx``) maps token ids to
token embeddings; pooling, the Dense layers and normalization come from the folder's own files,
exactly as with the torch backend.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sbert.backends.onnx.targets import int8_file_for, pick_int8_file
from sbert.errors import ModelFolderError, UsageError
from sbert.folder import FP32_FILE, DenseConfig, FolderSpec, int8_graph_kind, output_dimension
from sbert.runtime import require, resolve_threads
from sbert.runtime.hardware import Hardware
from sbert.similarity import normalize

logger = logging.getLogger(__name__)

# onnxruntime fusions whose CPU kernels were slower than the ops they replace, when measured
# with onnxruntime's session profiling (docs/onnx.md); skipped offline and at load
SLOW_FUSIONS = ("BiasGeluFusion", "SkipLayerNormFusion")
# names of the token-embedding output, by preference (optimum / sentence-transformers spelling)
TOKEN_OUTPUTS = ("last_hidden_state", "token_embeddings")


def choose_onnx_file(
    spec: FolderSpec, quantized: bool = False, file: str | None = None,
    hardware: Hardware | None = None,
) -> Path:
    """Pick the graph to run: ``file`` if given, else the folder's int8 graph for this CPU or
    its fp32 graph.

    Among int8 graphs (sbert's and any sentence-transformers folder's:
    ``model_qint8_avx512_vnni.onnx``, ``model_quint8_avx2.onnx``, ``model_qint8_arm64.onnx``,
    ``model_quantized.onnx``...) the one made for this CPU wins, then the closest one that
    suits it (:func:`~sbert.backends.onnx.targets.pick_int8_file`); a graph quantized for an
    ISA the CPU lacks is logged as a warning.

    Args:
        spec: the parsed folder.
        quantized: prefer an int8 graph.
        file: a path relative to the folder (e.g. ``onnx/model_O3.onnx``) or absolute.
        hardware: the CPU to choose for; default: this one.

    Returns:
        The graph's path.
    """
    hint = (f"; export the model first (`sbert export onnx {spec.root} OUT --quantize int8` or "
            "`encoder.export_onnx(OUT, quantize='int8')`) and load OUT"
            if spec.has_torch_weights else
            "; the folder has no torch weights to export one from, so run its fp32 graph "
            "(drop --quantized), or quantize that graph yourself with onnxruntime's "
            f"quantize_dynamic into {int8_file_for()}")
    if file is not None:
        path = Path(file) if Path(file).is_absolute() else spec.root / file
        if not path.is_file():
            raise ModelFolderError(f"ONNX file {path} does not exist; the folder has "
                                   f"{spec.onnx_files or 'no ONNX files'}")
        return path
    files = spec.onnx_files
    if quantized:
        try:
            chosen, warning = pick_int8_file(files, hardware)
        except LookupError:
            raise ModelFolderError(f"{spec.root} has no int8 ONNX graph{hint}") from None
        if warning:
            logger.warning("%s: %s", spec.root, warning)
        return spec.root / chosen
    if FP32_FILE in files:
        return spec.root / FP32_FILE
    fp32 = [f for f in files if int8_graph_kind(f) is None]
    if not fp32:
        raise ModelFolderError(f"{spec.root} has no ONNX graph (onnx/model.onnx){hint}")
    return spec.root / fp32[0]


class OnnxBackend:
    """Runs a padded batch through an onnxruntime session, then pools, applies Dense, normalizes.

    With ``threads`` cores, the encoder runs ``streams`` batches at once, each on
    ``threads // streams`` cores of one shared session (one copy of the weights; ``run`` is
    thread-safe). Small matrices split badly across cores, so the default is one
    single-threaded stream per core; ``benchmarks/encode.py --one-stream`` compares it with
    one batch at a time on every core.
    A call with a single batch (a search query) has nothing to run beside it: it runs on a
    second session with every core, made the first time one is needed.

    Args:
        spec: the parsed model folder.
        quantized: run the int8 graph instead of the fp32 one.
        threads: cores to use; default: the cores this process may use.
        streams: batches run at once; default: ``threads``. ``1`` runs one batch at a time
            on all cores with a single session (the least memory).
        file: a specific graph inside the folder (overrides ``quantized``).
        providers: onnxruntime execution providers; default: CPU.
    """

    def __init__(
        self,
        spec: FolderSpec,
        quantized: bool = False,
        threads: int | None = None,
        streams: int | None = None,
        file: str | None = None,
        providers: list[str] | None = None,
    ) -> None:
        require("onnxruntime", "onnx")
        self.path = choose_onnx_file(spec, quantized, file)
        self.threads = resolve_threads(threads)
        if streams is not None and streams < 1:
            raise UsageError(f"streams must be >= 1, got {streams}")
        self.providers = providers or ["CPUExecutionProvider"]
        cpu_only = self.providers == ["CPUExecutionProvider"]
        self.streams = min(streams or self.threads, self.threads) if cpu_only else 1
        self.session = self._new_session(self.threads // self.streams)
        self._alone_session = self.session if self.streams == 1 else None
        self._inputs = {i.name: i.type for i in self.session.get_inputs()}
        for name in self._inputs:
            if name not in ("input_ids", "attention_mask", "token_type_ids"):
                raise ModelFolderError(
                    f"{self.path}: unsupported graph input {name!r}; expected input_ids, "
                    "attention_mask and optionally token_type_ids"
                )
        output = _token_output(self.session)
        self._output = output.name
        self.pooling = spec.pooling
        if self.pooling.dimension == 0:
            hidden = output.shape[-1]
            if not isinstance(hidden, int):
                raise ModelFolderError(
                    f"{self.path}: the hidden size is unknown; set word_embedding_dimension in "
                    "1_Pooling/config.json"
                )
            self.pooling = dataclasses.replace(self.pooling, dimension=hidden)  # spec unchanged
        self.dense = [NumpyDense(cfg) for cfg in spec.dense]
        self.normalize = spec.normalize
        self.dimension = output_dimension(self.pooling, spec.dense)
        logger.info("onnx backend: %s, %d threads in %d streams", self.path, self.threads,
                    self.streams)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its sessions, which onnxruntime cannot pickle (a process pool's
        workers get the encoder this way); :meth:`__setstate__` makes them from the graph."""
        return {**self.__dict__, "session": None, "_alone_session": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.session = self._new_session(self.threads // self.streams)
        self._alone_session = self.session if self.streams == 1 else None

    def _new_session(self, threads: int) -> Any:
        ort = require("onnxruntime", "onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        if threads > 1:
            # the pool's threads spin during a run (fast hand-offs between operators) but
            # stop when it returns: left spinning, they hold a core after a lone call, which
            # a server's event loop and its clients need next (issue 14)
            opts.add_session_config_entry("session.force_spinning_stop", "1")
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # warnings about unused initializers are noise
        try:
            return ort.InferenceSession(str(self.path), opts, providers=self.providers,
                                        disabled_optimizers=list(SLOW_FUSIONS))
        except Exception as err:  # onnxruntime's own errors: a corrupt or foreign graph
            if not type(err).__module__.startswith("onnxruntime"):
                raise
            raise ModelFolderError(f"{self.path}: onnxruntime cannot load this graph ({err}); "
                                   "export it again with `sbert export onnx`") from None

    def embed(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray,
        alone: bool = False,
    ) -> np.ndarray:
        """``(batch, seq)`` int64 arrays -> ``(batch, dim)`` float32.

        ``alone``: no other batch runs beside this one, so it may use every core.
        """
        session = self.session
        if alone and self.streams > 1:
            if self._alone_session is None:
                self._alone_session = self._new_session(self.threads)
            session = self._alone_session
        arrays = {"input_ids": input_ids, "attention_mask": attention_mask,
                  "token_type_ids": token_type_ids}
        feed = {}
        for name, type_name in self._inputs.items():
            arr = arrays[name]
            feed[name] = arr.astype(np.int32) if type_name == "tensor(int32)" else arr
        hidden = session.run([self._output], feed)[0]  # (batch, seq, hidden)
        emb = pool_numpy(hidden.astype(np.float32, copy=False), attention_mask, self.pooling.modes)
        for layer in self.dense:
            emb = layer(emb)  # (batch, out)
        if self.normalize:
            emb = normalize(emb)
        return np.ascontiguousarray(emb, dtype=np.float32)


def _token_output(session: Any) -> Any:
    outputs = session.get_outputs()
    for name in TOKEN_OUTPUTS:
        for out in outputs:
            if out.name == name:
                return out
    # graphs exported by other tools: the first float output of rank 3 (batch, seq, hidden)
    for out in outputs:
        if out.type in ("tensor(float)", "tensor(float16)") and len(out.shape or ()) == 3:
            return out
    raise ModelFolderError(
        "the ONNX graph has no token-embedding output (batch, seq, hidden); outputs are "
        f"{[(o.name, o.shape) for o in outputs]}"
    )


def pool_numpy(
    hidden: np.ndarray, attention_mask: np.ndarray, modes: tuple[str, ...]
) -> np.ndarray:
    """Pool ``(batch, seq, hidden)`` token embeddings to ``(batch, hidden * len(modes))``.

    The numpy twin of :func:`sbert.backends.torch.pooling.pool`; padding never contributes.
    """
    mask = attention_mask.astype(hidden.dtype)  # (batch, seq)
    outputs: list[np.ndarray] = []
    summed: np.ndarray | None = None
    counts: np.ndarray | None = None
    for mode in modes:
        if mode == "cls":
            outputs.append(hidden[:, 0])  # (batch, hidden)
        elif mode == "max":
            keep = mask[:, :, None] > 0  # (batch, seq, 1)
            filled = np.where(keep, hidden, np.float32(-1e9))  # (batch, seq, hidden)
            outputs.append(filled.max(axis=1))  # (batch, hidden)
        elif mode in ("mean", "mean_sqrt_len"):
            if summed is None or counts is None:
                summed = np.matmul(mask[:, None, :], hidden)[:, 0]  # (batch, hidden)
                counts = np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)  # (batch, 1)
            divisor = counts if mode == "mean" else np.sqrt(counts)
            outputs.append(summed / divisor)
        else:
            raise UsageError(f"unknown pooling mode {mode!r}")
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(x.dtype)


_NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "gelu": _gelu,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


class NumpyDense:
    """A sentence-transformers Dense layer in numpy, loaded from ``model.safetensors``."""

    def __init__(self, config: DenseConfig) -> None:
        self.out_features = config.out_features
        self.activation = _NUMPY_ACTIVATIONS[config.activation]
        folder = config.path
        if folder is None or not (folder / "model.safetensors").exists():
            raise ModelFolderError(
                f"{folder}: the ONNX backend reads Dense weights from model.safetensors; "
                "re-save the model with sbert (encoder.save) to convert pytorch_model.bin"
            )
        from safetensors.numpy import load_file

        state = load_file(str(folder / "model.safetensors"))
        self.weight = state["linear.weight"].astype(np.float32).T.copy()  # (in, out)
        bias = state.get("linear.bias")
        self.bias = bias.astype(np.float32) if bias is not None else None  # (out,)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.weight  # (batch, out)
        if self.bias is not None:
            y = y + self.bias
        return np.asarray(self.activation(y), dtype=np.float32)
