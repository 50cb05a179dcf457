"""The thread policy bounds what a caller asks for: workers, threads."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sbert import runtime
from sbert.runtime import cap_workers, resolve_threads

GiB = 2**30


@pytest.fixture()
def machine(monkeypatch: pytest.MonkeyPatch) -> dict[str, int | None]:
    """A fake machine: set ``cores`` and ``memory`` (bytes, None = unknown)."""
    spec: dict[str, int | None] = {"cores": 2, "memory": 16 * GiB}
    monkeypatch.setattr(runtime, "available_cores", lambda: spec["cores"])
    monkeypatch.setattr(runtime, "available_memory", lambda: spec["memory"])
    return spec


def test_cap_workers_by_cores(machine: dict[str, int | None],
                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sbert.runtime"):
        assert cap_workers(64) == 2  # before: 64 processes on 2 cores
    assert "workers=64 capped to 2: 2 cores available" in caplog.text
    caplog.clear()
    assert cap_workers(2) == 2 and cap_workers(1) == 1
    assert not caplog.records  # no cap, no warning


def test_cap_workers_by_memory(machine: dict[str, int | None],
                               caplog: pytest.LogCaptureFixture) -> None:
    machine["cores"] = 64
    with caplog.at_level(logging.WARNING, logger="sbert.runtime"):
        assert cap_workers(32, bytes_per_worker=3 * GiB) == 5  # 16 GiB // 3 GiB
    assert "capped to 5" in caplog.text and "memory" in caplog.text
    machine["memory"] = GiB // 2
    assert cap_workers(8, bytes_per_worker=3 * GiB) == 1  # one worker is always allowed
    machine["memory"] = None  # /proc/meminfo unreadable: no memory cap
    assert cap_workers(32, bytes_per_worker=3 * GiB) == 32
    machine["cores"] = 2
    assert cap_workers(32, bytes_per_worker=None) == 2
    with pytest.raises(ValueError, match="workers"):
        cap_workers(0)


def test_available_memory_reads_meminfo() -> None:
    memory = runtime.available_memory()
    if Path("/proc/meminfo").exists():
        assert memory is not None and memory > 0
    else:
        assert memory is None


def test_resolve_threads_clamps_absurd_counts(machine: dict[str, int | None],
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sbert.runtime"):
        assert resolve_threads(1000) == 8  # before: 1000 threads on 2 cores
    assert "threads=1000 clamped to 8" in caplog.text
    caplog.clear()
    assert resolve_threads(8) == 8 and resolve_threads(3) == 3 and resolve_threads(None) == 2
    assert not caplog.records


def test_encode_clamps_absurd_batch_size(tiny_model_dir: Path) -> None:
    from sbert import SentenceEncoder

    encoder = SentenceEncoder(tiny_model_dir, device="cpu")
    ref = encoder.encode(["a dog", "a cat"])
    with pytest.warns(UserWarning, match="batch_size=10000000 clamped to 65536"):
        emb = encoder.encode(["a dog", "a cat"], batch_size=10_000_000)
    assert emb.shape == ref.shape
