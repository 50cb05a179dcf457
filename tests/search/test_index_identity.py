"""The index knows its model by content: a digest of weights, tokenizer and head, not a path."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import build_tiny_bert, build_wordpiece_tokenizer, has_module, write_st_files

pytestmark = pytest.mark.skipif(not has_module("usearch"), reason="needs usearch (sbert[search])")
ROOT = Path(__file__).resolve().parents[2]
SENTENCES = ["a man is eating food", "the dog runs in the park", "a red car"]


def encoder(path: Path, **kwargs):
    from sbert import SentenceEncoder

    return SentenceEncoder(path, device="cpu", **kwargs)


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny BERT (other random weights), also in a folder named ``model``."""
    path = tmp_path_factory.mktemp("other") / "model"
    build_wordpiece_tokenizer(path)
    build_tiny_bert(path, len((path / "vocab.txt").read_text(encoding="utf-8").splitlines()),
                    seed=1)
    write_st_files(path, {"pooling_mode_mean_tokens": True}, normalize=True)
    return path


def copy_of(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_two_models_named_model_are_refused_a_copy_is_accepted(
        tiny_model_dir: Path, tiny_encoder, other_model_dir: Path,
        tmp_path: Path) -> None:
    from sbert.errors import IndexFailure
    from sbert.search.index import Index, ModelIdentity, model_id, model_identity

    other = encoder(other_model_dir)
    assert model_id(other) == model_id(tiny_encoder) == "model"
    ours, theirs = model_identity(tiny_encoder), model_identity(other)
    assert ours.name == theirs.name and ours.digest != theirs.digest
    with Index.create(tmp_path / "ix", model=ours, dimension=tiny_encoder.dimension) as index:
        index.add_texts(SENTENCES, tiny_encoder)
        for attempt in (lambda: index.add_texts(["a cat plays"], other),
                        lambda: index.search_texts(["a cat"], other),
                        lambda: index.search(other.encode(["a cat"]), model=theirs)):
            with pytest.raises(IndexFailure, match="different model of the same name") as err:
                attempt()
            assert ours.digest[:12] in str(err.value) and theirs.digest[:12] in str(err.value)
        assert len(index) == 3
    copy = encoder(copy_of(tiny_model_dir, tmp_path / "elsewhere" / "copy"))
    assert model_identity(copy) == ModelIdentity("copy", ours.digest)
    with Index.open(tmp_path / "ix") as index:
        index.add_texts(["a cat plays"], copy)  # the same model from another path and name
        assert index.search_texts(["a cat plays"], copy, k=1)[0][0].text == "a cat plays"


def test_what_the_digest_covers(tiny_model_dir: Path, tiny_encoder,
                                tmp_path: Path) -> None:
    from sbert.search.index import model_identity

    base = model_identity(tiny_encoder).digest
    assert model_identity(encoder(tiny_model_dir, max_seq_length=16)).digest == base

    # the same tensors in a pytorch_model.bin: the same model
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    as_bin = copy_of(tiny_model_dir, tmp_path / "bin")
    torch.save(load_file(str(as_bin / "model.safetensors")), as_bin / "pytorch_model.bin")
    (as_bin / "model.safetensors").unlink()
    assert model_identity(encoder(as_bin)).digest == base

    def changed(name: str, edit) -> str:
        path = copy_of(tiny_model_dir, tmp_path / name)
        edit(path)
        return model_identity(encoder(path)).digest

    def set_json(file: str, **values: object):
        def edit(path: Path) -> None:
            cfg = json.loads((path / file).read_text(encoding="utf-8"))
            (path / file).write_text(json.dumps({**cfg, **values}), encoding="utf-8")
        return edit

    def drop_normalize(path: Path) -> None:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        (path / "modules.json").write_text(json.dumps(modules[:2]), encoding="utf-8")

    def other_vocab(path: Path) -> None:
        tok = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = tok["model"]["vocab"]
        vocab["dog"], vocab["cat"] = vocab["cat"], vocab["dog"]
        (path / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")

    digests = {
        "lower": changed("lower", set_json("sentence_bert_config.json", do_lower_case=True)),
        "cls": changed("cls", set_json("1_Pooling/config.json", pooling_mode_cls_token=True,
                                       pooling_mode_mean_tokens=False)),
        "no-normalize": changed("no-normalize", drop_normalize),
        "vocab": changed("vocab", other_vocab),
    }
    assert base not in digests.values() and len(set(digests.values())) == len(digests)
    live = encoder(tiny_model_dir)
    live.set_pooling("cls")  # what the encoder runs, not only what its folder says
    assert model_identity(live).digest == digests["cls"]


def test_weights_are_hashed_once_per_file_version(tiny_encoder, tmp_path: Path,
                                                  tiny_model_dir: Path) -> None:
    from sbert.search.index import identity, model_identity

    path = copy_of(tiny_model_dir, tmp_path / "m")
    enc = encoder(path)
    identity._tensor_digests.cache_clear()
    first = model_identity(enc)
    assert identity._tensor_digests.cache_info().misses == 1
    assert model_identity(enc) == first and identity._tensor_digests.cache_info().misses == 1
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # a new version of the file, same content
    assert model_identity(enc) == first and identity._tensor_digests.cache_info().misses == 2


ONNX_CHILD = """
import json, sys
from sbert import SentenceEncoder
from sbert.search.index import model_identity

path = sys.argv[1]
torch = SentenceEncoder(path, device="cpu")
fp32 = SentenceEncoder(path, backend="onnx")  # exported once into SBERT_CACHE: weights re-saved
int8 = SentenceEncoder(path, backend="onnx", quantized=True)
print(json.dumps({"torch": model_identity(torch).digest, "fp32": model_identity(fp32).digest,
                  "int8": model_identity(int8).digest, "cache": str(fp32.path)}))
"""


@pytest.mark.skipif(not has_module("onnxruntime"), reason="needs onnxruntime")
def test_onnx_fp32_shares_the_torch_identity_int8_has_its_own(
        tiny_model_dir: Path, tiny_encoder, tmp_path: Path) -> None:
    from sbert.errors import IndexFailure
    from sbert.search.index import Index, ModelIdentity, model_identity

    # in a fresh process: in one where usearch has run (the tests before this one), torch's
    # ONNX trace hangs (usearch 2.26, ort 1.32)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SBERT_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", ONNX_CHILD, str(tiny_model_dir)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    digests = json.loads(proc.stdout.splitlines()[-1])
    assert Path(digests["cache"]).parent == tmp_path / "onnx"
    assert digests["torch"] == digests["fp32"] == model_identity(tiny_encoder).digest
    assert digests["int8"] != digests["torch"]
    with Index.create(tmp_path / "ix", model=model_identity(tiny_encoder),
                      dimension=32) as index:
        emb = tiny_encoder.encode(SENTENCES)
        index.add(SENTENCES, emb, model=ModelIdentity("model", digests["fp32"]))
        with pytest.raises(IndexFailure, match="int8"):
            index.search(emb[:1], model=ModelIdentity("model", digests["int8"]))


def test_old_format_index_is_checked_by_name_with_a_warning(
        tiny_encoder, other_model_dir: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    from sbert.errors import IndexFailure
    from sbert.search.index import Index

    Index.create(tmp_path / "ix", model="model", dimension=32).close()
    db = sqlite3.connect(tmp_path / "ix" / "index.sqlite")
    with db:  # what sbert wrote before model digests: format 1, the name only
        db.execute("UPDATE meta SET value = '1' WHERE key = 'format'")
        db.execute("DELETE FROM meta WHERE key = 'model_digest'")
    db.close()
    with caplog.at_level(logging.WARNING, logger="sbert.search.index.store"), \
            Index.open(tmp_path / "ix") as index:
        assert "checked by the model's name" in caplog.text
        assert index.format == 1 and index.model_digest is None
        index.add_texts(SENTENCES, tiny_encoder)
        index.add_texts(["a cat plays"], encoder(other_model_dir))  # same name: not told apart
        with pytest.raises(IndexFailure, match="use the index's model, model"):
            index.search(np.zeros((1, 32), dtype=np.float32), model="other")
        assert index.info()["model_digest"].startswith("none")

    db = sqlite3.connect(tmp_path / "ix" / "index.sqlite")
    with db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    db.close()
    with pytest.raises(IndexFailure, match="upgrade sbert"):
        Index.open(tmp_path / "ix")
