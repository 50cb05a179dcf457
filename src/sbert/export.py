"""Export the transformer to ONNX, fuse its graph for onnxruntime, and quantize it to int8.

The folder keeps the sentence-transformers layout: the graph goes to ``onnx/model.onnx`` and
the int8 graph to ``onnx/model_qint8_avx512_vnni.onnx``; pooling, Dense and normalization stay
in the folder's own files, read by :class:`~sbert.onnx_backend.OnnxBackend`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sbert._optional import require
from sbert.onnx_backend import FP32_FILE, INT8_FILE, SLOW_FUSIONS

if TYPE_CHECKING:  # pragma: no cover
    from sbert.encoder import SentenceEncoder

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int8",)
# an int8 graph must keep every probe sentence at least this close to fp32 (cosine)
INT8_MIN_COSINE = 0.95
# activation smoothing before int8: the share of an input's range moved into the weights, and
# how uneven an input's channels must be (largest / median channel maximum) to be smoothed
SMOOTH_ALPHA = 0.5
SMOOTH_MIN_RATIO = 8.0
PROBE_SENTENCES = (
    "A man is playing a guitar.", "The man is throwing knives at a tree.",
    "A woman is slicing an onion.", "Two dogs are running through a field of snow.",
    "A plane is taking off.", "The stock market fell sharply on Tuesday after the report.",
    "Obama signs the bill into law.", "How do I learn to program in Python quickly?",
    "Hello.", "a", "", "No.", "This is not what I ordered at all!",
    "A man is cutting up a cucumber.", "Kids play soccer on the beach at sunset.",
    "The cat sat on the mat, and then it slept for a very long time in the warm sun.",
    "\u00e9l\u00e8ve caf\u00e9 \U0001f600 \U0001f600 !!",
    "Scientists discovered a new species of frog in the rainforest of Ecuador last year, "
    "and they say it is already endangered because of mining, logging and the spread of a "
    "fungal disease that has wiped out amphibians across the Americas for decades.",
)
# model types whose graphs onnxruntime's "bert" fusions understand
_FUSABLE = ("bert", "roberta", "xlm-roberta", "camembert", "distilbert", "mpnet", "electra")
OPSET = 17


def export_onnx(
    encoder: SentenceEncoder,
    path: str | os.PathLike[str],
    quantize: str | None = None,
    optimize: bool = True,
    opset: int = OPSET,
) -> Path:
    """Write a model folder with the transformer as ``onnx/model.onnx`` (and an int8 graph).

    Args:
        encoder: a torch-backend encoder.
        path: the output folder; the model folder is saved there first unless it is the
            encoder's own folder.
        quantize: ``"int8"`` adds ``onnx/model_qint8_avx512_vnni.onnx`` (dynamic quantization).
        optimize: apply onnxruntime's graph optimisations (layer norm and GELU fusions,
            constant folding) offline; the session applies the CPU-specific rest at load.
        opset: the ONNX opset.

    Returns:
        The folder.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantize!r}; expected one of {QUANTIZATIONS}")
    if encoder.backend_name != "torch":
        raise ValueError("export needs the torch weights: load the encoder with backend='torch'")
    root = Path(path)
    if not root.exists() or root.resolve() != encoder.path.resolve():
        encoder.save(root)
    if not (encoder.spec.transformer_path / "tokenizer.json").exists() and not (
        root / "tokenizer.json"
    ).exists():
        encoder.tokenizer.save(root)  # the ONNX backend needs the fast tokenizer, not transformers
    fp32 = root / FP32_FILE
    fp32.parent.mkdir(parents=True, exist_ok=True)
    raw = fp32.with_name("model.raw.partial")  # quantize the plain graph: fused ops confuse it
    export_transformer(encoder, raw, opset)
    if quantize == "int8":
        int8 = root / INT8_FILE
        quantize_checked(encoder, raw, int8)
        if optimize:
            optimize_graph(int8)
    if optimize:
        # onnxruntime's own offline optimisation, not the transformer optimizer's fusions: on
        # all-MiniLM-L6-v2 here 1,210 vs 1,008 sentences/s (benchmarks/onnx_variants.py)
        bias_gemm(raw, raw)  # after quantizing: the int8 quantizer works on MatMul, not Gemm
        optimize_graph(raw, fp32)
    else:
        raw.replace(fp32)
    raw.unlink(missing_ok=True)
    return root


