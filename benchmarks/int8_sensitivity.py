"""Which weight MatMuls cost an int8 graph its minimum cosine? Keep groups in fp32 and see.

    .venv/bin/python benchmarks/int8_sensitivity.py [--model all-mpnet-base-v2] GROUP...

GROUPs: none, base (the feed-forward outputs fp32, the exporter's fallback), base+qkv,
base+ffn_in, base+attn_out, ffn_in_only, base+ffn_in_0-5, base+ffn_in_6-11, base+ffn_in_L,
base+layerL, base-ffn_out_L (L = 0..11); --smooth ALPHA smooths the activations first. For
each: quantize the plain (unoptimised) graph with sbert's dynamic per-channel settings,
keeping the group's MatMuls fp32, and print the minimum, 1st percentile and mean cosine
against the fp32 graph on the 2,758 STS benchmark test sentences (batch 32), the minimum on
empty and over-long inputs, and the worst sentences. Quality only: it can run beside other
work.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import exported, sts_test_sentences  # noqa: E402

EXTRA = ["", " ", "a", "ok", "word " * 600, "The cat sat on the mat. " * 60]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("groups", nargs="*", default=["none", "base"])
    parser.add_argument("--model", default="all-mpnet-base-v2")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/out/int8_sensitivity"))
    parser.add_argument("--smooth", type=float, default=None, metavar="ALPHA",
                        help="smooth the activations first (graph.smooth_activations)")
    parser.add_argument("--min-ratio", type=float, default=None,
                        help="smooth inputs at least this uneven (default: the exporter's)")
    args = parser.parse_args()

    import onnx

    from sbert.backends.onnx.export import export_transformer
    from sbert.backends.onnx.graph import SMOOTH_MIN_RATIO, smooth_activations
    from sbert.backends.onnx.quantize import probe_feed, quantize_int8
    from sbert.encoder import SentenceEncoder
    from sbert.models import resolve_model

    sents = sts_test_sentences()
    src = resolve_model(args.model)
    folder = exported(args.model, reexport=False)  # tokenizer + pooling for the backend
    args.work.mkdir(parents=True, exist_ok=True)
    # named after the export's cache folder (name + hash): bundled models' folders are all "model"
    plain = args.work / f"{folder.name}.plain.onnx"
    if not plain.exists():
        source_encoder = SentenceEncoder(str(src))
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

    ref, ref_extra = embed(plain, sents), embed(plain, EXTRA)
    print(f"{args.model}: {len(names)} MatMuls", flush=True)
    source = plain
    if args.smooth is not None:
        source = args.work / "smoothed.onnx"
        ratio = SMOOTH_MIN_RATIO if args.min_ratio is None else args.min_ratio
        done = smooth_activations(plain, source, [probe_feed(enc.tokenizer)], args.smooth, ratio)
        print(f"smoothed {len(done)} MatMul inputs (alpha {args.smooth}, min ratio {ratio}); "
              f"fp32 min cosine {(embed(source, sents) * ref).sum(1).min():.6f}", flush=True)
    for group in args.groups:
        start = time.perf_counter()
        out = args.work / "int8.onnx"
        quantize_int8(source, out, exclude=groups[group])
        cos = (embed(out, sents) * ref).sum(1)
        extra = (embed(out, EXTRA) * ref_extra).sum(1)
        worst = [sents[i][:40] for i in np.argsort(cos)[:3]]
        print(f"{group:20s} fp32 MatMuls {len(groups[group]):3d}  min {cos.min():.4f}  "
              f"p1 {np.percentile(cos, 1):.4f}  mean {cos.mean():.4f}  empty/long min "
              f"{extra.min():.3f}  worst {worst}  ({time.perf_counter() - start:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
