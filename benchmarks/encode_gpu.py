"""GPU encoding: sbert (fp32, bf16 autocast) vs sentence-transformers on CUDA, parity and speed.

    python benchmarks/encode_gpu.py [--model all-MiniLM-L6-v2] [--rounds 5]

On the 2,758 STS benchmark test sentences: Spearman of cosine vs gold, the minimum cosine of
each contender against sbert on the CPU (the reference point of every other parity check),
then sentences/s at batch 32 and 128, alternating contenders per round after a warm-up each,
as multiples of sentence-transformers. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    alternate,
    median,
    min_cosine,
    sts_pairs,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import torch
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    from sbert.encoder import SentenceEncoder
    from sbert.models import resolve_model

    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    model = str(resolve_model(args.model))
    first, second, gold = sts_pairs(None)
    sents = first + second
    half = len(first)

    def spearman(emb: np.ndarray) -> float:
        a, b = emb[:half], emb[half:]
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        return float(100 * spearmanr(cos, gold).correlation)

    print(torch.cuda.get_device_name(0), "torch", torch.__version__, flush=True)
    cpu = SentenceEncoder(model, device="cpu")
    gpu = SentenceEncoder(model, device="cuda")
    gpu_bf16 = SentenceEncoder(model, device="cuda", precision="bf16")
    ref = SentenceTransformer(model, device="cuda")
    on_cpu = cpu.encode(sents, batch_size=32, show_progress=False)
    embeddings = {
        "sentence-transformers cuda": ref.encode(sents, batch_size=32, convert_to_numpy=True),
        "sbert cuda fp32": gpu.encode(sents, batch_size=32, show_progress=False),
        "sbert cuda bf16": gpu_bf16.encode(sents, batch_size=32, show_progress=False),
    }
    print(f"sbert cpu: Spearman {spearman(on_cpu):.2f}")
    for name, emb in embeddings.items():
        print(f"{name}: Spearman {spearman(emb):.2f}; min cosine vs sbert cpu "
              f"{min_cosine(emb, on_cpu):.7f}")

    def synced(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            fn()
            torch.cuda.synchronize()
        return run

    for batch in (32, 128):
        times = alternate({
            "sentence-transformers": synced(
                lambda b=batch: ref.encode(sents, batch_size=b, convert_to_numpy=True)),
            "sbert fp32": synced(
                lambda b=batch: gpu.encode(sents, batch_size=b, show_progress=False)),
            "sbert bf16": synced(
                lambda b=batch: gpu_bf16.encode(sents, batch_size=b, show_progress=False)),
        }, rounds=args.rounds)
        base = len(sents) / median(times["sentence-transformers"])
        for name, seconds in times.items():
            rate = len(sents) / median(seconds)
            print(f"batch {batch:3d} {name:22s} {rate:8.0f} sentences/s  {rate / base:5.2f}x",
                  flush=True)


if __name__ == "__main__":
    main()
