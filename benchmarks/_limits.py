"""What the machine can do and what a run's tokens cost: matrix-multiply limits and FLOPs.

:func:`machine_limits` measures the machine's matrix-multiply limits once per process (torch
/MKL, oneDNN and onnxruntime on the CPU; the GPU's own for a CUDA device);
:func:`_common.write_result` records them in every result. A speed figure that is a model's
throughput (sentences/s or examples/s of a BERT encoder) gets two columns beside it:
GFLOP/s, from :func:`bert_flops` of the real (unpadded) tokens the run processed
(:func:`model_flops`), and that figure's fraction of the best limit (:func:`flops_columns`,
:func:`flops_cells`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

CPU_N = 2048  # the square multiply whose speed is the CPU's limit
GPU_N = 8192  # a GPU needs larger matrices to reach its limit
TRAIN_FACTOR = 3  # training: forward + backward, counted as 3x the forward's FLOPs


def _best_seconds(run: Callable[[], object], repeats: int,
                  sync: Callable[[], object] = lambda: None) -> float:
    """The fastest of ``repeats`` calls of ``run`` after one warm-up call."""
    run()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(n: int = CPU_N, repeats: int = 5, device: str = "cpu",
                  dtype: str = "float32") -> float:
    """The limit of torch's matrix multiply (MKL on the CPU): GFLOP/s of an n x n x n one.

    Args:
        n: the matrices' size.
        repeats: timed calls after a warm-up; the fastest counts.
        device: a torch device (``cuda`` synchronizes around each call).
        dtype: a torch dtype name (``float32``, ``float16``, ``bfloat16``).

    Returns:
        GFLOP/s (2 n^3 FLOPs per multiply).
    """
    import torch

    kind = getattr(torch, dtype)
    a = torch.randn(n, n, device=device).to(kind)
    b = torch.randn(n, n, device=device).to(kind)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    return 2 * n**3 / _best_seconds(lambda: a @ b, repeats, sync) / 1e9


def onednn_gflops(n: int = CPU_N, repeats: int = 5) -> float:
    """GFLOP/s of the same fp32 multiply through oneDNN (the kernel sbert's CPU path uses)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    run = torch.ops.mkldnn._linear_pointwise
    with torch.inference_mode():
        return 2 * n**3 / _best_seconds(lambda: run(a, b, None, "none", [], ""), repeats) / 1e9


def ort_matmul_gflops(n: int = CPU_N, repeats: int = 5) -> float:
    """The fp32 limit of onnxruntime: GFLOP/s of a large square MatMul on every core."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from sbert.runtime import available_cores

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = available_cores()
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.standard_normal((n, n), dtype=np.float32),
            "b": rng.standard_normal((n, n), dtype=np.float32)}
    return 2 * n**3 / _best_seconds(lambda: sess.run(None, feed), repeats) / 1e9


def machine_limits(device: str | None = None, n: int | None = None) -> dict[str, float]:
    """The machine's matrix-multiply limits, GFLOP/s, measured once per process (seconds).

    On the CPU: fp32 through torch/MKL and oneDNN on every available core, and through
    onnxruntime where it (and ``onnx``) is installed. For a CUDA device: that GPU's torch
    multiply in fp32 (TF32 off) and fp16, instead.

    Args:
        device: the torch device the benchmark measured (None: the CPU).
        n: the matrices' size (default 2048 on the CPU, 8192 on a GPU; tests pass less).

    Returns:
        Limit name -> GFLOP/s (``MKL``, ``oneDNN``, ``ORT``; ``CUDA fp32``, ``CUDA fp16``).
    """
    gpu = device is not None and str(device).startswith("cuda")
    return _measure_limits(str(device) if gpu else None, n)  # every CPU device: one entry


@functools.cache
def _measure_limits(gpu: str | None, n: int | None) -> dict[str, float]:
    import importlib.util

    import torch

    from sbert.runtime import available_cores

    if gpu is not None:
        size = n or GPU_N
        precision = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")  # IEEE fp32, not TF32
        try:
            return _measured({
                "CUDA fp32": lambda: matmul_gflops(size, device=gpu),
                "CUDA fp16": lambda: matmul_gflops(size, device=gpu, dtype="float16")})
        finally:
            torch.set_float32_matmul_precision(precision)
    size = n or CPU_N
    threads = torch.get_num_threads()
    torch.set_num_threads(available_cores())  # the machine's limit, whatever a run set
    try:
        limits = _measured({"MKL": lambda: matmul_gflops(size),
                            "oneDNN": lambda: onednn_gflops(size)})
    finally:
        torch.set_num_threads(threads)
    if all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx")):
        limits.update(_measured({"ORT": lambda: ort_matmul_gflops(size)}))
    return limits


def _measured(runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Each limit that could be measured; one that fails is left out with a printed line (a
    long run's results must not be lost to it)."""
    out = {}
    for name, run in runs.items():
        try:
            out[name] = run()
        except Exception as err:  # noqa: BLE001 - any failure only drops this limit
            print(f"could not measure the {name} matrix-multiply limit: "
                  f"{type(err).__name__}: {err}", flush=True)
    return out


def best_limit(limits: dict[str, float]) -> tuple[str, float | None]:
    """The highest of the measured limits: its name and GFLOP/s (``fp32``, None: none)."""
    if not limits:
        return "fp32", None
    name = max(limits, key=lambda k: limits[k])
    return name, limits[name]


def bert_flops(n_tokens: int, hidden: int, ffn: int, layers: int) -> float:
    """Matrix-multiply FLOPs of a BERT encoder over ``n_tokens`` real (unpadded) tokens."""
    per_token_layer = 2 * (4 * hidden * hidden + 2 * hidden * ffn)
    return float(n_tokens * layers * per_token_layer)


def model_flops(encoder: Any, texts: Sequence[str]) -> tuple[int, float]:
    """The real tokens of ``texts`` as ``encoder`` cuts them, and one forward's FLOPs on them.

    Args:
        encoder: a ``SentenceEncoder`` (its tokenizer, its max_seq_length, its config).
        texts: what the run encodes (each text as often as the run encodes it).

    Returns:
        (tokens, FLOPs of :func:`bert_flops`); tokenizing is cheap but not free: call it
        outside the timed region.
    """
    cfg = json.loads((encoder.spec.transformer_path / "config.json").read_text())
    tokens = int(encoder.tokenizer.encode(list(texts)).lengths.sum())
    return tokens, bert_flops(tokens, cfg["hidden_size"], cfg["intermediate_size"],
                              cfg["num_hidden_layers"])


Column = tuple[str, str, str]


def flops_columns(limits: dict[str, float], prefix: str = "",
                  label: str = "") -> list[Column]:
    """Table columns ``<prefix>gflops`` (GFLOP/s) and ``<prefix>of_limit`` (fraction of the
    best limit, named in the label); ``label`` goes before both labels."""
    name, _ = best_limit(limits)
    return [(f"{prefix}gflops", f"{label}GFLOP/s", "{:.0f}"),
            (f"{prefix}of_limit", f"{label}of {name} limit", "{:.0%}")]


def flops_cells(flops_per_s: float | None, limits: dict[str, float],
                prefix: str = "") -> dict[str, float | None]:
    """The cells of :func:`flops_columns` for a run that did ``flops_per_s`` FLOP/s (None:
    not measured)."""
    if flops_per_s is None:
        return {f"{prefix}gflops": None, f"{prefix}of_limit": None}
    _, best = best_limit(limits)
    gflops = flops_per_s / 1e9
    return {f"{prefix}gflops": gflops, f"{prefix}of_limit": gflops / best if best else None}


def limits_text(limits: dict[str, float]) -> str:
    """One line: each limit's GFLOP/s."""
    return ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in limits.items())
