"""Training that diverges stops with one clear error and saves no NaN weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.training.conftest import PAIRS


def _sts_file(tmp_path: Path, name: str = "sts.tsv") -> Path:
    path = tmp_path / name
    path.write_text("sentence1\tsentence2\tscore\n" + "".join(
        f"{p}\t{h}\t{score}\n" for p, h, _, score in PAIRS), encoding="utf-8")
    return path


def test_train_cli_stops_when_the_loss_diverges(tiny_model_dir, tmp_path: Path, capsys) -> None:
    sts = _sts_file(tmp_path)
    out = tmp_path / "model"
    code, _, err = run_cli(
        ["train", "-r", "sts", "-m", str(tiny_model_dir), "--train", str(sts), "--dev", str(sts),
         "-o", str(out), "--batch-size", "2", "--epochs", "3", "--lr", "1e30", "--warmup", "0",
         "--checkpoint-steps", "1", "--eval-steps", "1", "-q"], capsys)
    assert code == 2, err
    _assert_one_error_line(err, "the loss is nan, not finite")
    assert "learning rate" in err
    assert not (out / "modules.json").exists()
    saved = list(out.rglob("*.safetensors")) + list(out.rglob("*.pt"))
    for path in saved:  # checkpoints and the best model from before the divergence only
        _assert_finite(path)


def test_trainer_refuses_to_save_non_finite_weights(tiny_encoder, sts_examples, tmp_path) -> None:
    import torch

    from sbert.errors import TrainingDiverged
    from sbert.training.losses import CosineSimilarityLoss
    from sbert.training.trainer import Trainer, TrainTask

    loss = CosineSimilarityLoss(tiny_encoder.network)
    trainer = Trainer(tiny_encoder, [TrainTask(sts_examples, loss)], output_dir=tmp_path)
    with torch.no_grad():
        next(tiny_encoder.network.parameters()).fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match="the weights hold NaN or inf, not finite"):
        trainer.save_checkpoint()
    assert not (tmp_path / "checkpoints").exists()


def _assert_one_error_line(err: str, message: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], err


def _assert_finite(path: Path) -> None:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=False)
        tensors = _flatten(state)
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            assert torch.isfinite(value).all(), f"{path}: {name}"


def _flatten(obj: object, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        flat: dict[str, object] = {}
        for k, v in obj.items():
            flat.update(_flatten(v, f"{prefix}{k}."))
        return flat
    if isinstance(obj, list | tuple):
        flat = {}
        for i, v in enumerate(obj):
            flat.update(_flatten(v, f"{prefix}{i}."))
        return flat
    return {prefix: obj}
