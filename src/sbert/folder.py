"""Read and write sentence-transformers model folders: the interoperability contract.

A folder holds ``modules.json`` (an ordered list of modules), the Hugging Face transformer
(at the root or in ``0_Transformer/``), ``1_Pooling/config.json``, optional ``2_Dense/`` and
an optional normalize step. Module types are looked up in :data:`MODULE_TYPES`; a type that is
not in the table is refused with a message, never imported.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# every spelling of a module type that sentence-transformers 2.x-6.x writes -> our kind
MODULE_TYPES: dict[str, str] = {
    "sentence_transformers.models.Transformer": "transformer",
    "sentence_transformers.models.Transformer.Transformer": "transformer",
    "sentence_transformers.base.modules.transformer.Transformer": "transformer",
    "sentence_transformers.models.Pooling": "pooling",
    "sentence_transformers.models.Pooling.Pooling": "pooling",
    "sentence_transformers.sentence_transformer.modules.pooling.Pooling": "pooling",
    "sentence_transformers.models.Dense": "dense",
    "sentence_transformers.models.Dense.Dense": "dense",
    "sentence_transformers.base.modules.dense.Dense": "dense",
    "sentence_transformers.models.Normalize": "normalize",
    "sentence_transformers.models.Normalize.Normalize": "normalize",
    "sentence_transformers.base.modules.normalize.Normalize": "normalize",
}

# the type names we write: the classic spelling, which every sentence-transformers release loads
WRITE_TYPES: dict[str, str] = {
    "transformer": "sentence_transformers.models.Transformer",
    "pooling": "sentence_transformers.models.Pooling",
    "dense": "sentence_transformers.models.Dense",
    "normalize": "sentence_transformers.models.Normalize",
}

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len")
# legacy boolean keys of 1_Pooling/config.json, in the order sentence-transformers concatenates
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_MODE_ALIASES = {"mean_sqrt_len_tokens": "mean_sqrt_len", "mean_tokens": "mean", "cls_token": "cls"}

# Dense activations we know by name (sentence-transformers stores the class path)
ACTIVATIONS = ("identity", "tanh", "relu", "gelu", "sigmoid")
_ACTIVATION_NAMES = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.GELU": "gelu",
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
}
_ACTIVATION_PATHS = {v: k for k, v in _ACTIVATION_NAMES.items()}

_ST_CONFIG_FILES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)


class ModelFolderError(ValueError):
    """A model folder is malformed or uses a module type sbert does not support."""


@dataclass
class PoolingConfig:
    """Pooling of token embeddings into one sentence vector."""

    modes: tuple[str, ...] = ("mean",)
    dimension: int = 0  # the transformer's hidden size
    include_prompt: bool = True

    @property
    def output_dimension(self) -> int:
        return self.dimension * len(self.modes)


@dataclass
class DenseConfig:
    """A linear layer (with activation) after pooling, stored in ``N_Dense/``."""

    in_features: int
    out_features: int
    bias: bool = True
    activation: str = "tanh"
    path: Path | None = None  # folder holding the weights, when loaded from disk


@dataclass
class FolderSpec:
    """Everything sbert needs to rebuild a sentence encoder from a folder."""

    root: Path
    transformer_path: Path
    pooling: PoolingConfig
    dense: list[DenseConfig] = field(default_factory=list)
    normalize: bool = False
    max_seq_length: int | None = None
    do_lower_case: bool = False
    is_sentence_transformers: bool = True
    similarity_fn_name: str = "cosine"
    onnx_files: list[str] = field(default_factory=list)

    @property
    def has_torch_weights(self) -> bool:
        names = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
        return any((self.transformer_path / n).exists() for n in names)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelFolderError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) and not isinstance(data, list):
        raise ModelFolderError(f"{path}: expected a JSON object")
    return data  # type: ignore[return-value]


def parse_pooling_config(cfg: dict[str, Any]) -> PoolingConfig:
    """Parse ``1_Pooling/config.json``: legacy booleans or the 6.x ``pooling_mode`` key."""
    dim = int(cfg.get("embedding_dimension", cfg.get("word_embedding_dimension", 0)))
    raw = cfg.get("pooling_mode")
    modes: list[str]
    if raw is not None:
        modes = [raw] if isinstance(raw, str) else list(raw)
    else:
        modes = [mode for key, mode in _LEGACY_POOLING_KEYS.items() if cfg.get(key)]
    modes = [_MODE_ALIASES.get(m, m) for m in modes]
    if not modes:
        raise ModelFolderError("pooling config selects no pooling mode")
    for mode in modes:
        if mode not in POOLING_MODES:
            raise ModelFolderError(
                f"unsupported pooling mode {mode!r}; expected one of {POOLING_MODES}"
            )
    return PoolingConfig(tuple(modes), dim, bool(cfg.get("include_prompt", True)))


def pooling_config_dict(pooling: PoolingConfig) -> dict[str, Any]:
    """The legacy ``1_Pooling/config.json`` that every sentence-transformers release reads."""
    out: dict[str, Any] = {"word_embedding_dimension": pooling.dimension}
    for key, mode in _LEGACY_POOLING_KEYS.items():
        if mode in POOLING_MODES:
            out[key] = mode in pooling.modes
    out["include_prompt"] = pooling.include_prompt
    return out


def _parse_dense(folder: Path) -> DenseConfig:
    cfg = _read_json(folder / "config.json")
    act_path = cfg.get("activation_function", "torch.nn.modules.activation.Tanh")
    activation = _ACTIVATION_NAMES.get(act_path)
    if activation is None:
        raise ModelFolderError(
            f"{folder}: unsupported Dense activation {act_path!r}; "
            f"supported: {sorted(_ACTIVATION_NAMES)}"
        )
    if cfg.get("use_residual"):
        raise ModelFolderError(f"{folder}: Dense with use_residual=True is not supported")
    return DenseConfig(
        int(cfg["in_features"]), int(cfg["out_features"]), bool(cfg.get("bias", True)),
        activation, folder,
    )


def _st_config(path: Path) -> dict[str, Any]:
    for name in _ST_CONFIG_FILES:
        if (path / name).exists():
            return _read_json(path / name)
    return {}


def _tokenizer_max_length(path: Path) -> int | None:
    cfg_path = path / "tokenizer_config.json"
    if not cfg_path.exists():
        return None
    value = _read_json(cfg_path).get("model_max_length")
    if isinstance(value, int) and 0 < value < 100_000:
        return value
    return None


def _onnx_files(root: Path) -> list[str]:
    onnx_dir = root / "onnx"
    if not onnx_dir.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in onnx_dir.glob("*.onnx"))


def read_folder(path: str | Path) -> FolderSpec:
    """Read a sentence-transformers folder, or a plain Hugging Face model folder.

    Args:
        path: a local folder.

    Returns:
        The parsed :class:`FolderSpec`; weights are not loaded.
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelFolderError(f"{root} is not a folder")
    modules_file = root / "modules.json"
    if not modules_file.exists():
        if not (root / "config.json").exists():
            raise ModelFolderError(
                f"{root} has neither modules.json (sentence-transformers) nor config.json "
                "(Hugging Face); is it a model folder?"
            )
        logger.info("%s has no modules.json: plain Hugging Face model, using mean pooling", root)
        hidden = int(_read_json(root / "config.json").get("hidden_size", 0))
        return FolderSpec(
            root=root,
            transformer_path=root,
            pooling=PoolingConfig(("mean",), hidden),
            max_seq_length=_tokenizer_max_length(root),
            is_sentence_transformers=False,
            onnx_files=_onnx_files(root),
        )

    modules = _read_json(modules_file)
    if not isinstance(modules, list):
        raise ModelFolderError(f"{modules_file}: expected a JSON list of modules")
    transformer_path: Path | None = None
    pooling: PoolingConfig | None = None
    dense: list[DenseConfig] = []
    normalize = False
    st_cfg: dict[str, Any] = {}
    for entry in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        type_name = entry.get("type", "")
        kind = MODULE_TYPES.get(type_name)
        if kind is None:
            raise ModelFolderError(
                f"{modules_file}: module type {type_name!r} is not supported; sbert knows "
                f"Transformer, Pooling, Dense and Normalize modules (it never imports a class "
                "named by a file)"
            )
        mod_path = root / entry.get("path", "")
        if kind == "transformer":
            if transformer_path is not None:
                raise ModelFolderError(f"{modules_file}: more than one Transformer module")
            transformer_path = mod_path
            st_cfg = _st_config(mod_path)
        elif kind == "pooling":
            pooling = parse_pooling_config(_read_json(mod_path / "config.json"))
        elif kind == "dense":
            dense.append(_parse_dense(mod_path))
        elif kind == "normalize":
            normalize = True  # the folder itself may be missing: Normalize has no weights
    if transformer_path is None:
        raise ModelFolderError(f"{modules_file}: no Transformer module")
    if pooling is None:
        raise ModelFolderError(f"{modules_file}: no Pooling module")

    max_len = st_cfg.get("max_seq_length") or _tokenizer_max_length(transformer_path)
    st_top = root / "config_sentence_transformers.json"
    similarity = "cosine"
    if st_top.exists():
        similarity = _read_json(st_top).get("similarity_fn_name") or "cosine"
    return FolderSpec(
        root=root,
        transformer_path=transformer_path,
        pooling=pooling,
        dense=dense,
        normalize=normalize,
        max_seq_length=int(max_len) if max_len else None,
        do_lower_case=bool(st_cfg.get("do_lower_case", False)),
        similarity_fn_name=similarity,
        onnx_files=_onnx_files(root),
    )


