"""The losses: values against their formulas and sentence-transformers, gradients, options."""

from __future__ import annotations

from importlib.util import find_spec

import pytest
import torch

from sbert.tokenization import length_chunks
from sbert.training.batching import TokenizedExamples
from sbert.training.data import Examples
from sbert.training.losses import (
    CHUNK_COST_TOKENS,
    CoSENTLoss,
    CosineSimilarityLoss,
    MultipleNegativesRankingLoss,
    SoftmaxLoss,
    TripletLoss,
    embed_columns,
)


def _features(encoder, examples, rows=None):
    data = TokenizedExamples(examples, encoder.tokenizer)
    rows = torch.arange(len(data)).numpy() if rows is None else rows
    return data.batch(rows, "cpu")


class FixedEmbeddings(torch.nn.Module):
    """A stand-in network: row i of the batch -> a fixed vector (to test the loss maths)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(table.clone())

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return self.table[input_ids[:, 0]]  # (batch, dim)


def _fixed(n_rows: int, dim: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(n_rows, dim, generator=gen)
    return FixedEmbeddings(table)


def _cols(*index_lists: list[int]) -> list[dict[str, torch.Tensor]]:
    out = []
    for idx in index_lists:
        ids = torch.tensor(idx)[:, None]  # (batch, 1)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids),
                    "token_type_ids": torch.zeros_like(ids)})
    return out


def test_length_chunks_cover_every_text_once() -> None:
    lengths = [5, 40, 6, 7, 38, 12, 13, 14, 8, 9, 30, 31] * 3
    chunks = length_chunks(lengths, CHUNK_COST_TOKENS)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    assert len(chunks) > 1
    assert all(max(lengths[i] for i in a) <= min(lengths[i] for i in b)
               for a, b in zip(chunks, chunks[1:], strict=False))
    assert length_chunks([10] * 32, CHUNK_COST_TOKENS) == [list(range(32))]


def test_embed_columns_equals_one_pass_per_column(tiny_encoder) -> None:
    """Regrouping texts by length changes neither the embeddings nor the gradients."""
    net = tiny_encoder.network.eval()
    words = "a man is playing a big red guitar in the park with the happy dog".split()
    cols = [[" ".join(words[: 2 + (i * 5 + c * 3) % 14]) for i in range(12)] for c in range(3)]
    features, _ = _features(tiny_encoder, Examples(cols))
    lengths = torch.cat([f["attention_mask"].sum(1) for f in features]).tolist()
    assert len(length_chunks(lengths, CHUNK_COST_TOKENS)) > 1

    def grads(embs: list[torch.Tensor]) -> list[torch.Tensor]:
        net.zero_grad(set_to_none=True)
        sum((e * torch.arange(e.shape[1])).sum() for e in embs).backward()
        return [p.grad.clone() for p in net.parameters() if p.grad is not None]

    chunked = embed_columns(net, features)
    separate = [net(f["input_ids"], f["attention_mask"], f["token_type_ids"]) for f in features]
    for a, b in zip(chunked, separate, strict=True):
        assert a.shape == (12, tiny_encoder.dimension)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads(chunked), grads(separate), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    net.zero_grad(set_to_none=True)


@pytest.mark.parametrize("concat", [("u", "v", "|u-v|"), ("u*v",), ("|u-v|", "u*v"),
                                    ("u", "v", "|u-v|", "u*v")])
def test_softmax_loss_concat_and_gradients(tiny_encoder, nli_examples, concat) -> None:
    loss = SoftmaxLoss(tiny_encoder.network, tiny_encoder.dimension, 3, concat)
    assert loss.classifier.in_features == len(concat) * tiny_encoder.dimension
    features, labels = _features(tiny_encoder, nli_examples)
    value = loss(features, labels)
    value.backward()
    assert value.ndim == 0 and value.item() > 0
    assert loss.classifier.weight.grad is not None
    word_emb = tiny_encoder.network.transformer.embeddings.word_embeddings.weight
    assert word_emb.grad is not None and word_emb.grad.abs().sum() > 0
    tiny_encoder.network.zero_grad(set_to_none=True)


def test_softmax_loss_rejects_unknown_part(tiny_encoder) -> None:
    with pytest.raises(ValueError, match="choose from"):
        SoftmaxLoss(tiny_encoder.network, tiny_encoder.dimension, 3, ("u", "u+v"))


def test_softmax_logits_formula() -> None:
    net = _fixed(4)
    loss = SoftmaxLoss(net, 8, 3)
    u, v = net.table[[0, 1]], net.table[[2, 3]]
    expected = torch.cat([u, v, (u - v).abs()], 1) @ loss.classifier.weight.T + loss.classifier.bias
    torch.testing.assert_close(loss.logits(u, v), expected)
    labels = torch.tensor([0.0, 2.0])
    torch.testing.assert_close(
        loss(_cols([0, 1], [2, 3]), labels),
        torch.nn.functional.cross_entropy(expected, labels.long()),
    )


def test_cosine_similarity_loss_formula() -> None:
    net = _fixed(4)
    labels = torch.tensor([0.9, 0.1])
    cos = torch.cosine_similarity(net.table[[0, 1]], net.table[[2, 3]])
    value = CosineSimilarityLoss(net)(_cols([0, 1], [2, 3]), labels)
    torch.testing.assert_close(value, ((cos - labels) ** 2).mean())


def test_triplet_loss_margin_one_and_distances() -> None:
    net = _fixed(6)
    a, p, n = net.table[[0, 1]], net.table[[2, 3]], net.table[[4, 5]]
    cols = _cols([0, 1], [2, 3], [4, 5])
    loss = TripletLoss(net)
    assert loss.margin == 1.0 and loss.distance == "euclidean"
    expected = torch.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + 1).mean()
    torch.testing.assert_close(loss(cols), expected)
    manhattan = torch.relu((a - p).abs().sum(1) - (a - n).abs().sum(1) + 1).mean()
    torch.testing.assert_close(TripletLoss(net, "manhattan")(cols), manhattan, atol=1e-5, rtol=0)
    cos = torch.cosine_similarity
    cosine = torch.relu((1 - cos(a, p)) - (1 - cos(a, n)) + 0.5).mean()
    torch.testing.assert_close(TripletLoss(net, "cosine", margin=0.5)(cols), cosine)
    with pytest.raises(ValueError, match="expected one of"):
        TripletLoss(net, "dot")


def test_mnrl_with_hard_negatives_formula() -> None:
    net = _fixed(9)
    norm = torch.nn.functional.normalize
    a, p, n = norm(net.table[0:3]), norm(net.table[3:6]), norm(net.table[6:9])
    scores = a @ torch.cat([p, n]).T * 20
    expected = torch.nn.functional.cross_entropy(scores, torch.arange(3))
    loss = MultipleNegativesRankingLoss(net)
    torch.testing.assert_close(loss(_cols([0, 1, 2], [3, 4, 5], [6, 7, 8])), expected)
    # without hard negatives the candidates are the positives only
    pairs = torch.nn.functional.cross_entropy(a @ p.T * 20, torch.arange(3))
    torch.testing.assert_close(loss(_cols([0, 1, 2], [3, 4, 5])), pairs)


def test_cosent_formula() -> None:
    net = _fixed(8)
    labels = torch.tensor([0.9, 0.2, 0.5, 0.5])
    cos = torch.cosine_similarity(net.table[0:4], net.table[4:8]) * 20
    terms = [torch.tensor(0.0)]
    for i in range(4):
        for j in range(4):
            if labels[i] > labels[j]:
                terms.append(cos[j] - cos[i])
    expected = torch.logsumexp(torch.stack(terms), 0)
    torch.testing.assert_close(CoSENTLoss(net)(_cols([0, 1, 2, 3], [4, 5, 6, 7]), labels), expected)


@pytest.mark.reference
@pytest.mark.skipif(
    find_spec("sentence_transformers") is None, reason="needs sentence-transformers"
)
def test_losses_match_sentence_transformers() -> None:
    """Same embeddings -> the same loss value as sentence-transformers' implementations."""
    from sentence_transformers.sentence_transformer import losses as st

    net = _fixed(12)
    emb = [net.table[0:4], net.table[4:8], net.table[8:12]]
    labels = torch.tensor([0.9, 0.2, 0.5, 0.7])
    cols = _cols([0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11])

    class Dummy(torch.nn.Module):  # what the reference losses keep as .model
        device = torch.device("cpu")

    pairs: list[tuple[torch.nn.Module, torch.nn.Module, list[torch.Tensor]]] = [
        (CoSENTLoss(net), st.CoSENTLoss(Dummy()), emb[:2]),
        (MultipleNegativesRankingLoss(net), st.MultipleNegativesRankingLoss(Dummy()), emb),
        (TripletLoss(net, margin=5.0), st.TripletLoss(Dummy(), triplet_margin=5.0), emb),
    ]
    for ours, ref, ref_emb in pairs:
        n_cols = len(ref_emb)
        expected = ref.compute_loss_from_embeddings(ref_emb, labels)
        torch.testing.assert_close(ours(cols[:n_cols], labels), expected, atol=1e-5, rtol=1e-5)
