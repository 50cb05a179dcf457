"""Read sentence-transformers model folders (and plain Hugging Face folders) into a spec."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sbert.errors import ModelFolderError
from sbert.files import read_json
from sbert.folder.spec import (
    MODEL_TYPE,
    MODULE_TYPES,
    POOLING_MODES,
    DenseConfig,
    FolderSpec,
    PoolingConfig,
    settings_problem,
)
from sbert.folder.validate import check_file, check_inside, check_spec, positive_int

logger = logging.getLogger(__name__)

# legacy boolean keys of 1_Pooling/config.json, in the order sentence-transformers concatenates
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_MODE_ALIASES = {"mean_sqrt_len_tokens": "mean_sqrt_len", "mean_tokens": "mean", "cls_token": "cls"}

ACTIVATION_PATHS = {
    "identity": "torch.nn.modules.linear.Identity",
    "tanh": "torch.nn.modules.activation.Tanh",
    "relu": "torch.nn.modules.activation.ReLU",
    "gelu": "torch.nn.modules.activation.GELU",
    "sigmoid": "torch.nn.modules.activation.Sigmoid",
}
_ACTIVATION_NAMES = {path: name for name, path in ACTIVATION_PATHS.items()}
MAX_DENSE_FEATURES = 262_144  # the widest Dense layer accepted, on either side
MAX_SEQ_LENGTH = 1_048_576  # the longest max_seq_length accepted

_ST_CONFIG_FILES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
ST_TOP_CONFIG = "config_sentence_transformers.json"
# RoBERTa-like models reserve pad_token_id + 1 positions before the first token
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "mpnet", "camembert")


def _json(path: Path) -> Any:
    check_file(path)  # a FIFO, a device or a huge file is refused before it is opened
    try:
        return read_json(path)
    except ValueError as err:
        raise ModelFolderError(str(err)) from err


def _json_object(path: Path) -> dict[str, Any]:
    data = _json(path)
    if not isinstance(data, dict):
        raise ModelFolderError(f"{path}: expected a JSON object")
    return data


def read_model_config(folder: Path) -> dict[str, Any]:
    """The transformer's ``config.json`` (``{}`` when the folder has none)."""
    path = Path(folder) / "config.json"
    return _json_object(path) if path.exists() else {}


def max_positions(config: dict[str, Any]) -> int | None:
    """How many tokens the transformer of ``config`` can embed (None when unknown)."""
    value = config.get("max_position_embeddings")
    if not isinstance(value, int):
        return None
    if config.get("model_type") in _OFFSET_POSITIONS:
        pad = config.get("pad_token_id", 1)
        value -= (pad if type(pad) is int else 1) + 1  # bad sizes are refused by check_spec
    return value


def parse_pooling_config(cfg: dict[str, Any]) -> PoolingConfig:
    """Parse ``1_Pooling/config.json``: legacy booleans or the 6.x ``pooling_mode`` key."""
    key = "embedding_dimension" if "embedding_dimension" in cfg else "word_embedding_dimension"
    raw_dim = cfg.get(key)  # absent or 0: the transformer's hidden size, known later
    unknown = raw_dim is None or (type(raw_dim) is int and raw_dim == 0)
    dim = 0 if unknown else positive_int(raw_dim, key, None, MAX_DENSE_FEATURES)
    raw = cfg.get("pooling_mode")
    modes: list[str]
    if raw is not None:
        modes = [raw] if isinstance(raw, str) else list(raw)
    else:
        modes = [mode for key, mode in LEGACY_POOLING_KEYS.items() if cfg.get(key)]
    modes = [_MODE_ALIASES.get(m, m) for m in modes]
    if not modes:
        raise ModelFolderError("pooling config selects no pooling mode")
    for mode in modes:
        if mode not in POOLING_MODES:
            raise ModelFolderError(
                f"unsupported pooling mode {mode!r}; expected one of {POOLING_MODES}"
            )
    return PoolingConfig(tuple(modes), dim, bool(cfg.get("include_prompt", True)))


def _parse_dense(folder: Path) -> DenseConfig:
    cfg = _json_object(folder / "config.json")
    act_path = cfg.get("activation_function", ACTIVATION_PATHS["tanh"])
    activation = _ACTIVATION_NAMES.get(act_path)
    if activation is None:
        raise ModelFolderError(
            f"{folder}: unsupported Dense activation {act_path!r}; "
            f"supported: {sorted(_ACTIVATION_NAMES)}"
        )
    if cfg.get("use_residual"):
        raise ModelFolderError(f"{folder}: Dense with use_residual=True is not supported")
    in_features, out_features = (
        positive_int(cfg.get(key), key, folder / "config.json", MAX_DENSE_FEATURES)
        for key in ("in_features", "out_features")
    )
    return DenseConfig(in_features, out_features, bool(cfg.get("bias", True)), activation, folder)


def _st_config_file(path: Path) -> Path | None:
    """The ``sentence_*_config.json`` of a transformer folder (None when it has none)."""
    return next((path / n for n in _ST_CONFIG_FILES if (path / n).exists()), None)


