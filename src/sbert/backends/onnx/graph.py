"""Rewrites of exported ONNX graphs: onnxruntime's offline optimisation, bias in ``Gemm``,
activation smoothing before int8, and the transformer optimizer's fusions (kept as a measured
alternative, not the default)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from sbert.backends.onnx.backend import SLOW_FUSIONS
from sbert.folder import read_model_config
from sbert.runtime import require

logger = logging.getLogger(__name__)

# model types whose graphs onnxruntime's "bert" fusions understand
_FUSABLE = ("bert", "roberta", "xlm-roberta", "camembert", "distilbert", "mpnet", "electra")
# activation smoothing before int8: the share of an input's range moved into the weights, and
# how uneven an input's channels must be (largest / median channel maximum) to be smoothed
SMOOTH_ALPHA = 0.5
SMOOTH_MIN_RATIO = 8.0


def fuse_graph(path: Path, out: Path, config_dir: Path) -> bool:
    """Fuse the embeddings, attention, layer norms and GELU with onnxruntime's optimizer.

    Not the export's default (``benchmarks/onnx_variants.py`` compares the two). Exact
    fusions only (no GELU approximation). BERT-like encoders only; for other model types, or
    if the optimizer fails, nothing is written and ``False`` is returned.

    Returns:
        Whether ``out`` was written.
    """
    require("onnxruntime", "onnx")
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    cfg = read_model_config(config_dir)
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
    except Exception as err:  # fall back to onnxruntime's own optimisations
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
    per layer. Exact up to float rounding; fp32 only (the int8 quantizer handles ``MatMul``).

    Returns:
        How many layers were rewritten.
    """
    require("onnx", "onnx")
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    consumers = consumer_map(graph)
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
    rebuild_nodes(graph, replace, drop)
    onnx.save(model, str(out))
    logger.info("bias folded into %d Gemms: %s", len(replace), out)
    return len(replace)


def optimize_graph(path: Path, out: Path | None = None) -> Path:
    """Apply onnxruntime's graph optimisations offline and save the result.

    The extended level fuses layer norms and GELU exactly (no GELU approximation; not the
    :data:`~sbert.backends.onnx.backend.SLOW_FUSIONS`) and stays
    portable across CPUs (the "all" level adds CPU-specific layouts; the session applies those
    at load). The default for both exported graphs; it does not fuse attention (the
    transformer optimizer, :func:`fuse_graph`, does; ``benchmarks/onnx_variants.py`` compares
    the two).

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


def smooth_activations(
    fp32: Path,
    out: Path,
    feeds: list[dict[str, np.ndarray]],
    alpha: float | None = None,
    min_ratio: float | None = None,
) -> list[str]:
    """Move activation outliers into the weights before int8 (SmoothQuant, Xiao et al. 2023).

    A few channels of some MatMul inputs run far larger than the rest (all-mpnet-base-v2's
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
    consumers = consumer_map(graph)
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
    rebuild_nodes(graph, before, set())
    onnx.save(model, str(out))
    logger.info("smoothed %d of %d MatMul inputs of %s", len(smoothed), len(groups), fp32)
    return smoothed


def consumer_map(graph: Any) -> dict[str, list[Any]]:
    """Each value's consuming nodes, in graph order."""
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def rebuild_nodes(graph: Any, replace: dict[int, list[Any]], drop: set[int]) -> None:
    """Rewrite ``graph.node`` in order: a node in ``replace`` (by ``id``) becomes its list."""
    nodes = []
    for node in graph.node:
        if id(node) in replace:
            nodes.extend(replace[id(node)])
        elif id(node) not in drop:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
