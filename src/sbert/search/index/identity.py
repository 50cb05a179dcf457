"""Which model made a set of embeddings, by content: the digest an index records and checks.

The digest (sha256) covers everything that changes what a sentence becomes:

* the transformer's weights, as tensors (name, dtype, shape, bytes), whatever file holds them
  (``model.safetensors``, shards, ``pytorch_model.bin``), so a copy, a re-save and the folder
  sbert exports for the ONNX backend all agree. ``position_ids``/``token_type_ids`` buffers,
  which some checkpoints store and transformers drops on save, are left out;
* the ONNX graph's bytes when there are no torch weights, or when the encoder runs any graph
  other than ``onnx/model.onnx`` (int8 ``model_qint8_*.onnx``, a ``file=`` choice): those
  embeddings differ, so int8 has an identity of its own. ``onnx/model.onnx`` beside the
  weights is their export (embeddings agree to ~1e-6) and shares their identity;
* the tokenizer (vocabulary, normalizer, pre-tokenizer, post-processor), ``do_lower_case``,
  the pooling modes and ``include_prompt``, each Dense layer (sizes, bias, activation,
  weights) and Normalize, as the encoder runs them (``set_pooling`` counts).

Left out, as settings of one model rather than another model: ``max_seq_length`` (it only
truncates long inputs), prompts (they change the input, not the model), device, threads and
bf16 autocast. The digest is of the files the encoder was loaded from: weights changed in
memory (training) count only once saved and loaded again.

File digests are cached per (path, size, modification time), so an encoder is hashed once per
process; later calls only ``stat`` its files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbert.errors import IndexFailure
from sbert.folder import FP32_FILE

SCHEME = 1  # bump when what the digest covers changes
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
_BUFFERS = ("position_ids", "token_type_ids")  # buffers, not weights (see the module doc)
_CHUNK = 1 << 22
_tokenizer_digests: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ModelIdentity:
    """A model as an index knows it: a readable name for messages and a content digest."""

    name: str
    digest: str

    def __str__(self) -> str:
        return f"{self.name!r} (digest {self.digest[:12]})"


def model_id(encoder: Any) -> str:
    """An encoder's readable name: a folder's name, or the model name (not an identity)."""
    name = str(encoder.name)
    path = Path(name)
    return path.resolve().name if path.exists() else name


def model_identity(encoder: Any) -> ModelIdentity:
    """The name and content digest of what ``encoder`` computes (see the module doc)."""
    spec = encoder.spec
    network = getattr(encoder.backend, "network", None)  # the torch backend's live modules
    pooling = network.pooling if network is not None else spec.pooling
    dense = network.dense_configs if network is not None else spec.dense
    normalize = network.normalize if network is not None else spec.normalize
    doc = {
        "scheme": SCHEME,
        "transformer": _transformer(encoder),
        "tokenizer": _tokenizer_digest(encoder.tokenizer),
        "do_lower_case": bool(encoder.tokenizer.do_lower_case),
        "pooling": {"modes": list(pooling.modes), "include_prompt": pooling.include_prompt},
        "dense": [{"in": d.in_features, "out": d.out_features, "bias": d.bias,
                   "activation": d.activation,
                   "weights": None if d.path is None else _weights_digest(Path(d.path))}
                  for d in dense],
        "normalize": bool(normalize),
    }
    return ModelIdentity(model_id(encoder), _json_digest(doc))


def _transformer(encoder: Any) -> dict[str, str]:
    """The weights' digest, plus the graph's when the graph alone defines the function."""
    spec = encoder.spec
    graph = getattr(encoder.backend, "path", None) if encoder.backend_name == "onnx" else None
    out: dict[str, str] = {}
    if _weight_files(spec.transformer_path):
        out["weights"] = _weights_digest(spec.transformer_path)
    fp32 = (spec.root / FP32_FILE).resolve()
    if graph is not None and ("weights" not in out or Path(graph).resolve() != fp32):
        out["graph"] = _file_digest(*_stamp(Path(graph)))
    return out


def _weight_files(folder: Path) -> list[Path]:
    for name in _WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            if name.endswith(".index.json"):
                shards = json.loads(path.read_text(encoding="utf-8"))["weight_map"].values()
                return [folder / shard for shard in sorted(set(shards))]
            return [path]
    return []


def _weights_digest(folder: Path) -> str:
    """One digest of every tensor of a folder's weight files, independent of the layout."""
    tensors: dict[str, list[Any]] = {}
    for path in _weight_files(folder):
        tensors.update(_tensor_digests(*_stamp(path)))
    kept = {name: value for name, value in tensors.items()
            if name.rsplit(".", 1)[-1] not in _BUFFERS}
    return _json_digest(sorted(kept.items()))


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=256)
def _tensor_digests(path: str, size: int, mtime_ns: int) -> dict[str, list[Any]]:
    """``{name: [dtype, shape, sha256 of the bytes]}`` of one weight file (cached by stamp)."""
    if path.endswith(".safetensors"):
        return _safetensors_digests(Path(path))
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    return {name: [_TORCH_DTYPES.get(str(t.dtype), str(t.dtype)), list(t.shape),
                   hashlib.sha256(t.detach().contiguous().reshape(-1).view(torch.uint8)
                                  .numpy().tobytes()).hexdigest()]
            for name, t in state.items()}


