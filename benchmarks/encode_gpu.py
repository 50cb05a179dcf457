"""GPU encoding: sbert (fp32, bf16 autocast) vs sentence-transformers on CUDA, parity and speed.

    python benchmarks/encode_gpu.py [--model all-MiniLM-L6-v2] [--rounds 5]
    .venv/bin/python benchmarks/encode_gpu.py --device cpu --limit 200 --rounds 1 \
        --out /tmp/bench                                     # smoke run of the script, on CPU

On the 2,758 STS benchmark test sentences: Spearman of cosine vs gold, the minimum cosine of
each contender against sbert on the CPU (the reference point of every other parity check),
then sentences/s at batch 32 and 128, alternating contenders per round after a warm-up each,
as multiples of sentence-transformers. Writes benchmarks/results/encode_gpu.<gpu>.json (the
machine class is the GPU's, e.g. cuda-nvidia-h200). Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    add_output_options,
    alternate,
    is_full,
    median,
    min_cosine,
    print_tables,
    sts_pairs,
    table,
    write_result,
)

BATCHES = (32, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the script")
    parser.add_argument("--limit", type=int, default=None, help="first N sentences (smoke)")
    add_output_options(parser)
    args = parser.parse_args()

    import torch
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    from sbert.encoder import SentenceEncoder
    from sbert.models import resolve_model

    device = args.device
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU (--device cpu runs the script on the CPU, as a smoke "
                         "test)")
    model = str(resolve_model(args.model))
    first, second, gold = sts_pairs(args.limit)
    sents = first + second
    half = len(first)

    def spearman(emb: np.ndarray) -> float:
        a, b = emb[:half], emb[half:]
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        return float(100 * spearmanr(cos, gold).correlation)

    name = torch.cuda.get_device_name(torch.device(device)) if cuda else "CPU"
    notes = [f"{name}, torch {torch.__version__}; {args.model}, {len(sents)} STSb test "
             f"sentences; speed: median of {args.rounds} alternating rounds after a warm-up"]
    print(notes[0], flush=True)
    cpu = SentenceEncoder(model, device="cpu")
    gpu = SentenceEncoder(model, device=device)
    gpu_bf16 = SentenceEncoder(model, device=device, precision="bf16")
    ref = SentenceTransformer(model, device=device)
    on_cpu = cpu.encode(sents, batch_size=32, show_progress=False)
    contenders: dict[str, Callable[[int], Any]] = {
        "sentence-transformers": lambda b: ref.encode(sents, batch_size=b,
                                                      convert_to_numpy=True,
                                                      show_progress_bar=False),
        "sbert fp32": lambda b: gpu.encode(sents, batch_size=b, show_progress=False),
        "sbert bf16 autocast": lambda b: gpu_bf16.encode(sents, batch_size=b,
                                                         show_progress=False),
    }
    rows: dict[str, dict[str, Any]] = {"sbert on the CPU": {
        "contender": "sbert on the CPU", "spearman": spearman(on_cpu)}}
    for key, fn in contenders.items():
        emb = np.asarray(fn(32))
        rows[key] = {"contender": key, "spearman": spearman(emb),
                     "min_cosine": min_cosine(emb, on_cpu)}

    def synced(fn: Callable[[int], Any], batch: int) -> Callable[[], None]:
        def run() -> None:
            fn(batch)
            if cuda:
                torch.cuda.synchronize()
        return run

    raw: dict[str, Any] = {}
    for batch in BATCHES:
        times = alternate({k: synced(fn, batch) for k, fn in contenders.items()},
                          rounds=args.rounds)
        raw[f"seconds_batch_{batch}"] = times
        base = len(sents) / median(times["sentence-transformers"])
        for key, seconds in times.items():
            rate = len(sents) / median(seconds)
            rows[key][f"rate_{batch}"] = rate
            rows[key][f"ratio_{batch}"] = rate / base
    columns = [("contender", f"contender ({device})", ""),
               ("spearman", "STSb Spearman x100", "{:.2f}"),
               ("min_cosine", "min cosine vs sbert CPU", "{:.7f}")]
    for batch in BATCHES:
        columns += [(f"rate_{batch}", f"sentences/s, batch {batch}", "{:.0f}"),
                    (f"ratio_{batch}", f"x sentence-transformers, batch {batch}", "{:.2f}x")]
    tables = [table("gpu", f"{args.model} on {name}", columns, rows.values())]
    print_tables(tables)
    write_result("encode_gpu", tables, args, notes=notes, raw=raw, device=device,
                 full=cuda and is_full(args, parser, ("model", "rounds", "limit")))

if __name__ == "__main__":
    main()
