"""The training loop: one plain ``for`` loop over seeded batches, with callbacks for the rest.

Per step: pad a pre-tokenized batch, run the loss under autocast, backward, and every
``grad_accum`` batches clip, step AdamW and the warm-up schedule. Around it: evaluation every
``eval_steps`` (keeping the best model), checkpoints every ``checkpoint_steps`` that resume
exactly, a progress bar and a JSONL log.

Under ``torchrun`` (see :mod:`sbert.training.distributed`) the same loop runs in every
process: the batches are those of one process (``batch_size`` is the global batch), each rank
trains on its slice of each, DDP averages the gradients, and rank 0 alone logs, evaluates and
saves. N processes train exactly as one process would.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sbert.errors import TrainingDiverged, UsageError
from sbert.training import distributed
from sbert.training.batching import TokenizedExamples, epoch_plan, plan_fingerprint
from sbert.training.best_model import head_state, load_best, save_best
from sbert.training.checkpoint import (
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from sbert.training.data import Examples
from sbert.training.evaluate import Evaluator
from sbert.training.log import append_entry, truncate_after
from sbert.training.schedule import linear_schedule, make_optimizer, warmup_steps_for

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Hyper-parameters; the defaults are the paper's (batch 16, lr 2e-5, 10 % warm-up)."""

    epochs: int = 1
    batch_size: int = 16  # the global batch: under DDP split among the processes
    lr: float = 2e-5
    warmup: float = 0.1  # < 1: fraction of the steps; >= 1: a step count
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # 0 disables clipping
    # clip the losses' own parameters (the SoftmaxLoss head) together with the encoder's, as
    # the paper's code did; False: the encoder's alone, as sentence-transformers' trainer does
    clip_loss_params: bool = False
    grad_accum: int = 1
    precision: str = "fp32"  # "bf16" (CPU or GPU autocast) or "fp16" (CUDA, with GradScaler)
    seed: int = 42
    eval_steps: int = 0  # 0: evaluate at the end of each epoch
    checkpoint_steps: int = 0  # 0: no checkpoints
    keep_checkpoints: int = 2
    log_steps: int = 10
    show_progress: bool = True  # the train bar; an evaluator shows its own progress
    select_best: bool = False  # end with the best evaluated weights instead of the last


@dataclass
class TrainTask:
    """One dataset and the loss that trains on it (several run round-robin)."""

    examples: Examples
    loss: nn.Module
    no_duplicates: bool = False  # keep a text from appearing twice in a batch (in-batch negatives)
    name: str = ""


