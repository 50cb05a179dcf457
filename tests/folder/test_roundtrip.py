"""The folder format round-trips whole: similarity function and prompts, both directions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sbert import SentenceEncoder
from sbert.errors import ModelFolderError, UsageError
from sbert.folder import SIMILARITY_FNS, read_folder
from tests.conftest import has_module, write_st_files

SENTENCES = ["a man is eating food", "the dog runs in the park", "a cat", ""]
OTHERS = ["a woman plays the guitar", "the dog runs outside", "a small cat", "music"]
# "query" and "document" are the names sentence-transformers 6.x always has ("" by default)
PROMPTS = {"query": "query: ", "document": "passage: ", "topic": "topic: "}

requires_reference = pytest.mark.skipif(
    not has_module("sentence_transformers"),
    reason="needs sentence-transformers (the reference), a test dependency",
)


def _st(path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cos.min())


@pytest.fixture(scope="module")
def plain_dir(tiny_hf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mean pooling without Normalize, so that dot, cosine and distances all differ."""
    path = tmp_path_factory.mktemp("plain") / "model"
    shutil.copytree(tiny_hf_dir, path)
    write_st_files(path, {"pooling_mode_mean_tokens": True}, normalize=False)
    return path


def _configured(path: Path, fn: str) -> SentenceEncoder:
    enc = SentenceEncoder(path, device="cpu")
    enc.similarity_fn_name = fn
    enc.prompts = dict(PROMPTS)
    enc.default_prompt_name = "query"
    return enc


def _top_config(path: Path) -> dict[str, object]:
    return json.loads((path / "config_sentence_transformers.json").read_text())


def _write_top_config(path: Path, **cfg: object) -> None:
    (path / "config_sentence_transformers.json").write_text(json.dumps(cfg))


# -- sbert -> sbert ----------------------------------------------------------------------------
@pytest.mark.parametrize("fn", SIMILARITY_FNS)
def test_save_keeps_function_and_prompts(plain_dir: Path, tmp_path: Path, fn: str) -> None:
    enc = _configured(plain_dir, fn)
    out = enc.save(tmp_path / fn)
    cfg = _top_config(out)
    assert cfg["similarity_fn_name"] == fn and cfg["prompts"] == PROMPTS
    assert cfg["default_prompt_name"] == "query" and cfg["model_type"] == "SentenceTransformer"
    again = SentenceEncoder(out, device="cpu")
    assert again.similarity_fn_name == fn
    assert again.prompts == PROMPTS and again.default_prompt_name == "query"
    np.testing.assert_allclose(again.encode(SENTENCES, prompt_name="topic"),
                               enc.encode(SENTENCES, prompt_name="topic"), atol=1e-6)


def test_a_folder_without_the_config_is_cosine_without_prompts(plain_dir: Path) -> None:
    assert not (plain_dir / "config_sentence_transformers.json").exists()
    enc = SentenceEncoder(plain_dir, device="cpu")
    assert (enc.similarity_fn_name, enc.prompts, enc.default_prompt_name) == ("cosine", {}, None)


# -- sbert -> sentence-transformers ------------------------------------------------------------
@pytest.mark.reference
@requires_reference
@pytest.mark.parametrize("fn", SIMILARITY_FNS)
def test_reference_loads_function_and_prompts(plain_dir: Path, tmp_path: Path, fn: str) -> None:
    enc = _configured(plain_dir, fn)
    ref = _st(enc.save(tmp_path / fn))
    assert ref.similarity_fn_name == fn
    assert ref.prompts == PROMPTS and ref.default_prompt_name == "query"

    ours_doc = enc.encode(SENTENCES, prompt_name="document")
    ref_doc = ref.encode(SENTENCES, prompt_name="document")
    assert min_cosine(ours_doc, ref_doc) >= 0.99999
    ours_query, ref_query = enc.encode(OTHERS), ref.encode(OTHERS)  # the default prompt
    assert min_cosine(ours_query, ref_query) >= 0.99999
    assert min_cosine(ours_query, enc.encode(OTHERS, prompt="")) < 0.99999  # prompts matter

    expected = ref.similarity(ours_doc, ours_query).numpy()  # (4, 4)
    np.testing.assert_allclose(enc.similarity(ours_doc, ours_query), expected,
                               rtol=1e-5, atol=1e-5)
    pairwise = ref.similarity_pairwise(ours_doc, ours_query).numpy()  # (4,)
    np.testing.assert_allclose(enc.similarity_pairwise(ours_doc, ours_query), pairwise,
                               rtol=1e-5, atol=1e-5)


