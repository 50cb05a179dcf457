"""docs/RESULTS.md and the results blocks of other docs are what benchmarks/results/*.json say."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


gen = load_script("sbert_gen_results", ROOT / "scripts" / "gen_results.py")
common = gen.COMMON  # benchmarks/_common.py: the writer and the table formatter
REGENERATE = "python scripts/gen_results.py"


def test_committed_docs_match_their_json() -> None:
    stale = gen.stale()
    assert stale == [], f"{[p.as_posix() for p in stale]} differ from their JSON: {REGENERATE}"


def test_every_results_file_parses_and_names_its_machine() -> None:
    for path in sorted((ROOT / gen.RESULTS).glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        gen.validate(record, path)
        machine = record["machine"]
        assert machine["class"] and machine["cpu"] and machine["cores"] >= 1, path
        assert isinstance(machine["isa"], list), path
        assert record["commit"] and record["command"] and record["date"], path
        assert record["full"], f"{path}: a smoke run in benchmarks/results"


def test_results_folder_is_tracked_and_out_ignored() -> None:
    ignore = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "benchmarks/out/" in ignore
    assert not any(line.strip().rstrip("/") in ("benchmarks/results", "benchmarks")
                   for line in ignore)
    assert (ROOT / gen.RESULTS / "README.md").exists()


# --- the generator on a results file made by the real writer --------------------------------

DOC = """# Some doc

Speed: <!-- results encode table=speed row="sbert onnx int8" col=ratio -->?<!-- /results -->.

<!-- results encode table=speed rows="sentence-transformers|sbert onnx int8"
     cols="contender|ratio" -->
