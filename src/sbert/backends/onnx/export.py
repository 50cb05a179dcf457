"""Export the transformer to ONNX (and an int8 graph) inside a sentence-transformers folder.

The folder keeps the sentence-transformers layout: the graph goes to ``onnx/model.onnx`` and
each int8 graph to ``onnx/model_{weights}_{target}.onnx`` (``model_qint8_avx512_vnni.onnx``,
``model_quint8_avx2.onnx``...: :mod:`sbert.backends.onnx.targets`); pooling, Dense and
normalization stay in the folder's own files, read by
:class:`~sbert.backends.onnx.backend.OnnxBackend`.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from sbert.backends.base import load_tokenizer
from sbert.backends.onnx.graph import bias_gemm, optimize_graph
from sbert.backends.onnx.quantize import quantize_checked
from sbert.backends.onnx.targets import RECIPES, Int8Recipe, int8_target, target_file
from sbert.backends.torch.backend import TorchBackend
from sbert.errors import UsageError
from sbert.folder import FP32_FILE, INT8_TARGETS, FolderSettings, FolderSpec
from sbert.tokenization import Tokenizer

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int8",)
TARGETS = (*INT8_TARGETS, "all")
OPSET = 17


def export_onnx(
    backend: TorchBackend,
    spec: FolderSpec,
    path: str | os.PathLike[str],
    quantize: str | None = None,
    optimize: bool = True,
    opset: int = OPSET,
    *,
    target: str | None = None,
    settings: FolderSettings | None = None,
    tokenizer: Tokenizer | None = None,
) -> Path:
    """Write a model folder with the transformer as ``onnx/model.onnx`` (and int8 graphs).

    Args:
        backend: the torch backend holding the weights.
        spec: the folder the weights were loaded from.
        path: the output folder; the model folder is saved there first unless it is
            ``spec.root`` itself (then only the graphs are added).
        quantize: ``"int8"`` adds a dynamic int8 graph for ``target``.
        optimize: apply onnxruntime's graph optimisations (layer norm and GELU fusions,
            constant folding) offline; the session applies the CPU-specific rest at load.
        opset: the ONNX opset.
        target: the CPU the int8 graph is for: ``avx512_vnni`` (also AMX), ``avx512``,
            ``avx2``, ``arm64``, or ``all`` of them; default: this machine's
            (:func:`~sbert.backends.onnx.targets.int8_target`).
        settings: what the saved folder records; default: as ``spec`` says.
        tokenizer: default: the folder's.

    Returns:
        The folder.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise UsageError(f"unknown quantization {quantize!r}; expected one of {QUANTIZATIONS}")
    if target is not None and target not in TARGETS:
        raise UsageError(f"unknown int8 target {target!r}; expected one of {TARGETS}")
    if target is not None and quantize is None:
        raise UsageError("an int8 target needs quantize='int8' (--quantize int8)")
    targets = list(INT8_TARGETS) if target == "all" else [target or int8_target()]
    tokenizer = tokenizer or load_tokenizer(spec)
    root = Path(path)
    if not root.exists() or root.resolve() != spec.root.resolve():
        backend.save(root, settings or FolderSettings.from_spec(spec), spec.transformer_path)
    if not (spec.transformer_path / "tokenizer.json").exists() and not (
        root / "tokenizer.json"
    ).exists():
        tokenizer.save(root)  # the ONNX backend needs the fast tokenizer, not transformers
    fp32 = root / FP32_FILE
    fp32.parent.mkdir(parents=True, exist_ok=True)
    raw = fp32.with_name("model.raw.partial")  # quantize the plain graph: fused ops confuse it
    partials: list[Path] = []
    try:
        export_transformer(backend, tokenizer, raw, opset)
        if quantize == "int8":
            made: dict[Int8Recipe, Path] = {}  # recipe -> its graph: targets that share one copy it
            for name in targets:
                final = root / target_file(name)
                int8 = final.with_name(final.name + ".partial")  # renamed when complete
                partials.append(int8)
                recipe = RECIPES[name]
                if recipe in made:
                    shutil.copyfile(made[recipe], int8)
                else:
                    quantize_checked(spec, tokenizer, raw, int8, recipe)
                    if optimize:
                        optimize_graph(int8)
                int8.replace(final)
                made[recipe] = final
                logger.info("int8 graph for %s (%s): %s", name, recipe.label, final)
        if optimize:
            # onnxruntime's own offline optimisation, not the transformer optimizer's fusions
            # (benchmarks/onnx_variants.py compares them)
            bias_gemm(raw, raw)  # after quantizing: the int8 quantizer works on MatMul, not Gemm
            optimize_graph(raw, fp32)
        else:
            raw.replace(fp32)
    finally:
        raw.unlink(missing_ok=True)
        for partial in partials:
            partial.unlink(missing_ok=True)
    return root


def export_transformer(
    backend: TorchBackend, tokenizer: Tokenizer, out: Path, opset: int = OPSET
) -> None:
    """Trace the transformer to ONNX: ids, mask (and token types) -> ``last_hidden_state``.

    Batch and sequence axes are dynamic. The dummy batch is padded so that the traced graph
    keeps the attention-mask path. Attention is traced in its eager form, the pattern that
    onnxruntime fuses into one ``Attention`` operator (the SDPA trace does not fuse): a copy
    of the transformer with eager attention is traced, and the backend's own model is left
    as it is.
    """
    import torch

    network = backend.network
    names = ["input_ids", "attention_mask"] + (
        ["token_type_ids"] if network.uses_token_types else []
    )
    transformer = _eager_copy(network.transformer)

    class _Wrapper(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    tok = tokenizer.encode(["a short one", "a somewhat longer dummy sentence to pad"])
    ids, mask, types = tokenizer.pad(tok.ids, tok.type_ids)  # (2, seq) each
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    args = tuple(torch.from_numpy(arrays[n]) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer's notes on Python branches and index ops: the graph is tested, not these
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", module=r"torch\.onnx")
        torch.onnx.export(
            _Wrapper(transformer), args, str(out), input_names=names,
            output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=opset,
            do_constant_folding=True, dynamo=False,
        )
    logger.info("exported %s", out)


def _eager_copy(transformer: Any) -> Any:
    """A CPU fp32 copy of a Hugging Face model with eager attention and stock Linear layers."""
    import copy

    from transformers import AutoModel

    model = AutoModel.from_config(copy.deepcopy(transformer.config), attn_implementation="eager")
    state = {k: v.detach().float().cpu() for k, v in transformer.state_dict().items()}
    model.load_state_dict(state)
    return model.eval()
