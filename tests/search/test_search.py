"""Exact semantic search and blocked paraphrase mining against brute force and the reference."""

from __future__ import annotations

import numpy as np
import pytest

from sbert.search.mining import paraphrase_mining
from sbert.search.semantic import semantic_search
from sbert.similarity import cos_sim, dot_score, normalize
from tests.conftest import has_module


def clustered(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, dim))
    emb = centres[rng.integers(0, 8, n)] + 0.7 * rng.standard_normal((n, dim))
    return emb.astype(np.float32)


def brute_mining(emb: np.ndarray, top_k: int, max_pairs: int) -> list[tuple[float, int, int]]:
    """The sentence-transformers definition, with the full matrix: each row's top_k
    neighbours are candidates, the best max_pairs candidates win."""
    scores = normalize(emb) @ normalize(emb).T
    np.fill_diagonal(scores, -np.inf)
    pairs: dict[tuple[int, int], float] = {}
    for i in range(len(emb)):
        for j in np.argsort(-scores[i], kind="stable")[:min(top_k, len(emb) - 1)]:
            pairs[(min(i, int(j)), max(i, int(j)))] = float(scores[i, j])
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:max_pairs]
    return [(s, i, j) for (i, j), s in ranked]


def test_cos_sim_and_dot() -> None:
    a = np.array([[3.0, 4.0], [1.0, 0.0]])
    b = np.array([[6.0, 8.0]])
    np.testing.assert_allclose(cos_sim(a, b), [[1.0], [0.6]], rtol=1e-6)
    np.testing.assert_allclose(dot_score(a, b), [[50.0], [6.0]], rtol=1e-6)
    assert cos_sim(a[0], b).shape == (1, 1)


