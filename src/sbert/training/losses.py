"""Training objectives of Sentence-BERT (and CoSENT): each owns its parameters.

Every loss is an ``nn.Module`` built around the network (``SentenceNetwork``) and called as
``loss(features, labels)``, where ``features`` holds one padded batch per text column (a dict
of ``input_ids``, ``attention_mask``, ``token_type_ids`` tensors, each ``(batch, seq)``).
The network's weights are shared by every column: the siamese / triplet setup of the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sbert.errors import UsageError
from sbert.tokenization import length_chunks
from sbert.training.distributed import gather_with_grad, row_offset

Features = Sequence[dict[str, torch.Tensor]]

CONCAT_PARTS = ("u", "v", "|u-v|", "u*v")
TRIPLET_DISTANCES = ("euclidean", "cosine", "manhattan")
# a forward pass costs about this many padded tokens of work on top of its tokens: on a CPU
# padding costs its full price; on a GPU it is nearly free and each pass launches kernels
CHUNK_COST_TOKENS = 48
GPU_CHUNK_COST_TOKENS = 512
_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def embed_columns(model: nn.Module, features: Features) -> list[torch.Tensor]:
    """Embed each text column with the same network.

    The texts of all columns are regrouped by length (:func:`length_chunks`) and each group
    runs as one forward pass padded to its own longest text: far less padding than one pass
    per column, and the same embeddings, since padding is masked out. Inputs must be
    right-padded (as :meth:`~sbert.tokenization.Tokenizer.pad` does).

    Returns:
        One ``(batch, dim)`` tensor per column.
    """
    sizes = [int(f["input_ids"].shape[0]) for f in features]
    width = max(int(f["input_ids"].shape[1]) for f in features)
    merged = {
        key: torch.cat([nn.functional.pad(f[key], (0, width - f[key].shape[1])) for f in features])
        for key in _KEYS
    }  # each (texts, width)
    lengths = merged["attention_mask"].sum(dim=1)  # (texts,)
    cost = CHUNK_COST_TOKENS if lengths.device.type == "cpu" else GPU_CHUNK_COST_TOKENS
    chunks = length_chunks(lengths.tolist(), cost)
    if len(chunks) == 1:  # one pass over everything
        emb = model(merged["input_ids"], merged["attention_mask"], merged["token_type_ids"])
        return list(torch.split(emb, sizes))  # columns x (batch, dim)
    parts = []
    for chunk in chunks:
        idx = torch.tensor(chunk, device=lengths.device)
        w = int(lengths[idx].max())
        parts.append(model(*(merged[key][idx, :w] for key in _KEYS)))  # (chunk, dim)
    order = torch.tensor([i for chunk in chunks for i in chunk], device=lengths.device)
    emb = torch.cat(parts)[torch.argsort(order)]  # (texts, dim), back in input order
    return list(torch.split(emb, sizes))  # columns x (batch, dim)


class SoftmaxLoss(nn.Module):
    """Classification objective: ``softmax(W [u; v; |u-v|])`` with cross-entropy (NLI).

    Args:
        model: the sentence network (shared by both sentences).
        dimension: sentence embedding size.
        num_labels: number of classes (3 for NLI).
        concat: the parts of the classifier input, in order, from ``u``, ``v``, ``|u-v|``,
            ``u*v`` (the paper's Table 6 ablation). Default ``("u", "v", "|u-v|")``.
    """

    def __init__(
        self,
        model: nn.Module,
        dimension: int,
        num_labels: int = 3,
        concat: Sequence[str] = ("u", "v", "|u-v|"),
    ) -> None:
        super().__init__()
        unknown = [p for p in concat if p not in CONCAT_PARTS]
        if not concat or unknown:
            raise UsageError(f"concat parts {list(concat)!r}; choose from {CONCAT_PARTS}")
        self.model = model
        self.concat = tuple(concat)
        self.num_labels = num_labels
        # named like sentence-transformers' SoftmaxLoss.classifier
        self.classifier = nn.Linear(len(self.concat) * dimension, num_labels)
        self.loss_fct = nn.CrossEntropyLoss()

    def features_of(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The classifier input for embeddings ``u``, ``v`` (each ``(batch, dim)``)."""
        parts = {"u": u, "v": v}
        if "|u-v|" in self.concat:
            parts["|u-v|"] = torch.abs(u - v)
        if "u*v" in self.concat:
            parts["u*v"] = u * v
        return torch.cat([parts[p] for p in self.concat], dim=1)  # (batch, k * dim)

    def logits(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Class scores ``(batch, num_labels)`` for embedding pairs."""
        return self.classifier(self.features_of(u, v))

    def forward(self, features: Features, labels: torch.Tensor) -> torch.Tensor:
        u, v = embed_columns(self.model, features)  # (batch, dim) each
        return self.loss_fct(self.logits(u, v).float(), labels.view(-1).long())


class CosineSimilarityLoss(nn.Module):
    """Regression objective: MSE between ``cos(u, v)`` and the gold score in [0, 1].

    Args:
        model: the sentence network.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.loss_fct = nn.MSELoss()

    def forward(self, features: Features, labels: torch.Tensor) -> torch.Tensor:
        u, v = embed_columns(self.model, features)  # (batch, dim) each
        cos = torch.cosine_similarity(u.float(), v.float())  # (batch,)
        return self.loss_fct(cos, labels.float().view(-1))


class CoSENTLoss(nn.Module):
    """CoSENT: for every two pairs with gold ``s_i > s_j``, penalise ``cos_j >= cos_i``.

    ``log(1 + sum exp(scale * (cos_j - cos_i)))`` over those ``(i, j)``. Under DDP the pairs
    are those of the global batch: each rank gathers every rank's similarities and scores.

    Args:
        model: the sentence network.
        scale: inverse temperature (20 as in the CoSENT paper and sentence-transformers).
    """

    def __init__(self, model: nn.Module, scale: float = 20.0) -> None:
        super().__init__()
        self.model = model
        self.scale = scale

    def forward(self, features: Features, labels: torch.Tensor) -> torch.Tensor:
        u, v = embed_columns(self.model, features)  # (batch, dim) each
        cos = torch.cosine_similarity(u.float(), v.float()) * self.scale  # (batch,)
        # under DDP: every pair of the global batch, on every rank
        cos = gather_with_grad(cos)  # (global batch,)
        gold = gather_with_grad(labels.float().view(-1))  # (global batch,)
        diff = cos[None, :] - cos[:, None]  # (batch, batch): cos_j - cos_i
        wrong = gold[:, None] > gold[None, :]  # (batch, batch): s_i > s_j
        diff = diff.masked_fill(~wrong, -1e12)
        zero = torch.zeros(1, dtype=diff.dtype, device=diff.device)
        return torch.logsumexp(torch.cat([zero, diff.view(-1)]), dim=0)


class TripletLoss(nn.Module):
    """Triplet objective: ``max(d(a, p) - d(a, n) + margin, 0)``.

    Args:
        model: the sentence network.
        distance: ``"euclidean"`` (the paper's), ``"cosine"`` (1 - cos) or ``"manhattan"``.
        margin: the paper's epsilon, 1 by default (sentence-transformers defaults to 5).
    """

    def __init__(self, model: nn.Module, distance: str = "euclidean", margin: float = 1.0) -> None:
        super().__init__()
        if distance not in TRIPLET_DISTANCES:
            raise UsageError(f"unknown distance {distance!r}; expected one of {TRIPLET_DISTANCES}")
        self.model = model
        self.distance = distance
        self.margin = margin

    def _dist(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.distance == "euclidean":
            return torch.pairwise_distance(x, y, p=2)  # (batch,)
        if self.distance == "manhattan":
            return torch.pairwise_distance(x, y, p=1)  # (batch,)
        return 1 - torch.cosine_similarity(x, y)  # (batch,)

    def forward(self, features: Features, labels: torch.Tensor | None = None) -> torch.Tensor:
        a, p, n = (e.float() for e in embed_columns(self.model, features))  # (batch, dim)
        losses = torch.relu(self._dist(a, p) - self._dist(a, n) + self.margin)  # (batch,)
        return losses.mean()


class MultipleNegativesRankingLoss(nn.Module):
    """In-batch negatives: anchor ``i`` must pick its positive ``i`` among all candidates.

    Columns are (anchor, positive[, hard negative...]); the candidates of each anchor are every
    positive and hard negative in the batch. Cross-entropy over ``scale * cos``. Under DDP the
    batch is the global one: candidates are gathered from every rank (with gradients), so the
    in-batch negatives are those of one process training on the whole global batch.

    Args:
        model: the sentence network.
        scale: inverse temperature (20).
    """

    def __init__(self, model: nn.Module, scale: float = 20.0) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.loss_fct = nn.CrossEntropyLoss()

    def forward(self, features: Features, labels: torch.Tensor | None = None) -> torch.Tensor:
        if len(features) < 2:
            raise UsageError("MultipleNegativesRankingLoss needs (anchor, positive[, negative])")
        emb = [e.float() for e in embed_columns(self.model, features)]
        anchors = nn.functional.normalize(emb[0], dim=1)  # (batch, dim)
        # under DDP the candidates are every rank's: column by column, in global batch order
        columns = [gather_with_grad(e) for e in emb[1:]]  # k x (global batch, dim)
        candidates = nn.functional.normalize(torch.cat(columns), dim=1)  # (global * k, dim)
        scores = anchors @ candidates.T * self.scale  # (batch, global * k)
        target = torch.arange(len(anchors), device=scores.device) + row_offset()  # positives
        return self.loss_fct(scores, target)


LOSSES: dict[str, type[nn.Module]] = {
    "softmax": SoftmaxLoss,
    "cosine": CosineSimilarityLoss,
    "cosent": CoSENTLoss,
    "triplet": TripletLoss,
    "mnrl": MultipleNegativesRankingLoss,
}
