"""The default backend: the torch :class:`~sbert.backends.torch.network.SentenceNetwork`."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from sbert._version import __version__
from sbert.errors import UsageError
from sbert.files import file_digest
from sbert.folder import FolderSettings, FolderSpec, copy_tokenizer_files, write_folder_files
from sbert.runtime import resolve_threads, set_torch_threads

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")  # bf16 and fp16 run under autocast


class TorchBackend:
    """Runs the network with torch, one batch at a time on every thread.

    Args:
        spec: the parsed model folder.
        device: ``"cpu"``, ``"cuda"``...; default: CUDA when available.
        threads: when given, torch's intra-op thread count is set to it. torch has one
            process-wide pool, so this changes it for the whole process; by default it is
            left as it is.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``: the two 16-bit types run under
            autocast (matrix products and attention in that type; what autocast keeps in
            fp32, such as LayerNorm, stays fp32; the weights stay fp32). fp16 is meant for
            CUDA GPUs: CPUs without AMX-FP16 convert it in software.
        streams: batches run at once on the CPU, each from its own thread on
            ``threads // streams`` cores (torch's intra-op thread count is per calling
            thread); a batch that runs alone gets every core. Default 1: one batch at a time
            on every core. A server that batches concurrent requests keeps the cores busier
            with one stream per core: no core waits at an intra-op barrier for a thread the
            event loop has taken.
    """

    def __init__(
        self, spec: FolderSpec, device: str | None = None, threads: int | None = None,
        precision: str = "fp32", streams: int | None = None,
    ) -> None:
        import torch

        from sbert.backends.torch.network import SentenceNetwork

        if precision not in PRECISIONS:
            raise UsageError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except RuntimeError as err:
            raise UsageError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from err
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA GPU is available here; "
                             "use --device cpu or leave --device out")
        if threads is not None:
            set_torch_threads(resolve_threads(threads))
        self.threads = torch.get_num_threads()
        if streams is not None and streams < 1:
            raise UsageError(f"streams must be >= 1, got {streams}")
        self.streams = 1
        if streams and streams > 1 and self.device.type == "cpu":
            self.threads = resolve_threads(threads)
            self.streams = min(streams, self.threads)
        # torch's CPU intra-op pool (libgomp) belongs to the thread that opens a parallel
        # region: each calling thread keeps a pool of its own, and once the process holds
        # more pool threads than cores, libgomp all but stops spinning between regions, and
        # short passes slow down (benchmarks/torch_threads.py). A caller that owns threads
        # (the server's batcher) runs the multi-threaded passes from one thread only.
        self.one_caller = self.device.type == "cpu"
        self.network = SentenceNetwork.from_spec(spec).to(self.device)
        if self.device.type == "cpu":
            from sbert.backends.torch.kernels import use_onednn_linears

            use_onednn_linears(self.network)  # where MKL takes a slow path (AMD EPYC)
        # bf16 autocast: fast where the CPU has AVX512-BF16/AMX (or on a GPU); see the README.
        # fp16 autocast: for GPUs (benchmarks/encode_gpu.py measures both there)
        self.precision = precision
        self.autocast = precision != "fp32"
        self.autocast_dtype = torch.float16 if precision == "fp16" else torch.bfloat16

    @property
    def dimension(self) -> int:
        return int(self.network.dimension)

    def embed(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray,
        alone: bool = False,
    ) -> Any:
        import torch

        dev = self.device
        if self.streams > 1:  # this thread's own intra-op count: all cores only when alone
            want = self.threads if alone else max(1, self.threads // self.streams)
            if torch.get_num_threads() != want:
                torch.set_num_threads(want)
        with torch.inference_mode(), torch.autocast(
            dev.type, dtype=self.autocast_dtype, enabled=self.autocast
        ):
            return self.network(
                torch.from_numpy(input_ids).to(dev),
                torch.from_numpy(attention_mask).to(dev),
                torch.from_numpy(token_type_ids).to(dev),
            ).float()  # (batch, dim)

    def save(self, root: Path, settings: FolderSettings, tokenizer_source: Path) -> Path:
        """Write a sentence-transformers folder: configs, weights and tokenizer files.

        The model is written beside its place under a temporary name first, so a failure
        leaves no half-written model and an existing folder as it was. A new folder is then
        renamed into place; into an existing one (a training run's folder), each file is
        moved in by a rename, and the folder's other files stay.

        Args:
            root: the folder (created).
            settings: the folder-level settings to record.
            tokenizer_source: the folder whose tokenizer files are copied.
        """
        root = Path(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = root.with_name(f".{root.name}.{os.getpid()}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            self._write(tmp, settings, tokenizer_source)
            if root.exists():
                # graphs beside the weights: hashed only then (a training run's saves have none)
                graphs = _graphs(root)
                before = _weights_digest(root) if graphs else None
                for file in sorted(p for p in tmp.rglob("*") if p.is_file()):
                    target = root / file.relative_to(tmp)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(file, target)
                if graphs and before != _weights_digest(root):
                    _drop_stale_graphs(root, graphs)
            else:
                os.rename(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return root

    def _write(self, root: Path, settings: FolderSettings, tokenizer_source: Path) -> Path:
        import torch
        import transformers

        net = self.network
        dense_dirs = write_folder_files(
            root, net.pooling, net.dense_configs, net.normalize, settings,
            {"sbert": __version__, "transformers": transformers.__version__,
             "pytorch": torch.__version__},
        )
        net.save(root, dense_dirs)
        copy_tokenizer_files(tokenizer_source, root, settings.max_seq_length)
        return root


def _weights_digest(root: Path) -> str | None:
    """The sha256 of a folder's ``model.safetensors`` (None: there is none)."""
    weights = root / "model.safetensors"
    return file_digest(weights) if weights.is_file() else None


def _graphs(root: Path) -> list[Path]:
    """The ONNX graphs in a model folder."""
    return sorted((root / "onnx").glob("*.onnx"))


def _drop_stale_graphs(root: Path, graphs: list[Path]) -> None:
    """Remove ONNX graphs exported from a folder's earlier weights: left beside new weights,
    ``backend="onnx"`` (and ``auto``) would run the old model from the same folder."""
    for graph in graphs:
        graph.unlink(missing_ok=True)
    logger.warning("%s: removed %d ONNX graph(s) of the weights saved before (%s); "
                   "export_onnx() writes graphs of these", root, len(graphs),
                   ", ".join(g.name for g in graphs))
