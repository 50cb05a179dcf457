"""Fast tokenization shared by every backend: the Rust ``tokenizers`` library, no torch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sbert.errors import ModelFolderError, UsageError
from sbert.files import read_json
from sbert.runtime import require
from sbert.unicode import lone_surrogate, surrogate_error

logger = logging.getLogger(__name__)

# fewest texts per chunk worth a thread of their own
PARALLEL_CHUNK_MIN = 512


@dataclass
class Tokenized:
    """Token ids of many texts, unpadded."""

    ids: list[list[int]]
    type_ids: list[list[int]]
    truncated: int  # how many texts were cut at max_seq_length
    truncated_rows: tuple[int, ...] = ()  # which ones (positions in the input)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


class Tokenizer:
    """A fast WordPiece/BPE/Unigram tokenizer with truncation and padding done our way.

    Args:
        backend: a ``tokenizers.Tokenizer``.
        max_seq_length: truncate longer inputs to this many tokens (special tokens included).
        do_lower_case: lower-case texts first (sentence-transformers' ``do_lower_case``).
        pad_id: the padding token id.
    """

    def __init__(
        self, backend: Any, max_seq_length: int, do_lower_case: bool = False, pad_id: int = 0
    ) -> None:
        self.backend = backend
        self.max_seq_length = max_seq_length
        self.max_positions: int | None = None  # the model's position embeddings, when known
        self.do_lower_case = do_lower_case
        self.pad_id = pad_id
        self.backend.no_padding()
        self._set_truncation(max_seq_length)

    def _set_truncation(self, max_len: int) -> None:
        self.backend.enable_truncation(max_length=max_len)

    def set_max_seq_length(self, max_len: int) -> None:
        """Truncate at ``max_len`` tokens: at least 2 (the special tokens); above the model's
        positions, clamped to them with a warning (longer inputs would index past them)."""
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
            raise UsageError(f"max_seq_length must be an integer >= 2 (special tokens "
                             f"included), got {max_len!r}")
        if self.max_positions is not None and max_len > self.max_positions:
            logger.warning("max_seq_length=%d is above the model's %d positions; using %d",
                           max_len, self.max_positions, self.max_positions)
            max_len = self.max_positions
        self.max_seq_length = max_len
        self._set_truncation(max_len)

    @classmethod
    def from_folder(
        cls, path: Path, max_seq_length: int | None, do_lower_case: bool = False,
        model_max_positions: int | None = None,
    ) -> Tokenizer:
        """Load ``tokenizer.json``, or build a fast tokenizer from the slow files."""
        tokenizers = require("tokenizers", "onnx")
        tok_file = path / "tokenizer.json"
        pad_id = 0
        if tok_file.exists():
            try:
                backend = tokenizers.Tokenizer.from_file(str(tok_file))
            except Exception as err:  # the Rust parser raises a bare Exception
                raise ModelFolderError(f"{tok_file}: not a tokenizer file ({err})") from err
        else:
            transformers = require("transformers", "torch")
            hf = transformers.AutoTokenizer.from_pretrained(str(path), use_fast=True)
            backend = hf.backend_tokenizer
        pad_id = _pad_id(path, backend)
        if max_seq_length is None:
            max_seq_length = model_max_positions or 512
        if model_max_positions is not None:
            max_seq_length = min(max_seq_length, model_max_positions)
        tokenizer = cls(backend, max_seq_length, do_lower_case, pad_id)
        tokenizer.max_positions = model_max_positions
        return tokenizer

    def encode(self, texts: list[str], threads: int = 1, hold_gil: bool = False) -> Tokenized:
        """Tokenize ``texts`` (truncating at ``max_seq_length``), without padding.

        ``threads``: split a large input into this many chunks tokenized side by side (the
        Rust tokenizer releases the GIL; ``TOKENIZERS_PARALLELISM=false`` keeps the
        tokenizer's own pool off).
        ``hold_gil``: tokenize text by text without releasing the GIL, for a few short texts
        on a thread that must not wait (a server's event loop): a batch call releases the GIL
        and, while other Python threads are busy, can wait milliseconds to get it back for
        microseconds of work.
        """
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        # the fast variant skips character offsets, which nothing here reads (tokenizers>=0.20)
        batch = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        chunks = max(1, min(threads, len(texts) // PARALLEL_CHUNK_MIN))
        try:
            encs = self._encode(texts, batch, chunks, hold_gil)
        except TypeError:  # the Rust tokenizer's only word on a string it cannot take
            for i, text in enumerate(texts):
                at = lone_surrogate(text) if isinstance(text, str) else None
                if at is not None:
                    raise surrogate_error(f"text {i}", text, at) from None
            raise
        cut = tuple(i for i, e in enumerate(encs) if e.overflowing)
        return Tokenized([e.ids for e in encs], [e.type_ids for e in encs], len(cut), cut)

    def _encode(self, texts: list[str], batch: Any, chunks: int, hold_gil: bool) -> list[Any]:
        """The tokenizer's encodings of ``texts`` (see :meth:`encode`)."""
        if hold_gil:
            encs = [self.backend.encode(text, add_special_tokens=True) for text in texts]
        elif chunks == 1:
            encs = batch(texts, add_special_tokens=True)
        else:
            from concurrent.futures import ThreadPoolExecutor

            size = -(-len(texts) // chunks)
            with ThreadPoolExecutor(chunks, thread_name_prefix="sbert-tokenize") as pool:
                parts = pool.map(lambda start: batch(texts[start : start + size],
                                                     add_special_tokens=True),
                                 range(0, len(texts), size))
                encs = [enc for part in parts for enc in part]
        return encs

    def pad(
        self, ids: list[list[int]], type_ids: list[list[int]] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right-pad to the longest sequence.

        Returns:
            ``input_ids``, ``attention_mask``, ``token_type_ids``, each ``(batch, seq)`` int64.
        """
        width = max((len(x) for x in ids), default=0)
        batch = len(ids)
        input_ids = np.full((batch, width), self.pad_id, dtype=np.int64)  # (batch, seq)
        mask = np.zeros((batch, width), dtype=np.int64)  # (batch, seq)
        types = np.zeros((batch, width), dtype=np.int64)  # (batch, seq)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
            if type_ids is not None:
                types[row, : len(seq)] = type_ids[row]
        return input_ids, mask, types

    def save(self, path: Path) -> None:
        """Write ``tokenizer.json`` (the fast tokenizer) into ``path``."""
        self.backend.save(str(path / "tokenizer.json"))


def _pad_id(path: Path, backend: Any) -> int:
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        cfg_file = path / name
        if cfg_file.exists():
            cfg = read_json(cfg_file)  # malformed: InputFormatError naming the file
            if not isinstance(cfg, dict):
                raise ModelFolderError(f"{cfg_file}: expected a JSON object")
            token = cfg.get("pad_token")
            if isinstance(token, dict):
                token = token.get("content")
            if isinstance(token, str) and backend.token_to_id(token) is not None:
                return int(backend.token_to_id(token))
    for token in ("[PAD]", "<pad>"):
        if backend.token_to_id(token) is not None:
            return int(backend.token_to_id(token))
    return 0


def length_chunks(lengths: Sequence[int], cost: int) -> list[list[int]]:
    """Group texts by length so that little padding is computed.

    Sorted by length, the texts are cut into consecutive groups minimising
    ``sum(group size * longest in group) + cost * groups`` (exact dynamic programme):
    ``cost`` is what one more forward pass costs, in padded tokens' worth of time. Training
    losses and the server's ONNX batches both cut their batches with it.

    Returns:
        Index lists into ``lengths``, shortest texts first.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    sorted_len = [lengths[i] for i in order]
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[i]: cost of the first i sorted texts
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        width = sorted_len[end - 1]
        for start in range(end):
            value = best[start] + (end - start) * width + cost
            if value < best[end]:
                best[end], cut[end] = value, start
    chunks: list[list[int]] = []
    end = n
    while end > 0:
        chunks.append(order[cut[end] : end])
        end = cut[end]
    return chunks[::-1]
