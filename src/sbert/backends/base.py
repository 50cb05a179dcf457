"""What every backend shares: the interface and the tokenizer a folder asks for."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from sbert.folder import FolderSpec
from sbert.folder.validate import check_tokenizer
from sbert.tokenization import Tokenizer

BACKENDS = ("torch", "onnx")


class Backend(Protocol):
    """Runs the network on one padded batch; tokenization and batching stay in the encoder."""

    threads: int  # CPU cores it uses
    streams: int  # batches the encoder may run at once, from as many threads

    @property
    def dimension(self) -> int:
        """Length of the embedding vectors."""
        ...

    def embed(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray,
        alone: bool = False,
    ) -> Any:
        """``(batch, seq)`` int64 arrays -> ``(batch, dim)`` float32 (numpy or torch).

        ``alone``: the call's only batch; nothing runs beside it.
        """
        ...


def load_tokenizer(spec: FolderSpec, max_seq_length: int | None = None) -> Tokenizer:
    """The folder's tokenizer, truncating at ``max_seq_length`` (default: the folder's).

    A folder without tokenizer files is refused: the fallback would map every word to one id.
    """
    check_tokenizer(spec.transformer_path)
    return Tokenizer.from_folder(
        spec.transformer_path,
        max_seq_length or spec.max_seq_length,
        spec.do_lower_case,
        spec.max_positions,
    )
