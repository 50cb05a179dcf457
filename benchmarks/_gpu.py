"""What the GPU benchmarks (encode_gpu.py, train_gpu.py) share: models, inputs, batches, timing.

The GPU machine may reach no package registry or model hub, so the models may not be
installed there. :func:`model_folder` takes a model from where the library finds it
(:func:`sbert.models.resolve_model`) and otherwise from the folder ``gpu_carry.py pack``
wrote here (``benchmarks/out/gpu_carry``, carried with the working tree), turned back into
an ordinary fp32 folder once (``benchmarks/out/gpu_models``); each result says which
weights it measured.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import DATA, OUT

CARRY = OUT / "gpu_carry"  # what gpu_carry.py pack writes; a GPU run carries it
MODELS = OUT / "gpu_models"  # the carried models as ordinary fp32 folders, made once
MANIFEST = "CARRY.json"  # in a carried model folder: how its weights travelled
TRAINED = "trained weights"


def model_folder(name: str) -> tuple[Path, str, bool]:
    """The model's folder, which weights it holds (a line for the results' notes), and
    whether they are the trained ones (quality figures mean something).

    Args:
        name: a bundled model name, a hub id in the local cache, or a folder.

    Returns:
        The folder, ``"trained weights"`` or what the carried copy holds instead, and
        whether those are trained weights (rounded to fp16 or not).
    """
    from sbert.errors import ModelNotFoundError
    from sbert.models import resolve_model

    try:
        return resolve_model(name), TRAINED, True
    except ModelNotFoundError:
        carried = CARRY / "models" / name
        if not (carried / MANIFEST).exists():
            raise SystemExit(f"model {name!r} is neither installed nor carried in {CARRY}; "
                             "run `python benchmarks/gpu_carry.py pack` where it is installed "
                             "and carry that folder") from None
    return unpack_model(carried, MODELS / name)


def unpack_model(carried: Path, target: Path) -> tuple[Path, str, bool]:
    """Make an ordinary fp32 sentence-transformers folder from a carried one (once).

    A carried folder holds the weights rounded to fp16 (``weights: fp16``; they are widened
    back to fp32) or none at all (``weights: random``: the architecture's own initialisation,
    seed 0, from its ``config.json``; speed only). Everything else is copied as it is.

    Returns:
        The folder, what its weights are, and whether they are trained ones.
    """
    manifest = json.loads((carried / MANIFEST).read_text(encoding="utf-8"))
    note, trained = str(manifest["note"]), manifest["weights"] == "fp16"
    if (target / MANIFEST).exists():
        return target, note, trained
    import torch

    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(carried, tmp)
    if manifest["weights"] == "fp16":
        from safetensors.torch import load_file, save_file

        state = load_file(str(tmp / "model.safetensors"))
        save_file({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                  str(tmp / "model.safetensors"), metadata={"format": "pt"})
    elif manifest["weights"] == "random":
        from transformers import AutoConfig, AutoModel

        torch.manual_seed(0)
        model = AutoModel.from_config(AutoConfig.from_pretrained(str(tmp)))
        model.save_pretrained(str(tmp), safe_serialization=True)
    else:
        raise SystemExit(f"{carried / MANIFEST}: unknown weights {manifest['weights']!r}")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target, note, trained


# --- inputs ---------------------------------------------------------------------------------

def corpus_sentences() -> list[str]:
    """STSb train then Quora dev sentences (both columns, file order, first occurrence)."""
    seen: dict[str, None] = {}
    for path in (DATA / "stsbenchmark" / "train.tsv", DATA / "quora_qp" / "quora_qp.dev.tsv"):
        if not path.exists():
            raise SystemExit(f"needs {path} (the shared data sets); set SBERT_DATA")
        with path.open(encoding="utf-8") as lines:
            next(lines)  # header
            for line in lines:
                for text in line.rstrip("\n").split("\t")[:2]:
                    if text:
                        seen.setdefault(text, None)
    return list(seen)


def long_texts(count_tokens: Callable[[list[str]], Sequence[int]], n: int,
               low: int = 256, high: int = 510) -> tuple[list[str], bool]:
    """``n`` texts of ``low``..``high`` tokens and a little more, the same on every run.

    Text ``k`` joins consecutive corpus sentences (:func:`corpus_sentences`) with spaces
    until it reaches ``low + 157 k mod (high - low + 1)`` tokens (the model's own count,
    special tokens included); the next text goes on from the next sentence. The last
    sentence can take a text past ``high``: the encoder cuts it at its maximum length.

    Args:
        count_tokens: tokens of each text, special tokens included.
        n: how many texts.

    Returns:
        The texts, and whether the corpus ran out and sentences were used again.
    """
    sentences = corpus_sentences()
    special = int(count_tokens([""])[0])
    lengths = [int(t) - special for t in count_tokens(sentences)]
    texts: list[str] = []
    cursor = 0
    for k in range(n):
        target = low + (157 * k) % (high - low + 1)
        parts: list[str] = []
        total = special
        while total < target:
            i = cursor % len(sentences)
            parts.append(sentences[i])
            total += lengths[i]
            cursor += 1
        texts.append(" ".join(parts))
    return texts, cursor > len(sentences)


# --- batches by a token budget -------------------------------------------------------------

def budget_batches(lengths: np.ndarray, budget: int) -> list[np.ndarray]:
    """Indices longest first, cut so that a batch's rows x its longest row <= ``budget``.

    A row longer than the budget goes alone.
    """
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        rows = max(1, budget // max(1, int(lengths[order[start]])))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def encode_by_budget(encoder: Any, texts: list[str], budget: int) -> np.ndarray:
    """Embed like ``encoder.encode`` but with batches of at most ``budget`` padded tokens.

    The library's pieces a caller that batches itself uses: the tokenizer (all texts at
    once, on the backend's threads) and ``embed_tokens`` per batch.

    Returns:
        ``(len(texts), dim)`` float32, in input order.
    """
    tok = encoder.tokenizer.encode(texts, threads=encoder.backend.threads)
    out = np.empty((len(texts), encoder.dimension), dtype=np.float32)
    for idx in budget_batches(tok.lengths, budget):
        out[idx] = encoder.embed_tokens([tok.ids[i] for i in idx],
                                        [tok.type_ids[i] for i in idx])
    return out


# --- encoders -------------------------------------------------------------------------------

def sbert_encoder(folder: Path, device: str, precision: str = "fp32",
                  weights: str = "fp32", max_seq_length: int | None = None) -> tuple[Any, str]:
    """A torch-backend encoder at ``precision`` (autocast) with its network in ``weights``.

    ``weights="fp16"``/``"bf16"`` casts the network (what sentence-transformers' fp16 is);
    that is no library option yet, so the row that measures it says so.

    Returns:
        The encoder and a note ("" when the library took every option as given).
    """
    import torch

    from sbert.encoder import SentenceEncoder
    from sbert.errors import UsageError

    note = ""
    try:
        enc = SentenceEncoder(folder, device=device, backend="torch", precision=precision,
                              max_seq_length=max_seq_length)
    except (UsageError, ValueError, TypeError) as err:  # a precision it does not take (yet)
        enc = SentenceEncoder(folder, device=device, backend="torch", precision="fp32",
                              max_seq_length=max_seq_length)
        backend: Any = enc.backend
        backend.autocast = True
        backend.autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        note = f"precision {precision} set on the torch backend ({err})"
    if weights != "fp32":
        enc.network.to({"fp16": torch.float16, "bf16": torch.bfloat16}[weights])
    return enc, note


def attention_implementation(encoder: Any) -> str:
    """How the encoder's transformer computes attention (``sdpa``, ``eager``...)."""
    config = getattr(encoder.network.transformer, "config", None)
    return str(getattr(config, "_attn_implementation", "unknown"))


def synced(fn: Callable[[], object], device: str) -> Callable[[], None]:
    """``fn`` followed by a device synchronisation (so a timer sees the GPU's work)."""
    def run() -> None:
        fn()
        if device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
    return run


def free_gpu() -> None:
    """Give cached GPU memory back between models."""
    import gc

    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
