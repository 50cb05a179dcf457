"""``SentenceEncoder``: load a model folder, encode sentences with smart batching, save."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sbert.backends import Backend, load_tokenizer
from sbert.backends.auto import AUTO, PathChoice, check_request, onnx_source, path_for
from sbert.errors import ModelFolderError, UsageError
from sbert.folder import FolderSettings, read_folder
from sbert.models import DEFAULT_MODEL, resolve_model
from sbert.runtime import resolve_threads
from sbert.similarity import normalize as normalize_rows
from sbert.similarity import pairwise_similarity, similarity

logger = logging.getLogger(__name__)

# show a progress bar by default from this many sentences on
PROGRESS_MIN_SENTENCES = 2048
_warned: set[str] = set()  # warnings said once per process


class SentenceEncoder:
    """A sentence embedding model: transformer, pooling, optional dense and normalize.

    Each sentence is encoded once; compare embeddings with :meth:`similarity`, which uses the
    model's ``similarity_fn_name``. Three attributes come from the folder's
    ``config_sentence_transformers.json`` and go back into it on :meth:`save`: change them by
    assignment (``enc.similarity_fn_name = "dot"``, ``enc.prompts["query"] = "query: "``,
    ``enc.default_prompt_name = "query"``); saving checks them.

    Args:
        model_name_or_path: a local sentence-transformers or Hugging Face folder, a bundled
            model name (``all-MiniLM-L6-v2``, the default; ``all-mpnet-base-v2``), or a hub id.
        device: ``"cpu"``, ``"cuda"``...; default: CUDA when available.
        backend: ``"auto"`` (default), ``"torch"`` or ``"onnx"``. ``auto`` runs the fastest
            path that keeps cosine >= 0.9999 to fp32 here (:mod:`sbert.backends.auto`; the
            environment variable ``SBERT_BACKEND`` pins it). On ONNX, a folder without an
            ONNX graph is exported once into the sbert cache (needs torch that once).
        precision: ``"auto"`` (default), ``"fp32"`` or ``"bf16"`` (torch autocast; on a CPU
            only fast with AVX512-BF16/AMX). ``auto``: bf16 on a CPU with AMX, else fp32
            (``SBERT_PRECISION`` pins it).
        max_seq_length: override the folder's maximum sequence length.
        threads: CPU threads for the forward pass. Default: ONNX uses the cores this process
            may use; torch keeps its own setting. Given with the torch backend, it sets
            torch's thread count, which is process-wide.
        **backend_options: passed to the backend: ``quantized=True`` for ONNX int8 (never
            chosen by ``auto``: it changes results), ``streams=N`` for the number of batches
            run at once (ONNX default: one per thread; torch default: 1, one batch on every
            core).

    Attributes:
        backend_name: the backend that runs, ``"torch"`` or ``"onnx"``.
        precision: ``"fp32"``, ``"bf16"`` or ``"int8"``.
        path_choice: the path and why it was chosen (also in ``repr`` and logged at INFO).
        similarity_fn_name: ``cosine``, ``dot``, ``euclidean`` or ``manhattan``.
        prompts: prompt name -> text prepended by ``encode(prompt_name=...)``.
        default_prompt_name: the prompt ``encode`` applies when given none (or None).

    Example:
        >>> enc = SentenceEncoder()  # all-MiniLM-L6-v2, bundled
        >>> emb = enc.encode(["A man is eating food.", "A man eats."])
        >>> float(enc.similarity(emb[:1], emb[1:])[0, 0])  # cosine, this model's function
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        backend: str = AUTO,
        precision: str = AUTO,
        max_seq_length: int | None = None,
        threads: int | None = None,
        **backend_options: Any,
    ) -> None:
        check_request(backend, precision)
        self.name = str(model_name_or_path) if model_name_or_path is not None else DEFAULT_MODEL
        self.path = resolve_model(model_name_or_path)
        self.spec = read_folder(self.path)
        choice = path_for(self.spec, backend=backend, precision=precision, device=device,
                          options=backend_options)
        if choice.warning and choice.warning not in _warned:
            _warned.add(choice.warning)
            warnings.warn(choice.warning, RuntimeWarning, stacklevel=2)
        # the ONNX backend on a folder without a graph: its export, made once into the cache
        self.path, self.spec, choice = onnx_source(self.path, self.spec, choice,
                                                   backend_options, self.name)
        logger.info("%s runs %s", self.name, choice.describe())
        self.path_choice: PathChoice = choice
        self.backend_name = choice.backend
        self.precision = choice.precision
        self.threads = None if threads is None else resolve_threads(threads)
        self.backend: Backend = self._make_backend(choice, device, backend_options)
        self._weights: Any = None  # torch weights loaded beside an ONNX backend, to save
        self.tokenizer = load_tokenizer(self.spec)
        if max_seq_length is not None:  # the setter refuses < 2 and clamps to the positions
            self.max_seq_length = max_seq_length
        self.similarity_fn_name = self.spec.similarity_fn_name
        self.prompts = dict(self.spec.prompts)
        self.default_prompt_name = self.spec.default_prompt_name
        self.last_truncated = 0  # inputs truncated by the last encode() call
        self.total_truncated = 0  # ... by every call so far

    def _make_backend(self, choice: PathChoice, device: str | None,
                      options: dict[str, Any]) -> Backend:
        if choice.backend == "torch":
            streams = options.pop("streams", None)
            if options:
                raise TypeError(f"the torch backend takes no options {sorted(options)}")
            if not self.spec.has_torch_weights and self.spec.onnx_files:
                raise ModelFolderError(
                    f"{self.path} has ONNX graphs {self.spec.onnx_files} but no torch weights; "
                    "load it with backend='onnx' (CLI: --backend onnx) to encode; training and "
                    "exporting need a folder with torch weights"
                )
            from sbert.runtime import require

            require("torch", "torch")
            from sbert.backends.torch.backend import TorchBackend

            return TorchBackend(self.spec, device, self.threads, choice.precision, streams)
        from sbert.backends.onnx.backend import OnnxBackend

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

    def _torch_backend(self, what: str, weights: bool = False) -> Any:
        """The torch backend this encoder runs; ``weights`` (saving, exporting): else the
        folder's torch weights, loaded for the purpose (what the encoder runs is unchanged)."""
        from sbert.backends.torch.backend import TorchBackend

        if isinstance(self.backend, TorchBackend):
            return self.backend
        if not weights:
            raise UsageError(
                f"{what} needs the torch backend; this encoder runs {self.path_choice.describe()}"
                ": load it with SentenceEncoder(..., backend='torch')"
            )
        if self.spec.has_torch_weights and self._weights is None:
            # an ONNX encoder of a folder with torch weights saves and exports those (the
            # model is the same; the graph is how it runs): loaded once, on the CPU
            from sbert.runtime import require

            require("torch", "torch")
            logger.info("loading the torch weights of %s for %s", self.path, what)
            self._weights = TorchBackend(self.spec, "cpu", self.threads, "fp32", None)
        if self._weights is None:
            raise UsageError(
                f"{what} needs torch weights; this encoder runs "
                f"{self.path_choice.describe()} from {self.path}, which has none: load a "
                "folder with torch weights"
            )
        return self._weights

    @property
    def network(self) -> Any:
        """The torch module (torch backend only), for training."""
        try:
            return self._torch_backend("the network").network
        except ValueError as err:
            raise AttributeError(str(err)) from None

    def set_pooling(self, mode: str, head: bool = True) -> None:
        """Pool with ``mode`` (``mean``, ``max``, ``cls``...) from now on (torch backend).

        Args:
            mode: the pooling mode.
            head: keep the Dense and Normalize modules (False: plain pooled token vectors,
                as the "Avg BERT" and "CLS" baselines use).
        """
        self._torch_backend("set_pooling").network.set_pooling((mode,), head=head)

    @property
    def device(self) -> Any:
        return getattr(self.backend, "device", "cpu")

    def __repr__(self) -> str:
        modes = getattr(getattr(self.backend, "network", None), "pooling", self.spec.pooling).modes
        path = f"backend={self.backend_name!r}, precision={self.precision!r}"
        if self.path_choice.chosen:
            path += f" ({self.path_choice.reason})"
        return (
            f"SentenceEncoder({self.name!r}, {path}, dim={self.dimension}, "
            f"pooling={'+'.join(modes)}, normalize={self.spec.normalize}, "
            f"similarity={self.similarity_fn_name!r}, max_seq_length={self.max_seq_length})"
        )

    # -- encoding ---------------------------------------------------------------------------
    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool = False,
        convert_to: Literal["numpy", "torch"] = "numpy",
        show_progress: bool | None = None,
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        progress: Callable[[int], None] | None = None,
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
            prompt_name: prepend the model's prompt of this name (``encoder.prompts``).
            prompt: prepend this text; overrides ``prompt_name``. With neither, the model's
                ``default_prompt_name`` applies, as in sentence-transformers.
            progress: called with the number of sentences of each finished batch (for a
                caller's own display; the bar of ``show_progress`` is separate).

        Returns:
            ``(n, dim)`` float32 array or tensor; ``(0, dim)`` for no sentences.
        """
        if convert_to not in ("numpy", "torch"):
            raise UsageError(f"convert_to must be 'numpy' or 'torch', not {convert_to!r}")
        if isinstance(batch_size, bool) or batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size > 65_536:  # one batch's arrays would be allocated without limit
            warnings.warn(f"batch_size={batch_size} clamped to 65536", stacklevel=2)
            batch_size = 65_536
        if sentences is None or isinstance(sentences, (bytes, bytearray, Mapping)):
            # list() would give a bytes object's numbers, or a dict's keys
            raise TypeError(f"sentences must be a string or a sequence of strings, not "
                            f"{type(sentences).__name__}" + (
                                "; decode the bytes first" if isinstance(
                                    sentences, (bytes, bytearray)) else ""))
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"sentence {i} is {type(text).__name__}, not str")
        prefix = self.resolve_prompt(prompt_name, prompt)
        if prefix:
            texts = [prefix + text for text in texts]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)  # (n, dim)
        self.last_truncated = 0
        if texts:
            self._encode_into(texts, out, batch_size, show_progress, progress)
        if normalize:
            normalize_rows(out, out=out)
        if convert_to == "torch":
            import torch

            return torch.from_numpy(out)
        return out

    def resolve_prompt(self, prompt_name: str | None = None, prompt: str | None = None) -> str:
        """The text :meth:`encode` prepends: ``prompt``, the named prompt, or the default one.

        Raises:
            UsageError: ``prompt_name`` (or the default prompt name) is not a prompt of
                this model.
        """
        if prompt is None:
            name = prompt_name if prompt_name is not None else self.default_prompt_name
            if name is None:
                return ""
            if name not in self.prompts:
                what = "prompt_name" if prompt_name is not None else "default_prompt_name"
                raise UsageError(f"unknown {what} {name!r}; this model's prompts are "
                                 f"{sorted(self.prompts) or '(none)'}")
            prompt = self.prompts[name]
        if prompt and not self.spec.pooling.include_prompt:
            raise ModelFolderError(
                f"{self.path}: pooling excludes prompt tokens (include_prompt=false), which "
                "sbert does not support yet; encode without a prompt (prompt='' also skips "
                "the default prompt)"
            )
        return prompt

    # -- similarity -----------------------------------------------------------------------
    def similarity(self, a: Any, b: Any) -> np.ndarray:
        """Every embedding of ``a`` against every one of ``b``, by the model's function.

        The function is the folder's ``similarity_fn_name`` (``cosine``, ``dot``,
        ``euclidean`` or ``manhattan``; the last two as negative distances).

        Returns:
            ``(n, m)`` float32 numpy array.
        """
        return similarity(a, b, self.similarity_fn_name)

    def similarity_pairwise(self, a: Any, b: Any) -> np.ndarray:
        """Row ``i`` of ``a`` against row ``i`` of ``b`` by the model's function: ``(n,)``."""
        return pairwise_similarity(a, b, self.similarity_fn_name).astype(np.float32)

    def _encode_into(
        self, texts: list[str], out: np.ndarray, batch_size: int, show_progress: bool | None,
        progress: Callable[[int], None] | None = None,
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
            # batches are disjoint: each row is written once
            out[idx] = self.embed_tokens([tok.ids[i] for i in idx],
                                         [tok.type_ids[i] for i in idx],
                                         alone=len(batches) == 1)

        bar = tqdm(total=len(batches), desc="encode", unit="batch", disable=not show_progress)

        def done(idx: np.ndarray) -> None:
            bar.update()
            if progress is not None:
                progress(len(idx))

        with bar:
            if streams <= 1:
                for idx in batches:
                    run(idx)
                    done(idx)
                return
            from concurrent.futures import ThreadPoolExecutor

            # the backend runs ``streams`` batches at once (onnxruntime releases the GIL)
            pool = ThreadPoolExecutor(streams, thread_name_prefix="sbert-encode")
            try:
                # map re-raises a batch's error here
                for idx, _ in zip(batches, pool.map(run, batches), strict=True):
                    done(idx)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def embed_tokens(
        self, ids: list[list[int]], type_ids: list[list[int]], alone: bool = False
    ) -> np.ndarray:
        """One batch of tokenized sentences (from ``encoder.tokenizer``) -> ``(batch, dim)``.

        The step :meth:`encode` runs per batch, for callers that batch themselves (the
        server): pads, runs the backend, returns float32 numpy. ``alone``: nothing else
        runs beside this batch (the ONNX backend then uses every core for it).
        """
        input_ids, mask, types = self.tokenizer.pad(ids, type_ids)
        emb = self.backend.embed(input_ids, mask, types, alone=alone)  # (batch, dim)
        if not isinstance(emb, np.ndarray):
            emb = emb.cpu().numpy()
        return np.asarray(emb, dtype=np.float32)

    # -- persistence ------------------------------------------------------------------------
    def settings(self) -> FolderSettings:
        """What a saved folder records: max length, casing, similarity function, prompts.

        Raises:
            UsageError: ``similarity_fn_name`` is unknown, or ``default_prompt_name`` is not
                one of ``prompts``.
        """
        return FolderSettings(self.max_seq_length, self.spec.do_lower_case,
                              self.similarity_fn_name, dict(self.prompts),
                              self.default_prompt_name)

    def export_onnx(
        self, path: str | os.PathLike[str], quantize: str | None = None, **options: Any
    ) -> Path:
        """Write the model folder with ``onnx/model.onnx`` (and ``--quantize int8`` graph).

        ``options`` (``optimize``, ``opset``) and the rest: see
        :func:`sbert.backends.onnx.export.export_onnx`.

        Returns:
            The folder.
        """
        from sbert.backends.onnx.export import export_onnx

        backend = self._torch_backend("export (the torch weights)", weights=True)
        return export_onnx(backend, self.spec, path, quantize=quantize,
                           settings=self.settings(), tokenizer=self.tokenizer, **options)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as a sentence-transformers folder that sentence-transformers loads.

        The folder keeps the similarity function and prompts; they are checked first, so a
        bad value raises :class:`~sbert.errors.UsageError` before anything is written.

        Returns:
            The folder.
        """
        backend = self._torch_backend("save()", weights=True)
        return Path(backend.save(Path(path), self.settings(), self.spec.transformer_path))
