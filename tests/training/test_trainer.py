"""The trainer: learning, exact resume, schedule, precision, best model, log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sbert.encoder import SentenceEncoder
from sbert.training.checkpoint import list_checkpoints, seed_everything
from sbert.training.data import Examples
from sbert.training.evaluate import STSEvaluator
from sbert.training.losses import CosineSimilarityLoss, MultipleNegativesRankingLoss, SoftmaxLoss
from sbert.training.schedule import linear_schedule, param_groups, warmup_steps_for
from sbert.training.trainer import Callback, TrainConfig, Trainer, TrainTask


class Interrupt(Exception):
    pass


class StopAt(Callback):
    """Simulates a run killed right after optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        if trainer.state.step == self.step:
            raise Interrupt


def _run(model_dir: Path, nli: Examples, sts: Examples, out: Path, resume: bool = False,
         stop_at: int | None = None, **cfg: object) -> dict[str, torch.Tensor]:
    """Two tasks round-robin (softmax head + cosine), dropout on; returns all weights."""
    seed_everything(0)
    enc = SentenceEncoder(model_dir, device="cpu")
    softmax = SoftmaxLoss(enc.network, enc.dimension, 3)
    tasks = [TrainTask(nli, softmax), TrainTask(sts, CosineSimilarityLoss(enc.network))]
    config = TrainConfig(epochs=2, batch_size=3, seed=7, checkpoint_steps=3, show_progress=False,
                         log_steps=1, warmup=0.2, lr=1e-3, **cfg)  # type: ignore[arg-type]
    callbacks = [StopAt(stop_at)] if stop_at else []
    Trainer(enc, tasks, config, out, callbacks=callbacks).train(resume=resume)
    return {k: v.detach().clone() for k, v in softmax.state_dict().items()}


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_resume_after_interruption_is_exact(tiny_model_dir, nli_examples, sts_examples,
                                            tmp_path: Path, grad_accum: int) -> None:
    full = _run(tiny_model_dir, nli_examples, sts_examples, tmp_path / "full",
                grad_accum=grad_accum)
    out = tmp_path / "killed"
    stop = 5 if grad_accum == 1 else 4  # between checkpoints: the lost step is redone
    with pytest.raises(Interrupt):
        _run(tiny_model_dir, nli_examples, sts_examples, out, stop_at=stop, grad_accum=grad_accum)
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step-00000003"]
    resumed = _run(tiny_model_dir, nli_examples, sts_examples, out, resume=True,
                   grad_accum=grad_accum)
    worst = max(float((full[k] - resumed[k]).abs().max()) for k in full)
    assert worst <= 1e-6
    seed_everything(0)
    enc = SentenceEncoder(tiny_model_dir, device="cpu")
    start = SoftmaxLoss(enc.network, enc.dimension, 3).state_dict()
    # training moved the weights, so the comparison above means something
    assert max(float((full[k] - start[k]).abs().max()) for k in full) > 1e-4
    steps = [json.loads(line)["step"] for line in (out / "training_log.jsonl").open()]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no duplicated entries


def test_resume_with_other_data_is_refused(tiny_model_dir, nli_examples, sts_examples,
                                           tmp_path: Path) -> None:
    with pytest.raises(Interrupt):
        _run(tiny_model_dir, nli_examples, sts_examples, tmp_path, stop_at=4)
    with pytest.raises(ValueError, match="other data"):
        _run(tiny_model_dir, nli_examples.subset(9), sts_examples, tmp_path, resume=True)