# torch dtype -> the safetensors name, so a .bin and its safetensors conversion agree
_TORCH_DTYPES = {"torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16",
                 "torch.float64": "F64", "torch.int64": "I64", "torch.int32": "I32",
                 "torch.int16": "I16", "torch.int8": "I8", "torch.uint8": "U8",
                 "torch.bool": "BOOL"}


def _safetensors_digests(path: Path) -> dict[str, list[Any]]:
    """Reads the header (8-byte length, JSON) and hashes each tensor's bytes, no torch needed."""
    out: dict[str, list[Any]] = {}
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        header.pop("__metadata__", None)
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            start, end = info["data_offsets"]
            f.seek(8 + length + start)
            sha = hashlib.sha256()
            remaining = end - start
            while remaining:
                block = f.read(min(_CHUNK, remaining))
                if not block:
                    raise ValueError(f"{path} is truncated (tensor {name!r})")
                sha.update(block)
                remaining -= len(block)
            out[name] = [info["dtype"], list(info["shape"]), sha.hexdigest()]
    return out


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            sha.update(block)
    return sha.hexdigest()


def _tokenizer_digest(tokenizer: Any) -> str:
    """The fast tokenizer's serialization without its truncation and padding settings."""
    digest = _tokenizer_digests.get(tokenizer)
    if digest is None:
        doc = json.loads(tokenizer.backend.to_str())
        doc.pop("truncation", None)
        doc.pop("padding", None)
        digest = _tokenizer_digests[tokenizer] = _json_digest(doc)
    return digest


def _json_digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_model(name: str, digest: str | None, given: str | ModelIdentity | None,
                source: str) -> None:
    """Refuse embeddings of another model than the index's (``name``, ``digest``).

    Args:
        name: the index's model name.
        digest: the index's model digest; None for an index that knows the name only.
        given: the model of the embeddings: an identity (checked by digest when the index
            has one, else by name), a name, or None (not checked).
        source: where the index's model loads from, for the message.
    """
    if given is None:
        return
    if isinstance(given, ModelIdentity) and digest is not None:
        if given.digest != digest:
            same = " of the same name" if given.name == name else ""
            raise IndexFailure(
                f"this index holds embeddings of {ModelIdentity(name, digest)} but these come "
                f"from {given}, a different model{same}; use the index's model ({source}; an "
                "int8 ONNX graph, quantized=True, counts as a model of its own) or create a "
                "new index for this one"
            )
        return
    given_name = given.name if isinstance(given, ModelIdentity) else given
    if given_name != name:
        raise IndexFailure(f"this index holds embeddings of {name!r} but these come from "
                           f"{given_name!r}; use the index's model, {name}")
