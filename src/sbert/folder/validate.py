"""Check a model folder before anything reads it, one rule at a time.

Each failed rule raises one :class:`~sbert.errors.ModelFolderError` that names the file and
what is wrong: a module path outside the folder, a file that is not a regular file (a FIFO, a
device, a link to ``/dev/zero``) or too large to be a config, no tokenizer, a ``config.json``
value out of bounds, or dimensions that do not chain from the transformer to the last Dense.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from sbert.errors import InputFormatError, ModelFolderError
from sbert.files import read_json
from sbert.folder.spec import TOKENIZER_FILES, TORCH_WEIGHT_FILES, FolderSpec

# the most bytes a JSON config or tokenizer file may hold: room for the tokenizer.json of the
# largest vocabularies, far below what a runaway file would fill
MAX_CONFIG_BYTES = 50 * 1024 * 1024

# config.json sizes: the key (and the names some architectures use instead) -> the largest
# value accepted; generous for any real encoder, small enough to refuse a runaway config
CONFIG_CAPS: dict[str, tuple[tuple[str, ...], int]] = {
    "num_hidden_layers": (("num_hidden_layers", "n_layers"), 256),
    "hidden_size": (("hidden_size", "dim"), 65_536),
    "num_attention_heads": (("num_attention_heads", "n_heads"), 4_096),
    "intermediate_size": (("intermediate_size", "hidden_dim"), 262_144),
    "max_position_embeddings": (("max_position_embeddings",), 1_048_576),
    "vocab_size": (("vocab_size",), 10_000_000),
}

_KINDS = (
    (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_spec(spec: FolderSpec, config: dict[str, Any]) -> None:
    """Run the rules on a folder :func:`~sbert.folder.read_folder` has parsed, in order.

    Args:
        spec: the parsed folder.
        config: the transformer's ``config.json`` (``{}`` when it has none).
    """
    check_files(spec)
    check_tokenizer(spec.transformer_path)
    check_config(config, spec.transformer_path / "config.json")
    check_dimensions(spec, config)


def check_inside(root: Path, module_path: str, named_in: Path) -> Path:
    """The folder of a module: ``root / module_path``, refused unless it resolves inside ``root``.

    Links are followed, so neither ``../..`` nor a link to ``/etc`` leaves the folder.
    """
    path = root / module_path
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ModelFolderError(
            f"{named_in}: module path {module_path!r} resolves to {resolved}, outside the "
            f"model folder {root}"
        )
    return path


def check_file(path: Path, max_bytes: int | None = MAX_CONFIG_BYTES) -> None:
    """Refuse ``path`` unless it is a regular file (links followed) of at most ``max_bytes``.

    Runs ``os.stat`` only: a FIFO or a device is never opened.
    """
    try:
        info = os.stat(path)  # follows links: a link to /dev/zero is a device
    except FileNotFoundError as err:
        raise ModelFolderError(f"{path}: a broken link or a missing file") from err
    except OSError as err:
        raise ModelFolderError(f"{path}: cannot be read ({err.strerror})") from err
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise ModelFolderError(f"{path}: is {kind}, not a regular file; sbert refuses to read it")
    if max_bytes is not None and info.st_size > max_bytes:
        raise ModelFolderError(
            f"{path}: {info.st_size / 2**20:.0f} MiB is too large for a config or tokenizer "
            f"file (at most {max_bytes / 2**20:.0f} MiB)"
        )


def check_files(spec: FolderSpec) -> None:
    """Every config, tokenizer and weight file the backends will open: regular, configs small.

    The JSON files :func:`~sbert.folder.read_folder` parses are checked as it opens them.
    """
    transformer = spec.transformer_path
    for name in (*TOKENIZER_FILES, "config.json", *_model_files(transformer)):
        _check_if_there(transformer / name)
    for name in (*TORCH_WEIGHT_FILES, "pytorch_model.bin.index.json"):
        _check_if_there(transformer / name, weights=not name.endswith(".json"))
    for shard in _shards(transformer / "model.safetensors.index.json", transformer):
        check_file(shard, max_bytes=None)
    for name in spec.onnx_files:
        _check_if_there(spec.root / name, weights=True)
    for dense in spec.dense:
        if dense.path is not None:
            for name in ("model.safetensors", "pytorch_model.bin"):
                _check_if_there(dense.path / name, weights=True)


def _model_files(folder: Path) -> list[str]:
    """The sentencepiece models (``*.model``) in ``folder``."""
    return sorted(p.name for p in folder.glob("*.model"))


def _check_if_there(path: Path, weights: bool = False) -> None:
    if os.path.lexists(path):  # a broken link is there, and refused
        check_file(path, max_bytes=None if weights else MAX_CONFIG_BYTES)


def _shards(index: Path, folder: Path) -> list[Path]:
    """The weight shards ``model.safetensors.index.json`` names, each inside ``folder``."""
    if not index.exists():
        return []
    try:
        data = read_json(index)
    except InputFormatError as err:
        raise ModelFolderError(str(err)) from err
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        raise ModelFolderError(f"{index}: expected a weight_map object")
    shards = []
    for name in sorted(set(map(str, weight_map.values()))):
        # by name, links not followed: a hub snapshot links each file to its blob store
        if os.path.isabs(name) or os.path.normpath(name).split(os.sep)[0] == "..":
            raise ModelFolderError(f"{index}: shard {name!r} is outside the folder {folder}")
        shards.append(folder / name)
    return shards


def check_tokenizer(folder: Path) -> None:
    """Refuse a folder with no tokenizer files (one would map every word to ``[UNK]``).

    A tokenizer is ``tokenizer.json``, or slow files: ``vocab.txt`` (WordPiece),
    ``vocab.json`` with ``merges.txt`` (BPE) or a sentencepiece ``*.model``.
    """
    if any(os.path.lexists(folder / n) for n in ("tokenizer.json", "vocab.txt")):
        return
    if _model_files(folder):
        return
    has_vocab, has_merges = ((folder / n).exists() for n in ("vocab.json", "merges.txt"))
    if has_vocab and has_merges:
        return
    if has_vocab != has_merges:
        missing = "merges.txt" if has_vocab else "vocab.json"
        raise ModelFolderError(
            f"{folder}: the BPE tokenizer is incomplete: {missing} is missing (or add "
            "tokenizer.json)"
        )
    raise ModelFolderError(
        f"{folder}: no tokenizer: tokenizer.json is missing, and so are the slow files "
        "vocab.txt, vocab.json + merges.txt and *.model; copy the tokenizer files of the "
        "model's base into this folder"
    )


def check_config(config: dict[str, Any], path: Path) -> None:
    """Refuse sizes in ``config.json`` that are not positive ints under :data:`CONFIG_CAPS`.

    Checked before any model is built: a config asking for 100,000 layers would otherwise run
    for minutes into gigabytes.
    """
    sizes: dict[str, int] = {}
    for name, (keys, cap) in CONFIG_CAPS.items():
        key = next((k for k in keys if k in config), None)
        if key is None:
            continue
        sizes[name] = positive_int(config[key], key, path, cap)
    hidden, heads = sizes.get("hidden_size"), sizes.get("num_attention_heads")
    if hidden is not None and heads is not None and hidden % heads:
        raise ModelFolderError(
            f"{path}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
        )


def positive_int(value: object, key: str, path: Path | None, cap: int) -> int:
    """``value`` when it is an int in ``1..cap`` (not a bool); else refuse, naming ``path``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= cap:
        where = f"{path}: " if path is not None else ""
        raise ModelFolderError(
            f"{where}{key} must be a positive integer of at most {cap:,}, got {value!r}"
        )
    return value


