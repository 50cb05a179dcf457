"""Reading sentence-transformers folders: layouts, module types, pooling configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sbert.errors import ModelFolderError
from sbert.folder import parse_pooling_config, read_folder
from tests.conftest import write_st_files

SENTENCES = ["a man is eating food", "the dog runs in the park", "a cat", ""]


def test_reads_legacy_st_folder(tiny_model_dir: Path) -> None:
    spec = read_folder(tiny_model_dir)
    assert spec.is_sentence_transformers
    assert spec.pooling.modes == ("mean",)
    assert spec.normalize  # 2_Normalize is named in modules.json but has no folder
    assert not (tiny_model_dir / "2_Normalize").exists()
    assert spec.max_seq_length == 64
    assert spec.transformer_path == tiny_model_dir


def test_plain_hf_folder_uses_mean_pooling(
    tiny_hf_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO"):
        spec = read_folder(tiny_hf_dir)
    assert not spec.is_sentence_transformers
    assert spec.pooling.modes == ("mean",)
    assert spec.pooling.dimension == 32
    assert "mean pooling" in caplog.text


def test_old_0_transformer_layout_gives_same_embeddings(
    tiny_hf_dir: Path, tiny_encoder: object, tmp_path: Path
) -> None:
    from sbert import SentenceEncoder

    root = tmp_path / "old"
    shutil.copytree(tiny_hf_dir, root / "0_Transformer")
    write_st_files(root / "0_Transformer", {"pooling_mode_mean_tokens": True})
    # move the ST files to the root, pointing the Transformer module at 0_Transformer/
    modules = json.loads((root / "0_Transformer" / "modules.json").read_text())
    modules[0]["path"] = "0_Transformer"
    (root / "modules.json").write_text(json.dumps(modules))
    shutil.move(root / "0_Transformer" / "1_Pooling", root / "1_Pooling")
    (root / "0_Transformer" / "modules.json").unlink()
    spec = read_folder(root)
    assert spec.transformer_path == root / "0_Transformer"
    old = SentenceEncoder(root, device="cpu").encode(SENTENCES)
    new = tiny_encoder.encode(SENTENCES)  # type: ignore[attr-defined]
    np.testing.assert_allclose(old, new, atol=1e-6)


def test_unknown_module_type_is_refused_not_imported(tiny_model_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "evil"
    shutil.copytree(tiny_model_dir, root)
    modules = json.loads((root / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "", "type": "os.system"})
    (root / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFolderError, match="'os.system' is not supported"):
        read_folder(root)


def test_st6_module_type_names_are_known(tiny_model_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "st6"
    shutil.copytree(tiny_model_dir, root)
    modules = json.loads((root / "modules.json").read_text())
    modules[0]["type"] = "sentence_transformers.base.modules.transformer.Transformer"
    modules[1]["type"] = "sentence_transformers.sentence_transformer.modules.pooling.Pooling"
    modules[2]["type"] = "sentence_transformers.base.modules.normalize.Normalize"
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling" / "config.json").write_text(
        json.dumps({"embedding_dimension": 32, "pooling_mode": "cls", "include_prompt": True})
    )
    spec = read_folder(root)
    assert spec.pooling.modes == ("cls",) and spec.normalize


@pytest.mark.parametrize(
    ("cfg", "modes"),
    [
        ({"word_embedding_dimension": 8, "pooling_mode_mean_tokens": True}, ("mean",)),
        ({"word_embedding_dimension": 8, "pooling_mode_cls_token": True,
          "pooling_mode_max_tokens": True}, ("cls", "max")),
        ({"embedding_dimension": 8, "pooling_mode": ["mean_sqrt_len_tokens"]}, ("mean_sqrt_len",)),
    ],
)
def test_pooling_configs(cfg: dict[str, object], modes: tuple[str, ...]) -> None:
    assert parse_pooling_config(cfg).modes == modes


def test_unsupported_pooling_mode_lists_valid_ones() -> None:
    with pytest.raises(ModelFolderError, match="expected one of"):
        parse_pooling_config({"embedding_dimension": 8, "pooling_mode": "weightedmean"})


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match="model folder"):
        read_folder(tmp_path)


def test_missing_model_is_one_line_error() -> None:
    from sbert.errors import ModelNotFoundError
    from sbert.models import resolve_model

    with pytest.raises(ModelNotFoundError, match="local model folder"):
        resolve_model("nobody/no-such-model-xyz")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model("./no/such/folder")
