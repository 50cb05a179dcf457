"""int8 graphs per CPU: names, the target of a CPU, and which graph the loader picks.

The CPUs are mocked :class:`~sbert.runtime.hardware.Hardware`; no graph is run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sbert.backends.onnx.targets import (
    AVX2_RECIPE,
    RECIPES,
    int8_file_for,
    int8_target,
    pick_int8_file,
    saturates,
    target_file,
)
from sbert.folder import (
    INT8_FILE,
    INT8_TARGETS,
    FolderSpec,
    PoolingConfig,
    int8_file,
    int8_graph_kind,
)
from sbert.runtime.hardware import Hardware

AVX2 = frozenset({"avx2"})
AVX512 = AVX2 | {"avx512f"}
VNNI = AVX512 | {"avx512_vnni"}
AMX = VNNI | {"avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}
ARM = frozenset({"neon", "asimddp"})


def _cpu(features: frozenset[str], arch: str = "x86_64", caps: bool = False) -> Hardware:
    """A CPU with ``features``; ``caps``: oneDNN held to AVX2 (MLAS still sees them all)."""
    used = AVX2 if caps else features
    return Hardware(arch, "", "mock", used, 2, cpu_features=features,
                    caps=("ONEDNN_MAX_CPU_ISA=AVX2",) if caps else ())


CPUS = {"avx2": _cpu(AVX2), "avx512": _cpu(AVX512), "vnni": _cpu(VNNI), "amx": _cpu(AMX),
        "arm": _cpu(ARM, "aarch64"), "apple": _cpu(ARM, "arm64")}
# what sentence-transformers' export_dynamic_quantized_onnx_model writes for each config
HUB = ["onnx/model.onnx", "onnx/model_O4.onnx", "onnx/model_qint8_arm64.onnx",
       "onnx/model_qint8_avx512.onnx", "onnx/model_qint8_avx512_vnni.onnx",
       "onnx/model_quint8_avx2.onnx"]


def test_names_follow_sentence_transformers() -> None:
    assert int8_file("qint8", "avx512_vnni") == "onnx/model_qint8_avx512_vnni.onnx" == INT8_FILE
    assert int8_file("quint8", "avx2") == "onnx/model_quint8_avx2.onnx"
    with pytest.raises(ValueError, match="expected weights"):
        int8_file("int4", "avx2")
    kinds = {f: int8_graph_kind(f) for f in HUB}
    assert kinds == {"onnx/model.onnx": None, "onnx/model_O4.onnx": None,
                     "onnx/model_qint8_arm64.onnx": ("qint8", "arm64"),
                     "onnx/model_qint8_avx512.onnx": ("qint8", "avx512"),
                     "onnx/model_qint8_avx512_vnni.onnx": ("qint8", "avx512_vnni"),
                     "onnx/model_quint8_avx2.onnx": ("quint8", "avx2")}
    assert int8_graph_kind("onnx/model_qint8_quantized.onnx") == ("qint8", None)
    assert int8_graph_kind("onnx/model_quantized.onnx") == (None, None)
    assert int8_graph_kind("onnx/model_uint8.onnx") == ("quint8", None)
    assert int8_graph_kind("onnx/model_fp16.onnx") is None


@pytest.mark.parametrize(("cpu", "target"), [
    ("avx2", "avx2"), ("avx512", "avx512"), ("vnni", "avx512_vnni"), ("amx", "avx512_vnni"),
    ("arm", "arm64"), ("apple", "arm64"),
])
def test_target_of_each_cpu(cpu: str, target: str) -> None:
    hw = CPUS[cpu]
    assert int8_target(hw) == target
    assert int8_file_for(hw) == target_file(target) == int8_file(RECIPES[target].weights, target)
    assert saturates(hw) is (cpu in ("avx2", "avx512"))


def test_caps_do_not_change_the_target() -> None:
    # ONEDNN_MAX_CPU_ISA holds oneDNN to AVX2, but onnxruntime's MLAS still runs VNNI kernels
    assert int8_target(_cpu(AMX, caps=True)) == "avx512_vnni"
    features_only = Hardware("x86_64", "", "mock", AVX2, 2)  # no cpu_features: use features
    assert int8_target(features_only) == "avx2"


def test_recipes_match_optimum_except_where_u8s8_saturates() -> None:
    for target in ("avx512_vnni", "arm64"):  # optimum: u8s8, per channel, 8-bit weights
        assert RECIPES[target].weights == "qint8" and RECIPES[target].per_channel
        assert not RECIPES[target].reduce_range
    assert RECIPES["avx2"] == RECIPES["avx512"] == AVX2_RECIPE
    assert set(RECIPES) == set(INT8_TARGETS)
    assert AVX2_RECIPE.weights == "quint8" or AVX2_RECIPE.reduce_range  # cannot saturate


@pytest.mark.parametrize(("cpu", "chosen"), [
    ("avx2", "model_quint8_avx2.onnx"), ("avx512", "model_qint8_avx512.onnx"),
    ("vnni", "model_qint8_avx512_vnni.onnx"), ("amx", "model_qint8_avx512_vnni.onnx"),
    ("arm", "model_qint8_arm64.onnx"),
])
def test_a_hub_folder_gives_each_cpu_its_own_graph(cpu: str, chosen: str) -> None:
    assert pick_int8_file(HUB, CPUS[cpu]) == (f"onnx/{chosen}", None)


@pytest.mark.parametrize(("cpu", "files", "chosen", "warns"), [
    # an AVX2 CPU: a graph that cannot saturate before one for an ISA it lacks
    ("avx2", ["model_qint8_avx512_vnni.onnx", "model_quint8_avx512.onnx"],
     "model_quint8_avx512.onnx", "lacks"),
    ("avx2", ["model_qint8_avx512_vnni.onnx", "model_qint8_arm64.onnx"],
     "model_qint8_avx512_vnni.onnx", "saturate"),
    ("avx2", ["model_qint8_avx512_vnni.onnx", "model_quint8_quantized.onnx"],
     "model_quint8_quantized.onnx", None),
    ("avx2", ["model_quantized.onnx"], "model_quantized.onnx", "saturate"),
    # AVX-512 without VNNI: the AVX2 graph (it has AVX2) before the VNNI one
    ("avx512", ["model_qint8_avx512_vnni.onnx", "model_quint8_avx2.onnx"],
     "model_quint8_avx2.onnx", None),
    ("avx512", ["model_qint8_avx512_vnni.onnx"], "model_qint8_avx512_vnni.onnx", "saturate"),
    # VNNI and AMX: u8s8 is exact and faster; an ISA the CPU has before one it lacks
    ("vnni", ["model_qint8_arm64.onnx", "model_qint8_avx512.onnx", "model_quint8_avx2.onnx"],
     "model_qint8_avx512.onnx", None),
    ("amx", ["model_qint8_arm64.onnx", "model_quint8_avx2.onnx"],
     "model_quint8_avx2.onnx", None),
    ("vnni", ["model_qint8_arm64.onnx"], "model_qint8_arm64.onnx", "lacks"),
    ("amx", ["model_qint8_quantized.onnx", "model_quint8_quantized.onnx"],
     "model_qint8_quantized.onnx", None),
    # Arm: every x86 graph is foreign; u8s8 before u8u8
    ("arm", ["model_quint8_avx2.onnx", "model_qint8_avx512_vnni.onnx"],
     "model_qint8_avx512_vnni.onnx", "lacks"),
    ("arm", ["model_qint8_arm64.onnx", "model_qint8_avx512_vnni.onnx"],
     "model_qint8_arm64.onnx", None),
])
def test_fallbacks(cpu: str, files: list[str], chosen: str, warns: str | None) -> None:
    files = ["onnx/model.onnx", *(f"onnx/{f}" for f in files)]
    file, warning = pick_int8_file(files, CPUS[cpu])
    assert file == f"onnx/{chosen}"
    if warns is None:
        assert warning is None
    else:
        assert warning is not None and warns in warning
        assert f"--target {int8_target(CPUS[cpu])}" in warning  # says what to do


def test_no_int8_graph() -> None:
    with pytest.raises(LookupError):
        pick_int8_file(["onnx/model.onnx", "onnx/model_O4.onnx"], CPUS["avx2"])


def _spec(root: Path, files: list[str]) -> FolderSpec:
    return FolderSpec(root=root, transformer_path=root, pooling=PoolingConfig(),
                      onnx_files=[f"onnx/{f}" for f in files])


def test_loader_picks_for_the_cpu_and_warns(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("onnxruntime")
    from sbert.backends.onnx.backend import choose_onnx_file
    from sbert.errors import ModelFolderError

    spec = _spec(tmp_path, ["model.onnx", "model_qint8_avx512_vnni.onnx",
                            "model_quint8_avx2.onnx"])
    with caplog.at_level(logging.WARNING):
        assert choose_onnx_file(spec, True, hardware=CPUS["avx2"]).name == "model_quint8_avx2.onnx"
        assert choose_onnx_file(spec, True, hardware=CPUS["amx"]).name == (
            "model_qint8_avx512_vnni.onnx")
        assert choose_onnx_file(spec, False, hardware=CPUS["avx2"]).name == "model.onnx"
    assert not caplog.records
    only_vnni = _spec(tmp_path, ["model.onnx", "model_qint8_avx512_vnni.onnx"])
    with caplog.at_level(logging.WARNING):
        assert choose_onnx_file(only_vnni, True, hardware=CPUS["avx2"]).name == (
            "model_qint8_avx512_vnni.onnx")
    assert "saturate" in caplog.text and "--target avx2" in caplog.text
    # an explicit file wins over the CPU's choice
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model_qint8_avx512_vnni.onnx").write_bytes(b"")
    assert choose_onnx_file(spec, True, "onnx/model_qint8_avx512_vnni.onnx",
                            hardware=CPUS["avx2"]).name == "model_qint8_avx512_vnni.onnx"
    # an int8-only folder has no fp32 graph to fall back on
    with pytest.raises(ModelFolderError, match="no ONNX graph"):
        choose_onnx_file(_spec(tmp_path, ["model_quantized.onnx"]), False)
    with pytest.raises(ModelFolderError, match="no int8 ONNX graph"):
        choose_onnx_file(_spec(tmp_path, ["model.onnx"]), True)


def test_the_cache_keeps_one_export_per_target(tiny_model_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from sbert.backends.onnx import cache
    from sbert.folder import read_folder

    spec = read_folder(tiny_model_dir)
    folders = set()
    for target in INT8_TARGETS:
        monkeypatch.setattr(cache, "int8_target", lambda t=target: t)
        folders.add(cache.cache_folder(tiny_model_dir, spec))
    assert len(folders) == len(INT8_TARGETS)  # machines of each kind sharing a cache
