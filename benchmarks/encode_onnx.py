"""CPU encoding speed and quality of the ONNX backend (fp32, int8) and torch bf16, vs the reference.

    .venv/bin/python benchmarks/encode_onnx.py            # full run, about 10 minutes on 2 cores
    .venv/bin/python benchmarks/encode_onnx.py --quick    # all-MiniLM-L6-v2, batch 32 only
    .venv/bin/python benchmarks/encode_onnx.py --limit 300 --rounds 1 --out /tmp/bench  # smoke

For each model (all-MiniLM-L6-v2, all-mpnet-base-v2) it exports the ONNX graphs once (into the
sbert cache, not timed), then encodes the 2,758 STS benchmark test sentences with
sentence-transformers' torch ``encode`` (the baseline), sbert's torch path, sbert ONNX fp32,
ONNX int8 and sbert torch under bf16 autocast, alternating after a warm-up, and prints
sentences/s, the median ratio to the baseline, the GFLOP/s reached beside the machine's fp32
matrix-multiply limit (onnxruntime and torch), and quality against sbert's fp32 torch path
(minimum and mean cosine, STS benchmark test Spearman). For all-MiniLM-L6-v2 it adds batch
sizes 1, 8, 32, 128 and 256-token inputs; all-mpnet-base-v2 is timed on the first 1,000
sentences (its quality on all 2,758). Writes benchmarks/results/encode_onnx.<machine>.json.
Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    add_output_options,
    bert_flops,
    exported,
    is_full,
    matmul_gflops,
    median,
    ort_matmul_gflops,
    print_tables,
    sts_pairs,
    table,
    write_result,
)

MODELS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
BASELINE = "st-torch"
CEILING = "fp32 ceiling (ORT matmul limit)"


def contenders(name: str, folder: Path) -> dict[str, Any]:
    """name -> an object with ``encode(sentences, batch_size)`` returning (n, dim) float32."""
    from sentence_transformers import SentenceTransformer

    from sbert import SentenceEncoder

    ours = SentenceEncoder(name, device="cpu", backend="torch", precision="fp32")

    class _Ref:
        model = SentenceTransformer(str(ours.path), device="cpu")

        def encode(self, s: list[str], batch_size: int) -> np.ndarray:
            out: np.ndarray = self.model.encode(s, batch_size=batch_size, show_progress_bar=False)
            return out

    class _Ours:
        def __init__(self, enc: Any) -> None:
            self.enc = enc

        def encode(self, s: list[str], batch_size: int) -> np.ndarray:
            out: np.ndarray = self.enc.encode(s, batch_size=batch_size, show_progress=False)
            return out

    return {
        BASELINE: _Ref(),
        "sbert-torch": _Ours(ours),
        "sbert-onnx-fp32": _Ours(SentenceEncoder(folder, backend="onnx")),
        "sbert-onnx-int8": _Ours(SentenceEncoder(folder, backend="onnx", quantized=True)),
        "sbert-torch-bf16": _Ours(SentenceEncoder(name, device="cpu", precision="bf16")),
    }


def padded_flops(enc: Any, sentences: list[str], batch_size: int, cfg: dict[str, Any]) -> float:
    """Matrix FLOPs of the batches sbert runs (length-sorted, padded), attention included."""
    lengths = np.sort(enc.tokenizer.encode(sentences).lengths)[::-1]
    h, f, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    total = 0.0
    for start in range(0, len(lengths), batch_size):
        batch = lengths[start : start + batch_size]
        width = int(batch[0])
        total += bert_flops(len(batch) * width, h, f, n) + 4.0 * len(batch) * width**2 * h * n
    return total


def alternate(
    runs: dict[str, Callable[[list[str]], object]], sentences: list[str], rounds: int
) -> dict[str, list[float]]:
    """Warm each contender up on the longest inputs, then run them in turn; seconds per run.

    The starting contender rotates from round to round so no one always follows the same one.
    """
    longest = sorted(sentences, key=len, reverse=True)[:64]
    for fn in runs.values():
        fn(longest)
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            runs[name](sentences)
            times[name].append(time.perf_counter() - start)
    return times


def speed_table(table_id: str, title: str, runs: dict[str, Any], sentences: list[str],
                batch_size: int, rounds: int, flops: float,
                limits: dict[str, float]) -> dict[str, Any]:
    """Time every contender alternately; one table (the last row: ORT's fp32 ceiling)."""
    fns: dict[str, Callable[[list[str]], object]] = {
        k: (lambda s, c=c: c.encode(s, batch_size)) for k, c in runs.items()
    }
    times = alternate(fns, sentences, rounds)
    base = times[BASELINE]
    n = len(sentences)
    rows = []
    for k, ts in times.items():
        t = median(ts)
        gf = flops / t / 1e9
        rows.append({"contender": k, "rate": n / t,
                     "ratio": median([b / x for b, x in zip(base, ts, strict=True)]),
                     "gflops": gf, "of_ort": gf / limits["onnxruntime"],
                     "of_torch": gf / limits["torch"]})
    ceiling = limits["onnxruntime"] * 1e9 / flops * n
    rows.append({"contender": CEILING, "rate": ceiling, "ratio": ceiling / (n / median(base)),
                 "gflops": limits["onnxruntime"], "of_ort": 1.0})
    return table(table_id, f"{title}: {n} inputs, batch {batch_size}, {flops / 1e12:.3f} TFLOP "
                 f"(padded batches), median of {rounds} rounds", [
                     ("contender", "contender", ""), ("rate", "sentences/s", "{:.0f}"),
                     ("ratio", "x baseline", "{:.2f}x"), ("gflops", "GFLOP/s", "{:.0f}"),
                     ("of_ort", "of ORT limit", "{:.0%}"),
                     ("of_torch", "of torch limit", "{:.0%}")], rows)


def quality_table(name: str, runs: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """Cosine vs sbert's fp32 torch path and STS benchmark test Spearman, for every contender."""
    from scipy.stats import spearmanr

    left, right, gold = sts_pairs(limit)
    robustness = ["", " ", "word " * 600, "\u00e9\u00e8 \U0001f600 " * 50]
    sentences = left + right + robustness
    embs = {k: np.asarray(c.encode(sentences, 32), dtype=np.float32) for k, c in runs.items()}
    ref = embs["sbert-torch"]
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    n = 2 * len(left)
    rows = []
    for k, e in embs.items():
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        ok = bool(np.isfinite(e).all() and (norms > 0).all())
        unit = e / np.maximum(norms, 1e-12)
        cos = (unit * ref).sum(axis=1)
        half = n // 2
        rho = spearmanr((unit[:half] * unit[half:n]).sum(axis=1), gold).statistic * 100
        rows.append({"contender": k, "min_cos": cos[:n].min(), "mean_cos": cos[:n].mean(),
                     "min_cos_extra": cos[n:].min(), "spearman": rho,
                     "finite": "yes" if ok else "NO"})
    return table(f"quality {name}", f"quality, {name}: {n} STSb test sentences + "
                 f"{len(robustness)} empty/long", [
                     ("contender", "contender", ""),
                     ("min_cos", "min cosine vs fp32 torch (STSb)", "{:.6f}"),
                     ("mean_cos", "mean cosine", "{:.6f}"),
                     ("min_cos_extra", "min cosine (empty/long)", "{:.6f}"),
                     ("spearman", "STSb Spearman x100", "{:.2f}"),
                     ("finite", "finite, non-zero", "")], rows)


def sweep_table(name: str, speed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One model's speed tables side by side: x baseline per contender and setting."""
    first = next(iter(speed.values()))["rows"]
    rows: list[dict[str, Any]] = [{"contender": f"{BASELINE} (sentences/s)", **{
        setting: f"{tab['rows'][0]['rate']:.0f}" for setting, tab in speed.items()}}]
    for c in (r["contender"] for r in first if r["contender"] != BASELINE):
        row: dict[str, Any] = {"contender": c}
        for setting, tab in speed.items():
            row[setting] = next((r["ratio"] for r in tab["rows"] if r["contender"] == c), None)
        rows.append(row)
    return table(f"sweep {name}", f"{name}: x {BASELINE} per setting",
                 [("contender", name, ""), *((s, s, "{:.2f}x") for s in speed)], rows)


def long_inputs(enc: Any, sentences: list[str], count: int, tokens: int = 256) -> list[str]:
    """``count`` texts of at least ``tokens`` tokens, made by joining STSb sentences."""
    out: list[str] = []
    i = 0
    while len(out) < count:
        text = ""
        while not text or int(enc.tokenizer.encode([text]).lengths[0]) < tokens:
            text = f"{text} {sentences[i % len(sentences)]}".strip()
            i += 1
        out.append(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None,
                        help="first N STSb sentences (smoke runs); scales the other sets too")
    parser.add_argument("--quick", action="store_true",
                        help="all-MiniLM-L6-v2 at batch 32 only (no batch sweep, no long inputs)")
    parser.add_argument("--reexport", action="store_true", help="export the graphs again")
    add_output_options(parser)
    args = parser.parse_args()

    import warnings

    import torch

    from sbert.runtime import available_cores

    warnings.filterwarnings("ignore", message=".*were truncated")
    models = ["all-MiniLM-L6-v2"] if args.quick else args.models
    left, right, _ = sts_pairs(args.limit)
    sentences = left + right
    limits = {"onnxruntime": ort_matmul_gflops(), "torch": matmul_gflops()}
    notes = [f"{available_cores()} cores, {torch.get_num_threads()} torch threads; x baseline: "
             f"the median per-round ratio to sentence-transformers' torch encode ({BASELINE})"]
    print("\n".join(notes), flush=True)
    print(f"fp32 matmul limit (2048^3): onnxruntime {limits['onnxruntime']:.0f} GFLOP/s, torch "
          f"{limits['torch']:.0f} GFLOP/s", flush=True)
    tables: list[dict[str, Any]] = []
    for name in models:
        folder = exported(name, args.reexport)
        runs = contenders(name, folder)
        ours = runs["sbert-torch"].enc
        cfg = json.loads((ours.spec.transformer_path / "config.json").read_text())
        section = [quality_table(name, runs, args.limit)]
        speed: dict[str, dict[str, Any]] = {}
        # the main row: the STSb test sentences at batch 32 (a larger model: the first 1,000)
        timed = sentences if name == "all-MiniLM-L6-v2" else sentences[:1000]
        rounds = args.rounds if name == "all-MiniLM-L6-v2" else max(1, args.rounds - 1)
        speed["batch 32"] = speed_table(f"speed {name} batch 32", f"{name}, STSb test", runs,
                                        timed, 32, rounds, padded_flops(ours, timed, 32, cfg),
                                        limits)
        if name == "all-MiniLM-L6-v2" and not args.quick:
            subset = sentences[: min(len(sentences), 1000)]
            for bs in (1, 8, 128):
                few = subset[:300] if bs == 1 else subset
                speed[f"batch {bs}"] = speed_table(
                    f"speed {name} batch {bs}", f"{name}, batch {bs}", runs, few, bs,
                    max(1, args.rounds - 1), padded_flops(ours, few, bs, cfg), limits)
            count = 128 if args.limit is None else max(8, args.limit // 10)
            texts = long_inputs(ours, sentences, count)
            for c in runs.values():  # all contenders truncate at 256 tokens
                if hasattr(c, "model"):
                    c.model.max_seq_length = 256
                else:
                    c.enc.max_seq_length = 256
            speed["256 tokens, batch 32"] = speed_table(
                f"speed {name} 256 tokens", f"{name}, 256-token inputs", runs, texts, 32,
                max(1, args.rounds - 1), padded_flops(ours, texts, 32, cfg), limits)
            order = ["batch 1", "batch 8", "batch 32", "batch 128", "256 tokens, batch 32"]
            speed = {k: speed[k] for k in order}
        section += list(speed.values())
        section.insert(0, sweep_table(name, speed))
        print_tables(section)
        tables += section
    write_result("encode_onnx", tables, args, notes=notes, limits=limits,
                 full=is_full(args, parser, ("models", "rounds", "limit", "quick")))

if __name__ == "__main__":
    main()
