"""SentenceEncoder.encode: shapes, order, batching, truncation, errors, save."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sbert import SentenceEncoder

SENTENCES = [
    "a man is eating food",
    "the dog runs",
    "a woman is playing the guitar in the park with a child today",
    "",
    "cat",
]


def test_encode_shape_and_dtype(tiny_encoder: SentenceEncoder) -> None:
    emb = tiny_encoder.encode(SENTENCES)
    assert emb.shape == (5, 32) and emb.dtype == np.float32
    assert np.isfinite(emb).all()


def test_always_2d(tiny_encoder: SentenceEncoder) -> None:
    assert tiny_encoder.encode([]).shape == (0, 32)
    assert tiny_encoder.encode("a single sentence").shape == (1, 32)


def test_order_independent_of_batching(tiny_encoder: SentenceEncoder) -> None:
    full = tiny_encoder.encode(SENTENCES, batch_size=32)
    one_by_one = np.vstack([tiny_encoder.encode([s]) for s in SENTENCES])
    small = tiny_encoder.encode(SENTENCES, batch_size=2)
    np.testing.assert_allclose(full, one_by_one, atol=1e-5)
    np.testing.assert_allclose(full, small, atol=1e-5)


def test_normalize_and_torch_output(tiny_encoder: SentenceEncoder) -> None:
    import torch

    emb = tiny_encoder.encode(SENTENCES, normalize=True, convert_to="torch")
    assert isinstance(emb, torch.Tensor) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=1), torch.ones(5), atol=1e-5)


def test_non_string_names_its_index(tiny_encoder: SentenceEncoder) -> None:
    with pytest.raises(TypeError, match="sentence 1 is int"):
        tiny_encoder.encode(["fine", 3])  # type: ignore[list-item]


def test_bad_arguments(tiny_encoder: SentenceEncoder) -> None:
    with pytest.raises(ValueError, match="convert_to"):
        tiny_encoder.encode(["x"], convert_to="list")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        tiny_encoder.encode(["x"], batch_size=0)
    with pytest.raises(ValueError, match="unknown backend"):
        SentenceEncoder("x", backend="tensorflow")


def test_truncation_is_counted_and_warned(tiny_model_dir: Path) -> None:
    enc = SentenceEncoder(tiny_model_dir, device="cpu", max_seq_length=8)
    long = "a man is eating food in the park with a dog and a cat"
    with pytest.warns(UserWarning, match="1 of 3 inputs"):
        emb = enc.encode([long, "a cat", "the dog"])
    assert enc.last_truncated == 1 and enc.total_truncated == 1
    # truncated text equals its first 8 tokens ([CLS] + 6 words + [SEP])
    np.testing.assert_allclose(emb[0], enc.encode(["a man is eating food in"])[0], atol=1e-5)
    enc.encode(["a cat"])
    assert enc.last_truncated == 0 and enc.total_truncated == 1


def test_tokenizing_in_chunks_changes_nothing(tiny_model_dir: Path) -> None:
    from sbert import tokenization

    enc = SentenceEncoder(tiny_model_dir, device="cpu", max_seq_length=8)
    texts = [f"the dog {i} runs " + "far " * (i % 9) for i in range(1100)] + [""]
    one = enc.tokenizer.encode(texts, threads=1)
    three = enc.tokenizer.encode(texts, threads=3)
    assert 1100 // tokenization.PARALLEL_CHUNK_MIN == 2  # so 3 threads make 2 chunks
    assert three.ids == one.ids and three.type_ids == one.type_ids
    assert three.truncated == one.truncated > 0
    held = enc.tokenizer.encode(texts, hold_gil=True)  # text by text, as the server's loop does
    assert held.ids == one.ids and held.type_ids == one.type_ids
    assert held.truncated_rows == one.truncated_rows


def test_progress_bar(tiny_encoder: SentenceEncoder, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_encoder.encode(SENTENCES, show_progress=True)
    assert "encode" in capsys.readouterr().err
    tiny_encoder.encode(SENTENCES)  # short input: no bar by default
    assert "encode" not in capsys.readouterr().err


def test_plain_hf_folder_encodes(tiny_hf_dir: Path) -> None:
    enc = SentenceEncoder(tiny_hf_dir, device="cpu")
    assert enc.encode(SENTENCES).shape == (5, 32)
    assert not enc.spec.normalize


def test_save_roundtrip(tiny_encoder: SentenceEncoder, tmp_path: Path) -> None:
    out = tiny_encoder.save(tmp_path / "saved")
    modules = json.loads((out / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    assert kinds == ["Transformer", "Pooling", "Normalize"]
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 64
    again = SentenceEncoder(out, device="cpu")
    np.testing.assert_allclose(again.encode(SENTENCES), tiny_encoder.encode(SENTENCES), atol=1e-6)


def test_torch_threads_change_only_when_asked(tiny_model_dir: Path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        enc = SentenceEncoder(tiny_model_dir, device="cpu")
        assert torch.get_num_threads() == before and enc.backend.threads == before
        SentenceEncoder(tiny_model_dir, device="cpu", threads=1)
        assert torch.get_num_threads() == 1  # asked for: torch's pool is process-wide
    finally:
        torch.set_num_threads(before)


def test_loading_leaves_the_folder_spec_as_read(tiny_hf_dir: Path) -> None:
    enc = SentenceEncoder(tiny_hf_dir, device="cpu")  # no modules.json: hidden size from config
    assert enc.spec.pooling.dimension == 32
    enc.set_pooling("cls", head=False)
    assert enc.spec.pooling.modes == ("mean",)  # the network has its own copy
    assert "pooling=cls" in repr(enc)


def test_import_sbert_is_light() -> None:
    code = (
        "import sys, sbert, sbert.folder, sbert.data.text, sbert.cli.main, sbert.cli.common, "
        "sbert.search, sbert.backends, sbert.models, sbert.errors; "
        "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'onnxruntime') "
        "if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_default_model_is_bundled(minilm: SentenceEncoder) -> None:
    assert minilm.dimension == 384 and minilm.max_seq_length == 256
    emb = minilm.encode(["A man is eating food.", "A man is eating a piece of bread.", "A violin."],
                        normalize=True)
    sims = emb @ emb.T
    assert sims[0, 1] > 0.7 > sims[0, 2]


def test_save_writes_files_others_can_read_and_no_progress_bar(
        tiny_encoder, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """transformers 5 writes model.safetensors as 0600 and draws a bar on every save: a
    shared model folder was unreadable to other users, and `sbert train -q` was not quiet."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    root = tiny_encoder.save(tmp_path / "saved")
    weights = root / "model.safetensors"
    assert weights.stat().st_mode & 0o777 == 0o666 & ~mask
    assert "Writing model shards" not in capfd.readouterr().err


@pytest.mark.parametrize("bad", [None, b"bytes", {"a": 1}])
def test_encode_refuses_what_is_not_text(tiny_encoder, bad: object) -> None:
    """list() would have made numbers of bytes, or a dict's keys, into "sentences"."""
    with pytest.raises(TypeError, match="must be a string or a sequence of strings"):
        tiny_encoder.encode(bad)


def test_similarity_of_two_dimensions_is_a_usage_error() -> None:
    from sbert.errors import UsageError
    from sbert.similarity import MATRIX_FNS

    for fn in MATRIX_FNS.values():
        with pytest.raises(UsageError, match="embedding dimensions differ: 3 vs 4"):
            fn(np.ones((2, 3)), np.ones((2, 4)))


def test_mining_takes_an_array_of_strings(tiny_encoder) -> None:
    from sbert.search.mining import paraphrase_mining

    texts = ["a man eats food", "a man is eating food", "the car is red"]
    as_list = paraphrase_mining(texts, encoder=tiny_encoder)
    assert paraphrase_mining(np.array(texts), encoder=tiny_encoder) == as_list
