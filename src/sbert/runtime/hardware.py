"""What the machine can do: CPU vendor and model, the ISA features that pick kernels, cores, GPUs.

:func:`detect` reads it once per process (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS).
Two environment variables hold the kernel libraries to a lower ISA, and :func:`detect`
honours them, so the choice of path follows what will really run:

- ``ONEDNN_MAX_CPU_ISA`` (e.g. ``AVX2``, ``AVX512_CORE_VNNI``): oneDNN, torch's CPU linears
  and so its bf16 path, uses nothing above it;
- ``ATEN_CPU_CAPABILITY`` (``default``, ``avx2``, ``avx512``): torch's own vectorised kernels.

Neither reaches onnxruntime: its MLAS kernels read CPUID themselves, so an ONNX figure taken
under such a cap is still the full CPU's.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field

from sbert.runtime import available_cores

# the ISA features that decide which kernels run. x86: /proc/cpuinfo flags; Arm: ``neon``
# (asimd), ``asimddp`` (int8 dot product), ``i8mm``, ``sve``, ``arm_bf16`` (the bf16 flag)
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
             "amx_int8", "neon", "asimddp", "i8mm", "sve", "arm_bf16")
# the first entry whose flag the CPU has names its class; benchmark results group by class
MACHINE_CLASSES = (("amx_tile", "avx512-amx"), ("avx512_bf16", "avx512-bf16"),
                   ("avx512_vnni", "avx512-vnni"), ("avx512f", "avx512"), ("avx2", "avx2"),
                   ("sve", "arm-sve"), ("neon", "arm-neon"))
# ONEDNN_MAX_CPU_ISA values -> the x86 features oneDNN may still use under them
_ONEDNN_ISA = {
    "SSE41": (),
    "AVX": (),
    "AVX2": ("avx2",),
    "AVX2_VNNI": ("avx2",),
    "AVX2_VNNI_2": ("avx2",),
    "AVX512_CORE": ("avx2", "avx512f"),
    "AVX512_CORE_VNNI": ("avx2", "avx512f", "avx512_vnni"),
    "AVX512_CORE_BF16": ("avx2", "avx512f", "avx512_vnni", "avx512_bf16"),
    "AVX10_1_512": ("avx2", "avx512f", "avx512_vnni", "avx512_bf16"),
    "AVX512_CORE_FP16": ("avx2", "avx512f", "avx512_vnni", "avx512_bf16"),
}
_X86_ISA = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
# ATEN_CPU_CAPABILITY values -> the x86 features torch's own kernels may still use
_ATEN_ISA = {"default": (), "avx2": ("avx2",)}


@dataclass(frozen=True)
class Hardware:
    """The machine as the choice of path sees it.

    Attributes:
        arch: ``x86_64``, ``aarch64``, ``arm64``...
        vendor: ``GenuineIntel``, ``AuthenticAMD``, an Arm implementer code...; "" if unknown.
        model: the CPU's model name.
        features: the :data:`ISA_FLAGS` usable here (after the caps below).
        cores: cores this process may run on.
        cuda: names of the CUDA devices (empty: none, or not asked for).
        cpu_features: the :data:`ISA_FLAGS` the CPU itself reports.
        caps: the environment variables that lowered ``features`` (``NAME=value``).
    """

    arch: str
    vendor: str
    model: str
    features: frozenset[str]
    cores: int
    cuda: tuple[str, ...] = ()
    cpu_features: frozenset[str] = field(default_factory=frozenset)
    caps: tuple[str, ...] = ()

    @property
    def is_arm(self) -> bool:
        return self.arch.lower() in ("aarch64", "arm64") or "neon" in self.features

    @property
    def native_bf16(self) -> bool:
        """Whether the CPU multiplies bf16 in hardware (AVX-512 BF16, AMX, Arm BF16)."""
        return bool(self.features & {"avx512_bf16", "amx_bf16", "arm_bf16"})

    @property
    def machine_class(self) -> str:
        """``avx512-amx``, ``avx512-vnni``, ``avx2``, ``arm-neon``... (of the CPU, uncapped)."""
        for flag, name in MACHINE_CLASSES:
            if flag in self.cpu_features:
                return name
        return re.sub(r"[^a-z0-9]+", "-", self.arch.lower()) or "unknown"

    def summary(self) -> str:
        """One line: model, features, cores (and caps)."""
        feats = " ".join(f for f in ISA_FLAGS if f in self.features) or "no SIMD features known"
        line = f"{self.model} ({self.arch}, {self.cores} cores): {feats}"
        if self.caps:
            line += f" [capped by {', '.join(self.caps)}]"
        return line


def _cpuinfo() -> tuple[str, str, set[str]]:
    """Vendor, model and the raw flag words from /proc/cpuinfo ("", "", empty if absent)."""
    vendor = model = ""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip().lower(), value.strip()
                if key in ("flags", "features") and not flags:
                    flags.update(value.split())
                elif key == "vendor_id" and not vendor:
                    vendor = value
                elif key == "cpu implementer" and not vendor:
                    vendor = f"arm implementer {value}"
                elif key in ("model name", "hardware", "cpu model") and not model:
                    model = value
    except OSError:
        pass
    return vendor, model, flags


def _sysctl(name: str) -> str:
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def parse_flags(words: set[str], arch: str) -> frozenset[str]:
    """The :data:`ISA_FLAGS` named by cpuinfo flag words (Arm's ``asimd`` is ``neon``)."""
    found = set(words)
    if "asimd" in found:
        found.add("neon")
    if arch.lower() in ("aarch64", "arm64") and "bf16" in found:
        found.add("arm_bf16")
    return frozenset(f for f in ISA_FLAGS if f in found)


def apply_caps(
    features: frozenset[str], env: dict[str, str]
) -> tuple[frozenset[str], tuple[str, ...]]:
    """``features`` lowered by ``ONEDNN_MAX_CPU_ISA`` and ``ATEN_CPU_CAPABILITY`` in ``env``."""
    out, caps = set(features), []
    onednn = env.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if onednn and onednn != "ALL" and not onednn.startswith("AVX512_CORE_AMX"):
        allowed = _ONEDNN_ISA.get(onednn)
        if allowed is not None:
            out -= set(_X86_ISA) - set(allowed)
            caps.append(f"ONEDNN_MAX_CPU_ISA={onednn}")
    aten = env.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten in _ATEN_ISA:
        out -= set(_X86_ISA) - set(_ATEN_ISA[aten])
        caps.append(f"ATEN_CPU_CAPABILITY={aten}")
    return frozenset(out), tuple(caps)


def cuda_devices() -> tuple[str, ...]:
    """Names of the CUDA devices torch sees; empty without torch or without a GPU."""
    from sbert.runtime import has_module

    if not has_module("torch"):
        return ()
    import torch

    if not torch.cuda.is_available():
        return ()
    return tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))