def export_transformer(encoder: SentenceEncoder, out: Path, opset: int = OPSET) -> None:
    """Trace the transformer to ONNX: ids, mask (and token types) -> ``last_hidden_state``.

    Batch and sequence axes are dynamic. The dummy batch is padded so that the traced graph
    keeps the attention-mask path. Attention is traced in its eager form, the pattern that
    onnxruntime fuses into one ``Attention`` operator (the SDPA trace does not fuse).
    """
    transformer = encoder.network.transformer
    previous = getattr(transformer.config, "_attn_implementation", None)
    _set_attention(transformer, "eager")
    try:
        _trace(encoder, transformer, out, opset)
    finally:
        if previous is not None:
            _set_attention(transformer, previous)
    logger.info("exported %s", out)


def _set_attention(model: Any, implementation: str) -> None:
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation(implementation)
            return
        except (ValueError, ImportError):  # the model has no such implementation
            return
    model.config._attn_implementation = implementation


def _trace(encoder: SentenceEncoder, transformer: Any, out: Path, opset: int) -> None:
    import torch

    use_types = bool(getattr(encoder.network, "_use_token_types", False))
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if use_types else [])

    class _Wrapper(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    tok = encoder.tokenizer.encode(["a short one", "a somewhat longer dummy sentence to pad"])
    ids, mask, types = encoder.tokenizer.pad(tok.ids, tok.type_ids)  # (2, seq) each
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    device = next(transformer.parameters()).device
    args = tuple(torch.from_numpy(arrays[n]).to(device) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the tracer's notes on Python branches and index ops: the graph is tested, not these
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", module=r"torch\.onnx")
        torch.onnx.export(
            _Wrapper(transformer).eval(), args, str(out), input_names=names,
            output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=opset,
            do_constant_folding=True, dynamo=False,
        )


def fuse_graph(path: Path, out: Path, config_dir: Path) -> bool:
    """Fuse the embeddings, attention, layer norms and GELU with onnxruntime's optimizer.

    Not the export's default (17 % slower than :func:`optimize_graph` on all-MiniLM-L6-v2 here);
    ``benchmarks/onnx_variants.py`` keeps it as a measured alternative. Exact fusions only (no
    GELU approximation). BERT-like encoders only; for other model types, or if the optimizer
    fails, nothing is written and ``False`` is returned.

    Returns:
        Whether ``out`` was written.
    """
    require("onnxruntime", "onnx")
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    cfg = _config(config_dir)
    if cfg.get("model_type") not in _FUSABLE:
        return False
    options = FusionOptions("bert")
    options.enable_gelu_approximation = False
    try:
        model = optimize_model(
            str(path), model_type="bert", num_heads=int(cfg.get("num_attention_heads", 0)),
            hidden_size=int(cfg.get("hidden_size", 0)), optimization_options=options,
            opt_level=0,
        )
    except Exception as err:  # noqa: BLE001 - fall back to onnxruntime's own optimisations
        logger.warning("onnxruntime transformer optimizer failed (%s); using the session's", err)
        return False
    tmp = out.with_name(out.name + ".partial")
    model.save_model_to_file(str(tmp))
    tmp.replace(out)
    logger.info("fused %s: %s", out, model.get_fused_operator_statistics())
    return True


def bias_gemm(path: Path, out: Path) -> int:
    """Fold each linear layer's bias into its matrix multiply: ``MatMul`` + ``Add`` -> ``Gemm``.

    onnxruntime fuses ``MatMul`` + ``Add`` into ``Gemm`` only for 2-D inputs, and a
    transformer's are ``(batch, seq, hidden)``. So each input is reshaped to
    ``(batch * seq, hidden)`` once (no copy), ``Gemm`` adds the bias inside the multiply, and
    the result is reshaped back to the input's leading axes: one pass over the output fewer
    per layer. Exact to float rounding (max |diff| 4e-6 on all-MiniLM-L6-v2's token
    embeddings); fp32 only (the int8 quantizer handles ``MatMul``). 1.5-2 % more sentences/s
    on all-MiniLM-L6-v2 (2 single-threaded streams, alternating, 6 rounds).

    Returns:
        How many layers were rewritten.
    """
    require("onnx", "onnx")
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    consumers = _consumers(graph)
    # the exporter shares equal parameters (zero biases of a fresh model) through Identity
    aliases = {node.output[0]: node.input[0] for node in graph.node
               if node.op_type == "Identity" and node.input[0] in weights}
    constants: dict[str, str] = {}

    def constant(name: str, values: list[int]) -> str:
        if name not in constants:
            graph.initializer.append(numpy_helper.from_array(np.array(values, np.int64), name))
            constants[name] = name
        return name

    flattened: dict[str, str] = {}  # input -> its 2-D view, made once for all its layers
    leading: dict[str, str] = {}  # input -> its shape without the last axis
    replace: dict[int, list[Any]] = {}
    drop: set[int] = set()
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        users = consumers.get(node.output[0], [])
        if weight is None or len(weight.dims) != 2 or len(users) != 1:
            continue
        add = users[0]
        others = [aliases.get(name, name) for name in add.input if name != node.output[0]]
        if add.op_type != "Add" or len(others) != 1 or others[0] not in weights:
            continue
        if list(weights[others[0]].dims) != [weight.dims[1]]:
            continue
        x, (k, n) = node.input[0], weight.dims
        new: list[Any] = []
        if x not in flattened:
            flattened[x], leading[x] = f"{x}_2d", f"{x}_lead"
            new += [
                helper.make_node("Reshape", [x, constant(f"gemm_flat_{k}", [-1, k])],
                                 [flattened[x]], name=f"{x}_to_2d"),
                helper.make_node("Shape", [x], [f"{x}_shape"], name=f"{x}_shape"),
                helper.make_node("Slice", [f"{x}_shape", constant("gemm_zero", [0]),
                                           constant("gemm_minus_one", [-1])],
                                 [leading[x]], name=f"{x}_lead"),
            ]
        shape = f"{node.output[0]}_shape"
        product = f"{node.output[0]}_2d"
        new += [
            helper.make_node("Gemm", [flattened[x], node.input[1], others[0]], [product],
                             name=f"{node.name}_gemm"),
            helper.make_node("Concat", [leading[x], constant(f"gemm_width_{n}", [n])], [shape],
                             axis=0, name=f"{node.name}_shape"),
            helper.make_node("Reshape", [product, shape], [add.output[0]],
                             name=f"{node.name}_from_2d"),
        ]
        replace[id(node)] = new
        drop.add(id(add))
    _rebuild(graph, replace, drop)
    onnx.save(model, str(out))
    logger.info("bias folded into %d Gemms: %s", len(replace), out)
    return len(replace)


def optimize_graph(path: Path, out: Path | None = None) -> Path:
    """Apply onnxruntime's graph optimisations offline and save the result.

    The extended level fuses layer norms and GELU exactly (no GELU approximation; not the
    :data:`~sbert.onnx_backend.SLOW_FUSIONS`, which cost time here) and stays
    portable across CPUs (the "all" level adds CPU-specific layouts; the session applies those
    at load). The default for both exported graphs; it does not fuse attention (the
    transformer optimizer, :func:`fuse_graph`, does, and was slower here).

    Args:
        path: the graph to optimize.
        out: where to write it; default: replace ``path``.

    Returns:
        The optimized graph's path.
    """
    ort = require("onnxruntime", "onnx")
    out = out or path
    tmp = out.with_name(out.name + ".partial")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp)
    opts.log_severity_level = 3
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                         disabled_optimizers=list(SLOW_FUSIONS))
    tmp.replace(out)
    logger.info("optimized %s -> %s", path, out)
    return out


