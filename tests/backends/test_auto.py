"""backend="auto"/precision="auto": the policy on mocked hardware, the pins, the encoder's use."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from sbert.backends import auto
from sbert.backends.auto import Available, PathChoice, choose_path, pinned
from sbert.errors import ModelFolderError, UsageError
from sbert.runtime.hardware import Hardware

ROOT = Path(__file__).resolve().parents[2]


def _hw(*features: str, arch: str = "x86_64", caps: tuple[str, ...] = ()) -> Hardware:
    return Hardware(arch, "vendor", "cpu", frozenset(features), 2,
                    cpu_features=frozenset(features), caps=caps)


AVX2 = _hw("avx2")
VNNI = _hw("avx2", "avx512f", "avx512_vnni")
BF16 = _hw("avx2", "avx512f", "avx512_vnni", "avx512_bf16")
AMX = _hw("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
NEON = _hw("neon", "asimddp", arch="aarch64")
SVE = _hw("neon", "asimddp", "sve", "arm_bf16", "i8mm", arch="aarch64")
EVERYTHING = Available(torch=True, weights=True, onnxruntime=True, graph=False, export=True)
NO_ORT = Available(torch=True, weights=True, onnxruntime=False, graph=False, export=True)
NO_EXPORT = Available(torch=True, weights=True, onnxruntime=True, graph=False, export=False)
ONNX_ONLY = Available(torch=True, weights=False, onnxruntime=True, graph=True, export=False)
NO_TORCH = Available(torch=False, weights=True, onnxruntime=True, graph=True, export=False)


def _path(choice: PathChoice) -> tuple[str, str]:
    return choice.backend, choice.precision


@pytest.mark.parametrize(("hw", "available", "expected"), [
    (AVX2, EVERYTHING, ("onnx", "fp32")),
    (AVX2, NO_ORT, ("torch", "fp32")),          # no bf16 without native bf16
    (AVX2, NO_EXPORT, ("torch", "fp32")),       # no graph and none can be made
    (VNNI, EVERYTHING, ("onnx", "fp32")),
    (BF16, EVERYTHING, ("onnx", "fp32")),       # native bf16, but no AMX: ONNX fp32
    (BF16, NO_ORT, ("torch", "fp32")),
    (AMX, EVERYTHING, ("torch", "bf16")),
    (AMX, NO_ORT, ("torch", "bf16")),
    (NEON, EVERYTHING, ("onnx", "fp32")),
    (SVE, EVERYTHING, ("onnx", "fp32")),        # Arm BF16: no measurement, so fp32
    (SVE, NO_ORT, ("torch", "fp32")),
    (AMX, ONNX_ONLY, ("onnx", "fp32")),
    (AVX2, ONNX_ONLY, ("onnx", "fp32")),
    (AMX, NO_TORCH, ("onnx", "fp32")),
])
def test_cpu_policy(hw: Hardware, available: Available, expected: tuple[str, str]) -> None:
    choice = choose_path(hw, available)
    assert _path(choice) == expected
    assert choice.chosen and choice.reason.startswith("auto: ") and choice.warning is None


def test_onnxruntime_missing_says_so() -> None:
    assert "onnxruntime is not installed" in choose_path(VNNI, NO_ORT).reason


def test_caps_hold_amx_back() -> None:
    from sbert.runtime.hardware import apply_caps

    features, caps = apply_caps(AMX.features, {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    capped = Hardware("x86_64", "v", "cpu", features, 2, cpu_features=AMX.features, caps=caps)
    assert _path(choose_path(capped, EVERYTHING)) == ("onnx", "fp32")
    assert _path(choose_path(capped, NO_ORT)) == ("torch", "fp32")


def test_cuda() -> None:
    for hw in (AVX2, AMX):
        choice = choose_path(hw, EVERYTHING, cuda=True)
        assert _path(choice) == ("torch", "fp32") and "CUDA" in choice.reason
        assert _path(choose_path(hw, EVERYTHING, device="cuda:1")) == ("torch", "fp32")
    # an explicit CPU device keeps the CPU's path; an explicit torch on CUDA stays fp32
    assert _path(choose_path(AMX, EVERYTHING, device="cpu", cuda=True)) == ("torch", "bf16")
    assert _path(choose_path(AMX, EVERYTHING, backend="torch", cuda=True)) == ("torch", "fp32")


def test_explicit_wins() -> None:
    assert _path(choose_path(AMX, EVERYTHING, backend="onnx")) == ("onnx", "fp32")
    assert not choose_path(AMX, EVERYTHING, backend="onnx").chosen
    explicit = choose_path(AVX2, EVERYTHING, backend="torch", precision="fp32")
    assert _path(explicit) == ("torch", "fp32") and not explicit.chosen
    # torch asked for, precision left to auto: bf16 where AMX runs it
    assert _path(choose_path(AMX, EVERYTHING, backend="torch")) == ("torch", "bf16")
    assert _path(choose_path(VNNI, EVERYTHING, backend="torch")) == ("torch", "fp32")
    # fp32 asked for: the fastest fp32 path on a CPU is ONNX, AMX or not
    assert _path(choose_path(AMX, EVERYTHING, precision="fp32")) == ("onnx", "fp32")
    assert _path(choose_path(AMX, NO_ORT, precision="fp32")) == ("torch", "fp32")


def test_int8_only_when_asked() -> None:
    for hw in (AVX2, VNNI, AMX, NEON):
        assert choose_path(hw, EVERYTHING).precision != "int8"
    choice = choose_path(AVX2, EVERYTHING, onnx_options=("quantized",), quantized=True)
    assert _path(choice) == ("onnx", "int8") and not choice.chosen
    with pytest.raises(UsageError, match="ONNX backend"):
        choose_path(AVX2, EVERYTHING, backend="torch", onnx_options=("quantized",))


def test_bf16_warns_without_native_bf16() -> None:
    for hw in (AVX2, VNNI, NEON):
        choice = choose_path(hw, EVERYTHING, precision="bf16")
        assert _path(choice) == ("torch", "bf16")
        assert choice.warning and "emulates bf16" in choice.warning
    for hw in (BF16, AMX, SVE):  # native bf16: asked for, no warning
        assert choose_path(hw, EVERYTHING, precision="bf16").warning is None
    assert choose_path(AVX2, EVERYTHING, precision="bf16", device="cuda").warning is None
    capped = _hw("avx2", caps=("ONEDNN_MAX_CPU_ISA=AVX2",))
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in (choose_path(capped, EVERYTHING,
                                                     precision="bf16").warning or "")


def test_bad_requests() -> None:
    with pytest.raises(UsageError, match="expected one of"):
        choose_path(AVX2, EVERYTHING, backend="tensorflow")
    with pytest.raises(UsageError, match="expected one of"):
        choose_path(AVX2, EVERYTHING, precision="fp8")
    with pytest.raises(UsageError, match="torch autocast"):
        choose_path(AVX2, EVERYTHING, backend="onnx", precision="bf16")
    with pytest.raises(UsageError, match="runs on the CPU"):
        choose_path(AVX2, EVERYTHING, backend="onnx", device="cuda")


def test_pins() -> None:
    env = {"SBERT_BACKEND": "torch", "SBERT_PRECISION": "fp32"}
    assert pinned("auto", "auto", {}, None, EVERYTHING, env)[:2] == ("torch", "fp32")
    # explicit arguments win over the pins
    assert pinned("onnx", "auto", {}, None, EVERYTHING, env)[:2] == ("onnx", "fp32")
    # a pin gives way where it cannot apply
    assert pinned("auto", "auto", {}, None, ONNX_ONLY, env)[0] == "auto"
    assert pinned("auto", "auto", {"quantized": True}, None, EVERYTHING, env)[0] == "auto"
    onnx_bf16 = {"SBERT_BACKEND": "onnx", "SBERT_PRECISION": "bf16"}
    assert pinned("auto", "auto", {}, None, EVERYTHING, onnx_bf16)[:2] == ("onnx", "auto")
    assert pinned("auto", "bf16", {}, None, EVERYTHING, onnx_bf16)[:2] == ("auto", "bf16")
    assert pinned("auto", "auto", {}, "cuda", EVERYTHING, onnx_bf16)[:2] == ("auto", "bf16")
    with pytest.raises(UsageError, match="SBERT_BACKEND"):
        pinned("auto", "auto", {}, None, EVERYTHING, {"SBERT_BACKEND": "jax"})
    with pytest.raises(UsageError, match="SBERT_PRECISION"):
        pinned("auto", "auto", {}, None, EVERYTHING, {"SBERT_PRECISION": "fp8"})


# -- the encoder ----------------------------------------------------------------------------
@pytest.fixture
def unpinned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No SBERT_* pins (conftest sets them for the suite), a fresh cache."""
    monkeypatch.delenv("SBERT_BACKEND", raising=False)
    monkeypatch.delenv("SBERT_PRECISION", raising=False)
    monkeypatch.setenv("SBERT_CACHE", str(tmp_path / "cache"))
    return monkeypatch


