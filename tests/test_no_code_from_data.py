"""No code runs from data: a pickle payload planted in any weight file sbert loads never runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


class _Payload:
    """Unpickling this runs code: it creates ``self.marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_a_planted_transformer_bin_runs_no_code(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sbert import SentenceEncoder

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "payload-ran"
    torch.save({"embeddings.word_embeddings.weight": _Payload(marker)},
               folder / "pytorch_model.bin")
    with pytest.raises(Exception):  # noqa: B017 - refused in any way, as long as nothing runs
        SentenceEncoder(folder, device="cpu")
    assert not marker.exists()


def test_a_planted_dense_bin_runs_no_code(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sbert import SentenceEncoder

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense",
                       "type": "sentence_transformers.models.Dense"})
    for i, module in enumerate(modules):
        module["idx"] = i
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "2_Dense").mkdir()
    (folder / "2_Dense" / "config.json").write_text(json.dumps(
        {"in_features": 32, "out_features": 8, "bias": True,
         "activation_function": "torch.nn.modules.activation.Tanh"}))
    marker = tmp_path / "payload-ran"
    torch.save({"linear.weight": _Payload(marker)}, folder / "2_Dense" / "pytorch_model.bin")
    with pytest.raises(Exception):  # noqa: B017 - refused in any way, as long as nothing runs
        SentenceEncoder(folder, device="cpu")
    assert not marker.exists()


def test_planted_index_and_export_files_run_no_code(tiny_encoder, tmp_path: Path) -> None:
    import pickle

    from sbert import SentenceEncoder
    from sbert.search.index import Index

    marker = tmp_path / "payload-ran"
    payload = pickle.dumps(_Payload(marker))
    index_dir = tmp_path / "index"
    with Index.create(index_dir, model=tiny_encoder.name, dimension=tiny_encoder.dimension):
        pass
    for vectors in index_dir.glob("vectors-*.usearch"):
        vectors.write_bytes(payload)  # damaged vectors: searched from SQLite, never unpickled
    with Index.open(index_dir) as index:
        assert index.search(tiny_encoder.encode(["a man eats"]), k=1) == [[]]
    (index_dir / "index.sqlite").write_bytes(payload)
    with pytest.raises(Exception):  # noqa: B017 - refused in any way, as long as nothing runs
        Index.open(index_dir)
    graph_dir = tmp_path / "exported"
    tiny_encoder.export_onnx(graph_dir)
    (graph_dir / "onnx" / "model.onnx").write_bytes(payload)
    with pytest.raises(Exception):  # noqa: B017
        SentenceEncoder(graph_dir, backend="onnx")
    assert not marker.exists()


def test_undecodable_arguments_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable.encode(), b"-m", b"sbert", b"similarity", b"\xff\xfe",
                          b"ok"], capture_output=True, cwd=tmp_path)
    err = out.stderr.decode("utf-8", "replace").strip()
    assert out.returncode == 2
    assert err.count("\n") == 0 and err.startswith("Error: command-line argument 2")