@pytest.mark.parametrize("engine", ["torch", "numpy"])
@pytest.mark.parametrize(("n", "top_k", "block"), [(300, 5, 64), (257, 20, 100), (50, 100, 7)])
def test_mining_matches_brute_force(n: int, top_k: int, block: int, engine: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import sbert.search.mining

    if engine == "numpy":  # the upper-triangle tiles used where torch is not installed
        monkeypatch.setattr(sbert.search.mining, "has_module", lambda name: False)
    elif not has_module("torch"):
        pytest.skip("needs torch")
    else:  # small row blocks, so the torch path crosses block edges too
        monkeypatch.setattr(sbert.search.mining, "_TORCH_SCORE_BUDGET", n * 16)
    emb = clustered(n)
    got = paraphrase_mining(emb, top_k=top_k, max_pairs=10_000, block_size=block)
    want = brute_mining(emb, top_k, 10_000)
    assert [(i, j) for _, i, j in got] == [(i, j) for _, i, j in want]
    np.testing.assert_allclose([s for s, _, _ in got], [s for s, _, _ in want], atol=1e-5)


def test_mining_pairs_are_ordered_unique_and_capped() -> None:
    emb = clustered(200)
    pairs = paraphrase_mining(emb, top_k=10, max_pairs=150, block_size=32)
    assert len(pairs) == 150
    assert all(i < j for _, i, j in pairs)
    assert len({(i, j) for _, i, j in pairs}) == 150
    scores = [s for s, _, _ in pairs]
    assert scores == sorted(scores, reverse=True)


def test_mining_threshold_and_duplicates() -> None:
    emb = clustered(100)
    emb[7] = emb[3]  # an exact duplicate scores 1.0
    pairs = paraphrase_mining(emb, threshold=0.9)
    assert pairs[0][1:] == (3, 7) and pairs[0][0] == pytest.approx(1.0, abs=1e-6)
    assert all(s >= 0.9 for s, _, _ in pairs)


def test_mining_dot_score_and_torch_input() -> None:
    torch = pytest.importorskip("torch")
    emb = clustered(120)
    got = paraphrase_mining(torch.from_numpy(emb), score="dot", top_k=5, block_size=50)
    scores = emb @ emb.T
    s, i, j = got[0]
    iu = np.triu_indices(120, k=1)
    assert s == pytest.approx(float(scores[iu].max()), rel=1e-5)
    assert scores[i, j] == pytest.approx(s, rel=1e-5)


def test_mining_small_inputs() -> None:
    assert paraphrase_mining(np.zeros((1, 4), dtype=np.float32)) == []
    assert paraphrase_mining(np.eye(2, dtype=np.float32)) == [(0.0, 0, 1)]
    with pytest.raises(ValueError, match="expected one of"):
        paraphrase_mining(np.eye(3), score="euclid")


def test_mining_sentences_with_an_encoder(tiny_encoder) -> None:
    sentences = ["a man is eating food", "a man eats food", "the dog runs in the park", "a cat"]
    pairs = paraphrase_mining(sentences, encoder=tiny_encoder, top_k=3)
    emb = tiny_encoder.encode(sentences)
    assert pairs == paraphrase_mining(emb, top_k=3)
    assert len(pairs) == 6


@pytest.mark.parametrize("chunks", [(256, 32_768), (7, 50)])
def test_semantic_search_matches_brute_force(chunks: tuple[int, int]) -> None:
    corpus, queries = clustered(400, seed=1), clustered(30, seed=2)
    got = semantic_search(queries, corpus, top_k=7, query_chunk_size=chunks[0],
                          corpus_chunk_size=chunks[1])
    scores = cos_sim(queries, corpus)
    for q, hits in enumerate(got):
        assert [c for c, _ in hits] == np.argsort(-scores[q], kind="stable")[:7].tolist()
        np.testing.assert_allclose([s for _, s in hits], np.sort(scores[q])[::-1][:7], atol=1e-5)


def test_semantic_search_edges() -> None:
    corpus = clustered(5)
    hits = semantic_search(corpus[0], corpus, top_k=10, score="dot")
    assert len(hits) == 1 and len(hits[0]) == 5
    assert hits[0][0][0] == int(np.argmax(corpus @ corpus[0]))
    with pytest.raises(ValueError, match="same model"):
        semantic_search(np.zeros((1, 3)), corpus)


@pytest.mark.reference
@pytest.mark.skipif(not has_module("sentence_transformers"), reason="needs sentence-transformers")
def test_parity_with_sentence_transformers() -> None:
    import torch
    from sentence_transformers import util

    emb = clustered(1500, dim=32)
    ours = paraphrase_mining(emb, block_size=256)
    ref = util.paraphrase_mining_embeddings(torch.from_numpy(emb))
    assert {(i, j) for _, i, j in ours[:100]} == {(i, j) for _, i, j in ref[:100]}
    assert len(ours) == len(ref)
    ref_scores = {(i, j): s for s, i, j in ref}
    assert max(abs(s - ref_scores[(i, j)]) for s, i, j in ours[:1000]) < 1e-5

    queries = clustered(20, dim=32, seed=5)
    ref_hits = util.semantic_search(torch.from_numpy(queries), torch.from_numpy(emb), top_k=5)
    for got, want in zip(semantic_search(queries, emb, top_k=5), ref_hits, strict=True):
        assert [c for c, _ in got] == [h["corpus_id"] for h in want]


def test_semantic_search_empty_corpus() -> None:
    assert semantic_search(np.ones((2, 3)), np.zeros((0, 3))) == [[], []]


@pytest.mark.slow
def test_minilm_mines_and_searches_the_sample_corpus(minilm) -> None:
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "data" / "sample_sentences.txt"
    sentences = [s for s in sample.read_text(encoding="utf-8").splitlines() if s.strip()]
    pairs = paraphrase_mining(sentences, encoder=minilm, max_pairs=5)
    best = {frozenset((sentences[i], sentences[j])) for _, i, j in pairs}
    assert frozenset(("How do I learn Python quickly?",
                      "What is the fastest way to learn Python?")) in best
    corpus = minilm.encode(sentences)
    hits = semantic_search(minilm.encode(["Someone is making music."]), corpus, top_k=3)[0]
    assert "guitar" in sentences[hits[0][0]]
