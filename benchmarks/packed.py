"""Packed-token BERT inference vs the stock Hugging Face forward, on sorted and mixed batches.

    .venv/bin/python benchmarks/packed.py [--rounds 3]

Encodes the 2,758 STS benchmark test sentences with all-MiniLM-L6-v2 (torch, CPU) batch by
batch through ``SentenceEncoder.embed_tokens``, in two orders: sorted by length (what
``encode`` does offline: little padding) and shuffled (what a server gets when it batches the
requests that happen to be waiting: much padding), with the packed forward forced
(``sbert/backends/torch/packed.py``), with the stock one (``network.packed = None``) and with
sbert's default (packed when at least 15 % of a batch is padding), in turn, median of
``--rounds``. Prints sentences/s, padded tokens per sentence, the ratios to the stock forward,
each rate's GFLOP/s on the real tokens and its fraction of the machine's best fp32
matrix-multiply limit, and the largest difference between the packed and stock outputs. Run
it on an idle machine.
Smoke run: ``--rounds 1 --limit 300 --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    Column,
    add_output_options,
    flops_cells,
    flops_columns,
    is_full,
    machine_limits,
    median,
    model_flops,
    print_tables,
    sts_test_sentences,
    table,
    write_result,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="first N sentences")
    add_output_options(parser)
    args = parser.parse_args()

    from sbert import SentenceEncoder

    encoder = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", backend="torch", precision="fp32")
    network = encoder.network
    packed = network.packed
    if packed is None:
        raise SystemExit("this model or build has no packed path (SBERT_PACKED=0?)")
    sentences = sts_test_sentences()[: args.limit]
    tok = encoder.tokenizer.encode(sentences)
    by_length = np.argsort([-len(ids) for ids in tok.ids], kind="stable").tolist()
    shuffled = list(range(len(sentences)))
    random.Random(0).shuffle(shuffled)
    size = args.batch_size
    orders = {"sorted by length": by_length, "shuffled (server-like)": shuffled}

    def batches(order: list[int]) -> list[list[int]]:
        return [order[i : i + size] for i in range(0, len(order), size)]

    default_share = network.pack_min_padding

    def run(order: list[int], mode: str) -> tuple[float, np.ndarray]:
        network.packed = None if mode == "stock" else packed
        network.pack_min_padding = 0.0 if mode == "packed" else default_share
        out = np.zeros((len(sentences), encoder.dimension), dtype=np.float32)
        start = time.perf_counter()
        for idx in batches(order):
            out[idx] = encoder.embed_tokens([tok.ids[i] for i in idx],
                                            [tok.type_ids[i] for i in idx])
        return time.perf_counter() - start, out

    rows = []
    raw: dict[str, dict[str, list[float]]] = {}
    n_tokens, flops = model_flops(encoder, sentences)  # the real tokens, whatever the order
    limits = machine_limits()  # measured here, between no timed runs
    for name, order in orders.items():
        padded = sum(len(b) * max(len(tok.ids[i]) for i in b) for b in batches(order))
        modes = ["stock", "packed", "default"]
        for mode in modes:
            run(order, mode)  # warm-up: kernels for these shapes
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        outs: dict[str, np.ndarray] = {}
        for r in range(args.rounds):
            for mode in modes[r % 3:] + modes[: r % 3]:
                seconds, outs[mode] = run(order, mode)
                times[mode].append(seconds)
        network.packed, network.pack_min_padding = packed, default_share
        rate = {k: len(sentences) / median(v) for k, v in times.items()}
        per_s = {k: flops / median(v) for k, v in times.items()}
        rows.append({"order": name, "padded": padded / len(sentences),
                     "real": float(np.mean([len(x) for x in tok.ids])),
                     "stock": rate["stock"], "packed": rate["packed"],
                     "ratio": rate["packed"] / rate["stock"], "default": rate["default"],
                     "default_ratio": rate["default"] / rate["stock"],
                     "max_diff": float(np.abs(outs["packed"] - outs["stock"]).max()),
                     **{k: v for m in modes
                        for k, v in flops_cells(per_s[m], limits, f"{m}_").items()}})
        raw[name] = {f"{mode}_s": times[mode] for mode in modes}
        print(f"{name}: " + ", ".join(f"{m} {rate[m]:.0f}/s" for m in modes), flush=True)

    columns: list[Column] = [
        ("order", "batch order", ""), ("real", "real tokens/sentence", "{:.1f}"),
        ("padded", "padded tokens/sentence", "{:.1f}"), ("stock", "stock sentences/s", "{:.0f}"),
        ("packed", "packed sentences/s", "{:.0f}"), ("ratio", "packed / stock", "{:.2f}x"),
        ("default", "sbert default sentences/s", "{:.0f}"),
        ("default_ratio", "default / stock", "{:.2f}x"),
        ("max_diff", "max |packed - stock|", "{:.1e}")]
    for mode in ("stock", "packed", "default"):
        columns += flops_columns(limits, f"{mode}_", f"{mode} ")
    tables = [table("packed", f"all-MiniLM-L6-v2, torch fp32, batch {size}: packed tokens vs "
                    "the stock forward", columns, rows)]
    print_tables(tables)
    notes = [f"{len(sentences)} STSb test sentences, batches of {size}; median of "
             f"{args.rounds} rounds, packed and stock alternating",
             f"GFLOP/s: the matrix work of the {n_tokens} real (unpadded) tokens "
             f"({flops / 1e9:.0f} GFLOP), whatever the padding; 'of ... limit': of the "
             "machine's best fp32 matrix-multiply limit"]
    write_result("packed", tables, args, full=is_full(args, parser, ("rounds", "batch_size",
                                                                     "limit")),
                 notes=notes, raw=raw, limits=limits)


if __name__ == "__main__":
    main()
