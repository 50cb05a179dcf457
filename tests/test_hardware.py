"""CPU feature detection: flag parsing, the oneDNN/ATen caps, classes."""

from __future__ import annotations

import pytest

from sbert.runtime import hardware
from sbert.runtime.hardware import Hardware, apply_caps, parse_flags

AMX = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                 "amx_int8"})


def test_parse_flags_x86_and_arm() -> None:
    words = {"fpu", "sse4_2", "avx2", "avx512f", "avx512_vnni", "fma"}
    assert parse_flags(words, "x86_64") == {"avx2", "avx512f", "avx512_vnni"}
    arm = {"fp", "asimd", "asimddp", "sve", "bf16", "i8mm"}
    assert parse_flags(arm, "aarch64") == {"neon", "asimddp", "sve", "arm_bf16", "i8mm"}


@pytest.mark.parametrize(("env", "left", "bf16"), [
    ({}, AMX, True),
    ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, {"avx2"}, False),
    ({"ONEDNN_MAX_CPU_ISA": "avx512_core_vnni"}, {"avx2", "avx512f", "avx512_vnni"}, False),
    ({"ONEDNN_MAX_CPU_ISA": "ALL"}, AMX, True),
    ({"ATEN_CPU_CAPABILITY": "avx2"}, {"avx2"}, False),
    ({"ATEN_CPU_CAPABILITY": "avx512"}, AMX, True),
])
def test_caps_lower_the_features(env: dict[str, str], left: set[str], bf16: bool) -> None:
    features, caps = apply_caps(AMX, env)
    assert features == left
    assert bool(caps) == (features != AMX)
    hw = Hardware("x86_64", "GenuineIntel", "x", features, 2, cpu_features=AMX, caps=caps)
    assert hw.native_bf16 is bf16
    assert hw.machine_class == "avx512-amx"  # the class is the CPU's, caps or not


def test_detect_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    hardware.detect.cache_clear()
    hw = hardware.detect()
    hardware.detect.cache_clear()
    assert hw.cores >= 1 and hw.arch and hw.model
    assert hw.features == hw.cpu_features and not hw.caps
    assert hw.cuda == ()  # not asked for
    assert hw.model in hw.summary()


def test_cuda_probe_skips_torch_without_gpu_files(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.machinery
    import sys
    import types

    class _Cuda:
        calls = 0

        @classmethod
        def is_available(cls) -> bool:
            cls.calls += 1
            return True

    fake = types.ModuleType("torch")
    fake.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    fake.cuda = _Cuda  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    monkeypatch.setattr(hardware.sys, "platform", "linux")
    monkeypatch.setattr(hardware.os.path, "exists", lambda path: False)
    assert hardware.cuda_available() is False and _Cuda.calls == 0
    monkeypatch.setattr(hardware.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    assert hardware.cuda_available() is True and _Cuda.calls == 1