def quantize_int8(
    fp32: Path, out: Path, per_channel: bool = True, exclude: list[str] | None = None
) -> Path:
    """Dynamic int8 quantization of the weight MatMuls (activations quantized at run time).

    Per-channel weight scales: on all-MiniLM-L6-v2 (600 STSb sentences) the minimum cosine
    against fp32 was 0.984 per channel and 0.939 per tensor, at about the same speed.
    ``reduce_range`` stays off: it is only needed on CPUs without VNNI and costs accuracy.
    Embedding lookups (Gather) stay fp32: quantizing them saves size, not time.

    Args:
        fp32: the plain (unfused) fp32 graph.
        out: the int8 graph to write.
        per_channel: one weight scale per output channel.
        exclude: MatMul node names to keep in fp32.

    Returns:
        The quantized graph's path.
    """
    require("onnx", "onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = _DropMessage("Please consider to run pre-processing")
    logging.getLogger().addFilter(quiet)  # the quantizer logs this advice on the root logger
    try:
        quantize_dynamic(
            str(fp32), str(out), op_types_to_quantize=["MatMul"], per_channel=per_channel,
            reduce_range=False, weight_type=QuantType.QInt8, nodes_to_exclude=exclude or [],
        )
    finally:
        logging.getLogger().removeFilter(quiet)
    logger.info("quantized %s -> %s (%d MatMuls kept fp32)", fp32, out, len(exclude or []))
    return out


def smooth_activations(
    fp32: Path,
    out: Path,
    feeds: list[dict[str, np.ndarray]],
    alpha: float | None = None,
    min_ratio: float | None = None,
) -> list[str]:
    """Move activation outliers into the weights before int8 (SmoothQuant, Xiao et al. 2023).

    A few channels of some MatMul inputs run 20-100x larger than the rest (all-mpnet-base-v2's
    feed-forward inputs and outputs), so one per-tensor activation scale leaves the others a
    handful of int8 levels. For each input ``X`` of weight MatMuls whose largest channel
    maximum is at least ``min_ratio`` times the median channel's, with channel maxima ``a``
    (over ``feeds``) and weight row maxima ``w``, ``s = a**alpha / w**(1 - alpha)``: the graph
    computes ``(X / s) @ (s * W)``, the same product in exact arithmetic, through one
    inserted ``Mul``.

    Args:
        fp32: the plain (unfused) fp32 graph.
        out: the smoothed fp32 graph to write (quantize it next).
        feeds: calibration batches (graph inputs by name).
        alpha: how much of the range moves into the weights (0: none, 1: all); default
            :data:`SMOOTH_ALPHA`.
        min_ratio: smooth only inputs this uneven (max / median channel maximum); default
            :data:`SMOOTH_MIN_RATIO`.

    Returns:
        The smoothed activations' names.
    """
    ort = require("onnxruntime", "onnx")
    import onnx
    from onnx import numpy_helper

    alpha = SMOOTH_ALPHA if alpha is None else alpha
    min_ratio = SMOOTH_MIN_RATIO if min_ratio is None else min_ratio
    model = onnx.load(str(fp32))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    consumers = _consumers(graph)
    groups: dict[str, list[Any]] = {}  # activation -> MatMuls it feeds with a 2-D weight
    for node in graph.node:
        w = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if w is not None and len(w.dims) == 2 and len(consumers[node.input[1]]) == 1:
            groups.setdefault(node.input[0], []).append(node)
    if not groups:
        onnx.save(model, str(out))
        return []
    # read the activations out as extra graph outputs (added for this session only)
    for name in groups:
        graph.output.append(onnx.helper.make_tensor_value_info(name, 1, None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    del graph.output[-len(groups):]
    inputs = {i.name for i in session.get_inputs()}
    names = list(groups)
    amax = {name: np.zeros(0, dtype=np.float32) for name in names}
    for feed in feeds:
        values = session.run(names, {k: v for k, v in feed.items() if k in inputs})
        for name, value in zip(names, values, strict=True):
            channel = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)  # (K,)
            amax[name] = channel if amax[name].size == 0 else np.maximum(amax[name], channel)
    smoothed = []
    before: dict[int, list[Any]] = {}  # node -> the Mul to insert ahead of it
    for name, nodes in groups.items():
        a = amax[name].astype(np.float64)
        if a.size == 0 or a.max() < min_ratio * max(float(np.median(a)), 1e-12):
            continue
        mats = [numpy_helper.to_array(weights[n.input[1]]) for n in nodes]  # (K, N) each
        w = np.max([np.abs(m).max(axis=1) for m in mats], axis=0).astype(np.float64)  # (K,)
        scale = np.power(np.maximum(a, 1e-5), alpha) / np.power(np.maximum(w, 1e-5), 1 - alpha)
        scale = np.where((a > 0) & (w > 0), scale, 1.0)  # (K,)
        for node, mat in zip(nodes, mats, strict=True):
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(
                (mat * scale[:, None]).astype(mat.dtype), node.input[1]))
        inverse = f"{name}_smooth_inv"
        graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32),
                                                         inverse))
        result = f"{name}_smoothed"
        mul = onnx.helper.make_node("Mul", [name, inverse], [result], name=f"{name}_smooth")
        before[id(nodes[0])] = [mul, nodes[0]]  # nodes are in graph order
        for node in nodes:
            node.input[0] = result
        smoothed.append(name)
    _rebuild(graph, before, set())
    onnx.save(model, str(out))
    logger.info("smoothed %d of %d MatMul inputs of %s", len(smoothed), len(groups), fp32)
    return smoothed


