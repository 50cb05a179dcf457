"""Which ONNX graph to ship: time and check every export variant, alternating, in one run.

    .venv/bin/python benchmarks/onnx_variants.py [--model all-MiniLM-L6-v2] [--rounds 3]
    .venv/bin/python benchmarks/onnx_variants.py --limit 300 --rounds 1 --out /tmp/bench  # smoke

Exports the transformer once (into the sbert cache), derives the candidate graphs from it
(fp32: plain, onnxruntime-optimized offline, transformer-optimizer fused; int8: dynamic
quantization of the plain or the fused graph, per channel or per tensor, with or without the
fused attention quantized) and encodes the 2,758 STS benchmark test sentences at batch 32 with
each, plus sentence-transformers' torch ``encode`` as the baseline. Prints sentences/s, the
median per-round ratio to the baseline, and quality against sbert's fp32 torch path: minimum
cosine on the STSb sentences and on empty / very long inputs, STSb test Spearman; writes
benchmarks/results/onnx_variants.<machine>.json. This is how ``sbert export onnx`` picked
its defaults; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    add_output_options,
    alternate,
    is_full,
    median,
    print_tables,
    sts_pairs,
    table,
    write_result,
)

ROBUSTNESS = ["", " ", "word " * 600, "\u00e9\u00e8 \U0001f600 " * 50]


def build_variants(name: str, rebuild: bool) -> tuple[Path, dict[str, str]]:
    """Export once and derive every candidate graph; returns the folder and name -> file."""
    from sbert import SentenceEncoder
    from sbert.backends.onnx.export import export_transformer
    from sbert.backends.onnx.graph import fuse_graph, optimize_graph
    from sbert.backends.onnx.quantize import _ffn_output_matmuls, quantize_int8
    from sbert.backends.onnx.targets import Int8Recipe
    from sbert.runtime import cache_dir

    folder = cache_dir() / "bench-variants" / name
    onnx_dir = folder / "onnx"
    files = {
        "fp32-plain": "raw.onnx",
        "fp32-ortopt": "ortopt.onnx",
        "fp32-fused": "fused.onnx",
        "int8-plain-pc": "int8_plain_pc.onnx",
        "int8-plain-pt": "int8_plain_pt.onnx",
        "int8-plain-pc-keepffn": "int8_plain_pc_keepffn.onnx",
        "int8-fused-pc": "int8_fused_pc.onnx",
        "int8-fused-qattn": "int8_fused_qattn.onnx",
    }
    if not rebuild and all((onnx_dir / f).exists() for f in files.values()):
        return folder, files
    encoder = SentenceEncoder(name, device="cpu", backend="torch", precision="fp32")
    encoder.save(folder)
    if not (folder / "tokenizer.json").exists():
        encoder.tokenizer.save(folder)
    onnx_dir.mkdir(parents=True, exist_ok=True)
    raw = onnx_dir / files["fp32-plain"]
    export_transformer(encoder.backend, encoder.tokenizer, raw)
    optimize_graph(raw, onnx_dir / files["fp32-ortopt"])
    fused = onnx_dir / files["fp32-fused"]
    if not fuse_graph(raw, fused, encoder.spec.transformer_path):
        raise SystemExit(f"{name}: the transformer optimizer cannot fuse this model")
    for key, per_channel in (("int8-plain-pc", True), ("int8-plain-pt", False)):
        quantize_int8(raw, onnx_dir / files[key], Int8Recipe("qint8", per_channel))
        optimize_graph(onnx_dir / files[key])
    keep = onnx_dir / files["int8-plain-pc-keepffn"]
    quantize_int8(raw, keep, exclude=_ffn_output_matmuls(raw))
    optimize_graph(keep)
    _quantize_fused(fused, onnx_dir / files["int8-fused-pc"], ["MatMul"])
    _quantize_fused(fused, onnx_dir / files["int8-fused-qattn"], ["MatMul", "Attention"])
    return folder, files


def _quantize_fused(fused: Path, out: Path, op_types: list[str]) -> None:
    """Dynamic int8 of a fused graph (``Attention`` in ``op_types``: QAttention)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fused), str(out), op_types_to_quantize=op_types,
                     per_channel=True, reduce_range=False, weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})


def _job(enc: Any, sentences: list[str], batch_size: int) -> Callable[[], Any]:
    return lambda: enc.encode(sentences, batch_size=batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="first N STSb sentences")
    parser.add_argument("--only", nargs="+", default=None, help="variant names to run")
    parser.add_argument("--rebuild", action="store_true", help="export the variants again")
    add_output_options(parser)
    args = parser.parse_args()

    import warnings

    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    from sbert import SentenceEncoder

    warnings.filterwarnings("ignore", message=".*were truncated")
    folder, files = build_variants(args.model, args.rebuild)
    names = args.only or list(files)
    left, right, gold = sts_pairs(args.limit)
    sentences = left + right
    torch_enc = SentenceEncoder(args.model, device="cpu", backend="torch", precision="fp32")
    ref = torch_enc.encode(sentences + ROBUSTNESS, batch_size=32)
    encoders = {k: SentenceEncoder(folder, backend="onnx", file=f"onnx/{files[k]}")
                for k in names}
    baseline = SentenceTransformer(str(torch_enc.path), device="cpu")
    bs = args.batch_size
    n = len(sentences)
    notes = [f"{args.model}: {n} STSb test sentences + {len(ROBUSTNESS)} empty/long inputs, "
             f"batch {bs}, median of {args.rounds} alternating rounds; quality against "
             "sbert's fp32 torch path"]
    print(notes[0], flush=True)
    unit_ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    quality: dict[str, dict[str, Any]] = {}
    for k, enc in encoders.items():
        e = enc.encode(sentences + ROBUSTNESS, batch_size=32)
        unit = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        cos = (unit * unit_ref).sum(axis=1)
        half = n // 2
        quality[k] = {
            "min_cos": cos[:n].min(), "min_cos_extra": cos[n:].min(),
            "spearman": spearmanr((unit[:half] * unit[half:n]).sum(axis=1), gold).statistic * 100,
            "size_mb": (folder / "onnx" / files[k]).stat().st_size / 1e6}
    runs: dict[str, Callable[[], Any]] = {
        "st-torch": lambda: baseline.encode(sentences, batch_size=bs, show_progress_bar=False),
        "sbert-torch": lambda: torch_enc.encode(sentences, batch_size=bs),
    }
    for k, enc in encoders.items():
        runs[k] = _job(enc, sentences, bs)
    times = alternate(runs, args.rounds)
    base = times["st-torch"]
    rows = [{"variant": k, "rate": n / median(ts),
             "ratio": median([b / t for b, t in zip(base, ts, strict=True)]),
             **quality.get(k, {})} for k, ts in times.items()]
    tables = [table("variants", f"{args.model}: ONNX graph variants", [
        ("variant", "variant", ""), ("rate", "sentences/s", "{:.0f}"),
        ("ratio", "x st-torch (median)", "{:.2f}x"), ("min_cos", "min cos STSb", "{:.4f}"),
        ("min_cos_extra", "min cos empty/long", "{:.4f}"),
        ("spearman", "STSb Spearman", "{:.2f}"), ("size_mb", "size MB", "{:.0f}")], rows)]
    print_tables(tables)
    write_result("onnx_variants", tables, args, notes=notes, raw={"seconds": times},
                 full=is_full(args, parser, ("model", "rounds", "batch_size", "limit", "only")))

if __name__ == "__main__":
    main()
