"""Where models come from: local folders, the bundled-model table, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbert.errors import ModelNotFoundError
from sbert.models import BUNDLED, DEFAULT_MODEL, bundled_model, resolve_model


def test_a_local_folder_is_itself(tiny_model_dir: Path) -> None:
    assert resolve_model(tiny_model_dir) == tiny_model_dir
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir


def test_bundled_names_are_looked_up_in_one_table() -> None:
    assert bundled_model(DEFAULT_MODEL) is BUNDLED[DEFAULT_MODEL.lower()]
    assert bundled_model("sentence-transformers/ALL-MiniLM-L6-v2") is bundled_model(DEFAULT_MODEL)
    assert bundled_model("no-such-model") is None
    assert {m.name for m in BUNDLED.values()} >= {DEFAULT_MODEL, "all-mpnet-base-v2",
                                                 "paraphrase-MiniLM-L3-v2"}


def test_missing_paths_and_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(tmp_path / "missing")
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="a file, not a model folder"):
        resolve_model(file)


def test_an_unknown_hub_id_offline_names_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="local model folder"):
        resolve_model("someone/not-a-model-here")