def _consumers(graph: Any) -> dict[str, list[Any]]:
    """Each value's consuming nodes, in graph order."""
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def _rebuild(graph: Any, replace: dict[int, list[Any]], drop: set[int]) -> None:
    """Rewrite ``graph.node`` in order: a node in ``replace`` (by ``id``) becomes its list."""
    nodes = []
    for node in graph.node:
        if id(node) in replace:
            nodes.extend(replace[id(node)])
        elif id(node) not in drop:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def quantize_checked(encoder: SentenceEncoder, fp32: Path, out: Path) -> float:
    """Quantize to int8 and check single sentences, not only the average, against fp32.

    All weight MatMuls are quantized first. If a probe sentence then falls below
    :data:`INT8_MIN_COSINE` against fp32, the activation outliers are smoothed into the
    weights (:func:`smooth_activations`) and the graph is quantized again; if that is still
    short, the feed-forward output projections (the inputs with the widest outliers) are kept
    in fp32 as well. Measured against fp32 on the 2,758 STSb test sentences
    (``benchmarks/int8_sensitivity.py``): all-MiniLM-L6-v2 passes the first way (minimum
    cosine 0.960); all-mpnet-base-v2 takes the last (0.919 with the feed-forward outputs
    fp32, 0.606 smoothed but all int8, 0.992 smoothed with those outputs fp32).

    Returns:
        The minimum probe cosine of the graph written.
    """
    feed = probe_feed(encoder)
    reference = _probe_embeddings(encoder, fp32, feed)  # once for every attempt
    quantize_int8(fp32, out)
    worst = _min_cosine(reference, _probe_embeddings(encoder, out, feed))
    if worst >= INT8_MIN_COSINE:
        logger.info("int8 graph %s: min probe cosine vs fp32 %.3f", out, worst)
        return worst
    smoothed = out.with_name(out.name + ".smoothed.partial")
    try:
        smooth_activations(fp32, smoothed, [feed])
        for keep in ([], _ffn_output_matmuls(fp32)):
            logger.info("int8 min cosine %.3f < %.2f: smoothing activations, keeping %d "
                        "feed-forward outputs fp32", worst, INT8_MIN_COSINE, len(keep))
            quantize_int8(smoothed, out, exclude=keep)
            worst = _min_cosine(reference, _probe_embeddings(encoder, out, feed))
            if worst >= INT8_MIN_COSINE:
                break
        else:
            logger.warning("int8 graph %s: min cosine vs fp32 %.3f on the probe sentences; "
                           "check its quality before use", out, worst)
    finally:
        smoothed.unlink(missing_ok=True)
    logger.info("int8 graph %s: min probe cosine vs fp32 %.3f", out, worst)
    return worst