# -- sentence-transformers -> sbert ------------------------------------------------------------
@pytest.mark.reference
@requires_reference
@pytest.mark.parametrize("fn", SIMILARITY_FNS)
def test_we_load_function_and_prompts_of_reference_save(plain_dir: Path, tmp_path: Path,
                                                        fn: str) -> None:
    ref = _st(plain_dir)
    ref.similarity_fn_name = fn
    ref.prompts = {"query": "query: ", "document": "", "clustering": "cluster: "}
    ref.default_prompt_name = "clustering"
    ref.save(str(tmp_path / "st6"))
    ours = SentenceEncoder(tmp_path / "st6", device="cpu")
    assert ours.similarity_fn_name == fn
    assert ours.prompts == ref.prompts and ours.default_prompt_name == "clustering"

    for name in ("query", "document", "clustering"):
        assert min_cosine(ours.encode(SENTENCES, prompt_name=name),
                          ref.encode(SENTENCES, prompt_name=name)) >= 0.99999
    a, b = ours.encode(SENTENCES), ours.encode(OTHERS)  # with the default prompt
    assert min_cosine(a, ref.encode(SENTENCES)) >= 0.99999
    np.testing.assert_allclose(ours.similarity(a, b), ref.similarity(a, b).numpy(),
                               rtol=1e-5, atol=1e-5)


# -- changing the function and prompts through sbert's API -------------------------------------
def test_save_refuses_an_unknown_similarity_function(plain_dir: Path, tmp_path: Path) -> None:
    enc = _configured(plain_dir, "cos")
    with pytest.raises(UsageError, match=r"unknown similarity_fn_name 'cos'.*'cosine', 'dot'"):
        enc.save(tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_save_refuses_a_default_prompt_that_is_not_a_prompt(plain_dir: Path,
                                                            tmp_path: Path) -> None:
    enc = _configured(plain_dir, "dot")
    enc.default_prompt_name = "search"
    with pytest.raises(UsageError, match=r"default_prompt_name 'search'.*'document', 'query'"):
        enc.save(tmp_path / "out")
    enc.prompts = {"q": None}  # type: ignore[dict-item]
    enc.default_prompt_name = None
    with pytest.raises(UsageError, match="prompts must map prompt names to prompt strings"):
        enc.save(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_prompt_name_lists_the_known_ones(plain_dir: Path) -> None:
    enc = _configured(plain_dir, "cosine")
    with pytest.raises(UsageError, match=r"unknown prompt_name 'qeury'.*'document', 'query'"):
        enc.encode(SENTENCES, prompt_name="qeury")
    enc.default_prompt_name = "gone"
    with pytest.raises(UsageError, match="unknown default_prompt_name 'gone'"):
        enc.encode(SENTENCES)
    bare = SentenceEncoder(plain_dir, device="cpu")
    with pytest.raises(ValueError, match=r"prompts are \(none\)"):
        bare.encode(SENTENCES, prompt_name="query")


def test_prompt_resolution(plain_dir: Path) -> None:
    enc = _configured(plain_dir, "cosine")
    plain = enc.encode(SENTENCES, prompt="")  # "" overrides the default prompt
    np.testing.assert_array_equal(plain, SentenceEncoder(plain_dir, device="cpu").encode(SENTENCES))
    by_text = enc.encode(["query: " + s for s in SENTENCES], prompt="")
    np.testing.assert_allclose(enc.encode(SENTENCES), by_text, atol=1e-6)  # default: "query"
    np.testing.assert_allclose(enc.encode(SENTENCES, prompt_name="topic", prompt="query: "),
                               by_text, atol=1e-6)  # prompt wins over prompt_name


def test_similarity_functions_are_the_reference_formulas(plain_dir: Path) -> None:
    enc = SentenceEncoder(plain_dir, device="cpu")
    a, b = enc.encode(SENTENCES), enc.encode(OTHERS)  # (4, 32) each, not normalized
    diff = a[:, None, :] - b[None, :, :]  # (4, 4, 32)
    norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :]
    expected = {
        "cosine": a @ b.T / norms, "dot": a @ b.T,
        "euclidean": -np.linalg.norm(diff, axis=2), "manhattan": -np.abs(diff).sum(axis=2),
    }
    for fn, matrix in expected.items():
        enc.similarity_fn_name = fn
        np.testing.assert_allclose(enc.similarity(a, b), matrix, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(enc.similarity_pairwise(a, b), np.diag(matrix),
                                   rtol=1e-5, atol=1e-5)
    wide = np.random.default_rng(0).normal(size=(40, 384)).astype(np.float32) * 3
    for fn in ("euclidean", "manhattan"):  # a vector is at distance 0 from itself
        enc.similarity_fn_name = fn  # (float32 |x|^2 + |y|^2 - 2xy would leave 0.07 here)
        np.testing.assert_allclose(np.diag(enc.similarity(wide, wide)), 0.0, atol=1e-4)
    enc.similarity_fn_name = "jaccard"
    with pytest.raises(ValueError, match="expected one of"):
        enc.similarity(a, b)


# -- reading: what a folder may say ------------------------------------------------------------
@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"similarity_fn_name": "maxsim"}, "unknown similarity_fn_name 'maxsim'"),
        ({"prompts": {"q": "q: "}, "default_prompt_name": "p"}, "default_prompt_name 'p'"),
        ({"prompts": ["q: "]}, "prompts must map"),
        ({"model_type": "CrossEncoder"}, "this is a CrossEncoder model"),
    ],
)
def test_bad_top_config_is_refused(plain_dir: Path, tmp_path: Path, cfg: dict[str, object],
                                   message: str) -> None:
    root = tmp_path / "m"
    shutil.copytree(plain_dir, root)
    _write_top_config(root, **cfg)
    with pytest.raises(ModelFolderError, match=message):
        read_folder(root)


