"""Encoding speed on CPU: sbert's torch path vs sentence-transformers, alternating in one run.

    .venv/bin/python benchmarks/encode.py [--model all-MiniLM-L6-v2] [--batch-size 32] [--rounds 5]

Encodes the 2,758 STS benchmark test sentences with each library in turn (after a warm-up),
prints sentences/s, the per-round ratio and its median, the parity (minimum cosine), and the
share of the machine's fp32 matrix-multiply limit that each reaches on the real tokens.
Run it on an idle machine: a figure from a busy one is not a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    alternate,
    bert_flops,
    matmul_gflops,
    median,
    min_cosine,
    onednn_gflops,
    sts_test_sentences,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="first N sentences (smoke runs)")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from sbert import SentenceEncoder

    sentences = sts_test_sentences()[: args.limit]
    ours = SentenceEncoder(args.model, device="cpu")
    ref = SentenceTransformer(str(ours.path), device="cpu")
    bs = args.batch_size

    a = ours.encode(sentences, batch_size=bs, show_progress=False)
    b = ref.encode(sentences, batch_size=bs, show_progress_bar=False)
    parity = min_cosine(a, b)

    cfg = json.loads((ours.spec.transformer_path / "config.json").read_text())
    n_tokens = int(ours.tokenizer.encode(sentences).lengths.sum())
    flops = bert_flops(n_tokens, cfg["hidden_size"], cfg["intermediate_size"],
                       cfg["num_hidden_layers"])
    limit = matmul_gflops()
    onednn = onednn_gflops()

    times = alternate(
        {
            "sbert": lambda: ours.encode(sentences, batch_size=bs, show_progress=False),
            "sentence-transformers": lambda: ref.encode(
                sentences, batch_size=bs, show_progress_bar=False
            ),
        },
        args.rounds,
    )
    ratios = [r / s for s, r in zip(times["sbert"], times["sentence-transformers"], strict=True)]
    n = len(sentences)
    print(f"model {args.model}, {n} sentences, {n_tokens} real tokens "
          f"({flops / 1e12:.3f} TFLOP of matrix work), batch {bs}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"machine fp32 limits (2048^3 matmul): torch/MKL {limit:.0f} GFLOP/s, "
          f"oneDNN {onednn:.0f} GFLOP/s (sbert's CPU path uses oneDNN)")
    print(f"{'library':<24}{'sentences/s':>12}{'GFLOP/s':>10}{'of MKL':>9}{'of oneDNN':>11}")
    for name, ts in times.items():
        t = median(ts)
        rate = flops / t / 1e9
        print(f"{name:<24}{n / t:>12.0f}{rate:>10.0f}{rate / limit:>9.0%}{rate / onednn:>11.0%}")
    print("per-round speed ratio sbert / sentence-transformers: "
          + ", ".join(f"{r:.2f}" for r in ratios))
    print(f"median ratio: {median(ratios):.2f}x   parity: min cosine {parity:.7f}")


if __name__ == "__main__":
    main()
