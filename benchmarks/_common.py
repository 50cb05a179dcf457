"""Helpers shared by the benchmark scripts: data loading, timing, machine limits."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("SBERT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
OUT = Path(__file__).resolve().parent / "out"


def sts_pairs(limit: int | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """STS benchmark test pairs: sentence1s, sentence2s and gold scores (first ``limit // 2``)."""
    path = DATA / "stsbenchmark" / "test.tsv"
    if not path.exists():
        raise SystemExit(f"needs {path} (the shared data sets); set SBERT_DATA to its folder")
    rows = [line.rstrip("\n").split("\t") for line in path.open(encoding="utf-8")][1:]
    if limit is not None:
        rows = rows[: max(1, limit // 2)]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def sts_test_sentences() -> list[str]:
    """The 2,758 sentences of the STS benchmark test set (sentence1s, then sentence2s)."""
    first, second, _ = sts_pairs()
    return first + second


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The fp32 limit of torch on this machine: GFLOP/s of a large square matrix multiply."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def onednn_gflops(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the same multiply through oneDNN (the kernel sbert's CPU path uses)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    run = torch.ops.mkldnn._linear_pointwise
    with torch.inference_mode():
        run(a, b, None, "none", [], "")  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run(a, b, None, "none", [], "")
            best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9

def ort_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The fp32 limit of onnxruntime: GFLOP/s of a large square MatMul."""
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
    sess.run(None, feed)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        sess.run(None, feed)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def exported(name: str, reexport: bool) -> Path:
    """The model's ONNX folder (fp32 + int8): the library's own cached export, timed once."""
    import shutil

    from sbert.backends.onnx.cache import cache_folder, cached_export
    from sbert.folder import read_folder
    from sbert.models import resolve_model

    path = resolve_model(name)
    spec = read_folder(path)
    if reexport:
        shutil.rmtree(cache_folder(path, spec), ignore_errors=True)
    start = time.perf_counter()
    out = cached_export(path, spec)
    print(f"ONNX graphs of {name}: {out} ({time.perf_counter() - start:.0f}s)", flush=True)
    return out


def bert_flops(n_tokens: int, hidden: int, ffn: int, layers: int) -> float:
    """Matrix-multiply FLOPs of a BERT encoder over ``n_tokens`` real (unpadded) tokens."""
    per_token_layer = 2 * (4 * hidden * hidden + 2 * hidden * ffn)
    return float(n_tokens * layers * per_token_layer)


def alternate(
    runs: dict[str, Callable[[], object]], rounds: int
) -> dict[str, list[float]]:
    """Run each contender once per round, in turn, after one warm-up each; seconds per run."""
    for fn in runs.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cos.min())