def test_null_values_read_as_sentence_transformers_does(plain_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(plain_dir, root)
    _write_top_config(root, similarity_fn_name=None, prompts={"query": None, "q": "q: "},
                      default_prompt_name=None)
    spec = read_folder(root)
    assert spec.similarity_fn_name == "cosine" and spec.prompts == {"query": "", "q": "q: "}


# -- ONNX folders and include_prompt -----------------------------------------------------------
@pytest.mark.skipif(not has_module("onnxruntime"), reason="needs onnxruntime")
def test_onnx_export_keeps_function_and_prompts(tiny_model_dir: Path, tmp_path: Path) -> None:
    enc = _configured(tiny_model_dir, "manhattan")
    out = enc.export_onnx(tmp_path / "x")
    onnx_enc = SentenceEncoder(out, backend="onnx")
    assert onnx_enc.similarity_fn_name == "manhattan"
    assert onnx_enc.prompts == PROMPTS and onnx_enc.default_prompt_name == "query"
    assert min_cosine(onnx_enc.encode(SENTENCES, prompt_name="topic"),
                      enc.encode(SENTENCES, prompt_name="topic")) >= 0.9999
    enc.default_prompt_name = "nope"
    with pytest.raises(UsageError, match="default_prompt_name 'nope'"):
        enc.export_onnx(tmp_path / "y")


def test_prompt_with_include_prompt_false_is_refused(plain_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(plain_dir, root)
    pooling_file = root / "1_Pooling" / "config.json"
    pooling = json.loads(pooling_file.read_text())
    pooling_file.write_text(json.dumps({**pooling, "include_prompt": False}))
    _write_top_config(root, prompts=PROMPTS, default_prompt_name="query")
    enc = SentenceEncoder(root, device="cpu")
    for kwargs in ({}, {"prompt_name": "document"}, {"prompt": "instruct: "}):
        with pytest.raises(ModelFolderError, match="include_prompt=false"):
            enc.encode(SENTENCES, **kwargs)
    assert enc.encode(SENTENCES, prompt="").shape == (4, 32)  # no prompt: fine
