"""Which int8 graph suits which CPU: the quantization recipe per target, and the loader's pick.

onnxruntime runs an int8 MatMul with the MLAS kernel that CPUID allows (``ONEDNN_MAX_CPU_ISA``
and ``ATEN_CPU_CAPABILITY`` do not reach it, so the CPU's own features decide here):

- AVX-512 VNNI and AMX multiply u8 activations by s8 weights into 32-bit sums (``VPDPBUSD``,
  tiles): u8s8 graphs are exact there.
- AVX2, and AVX-512 without VNNI, run u8s8 through ``VPMADDUBSW``, which adds two u8 x s8
  products into a *saturating* 16-bit sum: full-range int8 weights can overflow it and move
  the embedding. u8u8 graphs take a kernel that widens to 32 bits first and cannot saturate;
  7-bit weights (``reduce_range``) keep u8s8 sums inside 16 bits.
  ``benchmarks/int8_isa.py`` shows the kernel saturating under an emulated AVX2 CPU and
  measures each choice.
- Arm64 multiplies with dot-product or widening instructions: u8s8 is exact.

Graph names follow sentence-transformers (:func:`sbert.folder.int8_file`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sbert.folder import int8_file, int8_graph_kind
from sbert.runtime.hardware import Hardware, detect

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Int8Recipe:
    """How the weight MatMuls of one target are quantized (activations: u8, at run time).

    Attributes:
        weights: ``qint8`` (signed weights: u8s8 MatMuls) or ``quint8`` (u8u8).
        per_channel: one weight scale per output column instead of one per matrix.
        reduce_range: 7-bit weights, so u8s8 sums fit the 16 bits of ``VPMADDUBSW``.
    """

    weights: str
    per_channel: bool = True
    reduce_range: bool = False

    @property
    def label(self) -> str:
        """``u8s8 per-channel``, ``u8u8 per-tensor``, ``u8s8 per-channel 7-bit``..."""
        kind = "u8s8" if self.weights == "qint8" else "u8u8"
        scale = "per-channel" if self.per_channel else "per-tensor"
        return f"{kind} {scale}" + (" 7-bit" if self.reduce_range else "")


# optimum's AutoQuantizationConfig.<target>(is_static=False), which sentence-transformers'
# export_dynamic_quantized_onnx_model uses, for every target: activations QUInt8 asymmetric,
# weights symmetric, per_channel=True, reduce_range=False; weights QInt8 except for avx2
# (QUInt8, so u8u8). sbert keeps those, but for the CPUs whose u8s8 kernel can saturate:
# AVX2_RECIPE is the variant benchmarks/int8_isa.py measured best on an AVX2 kernel that
# holds min cosine >= 0.95 (change it here; the file name follows its weight type).
AVX2_RECIPE = Int8Recipe("quint8", per_channel=True, reduce_range=False)
RECIPES: dict[str, Int8Recipe] = {
    "avx512_vnni": Int8Recipe("qint8"),
    # the same VPMADDUBSW arithmetic as AVX2 (optimum's avx512 docstring says so too): the
    # AVX2 choice, inferred rather than measured (QEMU emulates no AVX-512)
    "avx512": AVX2_RECIPE,
    "avx2": AVX2_RECIPE,
    "arm64": Int8Recipe("qint8"),
}
_VNNI = frozenset({"avx512_vnni", "amx_int8"})
# for each target, the other targets' graphs from nearest to farthest (the last tie-break)
_NEAREST: dict[str, tuple[str, ...]] = {
    "avx512_vnni": ("avx512_vnni", "avx512", "avx2", "arm64"),
    "avx512": ("avx512", "avx2", "avx512_vnni", "arm64"),
    "avx2": ("avx2", "avx512", "avx512_vnni", "arm64"),
    "arm64": ("arm64", "avx512_vnni", "avx512", "avx2"),
}
# the features a target's kernels need
_NEEDS: dict[str, frozenset[str]] = {"avx512_vnni": _VNNI, "avx512": frozenset({"avx512f"}),
                                     "avx2": frozenset({"avx2"}), "arm64": frozenset({"neon"})}


def _isa(hw: Hardware) -> frozenset[str]:
    """The CPU's own features (MLAS ignores the oneDNN/ATen caps); ``features`` if unknown."""
    return hw.cpu_features or hw.features


