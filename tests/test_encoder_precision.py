"""The torch backend's bf16 autocast option (the ONNX backend has int8 instead)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SENTENCES = ["a man plays a guitar", "the dog runs in the park", "", "red car " * 40]


@pytest.mark.filterwarnings("ignore:.*were truncated:UserWarning")  # the long input, on purpose
def test_bf16_close_to_fp32(tiny_model_dir: Path, tiny_encoder) -> None:
    from sbert import SentenceEncoder

    enc = SentenceEncoder(tiny_model_dir, device="cpu", precision="bf16")
    emb = enc.encode(SENTENCES, normalize=True)
    ref = tiny_encoder.encode(SENTENCES, normalize=True)
    assert emb.dtype == np.float32 and np.isfinite(emb).all()
    assert (emb * ref).sum(axis=1).min() > 0.99


def test_precision_errors(tiny_model_dir: Path) -> None:
    from sbert import SentenceEncoder

    with pytest.raises(ValueError, match="expected one of"):
        SentenceEncoder(tiny_model_dir, device="cpu", precision="fp8")


def test_cli_precision(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sbert.cli.main import main

    main(["similarity", "a dog", "a dog runs", "-m", str(tiny_model_dir), "--precision", "bf16"])
    assert float(capsys.readouterr().out.strip()) > 0
    with pytest.raises(SystemExit) as exit_info:
        main(["similarity", "a", "b", "-m", str(tiny_model_dir), "--precision", "bf16",
              "--quantized"])
    assert exit_info.value.code == 2
    assert "torch backend" in capsys.readouterr().err