def _probe_embeddings(
    encoder: SentenceEncoder, graph: Path, feed: dict[str, np.ndarray]
) -> np.ndarray:
    """Unit-length sentence embeddings of ``feed`` (one batch) through ``graph``."""
    from sbert.onnx_backend import OnnxBackend

    # one batch: a single session on every core, no second one for streams
    backend = OnnxBackend(encoder.spec, file=str(graph.resolve()), streams=1)
    emb = backend.embed(feed["input_ids"], feed["attention_mask"], feed["token_type_ids"])
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


def probe_feed(encoder: SentenceEncoder) -> dict[str, np.ndarray]:
    """:data:`PROBE_SENTENCES` as one padded batch of graph inputs, ``(n, seq)`` each."""
    tok = encoder.tokenizer.encode(list(PROBE_SENTENCES))
    ids, mask, types = encoder.tokenizer.pad(tok.ids, tok.type_ids)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _ffn_output_matmuls(path: Path) -> list[str]:
    """Names of the feed-forward output MatMuls (BERT/MPNet ``output.dense``, DistilBERT lin2)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul"
            and re.search(r"/(output/dense|ffn/lin2)/MatMul", n.name)
            and "attention" not in n.name]


def _config(folder: Path) -> dict[str, Any]:
    cfg_file = folder / "config.json"
    if not cfg_file.exists():
        return {}
    data: dict[str, Any] = json.loads(cfg_file.read_text(encoding="utf-8"))
    return data


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


# bump when the export's defaults change, so cached exports are made again
EXPORT_FORMAT = 6


def cache_folder(path: Path, spec: Any) -> Path:
    """Where :func:`cached_export` keeps the export of ``path``.

    The key covers the folder's path, its weight and config files' sizes and times, and
    :data:`EXPORT_FORMAT`.
    """
    import hashlib

    from sbert.resolve import cache_dir

    stamp = [str(Path(path).resolve()), str(EXPORT_FORMAT)]
    for f in sorted(spec.transformer_path.iterdir()):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"):
            st = f.stat()
            stamp.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    key = hashlib.sha256("|".join(stamp).encode()).hexdigest()[:16]
    return cache_dir() / "onnx" / f"{Path(path).name}-{key}"


def cached_export(path: Path, spec: Any) -> Path:
    """The ONNX export (fp32 and int8) of a folder that has torch weights only, made once.

    ``SentenceEncoder(name, backend="onnx")`` on such a folder calls this: the first load
    exports into ``<sbert cache>/onnx/`` (needs torch, about a minute for a small model);
    later loads reuse the export (in :func:`cache_folder`).

    Returns:
        The exported folder.
    """
    import shutil

    out = cache_folder(path, spec)
    if (out / INT8_FILE).exists() and (out / FP32_FILE).exists():
        return out
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"{path} has no ONNX graph, and exporting one needs torch once: install it "
            "(pip install 'sbert[torch]') or run `sbert export onnx MODEL OUT --quantize int8` "
            "on a machine that has it, then load OUT"
        ) from err
    from sbert.encoder import SentenceEncoder

    logger.warning("%s has no ONNX graph: exporting it once to %s (later loads reuse it)",
                   path, out)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        SentenceEncoder(path, device="cpu").export_onnx(tmp, quantize="int8")
        if out.exists():  # another process finished first, or an incomplete earlier export
            shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
