"""The GPU benchmarks (benchmarks/gpu_check.sh, encode_gpu.py, train_gpu.py) on the CPU.

No GPU is needed: the pieces they rely on are checked here (carried models, long inputs,
token-budget batches, the variable-length attention experiment), and the driver runs its
smoke mode end to end on the tiny model, so a GPU session can run it unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import has_module

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> Any:
    """benchmarks/_gpu.py, imported as the scripts import it."""
    monkeypatch.syspath_prepend(str(BENCH))
    import _gpu

    return _gpu


def test_budget_batches_cover_every_row_within_the_budget(gpu: Any) -> None:
    lengths = np.array([5, 40, 12, 12, 300, 7, 33, 1, 64, 64])
    batches = gpu.budget_batches(lengths, budget=128)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert rows[0] == 4 and len(batches[0]) == 1  # longer than the budget: alone, first
    for batch in batches:
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 128
    widths = [lengths[b].max() for b in batches]
    assert widths == sorted(widths, reverse=True)  # longest first


def test_long_texts_reach_their_lengths_the_same_way_every_time(
        gpu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sentences = [" ".join(["w"] * (3 + i % 11)) for i in range(200)]
    monkeypatch.setattr(gpu, "corpus_sentences", lambda: sentences)

    def count(texts: list[str]) -> list[int]:  # one token per word, plus 2 special
        return [len(t.split()) + 2 for t in texts]

    texts, reused = gpu.long_texts(count, 5, low=20, high=40)
    again, _ = gpu.long_texts(count, 5, low=20, high=40)
    assert texts == again and not reused
    for k, n in enumerate(count(texts)):
        target = 20 + (157 * k) % 21
        assert target <= n < target + 14  # at most one sentence past the target
    _, reused = gpu.long_texts(count, 200, low=20, high=40)
    assert reused  # 200 texts of 20+ tokens need more than the corpus


def _carry_copy(source: Path, target: Path, weights: str) -> None:
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    if weights == "fp16":
        state = load_file(str(source / "model.safetensors"))
        save_file({k: v.half() for k, v in state.items()}, str(target / "model.safetensors"))
    else:
        (target / "model.safetensors").unlink()
    (target / "CARRY.json").write_text(json.dumps({"weights": weights, "note": weights}))


def test_carried_models_become_ordinary_fp32_folders(gpu: Any, tiny_model_dir: Path,
                                                     tiny_encoder: Any, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from sbert import SentenceEncoder

    sents = ["a man plays a guitar", "the dog runs in the park"]
    _carry_copy(tiny_model_dir, tmp_path / "carried16", "fp16")
    folder, note, trained = gpu.unpack_model(tmp_path / "carried16", tmp_path / "out16")
    assert (note, trained) == ("fp16", True)
    state = load_file(str(folder / "model.safetensors"))
    assert all(v.dtype.is_floating_point and v.element_size() == 4 for v in state.values())
    emb = SentenceEncoder(folder, device="cpu", backend="torch", precision="fp32").encode(sents)
    ref = tiny_encoder.encode(sents)
    cos = (emb * ref).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.999  # fp16-rounded weights, fp32 compute

    _carry_copy(tiny_model_dir, tmp_path / "carried_random", "random")
    folder, note, trained = gpu.unpack_model(tmp_path / "carried_random", tmp_path / "outr")
    assert trained is False
    assert gpu.unpack_model(tmp_path / "carried_random", tmp_path / "outr")[0] == folder  # once
    again, _, _ = gpu.unpack_model(tmp_path / "carried_random", tmp_path / "outr2")
    emb, emb2 = (SentenceEncoder(f, device="cpu", backend="torch", precision="fp32").encode(sents)
                 for f in (folder, again))
    assert emb.shape == ref.shape and np.isfinite(emb).all()
    np.testing.assert_array_equal(emb, emb2)  # seed 0: the same random model on every run


def test_token_budget_encode_and_varlen_experiment_match_encode(
        gpu: Any, tiny_model_dir: Path, tiny_encoder: Any) -> None:
    import _varlen

    sents = ["a", "the dog runs in the park today", "red car " * 10, "a man plays", ""]
    ref = tiny_encoder.encode(sents)
    np.testing.assert_allclose(gpu.encode_by_budget(tiny_encoder, sents, 24), ref, atol=1e-5)
    enc, note = gpu.sbert_encoder(tiny_model_dir, "cpu")
    assert note == "" and _varlen.use_varlen(enc.network)
    assert isinstance(enc.network.packed, _varlen.VarlenBert)
    np.testing.assert_allclose(gpu.encode_by_budget(enc, sents, 24), ref, atol=1e-5)


def test_sbert_encoder_casts_weights(gpu: Any, tiny_model_dir: Path) -> None:
    import torch

    enc, _ = gpu.sbert_encoder(tiny_model_dir, "cpu", weights="bf16")
    assert {p.dtype for p in enc.network.parameters()} == {torch.bfloat16}
    assert enc.encode(["a dog"]).dtype == np.float32


@pytest.mark.reference
@pytest.mark.skipif(not (has_module("sentence_transformers") and has_module("datasets")),
                    reason="needs sentence-transformers and datasets")
def test_gpu_check_smoke_run_on_the_cpu(tiny_model_dir: Path, tmp_path: Path) -> None:
    results = sorted((BENCH / "results").glob("*"))
    env = {**os.environ, "SBERT_GPU_CHECK_SMOKE": "1", "OUT": str(tmp_path),
           "SBERT_GPU_CHECK_MODELS": str(tiny_model_dir)}
    proc = subprocess.run(["bash", str(BENCH / "gpu_check.sh")], env=env, capture_output=True,
                          text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "encode_gpu.py failed" not in proc.stdout
    encode = json.loads(next(tmp_path.glob("encode_gpu.*.json")).read_text())
    ids = [t["id"] for t in encode["tables"]]
    assert ids[0] == "goals" and {f"{tiny_model_dir}-short", f"{tiny_model_dir}-long"} <= set(ids)
    goals = encode["tables"][0]["rows"]
    assert [g["inputs"] for g in goals] == ["short", "long"]
    assert all(g["goal"].startswith(("met", "not met")) for g in goals)
    train = json.loads(next(tmp_path.glob("train_gpu.*.json")).read_text())
    rows = {r["library"]: r for r in train["tables"][0]["rows"]}
    assert rows["sbert"]["steps_per_s"] > 0 and rows["sentence-transformers"]["ratio"] == 1.0
    assert not encode["full"] and not train["full"]
    assert (tmp_path / "gpu_check.log").exists()
    assert sorted((BENCH / "results").glob("*")) == results  # a smoke run writes nothing there