def write_folder_files(
    root: Path,
    pooling: PoolingConfig,
    dense: list[DenseConfig],
    normalize: bool,
    max_seq_length: int | None,
    do_lower_case: bool,
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
    _write_json(root / "1_Pooling" / "config.json", pooling_config_dict(pooling))
    dense_dirs: list[Path] = []
    for d in dense:
        idx = len(modules)
        name = f"{idx}_Dense"
        (root / name).mkdir(exist_ok=True)
        _write_json(
            root / name / "config.json",
            {
                "in_features": d.in_features,
                "out_features": d.out_features,
                "bias": d.bias,
                "activation_function": _ACTIVATION_PATHS[d.activation],
            },
        )
        modules.append({"idx": idx, "name": str(idx), "path": name, "type": WRITE_TYPES["dense"]})
        dense_dirs.append(root / name)
    if normalize:
        idx = len(modules)
        name = f"{idx}_Normalize"
        (root / name).mkdir(exist_ok=True)
        modules.append(
            {"idx": idx, "name": str(idx), "path": name, "type": WRITE_TYPES["normalize"]}
        )
    _write_json(root / "modules.json", modules)
    st_cfg: dict[str, Any] = {"do_lower_case": do_lower_case}
    if max_seq_length is not None:
        st_cfg = {"max_seq_length": max_seq_length, **st_cfg}
    _write_json(root / "sentence_bert_config.json", st_cfg)
    _write_json(
        root / "config_sentence_transformers.json",
        {"__version__": versions, "prompts": {}, "default_prompt_name": None,
         "similarity_fn_name": "cosine"},
    )
    return dense_dirs


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
