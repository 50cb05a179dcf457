"""``SentenceEncoder``: load a model folder, encode sentences with smart batching, save."""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from sbert.folder import FolderSpec, read_folder, write_folder_files
from sbert.resolve import DEFAULT_MODEL, resolve_model
from sbert.tokenization import Tokenizer

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")
PRECISIONS = ("fp32", "bf16")  # torch backend: bf16 runs under autocast
_TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "merges.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model", "added_tokens.json",
)
# show a progress bar by default from this many sentences on
PROGRESS_MIN_SENTENCES = 2048


class Backend(Protocol):
    """Runs the network on one padded batch; tokenization and batching stay in the encoder."""

    dimension: int
    threads: int  # CPU cores it uses
    streams: int  # batches the encoder may run at once, from as many threads

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


class TorchBackend:
    """The default backend: the torch :class:`~sbert.network.SentenceNetwork`."""

    streams = 1  # torch has one process-wide intra-op pool: one batch at a time on all cores

    def __init__(
        self, spec: FolderSpec, device: str | None = None, threads: int | None = None,
        precision: str = "fp32",
    ) -> None:
        import torch

        from sbert.network import SentenceNetwork
        from sbert.parallel import available_cores

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.threads = threads = threads or available_cores()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)  # process-wide: torch has one intra-op pool
        self.network = SentenceNetwork.from_spec(spec).to(self.device)
        if self.device.type == "cpu":
            from sbert.cpu_kernels import use_onednn_linears

            use_onednn_linears(self.network)  # ~2x on CPUs where MKL is slow (AMD EPYC)
        self.dimension = self.network.dimension
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
        # bf16 autocast: fast where the CPU has AVX512-BF16/AMX (or on a GPU); see the README
        self.autocast = precision == "bf16"

    def embed(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray,
        alone: bool = False,
    ) -> Any:
        import torch

        dev = self.device
        with torch.inference_mode(), torch.autocast(
            dev.type, dtype=torch.bfloat16, enabled=self.autocast
        ):
            return self.network(
                torch.from_numpy(input_ids).to(dev),
                torch.from_numpy(attention_mask).to(dev),
                torch.from_numpy(token_type_ids).to(dev),
            ).float()  # (batch, dim)