class _Payload:
    """Unpickling this runs code: it creates ``self.marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_checkpoint_runs_no_code(tiny_model_dir, nli_examples, sts_examples,
                                           tmp_path: Path) -> None:
    import torch

    from sbert.errors import InputFormatError

    with pytest.raises(Interrupt):
        _run(tiny_model_dir, nli_examples, sts_examples, tmp_path, stop_at=4)
    state_file = list_checkpoints(tmp_path / "checkpoints")[-1] / "training_state.pt"
    marker = tmp_path / "payload-ran"
    torch.save({"network": _Payload(marker)}, state_file)  # a planted checkpoint
    with pytest.raises(InputFormatError, match="not a checkpoint sbert can read safely"):
        _run(tiny_model_dir, nli_examples, sts_examples, tmp_path, resume=True)
    assert not marker.exists()


def test_training_learns_and_keeps_best(tiny_encoder, sts_examples, tmp_path: Path) -> None:
    enc = SentenceEncoder(tiny_encoder.path, device="cpu")
    evaluator = STSEvaluator(sts_examples, "train")
    before = evaluator(enc)[evaluator.primary_metric]
    cfg = TrainConfig(epochs=12, batch_size=4, lr=5e-4, show_progress=False, eval_steps=6,
                      select_best=True)
    trainer = Trainer(enc, [TrainTask(sts_examples, CosineSimilarityLoss(enc.network))], cfg,
                      tmp_path, evaluator)
    state = trainer.train()
    assert state.step == 36 and state.examples_seen == 12 * 12
    assert state.best_metric is not None and state.best_metric > before + 10
    best = json.loads((tmp_path / "checkpoints" / "best" / "best.json").read_text())
    assert best["step"] == state.best_step
    # select_best: the encoder now holds the best weights
    assert evaluator(enc)[evaluator.primary_metric] == pytest.approx(state.best_metric, abs=1e-3)
    log = [json.loads(line) for line in (tmp_path / "training_log.jsonl").open()]
    assert {e["type"] for e in log} == {"train", "eval"}
    assert all(e["lr"] >= 0 for e in log if e["type"] == "train")


def test_bf16_autocast_and_mnrl_on_cpu(tiny_encoder, triplet_examples) -> None:
    enc = SentenceEncoder(tiny_encoder.path, device="cpu")
    cfg = TrainConfig(batch_size=4, precision="bf16", show_progress=False)
    loss = MultipleNegativesRankingLoss(enc.network)
    task = TrainTask(triplet_examples, loss, no_duplicates=True)
    state = Trainer(enc, [task], cfg).train()
    # duplicate texts (a negative that is another row's positive) split some batches
    assert state.examples_seen == 12 and state.step >= 3
    for param in enc.network.parameters():
        assert param.dtype == torch.float32 and torch.isfinite(param).all()


def test_fp16_needs_cuda(tiny_encoder, sts_examples) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    loss = CosineSimilarityLoss(tiny_encoder.network)
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Trainer(tiny_encoder, [TrainTask(sts_examples, loss)], TrainConfig(precision="fp16"))


def test_warmup_then_linear_decay_and_no_decay_groups(tiny_encoder) -> None:
    assert warmup_steps_for(100, 0.1) == 10 and warmup_steps_for(101, 0.1) == 11
    assert warmup_steps_for(100, 25) == 25
    groups = param_groups([SoftmaxLoss(tiny_encoder.network, tiny_encoder.dimension)], 0.01)
    decayed = {id(p) for p in groups[0]["params"]}
    for name, param in tiny_encoder.network.named_parameters():
        no_decay = name.endswith("bias") or "LayerNorm" in name
        assert (id(param) not in decayed) == no_decay, name
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = linear_schedule(opt, 2, 6)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25])


def test_evaluator_of_the_evaluation_package(tiny_encoder, sts_examples, tmp_path: Path) -> None:
    """Any evaluator with ``primary_metric`` works, e.g. sbert.evaluation's STS evaluator."""
    sts = pytest.importorskip("sbert.evaluation.sts")
    readers = pytest.importorskip("sbert.data.sts")
    first, second = sts_examples.columns
    evaluator = sts.EmbeddingSimilarityEvaluator(
        readers.StsDataset("tiny", first, second, [s * 5 for s in sts_examples.labels])
    )
    enc = SentenceEncoder(tiny_encoder.path, device="cpu")
    loss = CosineSimilarityLoss(enc.network)
    cfg = TrainConfig(batch_size=4, show_progress=False, eval_steps=2)
    state = Trainer(enc, [TrainTask(sts_examples, loss)], cfg, tmp_path, evaluator).train()
    assert state.best_step in (2, 3) and "spearman_cosine" in state.metrics
    assert (tmp_path / "checkpoints" / "best" / "modules.json").exists()


@pytest.mark.parametrize("clip_loss_params", [False, True])
def test_clipping_covers_the_encoder_and_optionally_the_head(
    tiny_encoder, nli_examples, monkeypatch, clip_loss_params: bool
) -> None:
    clipped: list[set[int]] = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        params = list(params)
        clipped.append({id(p) for p in params})
        return real_clip(params, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    loss = SoftmaxLoss(tiny_encoder.network, tiny_encoder.dimension)
    cfg = TrainConfig(batch_size=4, show_progress=False, clip_loss_params=clip_loss_params)
    Trainer(tiny_encoder, [TrainTask(nli_examples, loss)], cfg).train()
    encoder = {id(p) for p in tiny_encoder.network.parameters()}
    head = {id(p) for p in loss.classifier.parameters()}
    assert clipped and all(encoder <= ids for ids in clipped)
    # sentence-transformers' trainer clips the model's parameters, not the loss head's
    assert all(head <= ids if clip_loss_params else not head & ids for ids in clipped)
