"""Tokenize training data once, draw seeded random batches, pad them into tensors.

An epoch's batch order is a pure function of ``(seed, task, epoch)``: a resumed run rebuilds
exactly the batches an uninterrupted run would see, and skips the ones already trained on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from sbert.training.data import Examples

logger = logging.getLogger(__name__)


class TokenizedExamples:
    """Examples whose texts are tokenized once, up front (each distinct text once).

    Args:
        examples: the text columns and labels.
        tokenizer: the encoder's :class:`~sbert.tokenization.Tokenizer`.
    """

    def __init__(self, examples: Examples, tokenizer: Any) -> None:
        index: dict[str, int] = {}
        rows = [[index.setdefault(text, len(index)) for text in col] for col in examples.columns]
        self.text_ids = np.asarray(rows, dtype=np.int64).T  # (rows, columns): distinct-text ids
        tok = tokenizer.encode(list(index))
        self.ids, self.type_ids = tok.ids, tok.type_ids
        self.truncated = tok.truncated
        self.labels = np.asarray(examples.labels, dtype=np.float32)  # (rows,) or (0,)
        self.tokenizer = tokenizer
        if tok.truncated:
            logger.warning(
                "%d of %d distinct training texts are longer than max_seq_length=%d and were "
                "truncated", tok.truncated, len(index), tokenizer.max_seq_length,
            )

    def __len__(self) -> int:
        return int(self.text_ids.shape[0])

    def batch(self, rows: np.ndarray, device: Any) -> tuple[list[dict[str, Any]], Any]:
        """Pad the rows' columns into tensors on ``device``.

        Returns:
            One feature dict per column (``(batch, seq)`` tensors) and the labels ``(batch,)``.
        """
        import torch

        features = []
        for col in range(self.text_ids.shape[1]):
            ids = self.text_ids[rows, col]
            input_ids, mask, types = self.tokenizer.pad(
                [self.ids[i] for i in ids], [self.type_ids[i] for i in ids]
            )  # each (batch, seq)
            features.append({
                "input_ids": torch.from_numpy(input_ids).to(device),
                "attention_mask": torch.from_numpy(mask).to(device),
                "token_type_ids": torch.from_numpy(types).to(device),
            })
        labels = torch.from_numpy(self.labels[rows] if len(self.labels) else np.zeros(len(rows)))
        return features, labels.to(device)


def random_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random permutation of ``range(n)`` cut into batches (the last may be smaller)."""
    perm = rng.permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def no_duplicate_batches(
    text_ids: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Random batches in which no text occurs twice (in any column).

    For in-batch negatives: a duplicate would count a positive as a negative. Rows are taken
    in random order; a row whose text is already in the batch waits for a later batch.

    Args:
        text_ids: ``(rows, columns)`` distinct-text ids.
        batch_size: rows per batch.
        rng: the seeded generator of this epoch.
    """
    remaining = dict.fromkeys(rng.permutation(len(text_ids)).tolist())
    batches: list[np.ndarray] = []
    while remaining:
        seen: set[int] = set()
        batch: list[int] = []
        for row in remaining:
            texts = text_ids[row].tolist()
            if seen.intersection(texts):
                continue
            batch.append(row)
            seen.update(texts)
            if len(batch) == batch_size:
                break
        for row in batch:
            del remaining[row]
        batches.append(np.asarray(batch, dtype=np.int64))
    return batches


def epoch_plan(
    datasets: Sequence[TokenizedExamples],
    batch_size: int,
    seed: int,
    epoch: int,
    no_duplicates: Sequence[bool],
) -> list[tuple[int, np.ndarray]]:
    """The batches of one epoch over several datasets, taken round-robin.

    Each dataset is shuffled with its own generator seeded by ``(seed, dataset, epoch)``;
    datasets that run out drop out of the rotation, so every example is seen once per epoch.

    Returns:
        ``(dataset index, row indices)`` per batch, in training order.
    """
    queues: list[list[np.ndarray]] = []
    for i, (data, unique) in enumerate(zip(datasets, no_duplicates, strict=True)):
        rng = np.random.default_rng([seed, i, epoch])
        if unique:
            queues.append(no_duplicate_batches(data.text_ids, batch_size, rng))
        else:
            queues.append(random_batches(len(data), batch_size, rng))
    plan: list[tuple[int, np.ndarray]] = []
    for position in range(max(len(q) for q in queues)):
        for i, queue in enumerate(queues):
            if position < len(queue):
                plan.append((i, queue[position]))
    return plan


def plan_fingerprint(plans: Sequence[Sequence[tuple[int, np.ndarray]]]) -> str:
    """A hash of every epoch's batches: a resumed run checks it sees the same data."""
    digest = hashlib.sha256()
    for plan in plans:
        for task, rows in plan:
            digest.update(task.to_bytes(4, "little"))
            digest.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
    return digest.hexdigest()