def _st_config(path: Path) -> dict[str, Any]:
    cfg_file = _st_config_file(path)
    return _json_object(cfg_file) if cfg_file is not None else {}


def _tokenizer_max_length(path: Path) -> int | None:
    cfg_path = path / "tokenizer_config.json"
    if not cfg_path.exists():
        return None
    value = _json_object(cfg_path).get("model_max_length")
    if isinstance(value, int) and 0 < value < 100_000:
        return value
    return None


def _onnx_files(root: Path) -> list[str]:
    onnx_dir = root / "onnx"
    if not onnx_dir.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in onnx_dir.glob("*.onnx"))


def _top_config(root: Path) -> tuple[str, dict[str, str], str | None]:
    """``similarity_fn_name``, ``prompts`` and ``default_prompt_name`` of a folder."""
    path = root / ST_TOP_CONFIG
    if not path.exists():
        return "cosine", {}, None
    cfg = _json_object(path)
    model_type = cfg.get("model_type", MODEL_TYPE)
    if model_type != MODEL_TYPE:
        raise ModelFolderError(
            f"{path}: this is a {model_type} model; sbert loads {MODEL_TYPE} models only"
        )
    similarity = cfg.get("similarity_fn_name") or "cosine"
    prompts = cfg.get("prompts") or {}
    if isinstance(prompts, dict):  # sentence-transformers reads a null prompt as ""
        prompts = {name: "" if text is None else text for name, text in prompts.items()}
    default = cfg.get("default_prompt_name")
    problem = settings_problem(similarity, prompts, default)
    if problem:
        raise ModelFolderError(f"{path}: {problem}")
    return similarity, prompts, default


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
        config = read_model_config(root)
        hidden = config.get("hidden_size", 0)  # not an int: refused by check_spec below
        spec = FolderSpec(
            root=root,
            transformer_path=root,
            pooling=PoolingConfig(("mean",), hidden if type(hidden) is int else 0),
            max_seq_length=_tokenizer_max_length(root),
            is_sentence_transformers=False,
            onnx_files=_onnx_files(root),
            max_positions=max_positions(config),
            model_type=config.get("model_type"),
        )
        check_spec(spec, config)
        return spec

    modules = _json(modules_file)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelFolderError(f"{modules_file}: expected a JSON list of modules")
    transformer_path: Path | None = None
    pooling: PoolingConfig | None = None
    dense: list[DenseConfig] = []
    normalize = False
    st_cfg: dict[str, Any] = {}
    for entry in modules:
        if isinstance(entry.get("idx", 0), bool) or not isinstance(entry.get("idx", 0), int):
            raise ModelFolderError(f"{modules_file}: module idx must be an integer, got {entry}")
    for entry in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        type_name = entry.get("type", "")
        kind = MODULE_TYPES.get(type_name)
        if kind is None:
            raise ModelFolderError(
                f"{modules_file}: module type {type_name!r} is not supported; sbert knows "
                f"Transformer, Pooling, Dense and Normalize modules (it never imports a class "
                "named by a file)"
            )
        mod_path = check_inside(root, str(entry.get("path", "")), modules_file)
        if kind == "transformer":
            if transformer_path is not None:
                raise ModelFolderError(f"{modules_file}: more than one Transformer module")
            transformer_path = mod_path
            st_cfg = _st_config(mod_path)
        elif kind == "pooling":
            pooling_file = mod_path / "config.json"
            try:
                pooling = parse_pooling_config(_json_object(pooling_file))
            except ModelFolderError as err:
                raise ModelFolderError(f"{pooling_file}: {err}") from err
            pooling.path = mod_path
        elif kind == "dense":
            dense.append(_parse_dense(mod_path))
        elif kind == "normalize":
            normalize = True  # the folder itself may be missing: Normalize has no weights
    if transformer_path is None:
        raise ModelFolderError(f"{modules_file}: no Transformer module")
    if pooling is None:
        raise ModelFolderError(f"{modules_file}: no Pooling module")

    max_len = st_cfg.get("max_seq_length")
    if max_len:
        positive_int(max_len, "max_seq_length", _st_config_file(transformer_path), MAX_SEQ_LENGTH)
    max_len = max_len or _tokenizer_max_length(transformer_path)
    similarity, prompts, default_prompt = _top_config(root)
    config = read_model_config(transformer_path)
    spec = FolderSpec(
        root=root,
        transformer_path=transformer_path,
        pooling=pooling,
        dense=dense,
        normalize=normalize,
        max_seq_length=int(max_len) if max_len else None,
        do_lower_case=bool(st_cfg.get("do_lower_case", False)),
        similarity_fn_name=similarity,
        prompts=prompts,
        default_prompt_name=default_prompt,
        onnx_files=_onnx_files(root),
        max_positions=max_positions(config),
        model_type=config.get("model_type"),
    )
    check_spec(spec, config)
    return spec
