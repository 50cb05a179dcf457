"""A model folder is checked before use: one ModelFolderError naming the file per broken rule."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from sbert.errors import ModelFolderError
from sbert.folder import read_folder
from tests.conftest import run_cli


@pytest.fixture()
def model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny model, for one test to break."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def _refused(folder: Path, *fragments: str) -> str:
    with pytest.raises(ModelFolderError) as info:
        read_folder(folder)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# -- 1. module paths stay inside the folder -------------------------------------------------
@pytest.mark.parametrize("bad", ["../../etc", "/etc", "link"])
def test_module_path_outside_folder_is_refused(model: Path, tmp_path: Path, bad: str) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(model / "1_Pooling", outside)
    (model / "link").symlink_to(outside)
    modules = json.loads((model / "modules.json").read_text(encoding="utf-8"))
    modules[1]["path"] = bad
    (model / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    _refused(model, "modules.json", repr(bad), "outside the model folder")


def test_module_path_link_inside_folder_is_accepted(model: Path) -> None:
    (model / "pool").symlink_to(model / "1_Pooling")
    modules = json.loads((model / "modules.json").read_text(encoding="utf-8"))
    modules[1]["path"] = "pool"
    (model / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    assert read_folder(model).pooling.modes == ("mean",)


# -- 2. files are regular files, configs are small -----------------------------------------
@pytest.mark.parametrize("name", ["modules.json", "config.json", "1_Pooling/config.json",
                                  "tokenizer.json", "vocab.txt", "model.safetensors"])
def test_fifo_is_refused_without_opening(model: Path, name: str) -> None:
    (model / name).unlink()
    os.mkfifo(model / name)  # opening it would block: the test would hang
    _refused(model, name, "FIFO")


@pytest.mark.parametrize("name", ["sentence_bert_config.json", "tokenizer_config.json",
                                  "model.safetensors"])
def test_link_to_dev_zero_is_refused(model: Path, name: str) -> None:
    (model / name).unlink()
    (model / name).symlink_to("/dev/zero")  # reading it would never end
    _refused(model, name, "character device")


def test_huge_config_is_refused(model: Path) -> None:
    with (model / "config.json").open("r+b") as f:
        f.truncate(60 * 1024 * 1024)  # sparse: takes no disk
    _refused(model, "config.json", "too large")


def test_broken_link_is_refused(model: Path) -> None:
    (model / "tokenizer.json").unlink()
    (model / "tokenizer.json").symlink_to(model / "nowhere.json")
    _refused(model, "tokenizer.json", "broken link")


# -- 3. a tokenizer is present ---------------------------------------------------------------
def test_folder_without_tokenizer_is_refused(model: Path) -> None:
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        (model / name).unlink()
    _refused(model, str(model), "no tokenizer", "tokenizer.json", "vocab.txt")


def test_bpe_without_merges_is_refused(model: Path) -> None:
    for name in ("tokenizer.json", "vocab.txt"):
        (model / name).unlink()
    (model / "vocab.json").write_text("{}", encoding="utf-8")
    _refused(model, "merges.txt is missing")


def test_slow_vocab_alone_is_a_tokenizer(model: Path) -> None:
    from sbert.backends.base import load_tokenizer

    (model / "tokenizer.json").unlink()
    tokenizer = load_tokenizer(read_folder(model))
    ids = tokenizer.encode(["a man", "the dog"]).ids
    assert ids[0] != ids[1]  # words are told apart


def test_load_tokenizer_refuses_a_spec_without_tokenizer(model: Path) -> None:
    from sbert.backends.base import load_tokenizer

    spec = read_folder(model)
    for name in ("tokenizer.json", "vocab.txt"):
        (model / name).unlink()
    with pytest.raises(ModelFolderError, match="no tokenizer"):
        load_tokenizer(spec)


# -- 4. config.json sizes within bounds ------------------------------------------------------
@pytest.mark.parametrize(("key", "value"), [
    ("num_hidden_layers", 100_000), ("num_hidden_layers", 0), ("hidden_size", -32),
    ("hidden_size", 32.0), ("num_attention_heads", "4"), ("intermediate_size", 10**9),
    ("max_position_embeddings", None), ("vocab_size", 10**8), ("vocab_size", True),
])
def test_config_size_out_of_bounds_is_refused(model: Path, key: str, value: object) -> None:
    _edit_json(model / "config.json", **{key: value})
    _refused(model, "config.json", key, "positive integer")


def test_hidden_size_not_multiple_of_heads_is_refused(model: Path) -> None:
    _edit_json(model / "config.json", num_attention_heads=5)
    _refused(model, "config.json", "not a multiple of num_attention_heads 5")


@pytest.mark.parametrize(("key", "value"), [("num_hidden_layers", 100_000),
                                            ("hidden_size", [32])])
def test_plain_hf_config_is_checked(tiny_hf_dir: Path, tmp_path: Path, key: str,
                                    value: object) -> None:
    folder = Path(shutil.copytree(tiny_hf_dir, tmp_path / "hf"))
    _edit_json(folder / "config.json", **{key: value})
    _refused(folder, "config.json", key, "positive integer")


def test_roberta_null_pad_token_id_is_not_a_traceback(model: Path) -> None:
    _edit_json(model / "config.json", model_type="roberta", pad_token_id=None)
    assert read_folder(model).max_positions == 126


# -- 5. dimensions chain: transformer -> pooling -> Dense ------------------------------------
def test_pooling_dimension_not_hidden_size_is_refused(model: Path) -> None:
    _edit_json(model / "1_Pooling" / "config.json", word_embedding_dimension=48)
    _refused(model, str(model / "1_Pooling" / "config.json"), "word_embedding_dimension 48",
             "hidden_size 32")


def _add_dense(model: Path, in_features: object, out_features: object = 16) -> Path:
    modules = json.loads((model / "modules.json").read_text(encoding="utf-8"))
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense",
                       "type": "sentence_transformers.models.Dense"})
    modules[3]["idx"] = 3
    (model / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (model / "2_Dense").mkdir()
    config = model / "2_Dense" / "config.json"
    config.write_text(json.dumps({"in_features": in_features, "out_features": out_features}),
                      encoding="utf-8")
    return config


def test_dense_in_features_not_pooled_size_is_refused(model: Path) -> None:
    config = _add_dense(model, in_features=64)
    _refused(model, str(config), "in_features 64", "pooling output", "32")


def test_dense_matching_pooled_size_is_accepted(model: Path) -> None:
    _add_dense(model, in_features=32)
    assert read_folder(model).dense[0].out_features == 16


@pytest.mark.parametrize(("in_features", "out_features"), [(None, 16), (32, "16"), (32, 0)])
def test_dense_features_not_positive_ints_are_refused(
    model: Path, in_features: object, out_features: object
) -> None:
    config = _add_dense(model, in_features, out_features)
    _refused(model, str(config), "must be a positive integer")


@pytest.mark.parametrize("value", ["384", -1, 1.5])
def test_pooling_dimension_not_an_int_is_refused(model: Path, value: object) -> None:
    _edit_json(model / "1_Pooling" / "config.json", word_embedding_dimension=value)
    _refused(model, str(model / "1_Pooling" / "config.json"), "word_embedding_dimension",
             "positive integer")


def test_pooling_mode_error_names_the_file(model: Path) -> None:
    _edit_json(model / "1_Pooling" / "config.json", pooling_mode_mean_tokens=False)
    _refused(model, str(model / "1_Pooling" / "config.json"), "selects no pooling mode")


def test_shard_outside_folder_is_refused(model: Path) -> None:
    index = {"metadata": {}, "weight_map": {"a.weight": "../elsewhere.safetensors"}}
    (model / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    _refused(model, "model.safetensors.index.json", "'../elsewhere.safetensors'", "outside")


def test_hub_snapshot_links_to_blobs_are_accepted(model: Path, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"  # huggingface_hub links every snapshot file into its blob store
    blobs.mkdir()
    shutil.move(model / "model.safetensors", blobs / "abc123")
    (model / "model-00001-of-00001.safetensors").symlink_to(blobs / "abc123")
    index = {"metadata": {}, "weight_map": {"a.weight": "model-00001-of-00001.safetensors"}}
    (blobs / "def456").write_text(json.dumps(index), encoding="utf-8")
    (model / "model.safetensors.index.json").symlink_to(blobs / "def456")
    assert read_folder(model).has_torch_weights


# -- values read_folder used to pass to int() ------------------------------------------------
def test_module_idx_not_an_int_is_refused(model: Path) -> None:
    modules = json.loads((model / "modules.json").read_text(encoding="utf-8"))
    modules[1]["idx"] = "one"
    (model / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    _refused(model, "modules.json", "idx must be an integer")


@pytest.mark.parametrize("value", ["64", -5, 10**9])
def test_max_seq_length_not_a_positive_int_is_refused(model: Path, value: object) -> None:
    _edit_json(model / "sentence_bert_config.json", max_seq_length=value)
    _refused(model, "sentence_bert_config.json", "max_seq_length", "positive integer")


# -- tokenizer files that cannot be parsed ---------------------------------------------------
@pytest.mark.parametrize(("name", "text", "words"), [
    ("tokenizer.json", '{"not": "a tokenizer"}', ("tokenizer.json", "not a tokenizer file")),
    ("tokenizer_config.json", "{oops", ("tokenizer_config.json", "not valid JSON")),
    ("tokenizer_config.json", "[1, 2]", ("tokenizer_config.json", "JSON object")),
])
def test_unreadable_tokenizer_file_is_one_error(
    model: Path, name: str, text: str, words: tuple[str, ...]
) -> None:
    from sbert.backends.base import load_tokenizer
    from sbert.errors import SbertError

    (model / name).write_text(text, encoding="utf-8")
    with pytest.raises(SbertError) as info:
        load_tokenizer(read_folder(model))
    assert all(word in str(info.value) for word in words), str(info.value)


# -- the CLI: one line, exit 2 ----------------------------------------------------------------
def _fifo_config(model: Path) -> None:
    (model / "config.json").unlink()
    os.mkfifo(model / "config.json")


def _no_tokenizer(model: Path) -> None:
    for name in ("tokenizer.json", "vocab.txt"):
        (model / name).unlink()


def _escaping_module(model: Path) -> None:
    modules = json.loads((model / "modules.json").read_text(encoding="utf-8"))
    modules[1]["path"] = "../../etc"
    (model / "modules.json").write_text(json.dumps(modules), encoding="utf-8")


@pytest.mark.parametrize(("breaks", "words"), [
    (_fifo_config, ("config.json", "FIFO")),
    (_no_tokenizer, ("no tokenizer",)),
    (lambda m: (m / "tokenizer.json").write_text("{}", encoding="utf-8"),
     ("tokenizer.json", "not a tokenizer file")),
    (_escaping_module, ("modules.json", "outside the model folder")),
    (lambda m: _edit_json(m / "config.json", num_hidden_layers=100_000),
     ("config.json", "num_hidden_layers")),
    (lambda m: _edit_json(m / "1_Pooling" / "config.json", word_embedding_dimension=48),
     ("1_Pooling", "hidden_size 32")),
])
def test_cli_encode_reports_a_bad_folder_in_one_line(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], breaks: Any,
    words: tuple[str, ...],
) -> None:
    breaks(model)
    text = tmp_path / "s.txt"
    text.write_text("a man is eating food\n", encoding="utf-8")
    code, _, err = run_cli(["encode", str(text), "-o", str(tmp_path / "e.npy"), "-m", str(model),
                            "--device", "cpu"], capsys)
    assert code == 2, err
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert all(word in err for word in words), err
