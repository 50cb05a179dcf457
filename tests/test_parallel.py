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
    # 22 sentences, at most 5 a chunk, a multiple of the (capped) workers of even chunks;
    # progress comes by batch, and a batch (up to 32) is here a whole chunk
    assert sum(done) == len(SENTENCES) and max(done) <= 5 and max(done) - min(done) <= 1
    assert len(done) % min(2, available_cores()) == 0


def test_progress_moves_by_batch_not_by_chunk(onnx_dir: Path) -> None:
    """A worker reports each batch it finishes: before, the bar of `sbert encode --workers`
    moved once per chunk (up to 2,048 sentences), standing still for long stretches."""
    from sbert import SentenceEncoder

    seen: list[int] = []
    ref = SentenceEncoder(onnx_dir, backend="onnx").encode(SENTENCES, batch_size=2,
                                                           progress=seen.append)
    assert sum(seen) == len(SENTENCES) and max(seen) == 2  # one call per batch in-process
    done: list[int] = []
    emb = encode_parallel(str(onnx_dir), SENTENCES, workers=2, batch_size=2,
                          progress=done.append, backend="onnx")  # 1 or 2 chunks of 22
    assert sum(done) == len(SENTENCES) and max(done) == 2, done
    unwatched = encode_parallel(str(onnx_dir), SENTENCES, workers=2, batch_size=2,
                                backend="onnx")
    np.testing.assert_array_equal(emb, unwatched)  # reporting changes no result
    np.testing.assert_allclose(emb, ref, atol=1e-6)


def test_split_even_gives_each_worker_a_similar_share() -> None:
    from sbert.parallel import CHUNK_SIZE, split_even

    # before: fixed 2,048-sentence chunks, 5,000 sentences on 2 workers -> 2048+904 vs 2048
    chunks = split_even(5000, 2)
    sizes = [b - a for a, b in chunks]
    assert sizes == [1250] * 4
    assert chunks[0][0] == 0 and chunks[-1][1] == 5000
    assert all(chunks[i][1] == chunks[i + 1][0] for i in range(len(chunks) - 1))
    # 100 sentences on 4 workers: 4 chunks of 25, not one chunk of 100 for one worker
    assert [b - a for a, b in split_even(100, 4)] == [25] * 4
    for n, workers in [(1, 8), (7, 3), (10_000, 3), (4097, 1), (22, 2)]:
        sizes = [b - a for a, b in split_even(n, workers)]
        assert sum(sizes) == n and max(sizes) <= CHUNK_SIZE and min(sizes) >= 1
        assert max(sizes) - min(sizes) <= 1
        assert len(sizes) % workers == 0 or len(sizes) == n
    assert split_even(0, 4) == []
    assert [b - a for a, b in split_even(10, 2, max_chunk=0)] == [1] * 10  # at least 1


def test_encode_parallel_caps_workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sbert.parallel as parallel

    seen: dict[str, int] = {}

    class FakePool:
        def __init__(self, max_workers: int, **kwargs: object) -> None:
            seen["workers"] = max_workers
            seen["threads"] = kwargs["initargs"][1]["threads"]  # type: ignore[index]

        def submit(self, fn: object, chunk: list[str], *args: object) -> object:
            from concurrent.futures import Future

            future: Future[np.ndarray] = Future()
            future.set_result(np.zeros((len(chunk), 4), dtype=np.float32))
            return future

        def shutdown(self, **kwargs: object) -> None:
            pass

    import concurrent.futures

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", FakePool)
    monkeypatch.setattr("sbert.runtime.available_cores", lambda: 2)
    monkeypatch.setattr("sbert.runtime.available_memory", lambda: 10 * 2**30)
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1000)
    emb = parallel.encode_parallel(str(tmp_path), SENTENCES, workers=64)
    assert emb.shape == (len(SENTENCES), 4)
    assert seen == {"workers": 2, "threads": 1}  # before: 64 processes of 1 thread each


def test_empty_input(onnx_dir: Path) -> None:
    emb = encode_parallel(str(onnx_dir), [], workers=2, backend="onnx")
    assert emb.shape == (0, 32)


def test_worker_error_surfaces(onnx_dir: Path) -> None:
    # the folder has no int8 graph: every worker fails to load, the parent raises
    with pytest.raises(WorkerError, match="no int8 ONNX graph"):
        encode_parallel(str(onnx_dir), SENTENCES, workers=2, chunk_size=4, backend="onnx",
                        quantized=True)


def test_cli_workers(onnx_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sbert.cli.main import main

    path = tmp_path / "in.txt"
    path.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    outs = []
    for workers in ("1", "2", "64"):  # 64: capped to the cores, with a warning
        out = tmp_path / f"w{workers}.npy"
        main(["encode", str(path), "-o", str(out), "-m", str(onnx_dir), "--backend", "onnx",
              "--workers", workers])
        outs.append(np.load(out))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    np.testing.assert_allclose(outs[0], outs[2], atol=1e-6)
    if available_cores() < 64:
        assert f"workers=64 capped to {available_cores()}" in caplog.text
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(path), "-o", str(tmp_path / "x.npy"), "-m", str(onnx_dir),
              "--quantized", "--workers", "2"])
    assert exit_info.value.code == 2
