"""Encoding with several processes: thread split, input order, worker errors surface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sbert.errors import WorkerError
from sbert.parallel import encode_parallel
from sbert.runtime import available_cores, threads_per_worker
from tests.conftest import has_module

SENTENCES = [f"the {w} man plays with a {v} dog" for w in ("big", "small", "happy", "sad")
             for v in ("red", "blue", "old", "new", "fast")] + ["", "music"]


def test_threads_per_worker_never_oversubscribes() -> None:
    assert threads_per_worker(1, cores=8) == 8
    assert threads_per_worker(2, cores=8) == 4
    assert threads_per_worker(3, cores=8) == 2
    assert threads_per_worker(4, cores=2) == 1  # at least one thread each
    assert threads_per_worker(1) == available_cores() >= 1
    with pytest.raises(ValueError, match="workers"):
        threads_per_worker(0)


@pytest.fixture(scope="module")
def onnx_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not has_module("onnxruntime"):
        pytest.skip("needs onnxruntime")
    from sbert import SentenceEncoder

    out = tmp_path_factory.mktemp("tiny_onnx_parallel") / "model"
    return SentenceEncoder(tiny_model_dir, device="cpu").export_onnx(out)


def test_workers_keep_order_and_match_one_process(onnx_dir: Path) -> None:
    from sbert import SentenceEncoder

    ref = SentenceEncoder(onnx_dir, backend="onnx").encode(SENTENCES, normalize=True)
    done: list[int] = []
    emb = encode_parallel(str(onnx_dir), SENTENCES, workers=2, normalize=True,
                          progress=done.append, chunk_size=5, backend="onnx")
    assert emb.shape == ref.shape
    np.testing.assert_allclose(emb, ref, atol=1e-6)
    assert sum(done) == len(SENTENCES) and len(done) == 5


def test_empty_input(onnx_dir: Path) -> None:
    emb = encode_parallel(str(onnx_dir), [], workers=2, backend="onnx")
    assert emb.shape == (0, 32)


def test_worker_error_surfaces(onnx_dir: Path) -> None:
    # the folder has no int8 graph: every worker fails to load, the parent raises
    with pytest.raises(WorkerError, match="no int8 ONNX graph"):
        encode_parallel(str(onnx_dir), SENTENCES, workers=2, chunk_size=4, backend="onnx",
                        quantized=True)


def test_cli_workers(onnx_dir: Path, tmp_path: Path) -> None:
    from sbert.cli.main import main

    path = tmp_path / "in.txt"
    path.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.npy"
        main(["encode", str(path), "-o", str(out), "-m", str(onnx_dir), "--backend", "onnx",
              "--workers", workers])
        outs.append(np.load(out))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(path), "-o", str(tmp_path / "x.npy"), "-m", str(onnx_dir),
              "--quantized", "--workers", "2"])
    assert exit_info.value.code == 2