class SentenceEncoder:
    """A sentence embedding model: transformer, pooling, optional dense and normalize.

    Each sentence is encoded once; compare embeddings by cosine similarity.

    Args:
        model_name_or_path: a local sentence-transformers or Hugging Face folder, a bundled
            model name (``all-MiniLM-L6-v2``, the default; ``all-mpnet-base-v2``), or a hub id.
        device: ``"cpu"``, ``"cuda"``...; default: CUDA when available.
        backend: ``"torch"`` (default) or ``"onnx"``. A folder without an ONNX graph is
            exported once into the sbert cache (fp32 and int8; needs torch that once).
        max_seq_length: override the folder's maximum sequence length.
        threads: CPU threads for the forward pass; default: the cores this process may use.
        **backend_options: passed to the backend: ``quantized=True`` for ONNX int8,
            ``streams=N`` for the number of batches ONNX runs at once (default: one per
            thread), ``precision="bf16"`` for torch bf16 autocast.

    Example:
        >>> enc = SentenceEncoder()  # all-MiniLM-L6-v2, bundled
        >>> emb = enc.encode(["A man is eating food.", "A man eats."], normalize=True)
        >>> float(emb[0] @ emb[1])  # cosine similarity
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        backend: str = "torch",
        max_seq_length: int | None = None,
        threads: int | None = None,
        **backend_options: Any,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
        self.name = str(model_name_or_path) if model_name_or_path is not None else DEFAULT_MODEL
        self.path = resolve_model(model_name_or_path)
        self.spec = read_folder(self.path)
        if backend == "onnx" and device not in (None, "cpu"):
            raise ValueError(f"the onnx backend runs on the CPU; got device={device!r}")
        if backend == "onnx" and not self.spec.onnx_files and self.spec.has_torch_weights:
            from sbert.export import cached_export

            self.path = cached_export(self.path, self.spec)  # once; then from the cache
            self.spec = read_folder(self.path)
        self.backend_name = backend
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self.backend: Backend = self._make_backend(backend, device, backend_options)
        positions = _max_positions(self.spec.transformer_path)
        self.tokenizer = Tokenizer.from_folder(
            self.spec.transformer_path,
            max_seq_length or self.spec.max_seq_length,
            self.spec.do_lower_case,
            positions,
        )
        self.last_truncated = 0  # inputs truncated by the last encode() call
        self.total_truncated = 0  # ... by every call so far

    def _make_backend(self, backend: str, device: str | None, options: dict[str, Any]) -> Backend:
        if backend == "torch":
            precision = options.pop("precision", "fp32")
            if options:
                raise TypeError(f"the torch backend takes no options {sorted(options)}")
            if not self.spec.has_torch_weights and self.spec.onnx_files:
                from sbert.folder import ModelFolderError

                raise ModelFolderError(
                    f"{self.path} has ONNX graphs {self.spec.onnx_files} but no torch weights; "
                    "load it with backend='onnx' (CLI: --backend onnx)"
                )
            return TorchBackend(self.spec, device, self.threads, precision)
        from sbert.onnx_backend import OnnxBackend  # noqa: PLC0415 - optional extra

        return OnnxBackend(self.spec, threads=self.threads, **options)

    # -- properties -------------------------------------------------------------------------
    @property
    def dimension(self) -> int:
        """Length of the embedding vectors."""
        return int(self.backend.dimension)

    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.tokenizer.set_max_seq_length(value)

    @property
    def network(self) -> Any:
        """The torch module (torch backend only), for training."""
        if not isinstance(self.backend, TorchBackend):
            raise AttributeError("the network is only available with backend='torch'")
        return self.backend.network

    @property
    def device(self) -> Any:
        return getattr(self.backend, "device", "cpu")

    def __repr__(self) -> str:
        return (
            f"SentenceEncoder({self.name!r}, backend={self.backend_name!r}, dim={self.dimension}, "
            f"pooling={'+'.join(self.spec.pooling.modes)}, normalize={self.spec.normalize}, "
            f"max_seq_length={self.max_seq_length})"
        )

    # -- encoding ---------------------------------------------------------------------------
    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool = False,
        convert_to: Literal["numpy", "torch"] = "numpy",
        show_progress: bool | None = None,
    ) -> Any:
        """Embed sentences.

        Sentences are tokenized once, sorted by token length and batched so that each batch
        pads little (the paper's smart batching); the output keeps the input order.

        Args:
            sentences: the texts (a single string is treated as a list of one).
            batch_size: sentences per forward pass.
            normalize: L2-normalize the embeddings (then dot product = cosine).
            convert_to: ``"numpy"`` or ``"torch"``.
            show_progress: progress bar; default: on from 2,048 sentences.

        Returns:
            ``(n, dim)`` float32 array or tensor; ``(0, dim)`` for no sentences.
        """
        if convert_to not in ("numpy", "torch"):
            raise ValueError(f"convert_to must be 'numpy' or 'torch', not {convert_to!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"sentence {i} is {type(text).__name__}, not str")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)  # (n, dim)
        self.last_truncated = 0
        if texts:
            self._encode_into(texts, out, batch_size, show_progress)
        if normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, np.maximum(norms, 1e-12), out=out)
        if convert_to == "torch":
            import torch

            return torch.from_numpy(out)
        return out

    def _encode_into(
        self, texts: list[str], out: np.ndarray, batch_size: int, show_progress: bool | None
    ) -> None:
        tok = self.tokenizer.encode(texts, threads=self.backend.threads)
        if tok.truncated:
            self.last_truncated = tok.truncated
            self.total_truncated += tok.truncated
            warnings.warn(
                f"{tok.truncated} of {len(texts)} inputs were longer than max_seq_length="
                f"{self.max_seq_length} tokens and were truncated",
                stacklevel=3,
            )
        order = np.argsort(-tok.lengths, kind="stable")  # longest first
        if show_progress is None:
            show_progress = len(texts) >= PROGRESS_MIN_SENTENCES
        from tqdm.auto import tqdm

        batches = [order[start : start + batch_size] for start in range(0, len(texts), batch_size)]
        streams = min(self.backend.streams, len(batches))

        def run(idx: np.ndarray) -> None:
            ids, mask, types = self.tokenizer.pad(
                [tok.ids[i] for i in idx], [tok.type_ids[i] for i in idx]
            )
            emb = self.backend.embed(ids, mask, types, alone=len(batches) == 1)  # (batch, dim)
            if not isinstance(emb, np.ndarray):
                emb = emb.cpu().numpy()
            out[idx] = emb  # batches are disjoint: each row is written once

        bar = tqdm(total=len(batches), desc="encode", unit="batch", disable=not show_progress)
        with bar:
            if streams <= 1:
                for idx in batches:
                    run(idx)
                    bar.update()
                return
            from concurrent.futures import ThreadPoolExecutor

            # the backend runs ``streams`` batches at once (onnxruntime releases the GIL)
            pool = ThreadPoolExecutor(streams, thread_name_prefix="sbert-encode")
            try:
                for _ in pool.map(run, batches):  # re-raises a batch's error here
                    bar.update()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    # -- persistence ------------------------------------------------------------------------
    def export_onnx(self, path: str | os.PathLike[str], quantize: str | None = None) -> Path:
        """Write the model folder with ``onnx/model.onnx`` (and ``--quantize int8`` graph).

        See :func:`sbert.export.export_onnx`.

        Returns:
            The folder.
        """
        from sbert.export import export_onnx

        return export_onnx(self, path, quantize=quantize)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as a sentence-transformers folder that sentence-transformers loads.

        Returns:
            The folder.
        """
        if not isinstance(self.backend, TorchBackend):
            raise ValueError("save() needs backend='torch'; use export_onnx() for ONNX folders")
        import torch
        import transformers

        from sbert import __version__

        root = Path(path)
        net = self.backend.network
        dense_dirs = write_folder_files(
            root,
            net.pooling,
            net.dense_configs,
            net.normalize,
            self.max_seq_length,
            self.spec.do_lower_case,
            {"sbert": __version__, "transformers": transformers.__version__,
             "pytorch": torch.__version__},
        )
        net.save(root, dense_dirs)
        src = self.spec.transformer_path
        for name in _TOKENIZER_FILES:
            if (src / name).exists() and (src / name).resolve() != (root / name).resolve():
                shutil.copyfile(src / name, root / name)
        _set_tokenizer_max_length(root, self.max_seq_length)
        return root


def _max_positions(path: Path) -> int | None:
    import json

    cfg = path / "config.json"
    if not cfg.exists():
        return None
    data = json.loads(cfg.read_text(encoding="utf-8"))
    value = data.get("max_position_embeddings")
    if not isinstance(value, int):
        return None
    # RoBERTa/MPNet reserve pad_token_id + 1 positions before the first token
    if data.get("model_type") in ("roberta", "xlm-roberta", "mpnet", "camembert"):
        value -= int(data.get("pad_token_id", 1)) + 1
    return value


def _set_tokenizer_max_length(root: Path, max_len: int) -> None:
    import json

    cfg_file = root / "tokenizer_config.json"
    cfg: dict[str, Any] = {}
    if cfg_file.exists():
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg["model_max_length"] = max_len
    cfg_file.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