def _on(monkeypatch: pytest.MonkeyPatch, hw: Hardware) -> None:
    monkeypatch.setattr(auto, "detect", lambda: hw)
    monkeypatch.setattr(auto, "cuda_available", lambda: False)


def test_encoder_defaults_are_auto(unpinned: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    from sbert import SentenceEncoder

    _on(unpinned, AMX)
    enc = SentenceEncoder(tiny_model_dir)
    assert (enc.backend_name, enc.precision) == ("torch", "bf16")
    assert "precision='bf16' (auto: AMX bf16 on this CPU)" in repr(enc)
    assert enc.network is not None  # a torch path keeps the network
    pinned_enc = SentenceEncoder(tiny_model_dir, backend="torch", precision="fp32")
    assert "backend='torch', precision='fp32', dim=" in repr(pinned_enc)


@pytest.mark.skipif(not auto.has_module("onnxruntime") or not auto.has_module("onnx"),
                    reason="needs onnxruntime and onnx")
def test_encoder_auto_onnx_exports_once(unpinned: pytest.MonkeyPatch, tiny_model_dir: Path,
                                        tiny_encoder, caplog: pytest.LogCaptureFixture) -> None:
    import numpy as np

    from sbert import SentenceEncoder

    _on(unpinned, AVX2)
    with caplog.at_level("INFO", logger="sbert"):
        enc = SentenceEncoder(tiny_model_dir)
    assert (enc.backend_name, enc.precision) == ("onnx", "fp32")
    assert "exported" in caplog.text and "runs onnx fp32 (auto: " in caplog.text
    sentences = ["a man plays a guitar", "the dog runs"]
    ref = tiny_encoder.encode(sentences, normalize=True)
    assert (enc.encode(sentences, normalize=True) * ref).sum(axis=1).min() > 0.9999
    with pytest.raises(UsageError, match="backend='torch'"):
        enc.set_pooling("cls")
    caplog.clear()
    with caplog.at_level("INFO", logger="sbert"):
        again = SentenceEncoder(tiny_model_dir)  # from the cache: no second export
    assert "exported" not in caplog.text and again.path == enc.path
    assert np.isfinite(again.encode(["a"])).all()


def test_failed_export_falls_back_to_torch(unpinned: pytest.MonkeyPatch,
                                           tiny_model_dir: Path) -> None:
    from sbert import SentenceEncoder
    from sbert.backends.onnx import cache

    def broken(path: Path, spec: object) -> Path:
        raise OSError("read-only cache")

    _on(unpinned, AVX2)
    unpinned.setattr(auto, "available_for", lambda spec: EVERYTHING)
    unpinned.setattr(cache, "cached_export", broken)
    enc = SentenceEncoder(tiny_model_dir)
    assert (enc.backend_name, enc.precision) == ("torch", "fp32")
    assert "export failed" in repr(enc)
    with pytest.raises(OSError, match="read-only"):  # asked for: the error stands
        SentenceEncoder(tiny_model_dir, backend="onnx")


def test_bf16_warns_once(unpinned: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    from sbert import SentenceEncoder, encoder

    unpinned.setattr(encoder, "_warned", set())
    _on(unpinned, AVX2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            assert SentenceEncoder(tiny_model_dir, precision="bf16").precision == "bf16"
    said = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(said) == 1 and "emulates bf16" in str(said[0].message)
    _on(unpinned, BF16)  # native bf16 without AMX: asked for, so no warning
    unpinned.setattr(encoder, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SentenceEncoder(tiny_model_dir, precision="bf16")
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_env_pins_the_encoder(unpinned: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    from sbert import SentenceEncoder

    _on(unpinned, AMX)
    unpinned.setenv("SBERT_PRECISION", "fp32")
    unpinned.setenv("SBERT_BACKEND", "torch")
    enc = SentenceEncoder(tiny_model_dir)
    assert (enc.backend_name, enc.precision) == ("torch", "fp32")
    assert "SBERT_BACKEND=torch, SBERT_PRECISION=fp32" in repr(enc)
    unpinned.setenv("SBERT_BACKEND", "gpu")
    with pytest.raises(UsageError, match="SBERT_BACKEND"):
        SentenceEncoder(tiny_model_dir)


def test_int8_only_folder_is_not_picked(unpinned: pytest.MonkeyPatch, tmp_path: Path,
                                        tiny_model_dir: Path) -> None:
    import shutil

    from sbert import SentenceEncoder

    folder = tmp_path / "int8-only"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model_qint8_avx2.onnx").write_bytes(b"not read")
    _on(unpinned, AVX2)
    with pytest.raises(ModelFolderError, match="quantized=True"):
        SentenceEncoder(folder)


def test_onednn_cap_keeps_bf16_off(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Under ONEDNN_MAX_CPU_ISA=AVX2 the real detection takes AMX away: no bf16 by default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBERT_")}
    env.update(ONEDNN_MAX_CPU_ISA="AVX2", SBERT_CACHE=str(tmp_path),
               PYTHONPATH=str(ROOT / "src"))
    code = ("from sbert import SentenceEncoder\n"
            f"enc = SentenceEncoder({str(tiny_model_dir)!r}, device='cpu')\n"
            "print(enc.backend_name, enc.precision)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, check=True).stdout.split()
    assert out[-1] == "fp32"


def test_fp16_on_a_cpu_warns() -> None:
    """fp16 is the CUDA path: asked for on a CPU it warns; on a GPU it does not."""
    from sbert.backends.auto import FP16_WARNING

    for hw in (AVX2, AMX, SVE):
        assert choose_path(hw, EVERYTHING, backend="torch", precision="fp16").warning == \
            FP16_WARNING
    assert choose_path(AMX, EVERYTHING, backend="torch", precision="fp16",
                       device="cuda").warning is None


def test_a_resaved_folder_replaces_its_cached_export(tiny_model_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Each save of a model changes its weights' stamp and so its cache key: the export of
    the earlier weights is removed, not kept beside the new one (230 MB each for MiniLM)."""
    import shutil

    from sbert import SentenceEncoder

    monkeypatch.setenv("SBERT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    first = SentenceEncoder(folder, backend="onnx").path
    SentenceEncoder(folder, backend="torch", device="cpu").save(folder)  # new file times
    second = SentenceEncoder(folder, backend="onnx").path
    assert second != first and second.is_dir()
    assert sorted(p.name for p in (tmp_path / "cache" / "onnx").iterdir()) == [second.name]