# device files a CUDA (or ROCm) GPU shows on Linux (WSL: /dev/dxg); with none of them, the
# default device is the CPU and torch need not be imported to say so
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def cuda_available() -> bool:
    """Whether torch's default device here is CUDA; False without torch.

    On Linux, a machine without any of :data:`GPU_DEVICE_FILES` answers without importing
    torch (an ONNX encoder then never loads it); macOS has no CUDA.
    """
    from sbert.runtime import has_module

    if sys.platform == "darwin" or not has_module("torch"):
        return False
    if sys.platform.startswith("linux") and not any(map(os.path.exists, GPU_DEVICE_FILES)):
        return False
    import torch

    return bool(torch.cuda.is_available())


@functools.lru_cache(maxsize=2)
def detect(cuda: bool = False) -> Hardware:
    """This machine (cached). ``cuda=True`` also lists CUDA devices (imports torch)."""
    arch = platform.machine() or "unknown"
    vendor, model, words = _cpuinfo()
    if sys.platform == "darwin":
        model = model or _sysctl("machdep.cpu.brand_string")
        if arch == "arm64":
            vendor = vendor or "Apple"
            words |= {"asimd", "asimddp"}
            if _sysctl("hw.optional.arm.FEAT_BF16") == "1":
                words.add("bf16")
            if _sysctl("hw.optional.arm.FEAT_I8MM") == "1":
                words.add("i8mm")
        else:
            words |= {w.lower().replace(".", "_")
                      for w in _sysctl("machdep.cpu.leaf7_features").split()}
    cpu = parse_flags(words, arch)
    features, caps = apply_caps(cpu, dict(os.environ))
    return Hardware(arch=arch, vendor=vendor, model=model or platform.processor() or arch,
                    features=features, cores=available_cores(),
                    cuda=cuda_devices() if cuda else (), cpu_features=cpu, caps=caps)
