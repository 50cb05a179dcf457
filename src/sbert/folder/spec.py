"""What a sentence-transformers model folder holds, as data: the module table and the spec.

The folder format is sbert's interoperability contract: ``modules.json`` (an ordered list of
modules), the Hugging Face transformer (at the root or in ``0_Transformer/``),
``1_Pooling/config.json``, optional ``N_Dense/`` and ``N_Normalize`` modules,
``config_sentence_transformers.json`` (similarity function and prompts) and optional
``onnx/model*.onnx`` graphs. Module types are looked up in :data:`MODULE_TYPES`; a type that
is not in the table is refused with a message, never imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sbert.similarity import SIMILARITY_FNS

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

# Dense activations we know by name (sentence-transformers stores the class path)
ACTIVATIONS = ("identity", "tanh", "relu", "gelu", "sigmoid")

# the model class config_sentence_transformers.json names ("model_type", 3.x on): the one we load
MODEL_TYPE = "SentenceTransformer"

# the tokenizer files a model folder may carry (copied as they are when a model is saved)
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "merges.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model", "added_tokens.json",
)

# ONNX graphs inside a folder, as sentence-transformers and optimum name them: the fp32 graph,
# and one dynamic int8 graph per CPU target, ``onnx/model_{weights}_{target}.onnx``
# (sentence-transformers' export_dynamic_quantized_onnx_model: the suffix is the weight type
# of optimum's AutoQuantizationConfig.<target>, then the target: model_qint8_avx512_vnni.onnx,
# model_qint8_avx512.onnx, model_quint8_avx2.onnx, model_qint8_arm64.onnx)
FP32_FILE = "onnx/model.onnx"
INT8_TARGETS = ("avx512_vnni", "avx512", "avx2", "arm64")
INT8_WEIGHTS = ("qint8", "quint8")  # signed (u8s8 MatMuls) or unsigned (u8u8) int8 weights
_INT8_NAME = re.compile(r"model_(?P<weights>qint8|quint8)_(?P<suffix>\w+)\.onnx")
# the AVX-512 VNNI (and AMX) graph, sbert's only int8 graph before there was one per target;
# this CPU's: sbert.backends.onnx.targets.int8_file_for()
INT8_FILE = "onnx/model_qint8_avx512_vnni.onnx"

# the transformer's weight files, any of which makes a folder loadable by the torch backend
TORCH_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


@dataclass
class PoolingConfig:
    """Pooling of token embeddings into one sentence vector."""

    modes: tuple[str, ...] = ("mean",)
    dimension: int = 0  # the transformer's hidden size; 0 until known
    include_prompt: bool = True
    # the module's folder, when read from disk (for messages; not part of equality)
    path: Path | None = field(default=None, compare=False)

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


def output_dimension(pooling: PoolingConfig, dense: list[DenseConfig]) -> int:
    """Length of the embeddings a model with this pooling and Dense stack gives (0 while
    the pooling's dimension is unknown and no Dense layer sets it)."""
    return dense[-1].out_features if dense else pooling.output_dimension


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
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    onnx_files: list[str] = field(default_factory=list)
    # from the transformer's config.json: positions it can embed (None when unknown)
    max_positions: int | None = None
    model_type: str | None = None

    @property
    def has_torch_weights(self) -> bool:
        return any((self.transformer_path / n).exists() for n in TORCH_WEIGHT_FILES)


def int8_file(weights: str, target: str) -> str:
    """The folder path of the int8 graph for ``target`` with ``weights`` (``qint8``/``quint8``)."""
    if weights not in INT8_WEIGHTS or target not in INT8_TARGETS:
        raise ValueError(f"unknown int8 graph {weights!r}/{target!r}; expected weights in "
                         f"{INT8_WEIGHTS} and a target in {INT8_TARGETS}")
    return f"onnx/model_{weights}_{target}.onnx"


def int8_graph_kind(file: str) -> tuple[str | None, str | None] | None:
    """What an ONNX file's name says of its int8 quantization: ``(weights, target)``.

    ``model_quint8_avx2.onnx`` -> ``("quint8", "avx2")``; ``model_qint8_quantized.onnx``
    (sentence-transformers' name for a custom config) -> ``("qint8", None)``; other int8
    names (``model_quantized.onnx``, ``model_int8.onnx``, ``model_uint8.onnx``) give what
    they say, None where they say nothing.

    Returns:
        None when the name is not that of an int8 graph.
    """
    name = file.rsplit("/", 1)[-1]
    match = _INT8_NAME.fullmatch(name)
    if match:
        suffix = match["suffix"]
        return match["weights"], suffix if suffix in INT8_TARGETS else None
    if name == "model_quantized.onnx":
        return None, None
    if "uint8" in name:
        return "quint8", None
    if "int8" in name:
        return "qint8", None
    return None


def settings_problem(
    similarity_fn_name: object, prompts: object, default_prompt_name: object
) -> str | None:
    """What is wrong with a folder's similarity function and prompts; None when nothing is.

    The rules ``config_sentence_transformers.json`` must follow, for reading and for saving:
    a similarity function of :data:`SIMILARITY_FNS`, prompts mapping names to strings, and a
    default prompt that is one of them (or none).
    """
    if similarity_fn_name not in SIMILARITY_FNS:
        return (f"unknown similarity_fn_name {similarity_fn_name!r}; "
                f"expected one of {SIMILARITY_FNS}")
    if not isinstance(prompts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()
    ):
        return f"prompts must map prompt names to prompt strings, got {prompts!r}"
    if default_prompt_name is not None and default_prompt_name not in prompts:
        return (f"default_prompt_name {default_prompt_name!r} is not one of the prompts "
                f"{sorted(prompts) or '(none)'}")
    return None
