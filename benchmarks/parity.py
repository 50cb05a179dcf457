"""Embedding parity with sentence-transformers on the STS benchmark test sentences.

    .venv/bin/python benchmarks/parity.py [--models all-MiniLM-L6-v2 all-mpnet-base-v2]

For each model folder, encodes the 2,758 STSb test sentences with sbert and with
sentence-transformers' ``encode`` on the same folder and prints the minimum and mean cosine
between the two (goal: every cosine >= 0.99999), and writes them to
benchmarks/results/parity.<machine>.json. A quality check, not a timing. Smoke run:
``--models all-MiniLM-L6-v2 --limit 200 --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    add_output_options,
    is_full,
    print_tables,
    sts_test_sentences,
    table,
    write_result,
)

GOAL = 0.99999


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["all-MiniLM-L6-v2", "all-mpnet-base-v2"])
    parser.add_argument("--limit", type=int, default=None, help="first N sentences (smoke)")
    add_output_options(parser)
    args = parser.parse_args()

    import numpy as np
    from sentence_transformers import SentenceTransformer

    from sbert import SentenceEncoder

    sentences = sts_test_sentences()[: args.limit]
    rows = []
    for name in args.models:
        ours = SentenceEncoder(name, device="cpu", backend="torch", precision="fp32")
        a = ours.encode(sentences, batch_size=32, show_progress=False)
        ref = SentenceTransformer(str(ours.path), device="cpu")
        b = ref.encode(sentences, batch_size=32, show_progress_bar=False)
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        rows.append({"model": name, "sentences": len(sentences), "min_cosine": cos.min(),
                     "mean_cosine": cos.mean(), "goal": f">= {GOAL}",
                     "met": "met" if cos.min() >= GOAL else "MISSED"})
    tables = [table("parity", "sbert vs sentence-transformers, STSb test sentences, batch 32", [
        ("model", "model", ""), ("sentences", "sentences", "{:,}"),
        ("min_cosine", "min cosine", "{:.7f}"), ("mean_cosine", "mean cosine", "{:.7f}"),
        ("goal", "goal", ""), ("met", "result", "")], rows)]
    print_tables(tables)
    write_result("parity", tables, args, full=is_full(args, parser, ("models", "limit")))

if __name__ == "__main__":
    main()
