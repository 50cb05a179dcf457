"""Which weight MatMuls cost an int8 graph its minimum cosine? Keep groups in fp32 and see.

    .venv/bin/python benchmarks/int8_sensitivity.py [GROUP...] [--model all-mpnet-base-v2]
        [--smooth ALPHA...] [--smooth-groups GROUP...]
    .venv/bin/python benchmarks/int8_sensitivity.py none base --model all-MiniLM-L6-v2 \
        --limit 200 --smooth 0.5 --smooth-groups none --out /tmp/bench        # smoke run

GROUPs: none, base (the feed-forward outputs fp32, the exporter's fallback), base+qkv,
base+ffn_in, base+attn_out, ffn_in_only, base+ffn_in_0-5, base+ffn_in_6-11, base+ffn_in_L,
base+layerL, base-ffn_out_L (L = 0..11). For each: quantize the plain (unoptimised) graph
with sbert's dynamic per-channel settings, keeping the group's MatMuls fp32, and report the
minimum, 1st percentile and mean cosine against the fp32 graph on the 2,758 STS benchmark
test sentences (batch 32), the minimum on empty and over-long inputs, and the worst
sentences. Then the same for ``--smooth-groups`` after smoothing the activations
(``graph.smooth_activations``) with each ``--smooth`` alpha. Writes
benchmarks/results/int8_sensitivity.<machine>.json. Quality only: it can run beside other
work (the figures do not depend on the machine's load).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    add_output_options,
    exported,
    is_full,
    print_tables,
    sts_test_sentences,
    table,
    write_result,
)

EXTRA = ["", " ", "a", "ok", "word " * 600, "The cat sat on the mat. " * 60]
GROUPS = ("none", "base", "base+qkv", "base+ffn_in", "base+ffn_in_0-5", "base+ffn_in_6-11",
          "base+ffn_in_0", "ffn_in_only")
DESCRIBE = {
    "none": "nothing (every MatMul int8)",
    "base": "feed-forward outputs (the exporter's fallback)",
    "base+qkv": "+ Q, K, V projections",
    "base+ffn_in": "+ feed-forward inputs, all layers",
    "base+ffn_in_0-5": "+ feed-forward inputs, layers 0-5",
    "base+ffn_in_6-11": "+ feed-forward inputs, layers 6-11",
    "base+ffn_in_0": "+ feed-forward input, layer 0",
    "base+attn_out": "+ attention outputs",
    "ffn_in_only": "feed-forward inputs only (outputs int8)",
}
COLUMNS = [("group", "group", ""), ("kept", "kept fp32", ""),
           ("fp32_matmuls", "MatMuls fp32", "{:d}"), ("min", "min cosine", "{:.4f}"),
           ("p1", "1st percentile", "{:.4f}"), ("mean", "mean", "{:.4f}"),
           ("extra_min", "empty/long min", "{:.3f}"), ("worst", "worst sentences", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("groups", nargs="*", default=list(GROUPS))
    parser.add_argument("--model", default="all-mpnet-base-v2")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/out/int8_sensitivity"))
    parser.add_argument("--smooth", type=float, nargs="*", default=[0.5], metavar="ALPHA",
                        help="smoothing strengths to try (none: skip the smoothing table)")
    parser.add_argument("--smooth-groups", nargs="+", default=["none", "base"],
                        help="groups to quantize after smoothing")
    parser.add_argument("--min-ratio", type=float, default=None,
                        help="smooth inputs at least this uneven (default: the exporter's)")
    parser.add_argument("--limit", type=int, default=None, help="first N sentences (smoke)")
    add_output_options(parser)
    args = parser.parse_args()

    import onnx

    from sbert.backends.onnx.export import export_transformer
    from sbert.backends.onnx.graph import SMOOTH_MIN_RATIO, smooth_activations
    from sbert.backends.onnx.quantize import probe_feed, quantize_int8
    from sbert.encoder import SentenceEncoder
    from sbert.models import resolve_model

    sents = sts_test_sentences()[: args.limit]
    src = resolve_model(args.model)
    folder = exported(args.model, reexport=False)  # tokenizer + pooling for the backend
    args.work.mkdir(parents=True, exist_ok=True)
    # named after the export's cache folder (name + hash): bundled models' folders are all "model"
    plain = args.work / f"{folder.name}.plain.onnx"
    if not plain.exists():
        source_encoder = SentenceEncoder(str(src), backend="torch", precision="fp32")
        export_transformer(source_encoder.backend, source_encoder.tokenizer, plain)
    enc = SentenceEncoder(str(folder), backend="onnx")
    graph = onnx.load(str(plain), load_external_data=False).graph
    names = [n.name for n in graph.node if n.op_type == "MatMul"]

    def embed(path: Path, texts: list[str]) -> np.ndarray:
        graph_encoder = SentenceEncoder(str(folder), backend="onnx", file=str(path.resolve()))
        return graph_encoder.encode(texts, batch_size=32, normalize=True, show_progress=False)

    def pick(pattern: str, layers: set[int] | None = None) -> list[str]:
        out = []
        for name in names:
            m = re.search(r"layer\.(\d+)/", name)
            if layers is not None and (m is None or int(m.group(1)) not in layers):
                continue
            if re.search(pattern, name):
                out.append(name)
        return out

    ffn_out = [n for n in names if re.search(r"/output/dense/MatMul", n) and "attention" not in n]
    qkv = r"attn/(q|k|v)/MatMul|attention/self/(query|key|value)/MatMul"
    groups = {
        "none": [], "base": ffn_out,
        "base+qkv": ffn_out + pick(qkv),
        "base+ffn_in": ffn_out + pick(r"intermediate/dense/MatMul"),
        "base+attn_out": ffn_out + pick(r"attn/o/MatMul|attention/output/dense/MatMul"),
        "ffn_in_only": pick(r"intermediate/dense/MatMul"),
        "base+ffn_in_0-5": ffn_out + pick(r"intermediate/dense/MatMul", set(range(6))),
        "base+ffn_in_6-11": ffn_out + pick(r"intermediate/dense/MatMul", set(range(6, 12))),
    }
    for layer in range(12):
        groups[f"base+ffn_in_{layer}"] = ffn_out + pick(r"intermediate/dense/MatMul", {layer})
        groups[f"base+layer{layer}"] = ffn_out + pick(r".", {layer})
        groups[f"base-ffn_out_{layer}"] = [n for n in ffn_out if f"layer.{layer}/" not in n]
    unknown = [g for g in [*args.groups, *args.smooth_groups] if g not in groups]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; expected some of {sorted(groups)}")

    ref, ref_extra = embed(plain, sents), embed(plain, EXTRA)
    notes = [f"{args.model}: {len(names)} weight MatMuls; cosine of each int8 graph against "
             f"the fp32 graph on {len(sents)} STSb test sentences and {len(EXTRA)} empty or "
             "over-long inputs, batch 32"]
    print(notes[0], flush=True)

    def measure(source: Path, group: str) -> dict[str, Any]:
        start = time.perf_counter()
        out = args.work / "int8.onnx"
        quantize_int8(source, out, exclude=groups[group])
        cos = (embed(out, sents) * ref).sum(1)
        extra = (embed(out, EXTRA) * ref_extra).sum(1)
        row = {"group": group, "kept": DESCRIBE.get(group, group),
               "fp32_matmuls": len(groups[group]), "min": cos.min(),
               "p1": np.percentile(cos, 1), "mean": cos.mean(), "extra_min": extra.min(),
               "worst": "; ".join(repr(sents[i][:40]) for i in np.argsort(cos)[:3])}
        print(f"{group:20s} min {cos.min():.4f} ({time.perf_counter() - start:.0f} s)",
              flush=True)
        return row

    tables = [table("groups", f"{args.model}: int8 with groups of MatMuls kept fp32", COLUMNS,
                    [measure(plain, g) for g in args.groups])]
    ratio = SMOOTH_MIN_RATIO if args.min_ratio is None else args.min_ratio
    for alpha in args.smooth:
        source = args.work / "smoothed.onnx"
        done = smooth_activations(plain, source, [probe_feed(enc.tokenizer)], alpha, ratio)
        fp32_min = float((embed(source, sents) * ref).sum(1).min())
        notes.append(f"smoothing alpha {alpha}: {len(done)} MatMul inputs smoothed (min ratio "
                     f"{ratio}); the smoothed fp32 graph's min cosine {fp32_min:.6f}")
        print(notes[-1], flush=True)
        tables.append(table(f"smooth {alpha}", f"{args.model}: smoothed (alpha {alpha}), then "
                            "int8", COLUMNS, [measure(source, g) for g in args.smooth_groups]))
    print_tables(tables)
    write_result("int8_sensitivity", tables, args, notes=notes,
                 full=is_full(args, parser, ("groups", "model", "smooth", "smooth_groups",
                                             "min_ratio", "limit")))


if __name__ == "__main__":
    main()
