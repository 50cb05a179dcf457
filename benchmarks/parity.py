"""Embedding parity with sentence-transformers on the STS benchmark test sentences.

    .venv/bin/python benchmarks/parity.py [--models all-MiniLM-L6-v2 all-mpnet-base-v2]

For each model folder, encodes the 2,758 STSb test sentences with sbert and with
sentence-transformers' ``encode`` on the same folder and prints the minimum and mean cosine
between the two (goal: every cosine >= 0.99999). A quality check, not a timing.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import sts_test_sentences  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["all-MiniLM-L6-v2", "all-mpnet-base-v2"])
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()

    import numpy as np
    from sentence_transformers import SentenceTransformer

    from sbert import SentenceEncoder

    sentences = sts_test_sentences()[: args.limit]
    print(f"{'model':<22}{'sentences':>10}{'min cosine':>14}{'mean cosine':>14}{'goal':>8}")
    for name in args.models:
        ours = SentenceEncoder(name, device="cpu")
        a = ours.encode(sentences, batch_size=32, show_progress=False)
        ref = SentenceTransformer(str(ours.path), device="cpu")
        b = ref.encode(sentences, batch_size=32, show_progress_bar=False)
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        ok = "met" if cos.min() >= 0.99999 else "MISSED"
        print(f"{name:<22}{len(sentences):>10}{cos.min():>14.7f}{cos.mean():>14.7f}{ok:>8}")


if __name__ == "__main__":
    main()
