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