<!-- /results -->
"""


def _write_fixture(folder: Path, int8_ratio: float = 7.2125) -> Path:
    rows = [{"contender": "sentence-transformers", "rate": 431.4, "ratio": 1.0,
             "rounds": [1.0, 1.0], "min_cosine": None},
            {"contender": "sbert onnx int8", "rate": 3111.9, "ratio": int8_ratio,
             "rounds": [7.1, 7.3], "min_cosine": 0.95924331}]
    tab = common.table("speed", "all-MiniLM-L6-v2, batch 32", [
        ("contender", "contender", ""), ("rate", "sentences/s", "{:.0f}"),
        ("ratio", "x sentence-transformers", "{:.2f}x"), ("rounds", "per round", "{:.2f}"),
        ("min_cosine", "min cosine", "{:.7f}")], rows)
    args = argparse.Namespace(out=folder, no_write=False, rounds=2)
    path = common.write_result("encode", [tab], args, full=True, notes=["a fixture"],
                               limits={"ORT": 455.04})
    assert path is not None
    return Path(path)


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    """A copy of the template and one doc with blocks, and a results folder with one file."""
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / gen.TEMPLATE, tmp_path / gen.TEMPLATE)
    (tmp_path / "docs" / "onnx.md").write_text(DOC, encoding="utf-8")
    _write_fixture(tmp_path / gen.RESULTS)
    for path, text in gen.render(tmp_path).items():
        (tmp_path / path).write_text(text, encoding="utf-8")
    return tmp_path


def test_writer_records_machine_versions_and_command(site: Path) -> None:
    (path,) = (site / gen.RESULTS).glob("*.json")
    record = json.loads(path.read_text(encoding="utf-8"))
    gen.validate(record, path)
    assert path.name == f"encode.{record['machine']['class']}.json"
    assert set(common.LIBRARIES) <= set(record["versions"])
    assert record["versions"]["numpy"]
    assert record["limits_gflops"] == {"ORT": 455.0}
    assert record["date"].endswith("Z") and record["command"]


def test_generated_docs_carry_the_json_figures(site: Path) -> None:
    results = (site / gen.GENERATED).read_text(encoding="utf-8")
    assert "| sbert onnx int8 | 3112 | 7.21x | 7.10, 7.30 | 0.9592433 |" in results
    assert "ORT 455 GFLOP/s" in results and "a fixture" in results
    assert "No results yet" in results  # every other benchmark
    doc = (site / "docs" / "onnx.md").read_text(encoding="utf-8")
    assert "Speed: <!-- results encode table=speed" in doc and "-->7.21x<!-- /results -->" in doc
    assert "| sbert onnx int8 | 7.21x |" in doc and "sentences/s" not in doc
    assert gen.stale(site) == []


def test_a_number_edited_by_hand_is_caught(site: Path) -> None:
    path = site / gen.GENERATED
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("| 7.21x |", "| 7.45x |"), encoding="utf-8")
    assert good != path.read_text(encoding="utf-8")
    assert gen.stale(site) == [gen.GENERATED]
    path.write_text(good, encoding="utf-8")

    doc = site / "docs" / "onnx.md"
    doc.write_text(doc.read_text(encoding="utf-8").replace("-->7.21x<", "-->8x<"),
                   encoding="utf-8")
    assert gen.stale(site) == [Path("docs/onnx.md")]


def test_a_new_run_makes_the_docs_stale(site: Path) -> None:
    _write_fixture(site / gen.RESULTS, int8_ratio=6.5)
    assert set(gen.stale(site)) == {gen.GENERATED, Path("docs/onnx.md")}


def test_no_results_yet(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / gen.TEMPLATE, tmp_path / gen.TEMPLATE)
    (tmp_path / "docs" / "onnx.md").write_text(DOC, encoding="utf-8")
    out = gen.render(tmp_path)
    text = out[gen.GENERATED]
    for name, command in gen.COMMANDS.items():
        assert f"<!-- results {name}" in text, f"the template has no block for {name}"
        assert f"run `{command}`" in text
    assert "-->(not measured yet)<!-- /results -->" in out[Path("docs/onnx.md")]


def test_a_block_asking_for_a_missing_table_names_the_doc(site: Path) -> None:
    doc = site / "docs" / "onnx.md"
    doc.write_text(DOC + "\n<!-- results encode table=sweep -->\n<!-- /results -->\n",
                   encoding="utf-8")
    with pytest.raises(gen.ResultsError, match=r"docs/onnx.md: .*has no table 'sweep'"):
        gen.render(site)


def test_a_smoke_run_is_never_written_into_the_results_folder(tmp_path: Path,
                                                              monkeypatch: Any) -> None:
    results = tmp_path / "results"
    monkeypatch.setattr(common, "RESULTS", results)
    monkeypatch.setattr(common, "machine_limits", lambda device=None: {"MKL": 1.0})
    args = argparse.Namespace(out=results, no_write=False)
    assert common.write_result("encode", [], args, full=False) is None
    assert not results.exists()
    elsewhere = tmp_path / "smoke"
    args = argparse.Namespace(out=elsewhere, no_write=False)
    path = common.write_result("encode", [], args, full=False)
    assert path is not None and json.loads(Path(path).read_text())["full"] is False
    args = argparse.Namespace(out=tmp_path / "none", no_write=True)
    assert common.write_result("encode", [], args, full=True) is None


@pytest.mark.parametrize(("flags", "gpu", "expected"), [
    (["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"], None, "avx512-amx"),
    (["avx2", "avx512f", "avx512_vnni", "avx512_bf16"], None, "avx512-bf16"),
    (["avx2", "avx512f", "avx512_vnni"], None, "avx512-vnni"),
    (["avx2"], None, "avx2"),
    (["neon", "sve"], None, "arm-sve"),
    (["neon"], None, "arm-neon"),
    (["avx2"], "NVIDIA H200", "cuda-nvidia-h200"),
])
def test_machine_class(flags: list[str], gpu: str | None, expected: str) -> None:
    assert common.machine_class(flags, gpu) == expected


# --- every result says how close to the machine's limit it ran ------------------------------

def test_a_result_without_its_own_limits_records_the_machines(tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    asked: list[Any] = []

    def fake(device: str | None = None) -> dict[str, float]:
        asked.append(device)
        return {"MKL": 101.26, "oneDNN": 99.0}

    monkeypatch.setattr(common, "machine_limits", fake)
    args = argparse.Namespace(out=tmp_path, no_write=False)
    path = common.write_result("mining", [], args, full=True)
    assert path is not None and asked == [None]
    assert json.loads(Path(path).read_text())["limits_gflops"] == {"MKL": 101.3, "oneDNN": 99.0}
    path = common.write_result("mining", [], args, full=True, limits={"ORT": 50.0})
    assert path is not None and asked == [None]  # a script's own limits are not measured again
    assert json.loads(Path(path).read_text())["limits_gflops"] == {"ORT": 50.0}


def test_machine_limits_measure_the_cpu_once_per_process() -> None:
    limits = common.machine_limits(n=64)
    assert {"MKL", "oneDNN"} <= set(limits) and all(v > 0 for v in limits.values())
    import importlib.util

    has_ort = all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx"))
    assert ("ORT" in limits) == has_ort
    assert common.machine_limits(n=64) is limits  # cached: measured once
    assert common.machine_limits("cpu", n=64) is limits  # any CPU device: the same limits


def test_a_gpu_run_measures_its_gpu_in_true_fp32_and_fp16(monkeypatch: Any) -> None:
    import sys

    import torch

    limits_module = sys.modules["_limits"]  # what _common imported
    calls: list[tuple[int, str, str, str]] = []

    def fake(n: int, repeats: int = 5, device: str = "cpu", dtype: str = "float32") -> float:
        calls.append((n, device, dtype, torch.get_float32_matmul_precision()))
        return 1000.0 if dtype == "float32" else 8000.0

    monkeypatch.setattr(limits_module, "matmul_gflops", fake)
    before = torch.get_float32_matmul_precision()
    assert common.machine_limits("cuda:1", n=96) == {"CUDA fp32": 1000.0, "CUDA fp16": 8000.0}
    assert calls == [(96, "cuda:1", "float32", "highest"), (96, "cuda:1", "float16", "highest")]
    assert torch.get_float32_matmul_precision() == before
    # a limit that cannot be measured is left out; the run's results are still written
    monkeypatch.setattr(limits_module, "matmul_gflops", lambda *a, **k: 1 / 0)
    assert common.machine_limits("cuda:2", n=96) == {}
    assert torch.get_float32_matmul_precision() == before


def test_flops_columns_set_a_figure_against_the_best_limit() -> None:
    limits = {"MKL": 100.0, "oneDNN": 200.0, "ORT": 150.0}
    assert common.flops_columns(limits) == [("gflops", "GFLOP/s", "{:.0f}"),
                                            ("of_limit", "of oneDNN limit", "{:.0%}")]
    assert common.flops_columns(limits, "stock_", "stock ")[1] == (
        "stock_of_limit", "stock of oneDNN limit", "{:.0%}")
    assert common.flops_cells(50e9, limits) == {"gflops": 50.0, "of_limit": 0.25}
    assert common.flops_cells(None, limits) == {"gflops": None, "of_limit": None}
    assert common.flops_cells(50e9, {}) == {"gflops": 50.0, "of_limit": None}
    # training: forward + backward counted as 3x the forward
    assert common.TRAIN_FACTOR == 3
    assert common.bert_flops(10, 4, 8, 2) == 10 * 2 * 2 * (4 * 4 * 4 + 2 * 4 * 8)


def test_model_flops_count_the_real_tokens(tiny_encoder: Any) -> None:
    texts = ["a b c", "a much longer sentence than the first one", ""]
    tokens, flops = common.model_flops(tiny_encoder, texts)
    assert tokens == int(tiny_encoder.tokenizer.encode(texts).lengths.sum()) > 2 * len(texts)
    cfg = json.loads((tiny_encoder.spec.transformer_path / "config.json").read_text())
    assert flops == common.bert_flops(tokens, cfg["hidden_size"], cfg["intermediate_size"],
                                      cfg["num_hidden_layers"])


def _record(folder: Path, name: str, limits: dict[str, float] | None, rows: list[dict[str, Any]],
            device: str | None = None, with_flops: bool = True) -> Path:
    columns = [("server", "server", ""), ("sentences_s", "sentences/s", "{:.0f}")]
    if with_flops:
        columns += common.flops_columns(limits or {})
    tab = common.table("shape-64x1", "64 clients x 1 sentence/request", columns, rows)
    args = argparse.Namespace(out=folder, no_write=False)
    path = common.write_result(name, [tab], args, full=True, limits=limits, notes=["fake"])
    assert path is not None
    return Path(path)


def test_every_section_shows_its_limits_and_the_new_columns(tmp_path: Path,
                                                            monkeypatch: Any) -> None:
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / gen.TEMPLATE, tmp_path / gen.TEMPLATE)
    limits = {"MKL": 120.0, "oneDNN": 110.0, "ORT": 90.0}
    cells = common.flops_cells(1000 * 21e6, limits)  # 1,000 sentences/s x 21 MFLOP each
    _record(tmp_path / gen.RESULTS, "serve", limits, [
        {"server": "ours-torch", "sentences_s": 1000.0, **cells},
        {"server": "infinity-torch", "sentences_s": None, **common.flops_cells(None, limits)}])
    # a result from before the limits: no columns, no limits (the writer records {} as given)
    _record(tmp_path / gen.RESULTS, "packed", {}, [{"server": "x", "sentences_s": 5.0}],
            with_flops=False)
    text = gen.render(tmp_path)[gen.GENERATED]
    serve = text[text.index("<!-- results serve"):text.index("<!-- results distributed")]
    assert ("- measured fp32 matrix-multiply limits (2048^3): MKL 120 GFLOP/s, oneDNN 110 "
            "GFLOP/s, ORT 90 GFLOP/s") in serve
    assert "| server | sentences/s | GFLOP/s | of MKL limit |" in serve
    assert "| ours-torch | 1000 | 21 | 18% |" in serve
    assert "| infinity-torch |  |  |  |" in serve  # not run: empty cells
    packed = text[text.index("<!-- results packed"):text.index("<!-- results serve")]
    assert "- measured matrix-multiply limits: not recorded" in packed
    assert "| server | sentences/s |\n| --- | --- |\n| x | 5 |" in packed  # as before
    assert "GFLOP/s" not in packed


def test_a_gpu_result_names_the_gpu_limits(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(common, "machine_info", lambda device=None: {
        "class": "cuda-nvidia-h200", "cpu": "Xeon", "vendor": "intel", "isa": ["avx2"],
        "caps": [], "cores": 16, "arch": "x86_64", "gpu": "NVIDIA H200"})
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / gen.TEMPLATE, tmp_path / gen.TEMPLATE)
    args = argparse.Namespace(out=tmp_path / gen.RESULTS, no_write=False)
    common.write_result("encode_gpu", [], args, full=True, device="cuda",
                        limits={"CUDA fp32": 51234.0, "CUDA fp16": 612345.0})
    text = gen.render(tmp_path)[gen.GENERATED]
    assert ("- measured matrix-multiply limits (8192^3 on the GPU): CUDA fp32 51234 GFLOP/s, "
            "CUDA fp16 612345 GFLOP/s") in text


def test_steal_share_reads_proc_stat() -> None:
    start = common.cpu_ticks("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3\n")
    end = common.cpu_ticks("cpu  200 0 100 1500 10 0 0 140 0 0\n")
    assert start == (40, 1000) and end == (140, 1950)
    assert common.steal_share(start, end) == pytest.approx(100 / 950)
    assert common.steal_share(None, end) is None
    assert common.cpu_ticks("intr 1 2 3\n") is None


def test_process_cpu_reads_this_process() -> None:
    name, seconds = common.process_cpu(os.getpid())
    assert name and seconds > 0
    assert common.cpu_fields("cpu  1 2 3 4 5 6 7 8 0 0\n") == [1, 2, 3, 4, 5, 6, 7, 8]
    with pytest.raises(OSError):
        common.process_cpu(2**31 - 1)
