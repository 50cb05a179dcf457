"""``sbert encode``, ``similarity``, ``info``: outputs, formats and one-line user errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import has_module
from tests.conftest import run_cli as run


@pytest.fixture()
def sentences_txt(tmp_path: Path) -> Path:
    path = tmp_path / "s.txt"
    path.write_text("a man is eating food\nthe dog runs\n\na cat\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".npy", ".parquet", ".jsonl"])
def test_encode_formats(tiny_model_dir: Path, tiny_encoder, sentences_txt: Path, tmp_path: Path,
                        suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"emb{suffix}"
    code, _, err = run(["encode", str(sentences_txt), "-o", str(out), "--model",
                        str(tiny_model_dir), "--device", "cpu"], capsys)
    assert code == 0, err
    expected = tiny_encoder.encode(["a man is eating food", "the dog runs", "", "a cat"])
    if suffix == ".npy":
        got = np.load(out)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        assert table.column("sentence").to_pylist()[1] == "the dog runs"
        got = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        got = np.array([r["embedding"] for r in rows], dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_encode_tsv_column(tiny_model_dir: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text('id\ttext\n1\tsays "hi"\n2\tthe dog\n', encoding="utf-8")
    out = tmp_path / "e.npy"
    model = str(tiny_model_dir)
    code, _, err = run(["encode", str(tsv), "-c", "text", "-o", str(out), "-m", model], capsys)
    assert code == 0, err
    assert np.load(out).shape == (2, 32)
    code, _, err = run(["encode", str(tsv), "-c", "nope", "-o", str(out), "-m", model], capsys)
    assert code == 2 and "no column 'nope'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encode", "/no/such/file.txt", "-o", "x.npy"], "does not exist"),
        (["encode", "{txt}", "-o", "x.csv"], "unknown format"),
        (["similarity", "a", "b", "--model", "/no/such/model"], "does not exist"),
        (["info", "--model", "nobody/no-such-model-xyz"], "not on disk"),
        (["encode"], "Missing argument"),
    ],
)
def test_user_errors_are_one_line(args: list[str], message: str, sentences_txt: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.replace("{txt}", str(sentences_txt)) for a in args]
    code, _, err = run(args, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_similarity_sentences_and_files(tiny_model_dir: Path, tiny_encoder, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["similarity", "a man", "a man", "-m", str(tiny_model_dir)], capsys)
    assert code == 0 and float(out.strip()) == pytest.approx(1.0, abs=1e-4)
    assert "similarity function: cosine (the model's similarity_fn_name)" in err
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the dog\na cat\n"), b.write_text("the dog\nthe car\n")
    code, out, _ = run(["similarity", str(a), str(b), "--files", "-m", str(tiny_model_dir)], capsys)
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert float(lines[0].split("\t")[0]) == pytest.approx(1.0, abs=1e-4)
    b.write_text("one line\n")
    code, _, err = run(["similarity", str(a), str(b), "--files", "-m", str(tiny_model_dir)], capsys)
    assert code == 2 and "has 2 sentences" in err


def test_similarity_uses_the_models_function(tiny_model_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from sbert import SentenceEncoder

    enc = SentenceEncoder(tiny_model_dir, device="cpu")
    enc.similarity_fn_name = "euclidean"
    enc.prompts, enc.default_prompt_name = {"query": "query: "}, "query"
    model = str(enc.save(tmp_path / "euclidean"))
    a, b = enc.encode(["a man"]), enc.encode(["the dog runs"])  # with the default prompt
    code, out, err = run(["similarity", "a man", "the dog runs", "-m", model], capsys)
    assert code == 0 and "similarity function: euclidean (the model's" in err
    assert float(out) == pytest.approx(float(enc.similarity_pairwise(a, b)[0]), abs=1e-4)
    assert float(out) < -0.01  # a negative distance, not a cosine
    code, out, err = run(["similarity", "a man", "the dog runs", "-m", model, "-f", "cosine"],
                         capsys)
    assert code == 0 and "similarity function: cosine (--function)" in err
    assert float(out) == pytest.approx(float((a * b).sum()), abs=1e-4)  # unit rows: dot = cos
    code, _, err = run(["similarity", "a", "b", "-m", model, "-f", "cos"], capsys)
    assert code == 2 and "'cos' is not one of" in err


def _info_rows(out: str) -> dict[str, str]:
    """The model section of ``sbert info``: key -> value (keys may hold one space)."""
    model = out.split("\nhardware\n", 1)[0]
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in model.splitlines()
                if line.strip())


def test_info(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["info", "-m", str(tiny_model_dir)], capsys)
    assert code == 0
    assert "BertModel" in out and "pooling         mean" in out
    assert "32" in out and "max_seq_length  64" in out
    rows = _info_rows(out)
    assert rows["folder"] == str(tiny_model_dir) and "onnx graph" not in rows  # torch here


@pytest.mark.skipif(not (has_module("onnxruntime") and has_module("onnx")),
                    reason="needs onnxruntime and onnx")
def test_info_names_the_model_folder_not_the_onnx_cache(
        tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder has no graph: ONNX runs its export from the cache. Before, the `folder`
    line named the cache's copy, as if it were the model's folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SBERT_CACHE", str(cache))
    monkeypatch.setenv("SBERT_BACKEND", "onnx")
    code, out, err = run(["info", "-m", str(tiny_model_dir)], capsys)
    assert code == 0, err
    rows = _info_rows(out)
    assert rows["folder"] == str(tiny_model_dir)
    graph, note = rows["onnx graph"].split(" ", 1)
    assert Path(graph).is_file() and Path(graph).is_relative_to(cache / "onnx")
    assert note == "(exported from the folder into the sbert cache)"


def test_info_hardware(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    from sbert.runtime import hardware, has_module

    avx2 = hardware.Hardware("x86_64", "AuthenticAMD", "AMD EPYC test", frozenset({"avx2"}), 2,
                             cpu_features=frozenset({"avx2", "avx512f"}),
                             caps=("ONEDNN_MAX_CPU_ISA=AVX2",))
    monkeypatch.setattr(hardware, "detect", lambda cuda=False: avx2)
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)
    code, out, err = run(["info", "-m", str(tiny_model_dir)], capsys)
    assert code == 0, err
    section = out.split("\nhardware\n", 1)[1]
    rows = dict(line.strip().split(None, 1) for line in section.splitlines())
    assert rows["cpu"] == "AMD EPYC test" and rows["cores"].startswith("2 ")
    assert rows["isa"] == "avx2" and rows["cuda"] == "none"
    assert rows["caps"].startswith("ONEDNN_MAX_CPU_ISA=AVX2 (the CPU has: avx2 avx512f")
    path = "onnx fp32" if has_module("onnxruntime") and has_module("onnx") else "torch fp32"
    assert rows["recommended"].startswith(f"{path} (auto: ")
    assert "set here: SBERT_BACKEND=torch, SBERT_PRECISION=fp32" in rows["recommended"]
    # onnxruntime ignores the caps, so the int8 target follows the CPU's own flags: AVX-512
    # without VNNI, which takes the u8u8 graph (its u8s8 kernel can saturate)
    assert rows["int8"].startswith("onnx/model_quint8_avx512.onnx (target avx512;")
    # what runs: the suite's pins, torch fp32
    assert "loaded with     torch fp32 (SBERT_BACKEND=torch, SBERT_PRECISION=fp32)" in out


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "encode" in out and "similarity" in out and "info" in out


def test_a_full_disk_is_one_line(tiny_model_dir: Path, sentences_txt: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import numpy

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(numpy, "save", full)
    out = tmp_path / "emb.npy"
    code, _, err = run(["encode", str(sentences_txt), "-o", str(out), "--model",
                        str(tiny_model_dir)], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "No space left on device" in err
    assert not out.exists() and not list(tmp_path.glob("*partial*"))