@dataclass
class TrainState:
    """Where the run is; saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    total_steps: int = 0
    examples_seen: int = 0
    train_seconds: float = 0.0
    best_metric: float | None = None
    best_step: int | None = None
    last_eval_step: int = -1
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.train_seconds if self.train_seconds else 0.0


class Callback:
    """Hooks into the loop; override the ones you need. Raising stops the run."""

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, loss: float) -> None: ...

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...


class Trainer:
    """Fine-tune a :class:`~sbert.encoder.SentenceEncoder` on one or more tasks.

    Args:
        encoder: the model (torch backend); its network is trained in place.
        tasks: datasets with their losses (the losses wrap ``encoder.network``).
        config: hyper-parameters.
        output_dir: where the log, checkpoints and best model go (None: nowhere).
        evaluator: called with the encoder every ``eval_steps``; its ``primary_metric``
            selects the best model.
        callbacks: extra hooks.

    Example:
        >>> encoder = SentenceEncoder("all-MiniLM-L6-v2", backend="torch")  # the torch network
        >>> loss = CosineSimilarityLoss(encoder.network)
        >>> Trainer(encoder, [TrainTask(read_sts("train.tsv"), loss)], TrainConfig(epochs=4),
        ...         "out").train()
    """

    def __init__(
        self,
        encoder: Any,
        tasks: Sequence[TrainTask],
        config: TrainConfig | None = None,
        output_dir: str | Path | None = None,
        evaluator: Evaluator | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.config = config or TrainConfig()
        if self.config.precision not in PRECISIONS:
            raise UsageError(f"unknown precision {self.config.precision!r}; expected {PRECISIONS}")
        if not tasks:
            raise UsageError("give at least one TrainTask")
        self.encoder = encoder
        self.network: nn.Module = encoder.network
        self.device = torch.device(encoder.device)
        distributed.init_from_env(self.device)  # a no-op outside torchrun
        self.main, self.world = distributed.is_main(), distributed.world_size()
        if self.config.batch_size % self.world:
            raise UsageError(
                f"batch size {self.config.batch_size} is the global batch, split among "
                f"{self.world} processes; make it a multiple of {self.world}")
        if self.config.precision == "fp16" and self.device.type != "cuda":
            raise UsageError("fp16 needs a CUDA device; use precision='bf16' on CPU")
        self.tasks = list(tasks)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.evaluator = evaluator
        self.callbacks = list(callbacks)
        self.state = TrainState()
        for task in self.tasks:
            task.loss.to(self.device)
        self.objectives = distributed.wrap_losses([t.loss for t in self.tasks], self.device)
        self.data = [TokenizedExamples(t.examples, encoder.tokenizer) for t in self.tasks]
        cfg = self.config
        flags = [t.no_duplicates for t in self.tasks]
        self.plans = [
            epoch_plan(self.data, cfg.batch_size, cfg.seed, e, flags) for e in range(cfg.epochs)
        ]
        self.steps_per_epoch = [math.ceil(len(p) / cfg.grad_accum) for p in self.plans]
        self.state.total_steps = sum(self.steps_per_epoch)
        self.optimizer = make_optimizer([t.loss for t in self.tasks], cfg.lr, cfg.weight_decay,
                                        self.device)
        warmup = warmup_steps_for(self.state.total_steps, cfg.warmup)
        self.scheduler = linear_schedule(self.optimizer, warmup, self.state.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
        trained = [p for g in self.optimizer.param_groups for p in g["params"]]
        encoder_params = {id(p) for p in self.network.parameters()}
        self._clipped = (trained if cfg.clip_loss_params
                         else [p for p in trained if id(p) in encoder_params])

    # -- the loop ---------------------------------------------------------------------------
    def train(self, resume: bool | str | Path = False) -> TrainState:
        """Run to the end; ``resume``: True (latest checkpoint in ``output_dir``) or a path.

        Returns:
            The final state (steps, examples/s, best metric...).
        """
        cfg = self.config
        seed_everything(cfg.seed + distributed.rank())  # each rank its own dropout masks
        if resume:
            self._resume(resume)  # replaces self.state
        state = self.state
        self.network.train()
        for cb in self.callbacks:
            cb.on_train_begin(self)
        bar = self._progress_bar()
        window_loss: list[float] = []
        try:
            while state.epoch < cfg.epochs:
                plan = self.plans[state.epoch]
                while state.batch_in_epoch < len(plan):
                    started = time.perf_counter()
                    start = state.batch_in_epoch
                    window = plan[start : start + cfg.grad_accum]
                    loss, examples = self._step(window)
                    state.batch_in_epoch += len(window)
                    state.step += 1
                    state.examples_seen += examples
                    state.train_seconds += time.perf_counter() - started
                    window_loss.append(loss)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", ex_s=f"{state.examples_per_second:.1f}")
                    if state.step % cfg.log_steps == 0 or state.step == state.total_steps:
                        self._log_train(window_loss)
                        window_loss = []
                    for cb in self.callbacks:
                        cb.on_step_end(self, loss)
                    if cfg.eval_steps and state.step % cfg.eval_steps == 0:
                        self.evaluate()
                    if cfg.checkpoint_steps and state.step % cfg.checkpoint_steps == 0:
                        self.save_checkpoint()
                state.epoch += 1
                state.batch_in_epoch = 0
                if state.last_eval_step != state.step and (not cfg.eval_steps or
                                                           state.epoch == cfg.epochs):
                    self.evaluate()
        finally:
            bar.close()
            self.network.eval()  # the encoder goes back to inference (dropout off)
        self._check_finite("weights")  # the caller saves them next
        best = self.best_dir
        if (cfg.select_best and self.main and best is not None
                and (best / "modules.json").exists()):
            self._load_best()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return state

    def _step(self, window: Sequence[tuple[int, Any]]) -> tuple[float, int]:
        """Forward/backward over the batches of one accumulation window, then one update."""
        total, examples = 0.0, 0
        for task_index, rows in window:
            shard, local = distributed.split_batch(rows)  # this rank's slice of the batch
            features, labels = self.data[task_index].batch(local, self.device)
            with distributed.batch_shard(shard), self._autocast():
                loss = self.objectives(task_index, features, labels)
            # DDP averages over the ranks: weighted, that is the global batch's mean loss
            loss = loss * (shard.weight / len(window))
            self.scaler.scale(loss).backward()
            total += float(loss.detach())
            examples += len(rows)
        total = distributed.all_reduce_sum(total, self.device) / self.world
        self._check_finite("loss", total)  # before the update: no step from a NaN loss
        if self.config.max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self._clipped, self.config.max_grad_norm)
            if not self.scaler.is_enabled():  # fp16's scaler skips inf gradients by design
                self._check_finite("gradient norm", float(norm))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, examples

    def _check_finite(self, what: str, value: float | None = None) -> None:
        """Raise TrainingDiverged if ``value`` (or, without one, any trained weight) is NaN/inf."""
        params = (p for g in self.optimizer.param_groups for p in g["params"])
        if math.isfinite(value) if value is not None else all(p.isfinite().all() for p in params):
            return
        found = f"is {value}" if value is not None else "hold NaN or inf"
        raise TrainingDiverged(
            f"training diverged at step {self.state.step + (value is not None)}: the {what} "
            f"{found}, not finite; nothing was saved from it. Lower the learning rate "
            f"(lr={self.config.lr:g}) or lengthen the warm-up")

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Run the evaluator (dropout off), log it and keep the best model."""
        state = self.state
        state.last_eval_step = state.step
        if self.evaluator is None:
            return {}
        metrics = distributed.broadcast_object(self._run_evaluator() if self.main else None)
        primary = metrics[self.evaluator.primary_metric]
        state.metrics = metrics
        if self.main:
            append_entry(self.output_dir,
                         {"type": "eval", "step": state.step, "epoch": state.epoch, **metrics})
            logger.info("step %d: %s = %.4f", state.step, self.evaluator.primary_metric, primary)
        if state.best_metric is None or primary > state.best_metric:
            state.best_metric, state.best_step = primary, state.step
            if self.best_dir is not None and self.main:
                self._save_best(metrics)
        for cb in self.callbacks:
            cb.on_evaluate(self, metrics)
        return metrics

    def _run_evaluator(self) -> dict[str, float]:
        assert self.evaluator is not None
        self.network.eval()
        try:
            raw = self.evaluator(self.encoder)
        finally:
            self.network.train()
        return {k: float(v) for k, v in raw.items() if isinstance(v, int | float)}

    @property
    def best_dir(self) -> Path | None:
        return self.output_dir / "checkpoints" / "best" if self.output_dir else None

    def _save_best(self, metrics: dict[str, float]) -> None:
        assert self.best_dir is not None
        self._check_finite("weights")
        save_best(self.best_dir, self.encoder, [t.loss for t in self.tasks], self.state.step,
                  metrics)

    def _load_best(self) -> None:
        assert self.best_dir is not None
        load_best(self.best_dir, self.network, [t.loss for t in self.tasks], self.device)
        logger.info("restored the best model (step %s)", self.state.best_step)

    # -- checkpoints --------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        if self.output_dir is None:
            raise UsageError("checkpoints need an output_dir")
        return self.output_dir / "checkpoints"

    def save_checkpoint(self) -> Path:
        """Save everything needed to continue exactly from the current step.

        Under DDP every rank calls it (each hands over its RNG state); rank 0 writes.
        """
        self._check_finite("weights")
        rngs = distributed.gather_objects(rng_state())
        if not self.main:
            return checkpoint_path(self.checkpoint_dir, self.state.step)
        state = {
            "network": self.network.state_dict(),
            "heads": [head_state(t.loss) for t in self.tasks],
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rngs[0],
            "rank_rng": rngs,  # every rank's, in rank order
            "state": asdict(self.state),
            "config": asdict(self.config),
            "data": plan_fingerprint(self.plans),
        }
        return save_checkpoint(self.checkpoint_dir, self.state.step, state,
                               self.config.keep_checkpoints)

    def _resume(self, resume: bool | str | Path) -> None:
        # rank 0 reads the checkpoint and hands it to the others (their disks may lack it)
        found = distributed.broadcast_object(self._find_checkpoint(resume) if self.main
                                             else None)
        if found is None:  # a start from scratch: the log starts over too, as in a new run
            if self.main:
                truncate_after(self.output_dir, 0)
            return
        path, ckpt = found
        if ckpt["data"] != plan_fingerprint(self.plans):
            raise UsageError(
                f"{path} was saved with other data, batch size, seed or epochs; resume with the "
                "same settings or start a new output folder"
            )
        self.network.load_state_dict(ckpt["network"])
        for task, head in zip(self.tasks, ckpt["heads"], strict=True):
            task.loss.load_state_dict(head, strict=False)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.state = TrainState(**ckpt["state"])
        rngs = ckpt.get("rank_rng", [ckpt["rng"]])
        if len(rngs) == self.world:
            set_rng_state(rngs[distributed.rank()])
        else:  # the data and weights resume exactly; dropout masks are drawn afresh
            logger.warning("%s was saved by %d process(es), resumed by %d: each rank's random "
                           "state starts afresh", path, len(rngs), self.world)
        if self.main:
            truncate_after(self.output_dir, self.state.step)
            logger.info("resumed from %s at step %d", path, self.state.step)

    def _find_checkpoint(self, resume: bool | str | Path) -> tuple[Path, dict[str, Any]] | None:
        """The checkpoint to resume from and its contents (None: start from scratch)."""
        if resume is True:
            found = list_checkpoints(self.checkpoint_dir)
            if not found:
                logger.warning("no checkpoint in %s (the run stopped before its first, or "
                               "finished and kept none); starting from scratch",
                               self.checkpoint_dir)
                return None
            return found[-1], load_checkpoint(found[-1])
        return Path(str(resume)), load_checkpoint(Path(str(resume)))

    # -- logging --------------------------------------------------------------------------------
    def _progress_bar(self) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=self.state.total_steps, initial=self.state.step, unit="step",
                    desc="train", disable=not (self.config.show_progress and self.main),
                    dynamic_ncols=True)

    def _log_train(self, losses: list[float]) -> None:
        state = self.state
        if not self.main:
            return
        append_entry(self.output_dir, {
            "type": "train", "step": state.step, "epoch": state.epoch,
            "loss": sum(losses) / len(losses), "lr": self.scheduler.get_last_lr()[0],
            "examples_per_s": round(state.examples_per_second, 2),
            "train_seconds": round(state.train_seconds, 3),
        })

