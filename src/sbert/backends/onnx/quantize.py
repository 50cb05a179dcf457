"""int8 quantization of an exported graph, checked sentence by sentence against fp32."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from sbert.backends.onnx.backend import OnnxBackend
from sbert.backends.onnx.graph import smooth_activations
from sbert.backends.onnx.targets import RECIPES, Int8Recipe
from sbert.folder import FolderSpec
from sbert.runtime import require
from sbert.similarity import normalize
from sbert.tokenization import Tokenizer

logger = logging.getLogger(__name__)

# an int8 graph must keep every probe sentence at least this close to fp32 (cosine)
INT8_MIN_COSINE = 0.95
DEFAULT_RECIPE = RECIPES["avx512_vnni"]  # u8s8, per channel, 8-bit
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


def quantize_int8(
    fp32: Path, out: Path, recipe: Int8Recipe = DEFAULT_RECIPE, exclude: list[str] | None = None
) -> Path:
    """Dynamic int8 quantization of the weight MatMuls (activations quantized at run time).

    Symmetric weights, as optimum's configurations make them, of ``recipe``'s type, scale
    granularity and range (:data:`~sbert.backends.onnx.targets.RECIPES` holds one per CPU
    target; ``benchmarks/int8_isa.py`` measures the choices).
    Embedding lookups (Gather) stay fp32: quantizing them saves size, not time.

    Args:
        fp32: the plain (unfused) fp32 graph.
        out: the int8 graph to write.
        recipe: weight type (u8s8 or u8u8), per-channel scales, 7-bit weights.
        exclude: MatMul node names to keep in fp32.

    Returns:
        The quantized graph's path.
    """
    require("onnx", "onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    weight_type = QuantType.QInt8 if recipe.weights == "qint8" else QuantType.QUInt8
    # the quantizer's own pre-processing (ONNX shape inference, which it runs anyway; the
    # graph optimisation is done separately): without it the quantizer logs advice to do so
    prepared = out.with_name(out.name + ".prep.partial")
    try:
        quant_pre_process(str(fp32), str(prepared), skip_optimization=True,
                          skip_symbolic_shape=True)
        quantize_dynamic(
            str(prepared), str(out), op_types_to_quantize=["MatMul"],
            per_channel=recipe.per_channel, reduce_range=recipe.reduce_range,
            weight_type=weight_type, nodes_to_exclude=exclude or [],
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
    finally:
        prepared.unlink(missing_ok=True)
    logger.info("quantized %s -> %s (%s, %d MatMuls kept fp32)", fp32, out, recipe.label,
                len(exclude or []))
    return out


def quantize_checked(
    spec: FolderSpec, tokenizer: Tokenizer, fp32: Path, out: Path,
    recipe: Int8Recipe = DEFAULT_RECIPE,
) -> float:
    """Quantize to int8 and check single sentences, not only the average, against fp32.

    All weight MatMuls are quantized first. If a probe sentence then falls below
    :data:`INT8_MIN_COSINE` against fp32, the activation outliers are smoothed into the
    weights (:func:`smooth_activations`) and the graph is quantized again; if that is still
    short, the feed-forward output projections (the inputs with the widest outliers) are kept
    in fp32 as well. ``benchmarks/int8_sensitivity.py`` measures each step on the STSb test
    sentences.

    The check runs on this machine's kernels: a graph for another target is checked for its
    quantization error, not for that CPU's arithmetic (``benchmarks/int8_isa.py`` measures
    the AVX2 kernels under emulation).

    Args:
        spec: the model folder (pooling, Dense and normalization of the graph's output).
        tokenizer: the model's tokenizer, for the probe sentences.
        fp32: the plain (unfused) fp32 graph.
        out: the int8 graph to write.
        recipe: how to quantize (:data:`~sbert.backends.onnx.targets.RECIPES`).

    Returns:
        The minimum probe cosine of the graph written.
    """
    feed = probe_feed(tokenizer)
    reference = _probe_embeddings(spec, fp32, feed)  # once for every attempt
    quantize_int8(fp32, out, recipe)
    worst = _min_cosine(reference, _probe_embeddings(spec, out, feed))
    if worst >= INT8_MIN_COSINE:
        logger.info("int8 graph %s: min probe cosine vs fp32 %.3f", out, worst)
        return worst
    smoothed = out.with_name(out.name + ".smoothed.partial")
    try:
        smooth_activations(fp32, smoothed, [feed])
        for keep in ([], _ffn_output_matmuls(fp32)):
            logger.info("int8 min cosine %.3f < %.2f: smoothing activations, keeping %d "
                        "feed-forward outputs fp32", worst, INT8_MIN_COSINE, len(keep))
            quantize_int8(smoothed, out, recipe, exclude=keep)
            worst = _min_cosine(reference, _probe_embeddings(spec, out, feed))
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
    spec: FolderSpec, graph: Path, feed: dict[str, np.ndarray]
) -> np.ndarray:
    """Unit-length sentence embeddings of ``feed`` (one batch) through ``graph``."""
    # one batch: a single session on every core, no second one for streams
    backend = OnnxBackend(spec, file=str(graph.resolve()), streams=1)
    emb = backend.embed(feed["input_ids"], feed["attention_mask"], feed["token_type_ids"])
    return normalize(emb)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


def probe_feed(tokenizer: Tokenizer) -> dict[str, np.ndarray]:
    """:data:`PROBE_SENTENCES` as one padded batch of graph inputs, ``(n, seq)`` each."""
    tok = tokenizer.encode(list(PROBE_SENTENCES))
    ids, mask, types = tokenizer.pad(tok.ids, tok.type_ids)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _ffn_output_matmuls(path: Path) -> list[str]:
    """Names of the feed-forward output MatMuls (BERT/MPNet ``output.dense``, DistilBERT lin2)."""
    onnx = require("onnx", "onnx")
    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul"
            and re.search(r"/(output/dense|ffn/lin2)/MatMul", n.name)
            and "attention" not in n.name]