def check_dimensions(spec: FolderSpec, config: dict[str, Any]) -> None:
    """The sizes chain: transformer hidden size -> pooling -> each Dense ``in_features``.

    A link is checked when both its ends are known (a folder may omit ``config.json`` or
    ``word_embedding_dimension``).
    """
    keys = CONFIG_CAPS["hidden_size"][0]
    hidden = next((config[k] for k in keys if k in config), None)
    pooling = spec.pooling
    if hidden is not None and pooling.dimension and pooling.dimension != hidden:
        pooling_file = pooling.path / "config.json" if pooling.path else "the pooling config"
        raise ModelFolderError(
            f"{pooling_file}: word_embedding_dimension {pooling.dimension} does not "
            f"match the transformer's hidden_size {hidden} "
            f"({spec.transformer_path / 'config.json'})"
        )
    dimension = pooling.dimension or hidden
    size = dimension * len(pooling.modes) if dimension else None
    before = f"the pooling output ({len(pooling.modes)} mode(s) x {dimension})"
    for index, dense in enumerate(spec.dense):
        where = dense.path / "config.json" if dense.path is not None else f"Dense {index}"
        if size is not None and dense.in_features != size:
            raise ModelFolderError(
                f"{where}: in_features {dense.in_features} does not match {before}, {size}"
            )
        size, before = dense.out_features, "the out_features of the Dense before it"

