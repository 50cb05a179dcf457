"""ONNX export: folder layout, dynamic axes, optimised and int8 graphs, the CLI, MiniLM parity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sbert.backends.onnx.targets import int8_file_for
from tests.conftest import DATA_DIR, has_module, requires_data

pytestmark = [
    pytest.mark.skipif(not has_module("onnxruntime"), reason="needs onnxruntime"),
    pytest.mark.filterwarnings("ignore:.*were truncated:UserWarning"),
]


def test_export_writes_sentence_transformers_folder(tiny_encoder, tmp_path: Path) -> None:
    import onnx

    from sbert.folder import read_folder

    out = tiny_encoder.export_onnx(tmp_path / "exported", quantize="int8")
    spec = read_folder(out)
    assert spec.onnx_files == ["onnx/model.onnx", int8_file_for()]  # this CPU's target
    assert spec.has_torch_weights and spec.normalize and spec.pooling.modes == ("mean",)
    assert (out / "tokenizer.json").exists() and (out / "modules.json").exists()
    assert not list((out / "onnx").glob("*partial*"))
    graph = onnx.load(str(out / "onnx" / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["last_hidden_state"]
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param and dims[1].dim_param  # dynamic batch and sequence axes
    ops = {n.op_type for n in graph.node}
    assert {"LayerNormalization", "Gelu"} <= ops  # onnxruntime's offline fusions applied
    assert not {"BiasGelu", "SkipLayerNormalization"} & ops  # ... but not the slow ones
    assert "Gemm" in ops  # linear layers add their bias inside the multiply (bias_gemm)
    int8_ops = {n.op_type for n in onnx.load(str(out / spec.onnx_files[1])).graph.node}
    assert int8_ops & {"MatMulInteger", "DynamicQuantizeMatMul", "QAttention"}


def test_export_in_place_adds_graphs(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sbert import SentenceEncoder

    path = tmp_path / "model"
    shutil.copytree(tiny_model_dir, path)
    enc = SentenceEncoder(path, device="cpu")
    before = sorted(p.name for p in path.iterdir())
    enc.export_onnx(path)
    assert sorted(p.name for p in path.iterdir()) == sorted([*before, "onnx"])
    assert [p.name for p in (path / "onnx").iterdir()] == ["model.onnx"]
    np.testing.assert_allclose(
        SentenceEncoder(path, backend="onnx").encode(["a dog plays"]),
        enc.encode(["a dog plays"]), atol=1e-5,
    )


def test_export_rejects_bad_requests(tiny_encoder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected one of"):
        tiny_encoder.export_onnx(tmp_path / "x", quantize="int4")


def test_export_every_target(tiny_encoder, tmp_path: Path) -> None:
    from sbert import SentenceEncoder
    from sbert.backends.onnx.targets import RECIPES, target_file
    from sbert.errors import UsageError
    from sbert.folder import INT8_TARGETS, read_folder

    out = tiny_encoder.export_onnx(tmp_path / "all", quantize="int8", target="all")
    files = [target_file(t) for t in INT8_TARGETS]
    assert read_folder(out).onnx_files == sorted(["onnx/model.onnx", *files])
    assert "onnx/model_qint8_avx512_vnni.onnx" in files  # sentence-transformers' names
    assert f"onnx/model_{RECIPES['avx2'].weights}_avx2.onnx" in files
    data = {t: (out / target_file(t)).read_bytes() for t in INT8_TARGETS}
    for a in INT8_TARGETS:  # targets with the same recipe share one graph, others differ
        for b in INT8_TARGETS:
            assert (data[a] == data[b]) is (RECIPES[a] == RECIPES[b])
    enc = SentenceEncoder(out, backend="onnx", quantized=True)
    assert enc.backend.path == out / int8_file_for()  # the loader picks this CPU's graph
    one = tiny_encoder.export_onnx(tmp_path / "avx2", quantize="int8", target="avx2")
    assert read_folder(one).onnx_files == ["onnx/model.onnx", target_file("avx2")]
    with pytest.raises(UsageError, match="expected one of"):
        tiny_encoder.export_onnx(tmp_path / "x", quantize="int8", target="sse4")
    with pytest.raises(UsageError, match="quantize"):
        tiny_encoder.export_onnx(tmp_path / "x", target="avx2")


def _run(argv: list[str]) -> int:
    """Run the CLI in-process; the exit code (0 on success)."""
    from sbert.cli.main import main

    try:
        main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0


def test_cli_export_then_encode(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sbert.cli.export import TARGETS
    from sbert.folder import INT8_TARGETS

    assert TARGETS == (*INT8_TARGETS, "all")  # --help spells them out without importing
    out = tmp_path / "exported"
    assert _run(["export", "onnx", str(tiny_model_dir), str(out), "--quantize", "int8"]) == 0
    assert (out / int8_file_for()).exists()
    arm = tmp_path / "arm"
    assert _run(["export", "onnx", str(tiny_model_dir), str(arm), "--quantize", "int8",
                 "--target", "arm64"]) == 0
    assert sorted(p.name for p in (arm / "onnx").iterdir()) == ["model.onnx",
                                                               "model_qint8_arm64.onnx"]
    sentences = tmp_path / "s.txt"
    sentences.write_text("a man plays a guitar\nthe dog runs\n\n", encoding="utf-8")
    for extra in ([], ["--backend", "onnx"], ["--quantized"]):
        target = tmp_path / f"emb{len(extra)}.npy"
        assert _run(["encode", str(sentences), "-o", str(target), "-m", str(out), *extra]) == 0
        assert np.load(target).shape == (3, 32)


def test_cli_user_errors(tiny_model_dir: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    cases = [
        (["export", "onnx", str(tiny_model_dir), str(afile)], "is a file"),
        (["export", "onnx", str(tiny_model_dir), str(tmp_path / "o"), "--target", "avx2"],
         "--quantize int8"),
        (["similarity", "a", "b", "-m", str(tiny_model_dir), "--backend", "torch",
          "--quantized"], "--backend onnx"),
        (["similarity", "a", "b", "-m", str(tiny_model_dir), "--backend", "onnx",
          "--device", "cuda"], "CPU"),
    ]
    for argv, message in cases:
        assert _run(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_cli_info_lists_backends(tiny_encoder, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tiny_encoder.export_onnx(tmp_path / "exported", quantize="int8")
    assert _run(["info", "-m", str(out), "--quantized"]) == 0
    text = capsys.readouterr().out
    assert f"torch, onnx (onnx/model.onnx, {int8_file_for()})" in text
    assert f"onnx ({int8_file_for()})" in text  # the graph it loaded


def _sts_sentences(limit: int) -> list[str]:
    from sbert.data.sts import read_pairs_table

    data = read_pairs_table(DATA_DIR / "stsbenchmark" / "test.tsv")
    return [s for pair in zip(data.sentences1, data.sentences2, strict=True) for s in pair][:limit]


@pytest.mark.slow
@requires_data("stsbenchmark", "test.tsv")
def test_minilm_onnx_parity(minilm, tmp_path: Path) -> None:
    """fp32 ONNX: every cosine >= 0.9999 vs our torch path; int8: >= 0.95 (issue 6, point 3)."""
    from sbert import SentenceEncoder

    sentences = _sts_sentences(100) + ["", "word " * 400]
    out = minilm.export_onnx(tmp_path / "minilm", quantize="int8")
    ref = minilm.encode(sentences, normalize=True)
    fp32 = SentenceEncoder(out, backend="onnx").encode(sentences, normalize=True)
    int8 = SentenceEncoder(out, backend="onnx", quantized=True).encode(sentences, normalize=True)
    assert np.isfinite(int8).all() and np.isfinite(fp32).all()
    assert (fp32 * ref).sum(axis=1).min() >= 0.9999
    assert (int8 * ref).sum(axis=1).min() >= 0.95


def test_int8_smooths_then_keeps_ffn_outputs_fp32_when_a_sentence_drifts(
    tiny_encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import onnx

    from sbert.backends.onnx import graph, quantize

    monkeypatch.setattr(quantize, "INT8_MIN_COSINE", 1.01)  # no int8 graph can pass: fall back
    monkeypatch.setattr(graph, "SMOOTH_MIN_RATIO", 1.0)  # random weights have no outliers
    out = tiny_encoder.export_onnx(tmp_path / "exported", quantize="int8")
    nodes = onnx.load(str(out / int8_file_for())).graph.node
    kept = [n.name for n in nodes if n.op_type == "MatMul" and "/output/dense/" in n.name
            and "attention" not in n.name]
    assert len(kept) == 2  # one feed-forward output per layer stays fp32
    assert any(n.name.endswith("_smooth") for n in nodes)  # ... after smoothing
    assert "check its quality" in caplog.text
    assert not list((out / "onnx").glob("*partial*"))


def test_bias_gemm_keeps_the_function(tiny_encoder, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    from sbert.backends.onnx.export import export_transformer
    from sbert.backends.onnx.graph import bias_gemm
    from sbert.backends.onnx.quantize import probe_feed

    plain, folded = tmp_path / "plain.onnx", tmp_path / "folded.onnx"
    export_transformer(tiny_encoder.backend, tiny_encoder.tokenizer, plain)
    layers = tiny_encoder.network.transformer.config.num_hidden_layers
    assert bias_gemm(plain, folded) == 6 * layers  # q, k, v, out, ffn in, ffn out
    ops = [n.op_type for n in onnx.load(str(folded)).graph.node]
    assert ops.count("Gemm") == 6 * layers
    feed = probe_feed(tiny_encoder.tokenizer)
    for rows in (slice(0, 1), slice(None)):  # batch 1 and a padded batch
        outs = []
        for path in (plain, folded):
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = {i.name for i in session.get_inputs()}
            outs.append(session.run(None, {k: v[rows] for k, v in feed.items() if k in names})[0])
        assert outs[1].shape == outs[0].shape
        np.testing.assert_allclose(outs[1], outs[0], atol=1e-5)


def test_smoothing_keeps_the_fp32_function(tiny_encoder, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    from sbert.backends.onnx.export import export_transformer
    from sbert.backends.onnx.graph import smooth_activations
    from sbert.backends.onnx.quantize import probe_feed

    plain, smoothed = tmp_path / "plain.onnx", tmp_path / "smoothed.onnx"
    export_transformer(tiny_encoder.backend, tiny_encoder.tokenizer, plain)
    feed = probe_feed(tiny_encoder.tokenizer)
    done = smooth_activations(plain, smoothed, [feed], alpha=0.5, min_ratio=1.0)
    graph = onnx.load(str(smoothed)).graph
    muls = [n for n in graph.node if n.name.endswith("_smooth")]
    assert done and len(muls) == len(done)
    outs = []
    for path in (plain, smoothed):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        outs.append(session.run(None, {k: v for k, v in feed.items() if k in names})[0])
    np.testing.assert_allclose(outs[1], outs[0], atol=1e-4)
    # an even input is left alone
    assert smooth_activations(plain, smoothed, [feed], min_ratio=1e9) == []


def test_a_failed_int8_export_leaves_no_partial_graph(tiny_encoder, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from sbert.backends.onnx import export

    def fail(spec, tokenizer, fp32: Path, out: Path, recipe) -> float:  # type: ignore[no-untyped-def]
        out.write_bytes(b"half a graph")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "quantize_checked", fail)
    with pytest.raises(OSError, match="No space left"):
        tiny_encoder.export_onnx(tmp_path / "exported", quantize="int8")
    onnx_dir = tmp_path / "exported" / "onnx"
    assert not list(onnx_dir.glob("*partial*"))
    assert not list(onnx_dir.glob("model_*int8*"))
