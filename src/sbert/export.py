"""Export the transformer to ONNX, fuse its graph for onnxruntime, and quantize it to int8.

The folder keeps the sentence-transformers layout: the graph goes to ``onnx/model.onnx`` and
the int8 graph to ``onnx/model_qint8_avx512_vnni.onnx``; pooling, Dense and normalization stay
in the folder's own files, read by :class:`~sbert.onnx_backend.OnnxBackend`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sbert._optional import require
from sbert.onnx_backend import FP32_FILE, INT8_FILE

if TYPE_CHECKING:  # pragma: no cover
    from sbert.encoder import SentenceEncoder

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int8",)
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
        optimize: apply onnxruntime's graph optimisations (fusions) offline.
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
        int8 = quantize_int8(raw, root / INT8_FILE)
        if optimize:
            optimize_graph(int8)
    if optimize:
        optimize_graph(raw, fp32)
    else:
        raw.replace(fp32)
    raw.unlink(missing_ok=True)
    return root


def export_transformer(encoder: SentenceEncoder, out: Path, opset: int = OPSET) -> None:
    """Trace the transformer to ONNX: ids, mask (and token types) -> ``last_hidden_state``.

    Batch and sequence axes are dynamic. The dummy batch is padded so that the traced graph
    keeps the attention-mask path.
    """
    import torch

    transformer = encoder.network.transformer
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
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            _Wrapper(transformer).eval(), args, str(out), input_names=names,
            output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=opset,
            do_constant_folding=True, dynamo=False,
        )
    logger.info("exported %s", out)


def optimize_graph(path: Path, out: Path | None = None) -> Path:
    """Apply onnxruntime's graph optimisations offline and save the result.

    The extended level fuses attention, layer norm, GELU and the embedding layer exactly (no
    GELU approximation), and stays portable across CPUs (the "all" level adds CPU-specific
    layouts; the session applies those at load). Measured on all-MiniLM-L6-v2 the graph gives
    the same embeddings (cosine 0.9999999) and loads faster; onnxruntime's Python
    transformer optimizer was not faster on top of it.

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
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    tmp.replace(out)
    logger.info("optimized %s -> %s", path, out)
    return out


def quantize_int8(fp32: Path, out: Path, per_channel: bool = True) -> Path:
    """Dynamic int8 quantization of the weights (activations quantized at run time).

    Per-channel weight scales: on all-MiniLM-L6-v2 (600 STSb sentences) the minimum cosine
    against fp32 was 0.984 per channel and 0.939 per tensor, at about the same speed.
    ``reduce_range`` stays off: it is only needed on CPUs without VNNI and costs accuracy.

    Returns:
        The quantized graph's path.
    """
    require("onnx", "onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32), str(out), per_channel=per_channel, reduce_range=False,
        weight_type=QuantType.QInt8,
    )
    logger.info("quantized %s -> %s", fp32, out)
    return out
