"""``sbert train``: output folder, model card, loss curve, user errors, resume."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from sbert.cli.main import main
from tests.training.conftest import PAIRS


def _files(tmp_path: Path) -> tuple[Path, Path]:
    nli = tmp_path / "nli.tsv"
    nli.write_text("premise\thypothesis\tlabel\n" + "".join(
        f"{p}\t{h}\t{label}\n" for p, h, label, _ in PAIRS), encoding="utf-8")
    sts = tmp_path / "sts.tsv"
    sts.write_text("sentence1\tsentence2\tscore\n" + "".join(
        f"{p}\t{h}\t{score}\n" for p, h, _, score in PAIRS), encoding="utf-8")
    return nli, sts


def test_train_cli_writes_a_model_folder(tiny_model_dir, tmp_path: Path, capsys) -> None:
    nli, sts = _files(tmp_path)
    out = tmp_path / "model"
    main(["train", "-r", "nli-softmax", "-m", str(tiny_model_dir), "--train", str(nli),
          "--dev", str(sts), "-o", str(out), "--batch-size", "4", "--epochs", "2", "-q",
          "--checkpoint-steps", "2"])
    assert "trained 12 examples x 2 epochs (6 steps" in capsys.readouterr().out
    for name in ("modules.json", "1_Pooling/config.json", "model.safetensors", "README.md",
                 "loss_curve.png", "training_log.jsonl", "loss_head.pt"):
        assert (out / name).exists(), name
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "nli-softmax" in card and "sts_spearman_cosine" in card and "nli.tsv" in card
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    # an existing run is not overwritten by accident; --resume of a finished run is a no-op
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "-r", "nli-softmax", "-m", str(tiny_model_dir), "--train", str(nli),
              "-o", str(out), "--batch-size", "4", "--epochs", "2", "-q"])
    assert exit_info.value.code == 2
    assert "--resume" in capsys.readouterr().err
    main(["train", "-r", "nli-softmax", "-m", str(tiny_model_dir), "--train", str(nli),
          "-o", str(out), "--batch-size", "4", "--epochs", "2", "-q", "--resume",
          "--checkpoint-steps", "2"])
    log = [json.loads(line) for line in (out / "training_log.jsonl").open()]
    assert max(e["step"] for e in log) == 6


def test_dev_evaluation_shows_the_encode_progress_unless_quiet(tiny_model_dir, tmp_path: Path,
                                                                capsys) -> None:
    _, sts = _files(tmp_path)
    dev = tmp_path / "dev.tsv"  # 2,080 distinct sentences: encode() shows a bar from 2,048
    dev.write_text("sentence1\tsentence2\tscore\n" + "".join(
        f"the man plays {i}\ta dog runs {i}\t{i % 5}\n" for i in range(1040)), encoding="utf-8")
    args = ["train", "-r", "sts", "-m", str(tiny_model_dir), "--train", str(sts), "--dev",
            str(dev), "--batch-size", "4", "--epochs", "1"]
    main([*args, "-o", str(tmp_path / "loud")])
    err = capsys.readouterr().err
    assert "train: 100%" in err and "encode: 100%" in err and "33/33" in err  # 64 a batch
    main([*args, "-o", str(tmp_path / "quiet"), "-q"])
    err = capsys.readouterr().err
    assert "train:" not in err and "encode:" not in err


@pytest.mark.reference
@pytest.mark.skipif(
    find_spec("sentence_transformers") is None, reason="needs sentence-transformers"
)
def test_trained_folder_loads_in_sentence_transformers(tiny_model_dir, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from sbert.encoder import SentenceEncoder

    _, sts = _files(tmp_path)
    out = tmp_path / "sts-model"
    main(["train", "-r", "sts", "-m", str(tiny_model_dir), "-o", str(out), "--epochs", "1", "-q",
          "--max-seq-length", "32", "--train", str(sts), str(sts)])  # --train A B: both files
    assert "24 training examples" in (out / "README.md").read_text(encoding="utf-8")
    texts = ["a man plays the guitar", "the dog is happy"]
    ours = SentenceEncoder(out, device="cpu").encode(texts)
    ref = SentenceTransformer(str(out), device="cpu").encode(texts)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_train_cli_user_errors(tiny_model_dir, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("premise\thypothesis\tlabel\nA\tB\tentailment\nC\tD\tyes\n", encoding="utf-8")
    cases = [
        (["--train", str(bad)], "bad.tsv:3: label 'yes'"),
        (["--train", str(tmp_path / "missing.tsv")], "does not exist"),
        (["--train", str(bad), "--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "-r", "nli-softmax", "-m", str(tiny_model_dir), "-o",
                  str(tmp_path / "o"), "-q", *args])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_an_output_that_cannot_be_made_is_refused_before_training(
        tiny_model_dir, tmp_path: Path, capsys) -> None:
    """Found before anything loads, so that `--nproc N` does not start N processes to fail
    in each of them (rank 1's gloo traceback used to bury rank 0's one line)."""
    _, sts = _files(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "-r", "sts", "-m", str(tiny_model_dir), "--train", str(sts), "-o",
              str(blocker / "run"), "--nproc", "2", "--batch-size", "4", "-q"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{blocker} is a file, so the folder cannot be made" in err
    assert list(tmp_path.glob(".sbert-probe-*")) == []


def test_resume_without_a_checkpoint_starts_the_log_over(tiny_model_dir, tmp_path: Path,
                                                         capsys) -> None:
    """A run stopped before its first checkpoint (or that kept none) retrains on --resume:
    its log starts over instead of holding both runs' steps (a loss curve running back)."""
    _, sts = _files(tmp_path)
    out = tmp_path / "run"
    args = ["train", "-r", "sts", "-m", str(tiny_model_dir), "--train", str(sts), "-o",
            str(out), "--batch-size", "4", "--epochs", "1", "-q", "--log-steps", "1",
            "--checkpoint-steps", "1000"]
    main(args)
    first = (out / "training_log.jsonl").read_text(encoding="utf-8").splitlines()
    main([*args, "--resume"])
    again = (out / "training_log.jsonl").read_text(encoding="utf-8").splitlines()
    steps = [json.loads(line)["step"] for line in again]
    assert len(again) == len(first) and steps == sorted(steps)


@pytest.mark.parametrize(("flag", "value"), [("--lr", "-1"), ("--lr", "nan"), ("--lr", "0"),
                                             ("--weight-decay", "-5")])
def test_a_bad_learning_rate_is_one_line(tiny_model_dir, tmp_path: Path, capsys, flag: str,
                                         value: str) -> None:
    _, sts = _files(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "-r", "sts", "-m", str(tiny_model_dir), "--train", str(sts), "-o",
              str(tmp_path / "run"), flag, value, "-q"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag} must be" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_ctrl_c_says_how_to_resume(tiny_model_dir, tmp_path: Path) -> None:
    """A real SIGINT mid-run: exit 130, and the line says what --resume will continue from."""
    import os
    import signal
    import subprocess
    import sys
    import time

    _, sts = _files(tmp_path)
    out = tmp_path / "run"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sbert", "train", "-r", "sts", "-m", str(tiny_model_dir),
         "--train", str(sts), "-o", str(out), "--batch-size", "4", "--epochs", "100000",
         "--checkpoint-steps", "3", "-q", "--device", "cpu"],
        env=env, stderr=subprocess.PIPE, text=True,
        # a shell's background job (CI may be one) starts with SIGINT ignored, which its
        # children inherit; a terminal's Ctrl-C finds the default disposition
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list((out / "checkpoints").glob("step-*")):
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint came"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "the same command with --resume continues from" in err and "step-" in err
