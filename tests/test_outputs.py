"""Outputs are written atomically: a failure midway leaves nothing partial, and any previous
output as it was (``sbert encode -o``, ``sbert mine -o``, ``sbert cluster``)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sbert.cli.cluster import plot_map, write_clusters
from sbert.cli.mine import write_pairs
from sbert.data.text import write_embeddings
from tests.conftest import has_module

PREVIOUS = b"the previous output"


def _previous(path: Path) -> Path:
    path.write_bytes(PREVIOUS)
    return path


def _only_previous(path: Path) -> None:
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert path.read_bytes() == PREVIOUS


def _disk_full(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_npy_disk_full_leaves_the_previous_output(tmp_path: Path, monkeypatch) -> None:
    out = _previous(tmp_path / "emb.npy")

    def half_save(f: Any, arr: np.ndarray) -> None:
        f.write(b"\x93NUMPY" + b"\0" * 5_000)  # a part of the file, then the disk is full
        _disk_full()

    monkeypatch.setattr(np, "save", half_save)
    with pytest.raises(OSError, match="No space left"):
        write_embeddings(out, np.ones((4, 8), np.float32), ["a"] * 4)
    _only_previous(out)


def test_jsonl_failure_midway_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "emb.jsonl"
    with pytest.raises(ValueError):  # one sentence more than embeddings: fails after 4 rows
        write_embeddings(out, np.ones((4, 8), np.float32), ["a"] * 5)
    assert list(tmp_path.iterdir()) == []
    out = _previous(out)
    with pytest.raises(ValueError):
        write_embeddings(out, np.ones((4, 8), np.float32), ["a"] * 5)
    _only_previous(out)


@pytest.mark.skipif(not has_module("pyarrow"), reason="needs pyarrow")
def test_parquet_failure_leaves_the_previous_output(tmp_path: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    out = _previous(tmp_path / "emb.parquet")

    def half_write(table: Any, where: str) -> None:
        Path(where).write_bytes(b"PAR1" + b"\0" * 1000)
        _disk_full()

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError):
        write_embeddings(out, np.ones((4, 8), np.float32), ["a"] * 4)
    _only_previous(out)


def test_embeddings_replace_the_previous_output(tmp_path: Path) -> None:
    out = _previous(tmp_path / "emb.npy")
    write_embeddings(out, np.eye(3, dtype=np.float32), ["a", "b", "c"])
    np.testing.assert_array_equal(np.load(out), np.eye(3, dtype=np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["emb.npy"]


@pytest.mark.parametrize("name", ["pairs.tsv", "pairs.jsonl"])
def test_mine_output_failure_midway_leaves_the_previous_output(tmp_path: Path,
                                                                 name: str) -> None:
    out = _previous(tmp_path / name)
    pairs = [(0.9, 0, 1), (0.8, 1, 2), (0.7, 2, 9)]  # the last pair fails after two rows
    with pytest.raises(IndexError):
        write_pairs(out, pairs, ["a", "b", "c"])
    _only_previous(out)
    write_pairs(out, pairs[:2], ["a", "b", "c"])
    assert out.read_bytes() != PREVIOUS and [p.name for p in tmp_path.iterdir()] == [name]


def test_cluster_output_failure_midway_leaves_the_previous_output(tmp_path: Path) -> None:
    out = _previous(tmp_path / "c.clusters.jsonl")
    groups = [[0, 1], [2, 9]]  # the second cluster fails after the first is written
    with pytest.raises(IndexError):
        write_clusters(out, groups, np.array([0, 0, 1]), ["a", "b", "c"])
    _only_previous(out)


@pytest.mark.skipif(not has_module("matplotlib"), reason="needs matplotlib")
def test_cluster_map_failure_leaves_the_previous_map(tmp_path: Path, monkeypatch) -> None:
    from matplotlib.figure import Figure

    out = _previous(tmp_path / "c.clusters.png")

    def half_savefig(self: Any, fname: Any, **kwargs: Any) -> None:
        Path(fname).write_bytes(b"\x89PNG" + b"\0" * 1000)
        _disk_full()

    emb = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    labels = np.array([0, 0, 0, 1, 1, -1])
    args = (emb, labels, list("abcdef"), [[0, 1, 2], [3, 4]], "t")
    with monkeypatch.context() as m:
        m.setattr(Figure, "savefig", half_savefig)
        with pytest.raises(OSError):
            plot_map(out, *args)
    _only_previous(out)
    plot_map(out, *args)  # the real one: a PNG in place of the previous file, nothing else
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_model_save_into_a_new_folder_leaves_nothing_on_failure(tiny_encoder, tmp_path: Path,
                                                                   monkeypatch) -> None:
    import sbert.backends.torch.backend as backend

    out = tmp_path / "models" / "saved"
    with monkeypatch.context() as m:
        m.setattr(backend, "copy_tokenizer_files", _disk_full)  # fails after the weights
        with pytest.raises(OSError, match="No space left"):
            tiny_encoder.save(out)
    assert list((tmp_path / "models").iterdir()) == []  # no half-written model, no temp folder
    tiny_encoder.save(out)
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["saved"]
    from sbert import SentenceEncoder

    texts = ["a man plays the guitar"]
    np.testing.assert_allclose(SentenceEncoder(out, device="cpu").encode(texts),
                               tiny_encoder.encode(texts), atol=1e-6)
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    tiny_encoder.save(out)  # an existing folder is written in place; other files stay
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_model_save_into_an_existing_folder_keeps_the_old_model_on_failure(
        tiny_encoder, tmp_path: Path, monkeypatch) -> None:
    import sbert.backends.torch.backend as backend

    out = tmp_path / "run"
    tiny_encoder.save(out)
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with monkeypatch.context() as m:
        m.setattr(backend, "copy_tokenizer_files", _disk_full)  # fails after the weights
        with pytest.raises(OSError, match="No space left"):
            tiny_encoder.save(out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the old model is whole, not half-replaced
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder left
