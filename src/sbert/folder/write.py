"""Write the JSON files of a sentence-transformers model folder (the weights are the backend's)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbert.errors import UsageError
from sbert.files import read_json, write_json
from sbert.folder.read import ACTIVATION_PATHS, LEGACY_POOLING_KEYS, ST_TOP_CONFIG
from sbert.folder.spec import (
    MODEL_TYPE,
    POOLING_MODES,
    TOKENIZER_FILES,
    WRITE_TYPES,
    DenseConfig,
    FolderSpec,
    PoolingConfig,
    settings_problem,
)


@dataclass
class FolderSettings:
    """The folder-level settings a saved model keeps (``config_sentence_transformers.json``).

    Checked when made: an unknown similarity function, or a default prompt that is not one of
    the prompts, raises :class:`~sbert.errors.UsageError` before anything is written.
    """

    max_seq_length: int | None = None
    do_lower_case: bool = False
    similarity_fn_name: str = "cosine"
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None

    def __post_init__(self) -> None:
        problem = settings_problem(self.similarity_fn_name, self.prompts,
                                   self.default_prompt_name)
        if problem:
            raise UsageError(f"cannot save the model: {problem}")

    @classmethod
    def from_spec(cls, spec: FolderSpec) -> FolderSettings:
        """The settings a folder was read with."""
        return cls(spec.max_seq_length, spec.do_lower_case, spec.similarity_fn_name,
                   dict(spec.prompts), spec.default_prompt_name)


def pooling_config_dict(pooling: PoolingConfig) -> dict[str, Any]:
    """The legacy ``1_Pooling/config.json`` that every sentence-transformers release reads."""
    out: dict[str, Any] = {"word_embedding_dimension": pooling.dimension}
    for key, mode in LEGACY_POOLING_KEYS.items():
        if mode in POOLING_MODES:
            out[key] = mode in pooling.modes
    out["include_prompt"] = pooling.include_prompt
    return out


def write_folder_files(
    root: Path,
    pooling: PoolingConfig,
    dense: list[DenseConfig],
    normalize: bool,
    settings: FolderSettings,
    versions: dict[str, str],
) -> list[Path]:
    """Write the JSON files of a sentence-transformers folder (not the weights).

    Returns:
        The folders of the Dense modules, in order, for the caller to put weights in.
    """
    root.mkdir(parents=True, exist_ok=True)
    modules: list[dict[str, Any]] = [
        {"idx": 0, "name": "0", "path": "", "type": WRITE_TYPES["transformer"]},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": WRITE_TYPES["pooling"]},
    ]
    (root / "1_Pooling").mkdir(exist_ok=True)
    write_json(root / "1_Pooling" / "config.json", pooling_config_dict(pooling))
    dense_dirs: list[Path] = []
    for d in dense:
        idx = len(modules)
        name = f"{idx}_Dense"
        (root / name).mkdir(exist_ok=True)
        write_json(root / name / "config.json", {
            "in_features": d.in_features,
            "out_features": d.out_features,
            "bias": d.bias,
            "activation_function": ACTIVATION_PATHS[d.activation],
        })
        modules.append({"idx": idx, "name": str(idx), "path": name, "type": WRITE_TYPES["dense"]})
        dense_dirs.append(root / name)
    if normalize:
        idx = len(modules)
        name = f"{idx}_Normalize"
        (root / name).mkdir(exist_ok=True)
        modules.append(
            {"idx": idx, "name": str(idx), "path": name, "type": WRITE_TYPES["normalize"]}
        )
    write_json(root / "modules.json", modules)
    st_cfg: dict[str, Any] = {"do_lower_case": settings.do_lower_case}
    if settings.max_seq_length is not None:
        st_cfg = {"max_seq_length": settings.max_seq_length, **st_cfg}
    write_json(root / "sentence_bert_config.json", st_cfg)
    write_json(root / ST_TOP_CONFIG, {
        "model_type": MODEL_TYPE, "__version__": versions, "prompts": dict(settings.prompts),
        "default_prompt_name": settings.default_prompt_name,
        "similarity_fn_name": settings.similarity_fn_name,
    })
    return dense_dirs


def copy_tokenizer_files(source: Path, root: Path, max_seq_length: int | None) -> None:
    """Copy the tokenizer files of ``source`` into ``root``; record ``max_seq_length``."""
    for name in TOKENIZER_FILES:
        src = source / name
        if src.exists() and src.resolve() != (root / name).resolve():
            shutil.copyfile(src, root / name)
    if max_seq_length is not None:
        cfg_file = root / "tokenizer_config.json"
        cfg: dict[str, Any] = read_json(cfg_file) if cfg_file.exists() else {}
        cfg["model_max_length"] = max_seq_length
        write_json(cfg_file, cfg)