def int8_target(hw: Hardware | None = None) -> str:
    """The int8 target for a CPU: ``avx512_vnni`` (also AMX), ``avx512``, ``avx2`` or ``arm64``.

    Args:
        hw: the machine; default: this one (:func:`sbert.runtime.hardware.detect`).

    Returns:
        One of :data:`sbert.folder.INT8_TARGETS`; x86 CPUs without AVX2 (and unknown ones)
        get ``avx2``, the graph made for kernels that may saturate.
    """
    hw = hw or detect()
    isa = _isa(hw)
    if hw.is_arm or "neon" in isa:
        return "arm64"
    if isa & _VNNI:
        return "avx512_vnni"
    return "avx512" if "avx512f" in isa else "avx2"


def int8_file_for(hw: Hardware | None = None) -> str:
    """The folder path of the int8 graph sbert exports for a CPU (``onnx/model_..._T.onnx``)."""
    target = int8_target(hw)
    return int8_file(RECIPES[target].weights, target)


def target_file(target: str) -> str:
    """The folder path of the int8 graph sbert exports for ``target``."""
    return int8_file(RECIPES[target].weights, target)


def saturates(hw: Hardware) -> bool:
    """Whether onnxruntime's u8s8 kernel here sums pairs in 16 bits (x86 without VNNI/AMX)."""
    isa = _isa(hw)
    return not (hw.is_arm or "neon" in isa) and not isa & _VNNI


def pick_int8_file(files: Sequence[str], hw: Hardware | None = None) -> tuple[str, str | None]:
    """The int8 graph among ``files`` to run on a CPU, and a warning when it was not made for it.

    Preference: the graph made for this CPU's target (:func:`int8_target`); then one that
    cannot saturate here (u8u8 on x86 without VNNI); then one made for an ISA the CPU has;
    then one whose name gives a target; then u8s8 over u8u8 where u8s8 is exact (faster);
    then the nearest target (x86 graphs before Arm ones on x86, and the reverse).

    Args:
        files: the folder's ONNX files (``onnx/...``); those not named as int8 are ignored.
        hw: the machine; default: this one.

    Returns:
        The file, and None or a warning to log (the graph targets an ISA this CPU lacks, or
        its u8s8 sums may saturate here).

    Raises:
        LookupError: no file is an int8 graph.
    """
    hw = hw or detect()
    target, isa, saturating = int8_target(hw), _isa(hw), saturates(hw)
    nearest = _NEAREST[target]

    def rank(item: tuple[str, tuple[str | None, str | None]]) -> tuple[object, ...]:
        file, (weights, made_for) = item
        risky = saturating and weights != "quint8"
        foreign = made_for is not None and not isa & _NEEDS[made_for]
        slower = not saturating and weights == "quint8"
        distance = nearest.index(made_for) if made_for else len(nearest)
        return (made_for != target, risky, foreign, made_for is None, slower, distance, file)

    graphs = [(f, kind) for f in files if (kind := int8_graph_kind(f)) is not None]
    if not graphs:
        raise LookupError("no int8 graph")
    file, (weights, made_for) = min(graphs, key=rank)
    if made_for == target:
        return file, None
    export = (f"; export one for this CPU: `sbert export onnx MODEL OUT --quantize int8 "
              f"--target {target}`")
    if saturating and weights != "quint8":
        made = f"quantized for {made_for}" if made_for else "of unknown target"
        return file, (f"{file} is {made} with signed int8 weights; on this CPU ({target}, no "
                      "VNNI) onnxruntime sums its u8s8 products in 16 bits, which can saturate "
                      f"and move embeddings{export}")
    if made_for is not None and not isa & _NEEDS[made_for]:
        return file, (f"{file} was quantized for {made_for}, which this CPU lacks; it runs, "
                      f"but was not checked on this CPU's kernels{export}")
    return file, None
