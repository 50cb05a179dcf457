"""``sbert train``: fine-tune a model with one of the paper's recipes."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click

from sbert.cli.common import plural
from sbert.errors import UsageError

RECIPE_NAMES = ("nli-softmax", "nli-mnrl", "sts", "sts-cosent", "triplet")


@click.command()
@click.option("--recipe", "-r", required=True, type=click.Choice(RECIPE_NAMES),
              help="nli-softmax (paper, classification), nli-mnrl (in-batch negatives), "
                   "sts (regression), sts-cosent, triplet.")
@click.option("--model", "-m", default="all-MiniLM-L6-v2", show_default=True,
              help="Start model: folder, bundled name or hub id (a plain BERT gets mean pooling).")
@click.option("--train", "train_files", required=True, multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Training file (TSV with a header, or JSONL); several: --train A B C.")
@click.argument("more_train", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dev", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="STS dev file (sentence1, sentence2, score 0-5) for evaluation.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output model folder.")
@click.option("--epochs", type=int, default=None, help="Default: 1 for NLI, 4 for STS.")
@click.option("--batch-size", type=int, default=16, show_default=True,
              help="Examples per step; with --nproc or torchrun, split among the processes.")
@click.option("--lr", type=float, default=2e-5, show_default=True, help="Peak learning rate.")
@click.option("--warmup", type=float, default=0.1, show_default=True,
              help="Warm-up: a fraction of the steps (< 1) or a number of steps.")
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option("--max-seq-length", type=click.IntRange(min=2), default=None,
              help="Default: the model's; above its positions: clamped to them.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--grad-accum", type=int, default=1, show_default=True,
              help="Batches per optimizer step.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32",
              show_default=True, help="bf16 autocast (CPU/GPU) or fp16 (CUDA only).")
@click.option("--eval-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Evaluate every N steps (0: after each epoch).")
@click.option("--checkpoint-steps", type=click.IntRange(min=0), default=500, show_default=True,
              help="Save a resumable checkpoint every N steps (0: never).")
@click.option("--log-steps", type=click.IntRange(min=1), default=10, show_default=True,
              help="Write the mean training loss to training_log.jsonl every N steps.")
@click.option("--select-best", is_flag=True, help="Save the best dev checkpoint, not the last.")
@click.option("--pooling", type=click.Choice(["mean", "max", "cls"]), default=None,
              help="Override the start model's pooling.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Train on the first N examples only.")
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in --output.")
@click.option("--overwrite", is_flag=True,
              help="Write into a non-empty --output that is not a run folder, or start its "
                   "run over.")
@click.option("--device", default=None, help="torch device; default: CUDA if available.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train in N processes on this machine (torch DDP under torchrun; one per "
                   "GPU, or the CPU cores shared). The same result as one process.")
def train(
    recipe: str, model: str, train_files: tuple[Path, ...], more_train: tuple[Path, ...],
    dev: Path | None, output: Path,
    epochs: int | None, batch_size: int, lr: float, warmup: float, weight_decay: float,
    max_seq_length: int | None, seed: int, grad_accum: int, precision: str, eval_steps: int,
    checkpoint_steps: int, log_steps: int, select_best: bool, pooling: str | None,
    limit: int | None, resume: bool, overwrite: bool, device: str | None, quiet: bool,
    nproc: int,
) -> None:
    """Train a sentence embedding model and save it as a sentence-transformers folder.

    Writes the model, README.md (model card), loss_curve.png, training_log.jsonl and
    checkpoints/ (resumable with --resume; checkpoints/best with a dev set), and
    sbert_run.json, which marks the folder as a run: a non-empty --output that is not one is
    refused unless --overwrite, and one run at a time writes into a folder.

    \b
    Example (the paper's NLI then STSb, on GPU):
      sbert train -r nli-softmax -m bert-base-uncased --dev stsb/dev.tsv -o out/nli \\
          --train snli_1.0_train.jsonl multinli_1.0_train.jsonl
      sbert train -r sts -m out/nli --train stsb/train.tsv --dev stsb/dev.tsv -o out/nli-sts

    \b
    Several processes (torch DDP; --batch-size is the global batch):
      sbert train ... --nproc 4
      torchrun --nproc-per-node 4 -m sbert train ...
    """
    for name, value in (("--batch-size", batch_size), ("--grad-accum", grad_accum)):
        if value < 1:
            raise UsageError(f"{name} must be >= 1, got {value}")
    if epochs is not None and epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {epochs}")
    if not (math.isfinite(lr) and lr > 0):
        raise UsageError(f"--lr must be a positive number, got {lr}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise UsageError(f"--weight-decay must be >= 0, got {weight_decay}")
    from sbert.training.run_folder import check_output
    from sbert.training.torchrun import start_rank

    # before loading torch. Under torchrun every rank runs this command, and rank 0 alone
    # checks and then locks the folder (run_recipe): a later rank's check here could meet
    # rank 0's lock and take it for another run's
    if start_rank() == 0:
        check_output(output, model, resume=resume, overwrite=overwrite)
    if precision == "fp16" and (device or "").startswith("cpu"):
        raise UsageError("fp16 needs a CUDA device; use --precision bf16 on CPU")
    if nproc > 1:  # this very command again, in nproc processes under torchrun
        code = _launch(nproc, batch_size, device)
        if code:
            sys.exit(code)  # the processes reported their error themselves
        return
    from sbert.training import distributed
    from sbert.training.recipes import run_recipe

    # bad settings found later (fp16 on CPU, resume with other data) raise sbert.errors
    # exceptions, which the entry point reports in one line; any other error is a bug
    try:
        result = run_recipe(
            recipe, model, [*train_files, *more_train], output, dev, epochs=epochs,
            limit=limit, pooling=pooling, device=device, max_seq_length=max_seq_length,
            resume=resume, overwrite=overwrite,
            batch_size=batch_size, lr=lr, warmup=warmup, weight_decay=weight_decay, seed=seed,
            grad_accum=grad_accum, precision=precision, eval_steps=eval_steps,
            checkpoint_steps=checkpoint_steps, select_best=select_best,
            show_progress=not quiet, log_steps=log_steps,
        )
    except KeyboardInterrupt:
        if distributed.is_main():
            _say_how_to_resume(output)
        raise
    main = distributed.is_main()
    distributed.destroy()
    if not main:
        return
    state = result.state
    best = ""
    if state.best_step is not None:
        best = f", best dev {state.best_metric:.2f} at step {state.best_step}"
    click.echo(
        f"trained {result.train_examples} examples x {plural(result.state.epoch, 'epoch')} "
        f"({plural(state.step, 'step')}, "
        f"{state.examples_per_second:.1f} examples/s){best}; saved {output}"
    )


def _say_how_to_resume(output: Path) -> None:
    """After Ctrl-C: what the same command with ``--resume`` will do."""
    from sbert.training.checkpoint import list_checkpoints

    found = list_checkpoints(output / "checkpoints")
    if found:
        click.echo(f"\nstopped; the same command with --resume continues from {found[-1]}",
                   err=True)
    else:
        click.echo("\nstopped before the first checkpoint (every --checkpoint-steps steps); "
                   "--resume will start over", err=True)


def _launch(nproc: int, batch_size: int, device: str | None) -> int:
    """Re-run this very command without --nproc in ``nproc`` processes under torchrun.

    Returns:
        torchrun's exit code.
    """
    from sbert.training import distributed

    if distributed.launched_by_torchrun():
        raise UsageError("--nproc starts torchrun itself; under torchrun leave it out (its "
                         "--nproc-per-node sets the processes)")
    distributed.check_launch(nproc, batch_size, device)
    ctx = click.get_current_context()
    verbose = (ctx.parent.params.get("verbose", 0) if ctx.parent else 0) or 0
    args = ["-v"] * verbose + [ctx.info_name or "train", *_argv(ctx.command, ctx.params)]
    return distributed.launch(nproc, args, device)


def _argv(command: click.Command, values: dict[str, Any]) -> list[str]:
    """Command-line arguments that give ``command`` these parameter values, less --nproc."""
    args: list[str] = []
    positional: list[str] = []
    for param in command.params:
        value = values.get(param.name or "")
        if param.name == "nproc" or value is None or value is False or value == ():
            continue
        if isinstance(param, click.Argument):
            positional.extend(str(v) for v in value)
            continue
        flag = param.opts[0]
        if isinstance(param, click.Option) and param.is_flag:
            args.append(flag)
        elif isinstance(value, tuple | list):
            for item in value:
                args.extend([flag, str(item)])
        else:
            args.extend([flag, str(value)])
    return [*args, "--", *positional] if positional else args
