"""Encoding speed on CPU: every sbert path vs sentence-transformers, alternating in one run.

    .venv/bin/python benchmarks/encode.py [--model all-MiniLM-L6-v2] [--batch-size 32] [--rounds 5]
    .venv/bin/python benchmarks/encode.py --no-onnx          # torch paths only
    .venv/bin/python benchmarks/encode.py --one-stream       # + ONNX one batch at a time

Encodes the 2,758 STS benchmark test sentences with sentence-transformers' torch ``encode``
(the baseline) and with sbert's torch path, torch bf16 autocast, ONNX fp32 and ONNX int8
(graphs exported once into the sbert cache, not timed), and ``sbert auto``, the path
``SentenceEncoder(model)`` chooses on this machine (named in the row), in turn after a
warm-up, rotating
who goes first. Prints sentences/s, the median per-round ratio to the baseline, the GFLOP/s
each reaches on the real tokens beside the machine's fp32 matrix-multiply limits (torch/MKL,
oneDNN, onnxruntime) and the fp32 ceiling those imply, and the parity (minimum cosine) of
every path against the baseline, and writes them to benchmarks/results/encode.<machine>.json.
Run it on an idle machine: a figure from a busy one is not a figure. The batch-size sweep,
long inputs and all-mpnet-base-v2 are in encode_onnx.py. Smoke run:
``--limit 200 --rounds 1 --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    add_output_options,
    exported,
    is_full,
    limits_text,
    machine_limits,
    median,
    min_cosine,
    model_flops,
    print_tables,
    sts_test_sentences,
    table,
    write_result,
)

BASELINE = "sentence-transformers"


def rotate(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """One warm-up each, then ``rounds`` rounds; the first contender rotates every round."""
    for fn in runs.values():
        fn()
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return times


def auto_encoder(model: str) -> Any:
    """``SentenceEncoder(model)`` as a user gets it: backend/precision auto, no SBERT_* pins."""
    from sbert import SentenceEncoder

    saved = {k: os.environ.pop(k) for k in ("SBERT_BACKEND", "SBERT_PRECISION")
             if k in os.environ}
    try:
        return SentenceEncoder(model)
    finally:
        os.environ.update(saved)


def _job(enc: Any, sentences: list[str], batch_size: int) -> Callable[[], Any]:
    return lambda: enc.encode(sentences, batch_size=batch_size, show_progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="first N sentences (smoke runs)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX contenders")
    parser.add_argument("--reexport", action="store_true", help="export the ONNX graphs again")
    parser.add_argument("--one-stream", action="store_true",
                        help="also time ONNX with streams=1 (one batch at a time, all cores)")
    add_output_options(parser)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from sbert import SentenceEncoder

    sentences = sts_test_sentences()[: args.limit]
    bs = args.batch_size
    ours = SentenceEncoder(args.model, device="cpu", backend="torch", precision="fp32")
    ref = SentenceTransformer(str(ours.path), device="cpu")
    encoders: dict[str, Any] = {
        "sbert torch": ours,
        "sbert torch bf16": SentenceEncoder(args.model, device="cpu", precision="bf16"),
    }
    auto = auto_encoder(args.model)  # what a user gets from SentenceEncoder(model)
    encoders[f"sbert auto ({auto.backend_name} {auto.precision})"] = auto
    if not args.no_onnx:
        folder = exported(args.model, args.reexport)
        encoders["sbert onnx fp32"] = SentenceEncoder(folder, backend="onnx")
        encoders["sbert onnx int8"] = SentenceEncoder(folder, backend="onnx", quantized=True)
        if args.one_stream:  # the old default: one batch at a time on every core
            encoders["sbert onnx fp32, 1 stream"] = SentenceEncoder(
                folder, backend="onnx", streams=1)
            encoders["sbert onnx int8, 1 stream"] = SentenceEncoder(
                folder, backend="onnx", quantized=True, streams=1)

    runs: dict[str, Callable[[], Any]] = {
        BASELINE: lambda: ref.encode(sentences, batch_size=bs, show_progress_bar=False),
    }
    for name, enc in encoders.items():
        runs[name] = _job(enc, sentences, bs)
    base_emb = runs[BASELINE]()
    parity = {name: min_cosine(runs[name](), base_emb) for name in encoders}

    n_tokens, flops = model_flops(ours, sentences)
    limits = dict(machine_limits())  # MKL, oneDNN and, where installed, onnxruntime

    times = rotate(runs, args.rounds)
    base = times[BASELINE]
    n = len(sentences)
    notes = [f"model {args.model}, {n} STSb test sentences, {n_tokens} real tokens "
             f"({flops / 1e12:.3f} TFLOP of matrix work), batch {bs}, "
             f"{torch.get_num_threads()} torch threads, median of {args.rounds} rounds",
             f"sbert auto: SentenceEncoder(model) without SBERT_* pins ran "
             f"{auto.path_choice.describe()}"]
    columns = [("contender", "contender", ""), ("rate", "sentences/s", "{:.0f}"),
               ("ratio", f"x {BASELINE} (median)", "{:.2f}x"),
               ("rounds", "per round", "{:.2f}"), ("gflops", "GFLOP/s", "{:.0f}")]
    columns += [(f"of_{k}", f"of {k} limit", "{:.0%}") for k in limits]
    columns += [("min_cosine", "min cosine vs baseline", "{:.7f}")]
    rows = []
    for name, ts in times.items():
        t = median(ts)
        rate = flops / t / 1e9
        ratios = [b / x for b, x in zip(base, ts, strict=True)]
        rows.append({"contender": name, "rate": n / t, "ratio": median(ratios),
                     "rounds": ratios, "gflops": rate,
                     **{f"of_{k}": rate / v for k, v in limits.items()},
                     "min_cosine": parity.get(name)})
    best_name = max(limits, key=lambda k: limits[k])
    ceiling = limits[best_name] * 1e9 / flops * n
    notes.append(f"fp32 ceiling: the {best_name} limit on the real tokens")
    rows.append({"contender": "fp32 ceiling",
                 "rate": ceiling, "ratio": ceiling / (n / median(base)),
                 "gflops": limits[best_name]})
    tables = [table("speed", f"{args.model}, batch {bs}", columns, rows)]
    print("\n".join(notes))
    print(f"machine fp32 limits (2048^3 matmul): {limits_text(limits)}")
    print_tables(tables)
    write_result("encode", tables, args, notes=notes, limits=limits,
                 raw={"seconds": times, "sentences": n, "real_tokens": n_tokens,
                      "flops": flops},
                 full=is_full(args, parser, ("model", "batch_size", "rounds", "limit",
                                             "no_onnx")))

if __name__ == "__main__":
    main()
