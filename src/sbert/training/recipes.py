"""The paper's training recipes: NLI softmax, NLI in-batch negatives, STS regression, triplets.

:func:`run_recipe` is what ``sbert train`` runs: load the start model, read the data, build
the loss, train, save a sentence-transformers folder with a model card and a loss curve.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbert.errors import UsageError
from sbert.training.data import (
    Examples,
    concat_examples,
    read_nli,
    read_sts,
    read_triplets,
)
from sbert.training.run_folder import check_output, run_folder

logger = logging.getLogger(__name__)


def _softmax(encoder: Any, concat: Sequence[str] | None) -> Any:
    from sbert.training.losses import SoftmaxLoss

    dim = encoder.network.dimension
    return SoftmaxLoss(encoder.network, dim, 3, concat or ("u", "v", "|u-v|"))


def _loss(name: str) -> Callable[[Any, Sequence[str] | None], Any]:
    def make(encoder: Any, concat: Sequence[str] | None) -> Any:
        from sbert.training import losses

        return getattr(losses, name)(encoder.network)

    return make


@dataclass(frozen=True)
class Recipe:
    """A data format, a loss and the paper's default number of epochs."""

    name: str
    description: str
    read: Callable[[str | Path], Examples]
    make_loss: Callable[[Any, Sequence[str] | None], Any]
    epochs: int
    no_duplicates: bool = False


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("nli-softmax", "NLI pairs, softmax classifier on (u, v, |u-v|), cross-entropy",
               read_nli, _softmax, epochs=1),
        Recipe("nli-mnrl", "(anchor, entailment, contradiction) triplets from NLI, in-batch "
               "negatives (MultipleNegativesRankingLoss, scale 20)", read_triplets,
               _loss("MultipleNegativesRankingLoss"), epochs=1, no_duplicates=True),
        Recipe("sts", "STS pairs with 0-5 scores, MSE of cosine similarity (CosineSimilarityLoss)",
               read_sts, _loss("CosineSimilarityLoss"), epochs=4),
        Recipe("sts-cosent", "STS pairs with 0-5 scores, CoSENT ranking loss", read_sts,
               _loss("CoSENTLoss"), epochs=4),
        Recipe("triplet", "(anchor, positive, negative) triplets, Euclidean TripletLoss, margin 1",
               read_triplets, _loss("TripletLoss"), epochs=1),
    )
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; the error lists the known ones."""
    if name not in RECIPES:
        raise UsageError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}")
    return RECIPES[name]


def sts_evaluator(examples: Examples, name: str, show_progress: bool | None = None) -> Any:
    """The dev-set evaluator of the STS recipes (Spearman of cosine); ``show_progress`` as
    :class:`~sbert.training.evaluate.STSEvaluator`'s."""
    from sbert.training.evaluate import STSEvaluator

    return STSEvaluator(examples, name, show_progress=show_progress)


@dataclass
class RunResult:
    """What :func:`run_recipe` produced."""

    output: Path
    encoder: Any
    loss: Any
    state: Any
    train_examples: int


def run_recipe(
    recipe: str,
    model: str | Path,
    train: Sequence[str | Path],
    output: str | Path,
    dev: str | Path | None = None,
    *,
    epochs: int | None = None,
    limit: int | None = None,
    pooling: str | None = None,
    concat: Sequence[str] | None = None,
    device: str | None = None,
    max_seq_length: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    card: bool = True,
    **config: Any,
) -> RunResult:
    """Train ``model`` with a recipe and save it to ``output``.

    Args:
        recipe: a name from :data:`RECIPES`.
        model: start model (folder, bundled name or hub id; a plain Hugging Face model gets
            mean pooling).
        train: training files (several are concatenated).
        output: the model folder to write (plus log, loss curve, checkpoints).
        dev: an STS file (sentence1, sentence2, score) evaluated during training.
        epochs: default: the recipe's (1 for NLI, 4 for STS).
        limit: train on the first ``limit`` examples only.
        pooling: override the pooling mode (the ablation).
        concat: SoftmaxLoss concatenation parts (the ablation).
        device: torch device.
        max_seq_length: truncate longer inputs.
        resume: continue from the latest checkpoint in ``output``, which must be a run
            folder (see :mod:`sbert.training.run_folder`).
        overwrite: write into ``output`` even when it is a non-empty folder that is not a run
            folder, or start its run over. Never into or around the start model's folder.
        card: write README.md and the loss-curve PNG.
        **config: further :class:`~sbert.training.trainer.TrainConfig` fields.

    Under ``torchrun`` every process runs this with the same arguments and trains its share
    (:mod:`sbert.training.distributed`); rank 0 alone checks, locks and writes ``output``.
    """
    from sbert.encoder import SentenceEncoder
    from sbert.training import distributed
    from sbert.training.checkpoint import seed_everything
    from sbert.training.trainer import TrainConfig, Trainer, TrainTask

    spec = get_recipe(recipe)
    cfg = TrainConfig(epochs=epochs or spec.epochs, **config)
    if not train:
        raise UsageError("give at least one training file")
    output = Path(output)
    device = distributed.local_device(device)  # under torchrun with CUDA: cuda:LOCAL_RANK
    distributed.init_from_env(device)
    main = distributed.is_main()
    if main:
        check_output(output, model, resume=resume, overwrite=overwrite)  # before any work
    examples = concat_examples([spec.read(f) for f in train]).subset(limit)
    # the dev set's encoding shows progress as encode() does, unless the run is quiet
    evaluator = (sts_evaluator(read_sts(dev), Path(dev).stem,
                               show_progress=None if cfg.show_progress else False)
                 if dev else None)
    seed_everything(cfg.seed)  # the classifier head's initial weights
    # training needs the torch network; fp32 evaluation, as before backend="auto"
    encoder = SentenceEncoder(model, device=device, backend="torch", precision="fp32",
                              max_seq_length=max_seq_length)
    if pooling:
        encoder.set_pooling(pooling)
    loss = spec.make_loss(encoder, concat)
    trainer = Trainer(
        encoder, [TrainTask(examples, loss, spec.no_duplicates, spec.name)], cfg, output,
        evaluator,
    )
    logger.info("%s: %d training examples, %d steps", recipe, len(examples),
                trainer.state.total_steps)
    info = {"recipe": spec.name, "start_model": str(model), "train_files": [str(f) for f in train]}
    folder = (run_folder(output, model, resume=resume, overwrite=overwrite, info=info) if main
              else contextlib.nullcontext(output))
    with folder:
        state = trainer.train(resume=resume)
        if not main:
            return RunResult(output, encoder, loss, state, len(examples))
        encoder.save(output)
        head = {k: v for k, v in loss.state_dict().items() if not k.startswith("model.")}
        if head:
            import torch

            torch.save(head, output / "loss_head.pt")
        if card:
            from sbert.training.model_card import write_model_card

            write_model_card(output, {
                "recipe": spec.name, "description": spec.description,
                "start_model": str(model), "train_files": [str(f) for f in train],
                "train_examples": len(examples), "dev_file": str(dev) if dev else None,
                "pooling": "+".join(encoder.network.pooling.modes),
                "max_seq_length": encoder.max_seq_length, "config": cfg, "state": state,
            })
    return RunResult(output, encoder, loss, state, len(examples))
