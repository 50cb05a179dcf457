"""The paper's Table 6 ablation on the data we have: pooling x objective, and concatenations.

    .venv/bin/python benchmarks/ablation.py [--model all-MiniLM-L6-v2] [--markdown OUT.md]
    .venv/bin/python benchmarks/ablation.py --limit 64 --eval-limit 100 --sts-epochs 1   # smoke
    python benchmarks/ablation.py --model FOLDER --device cuda --jobs 12   # parallel, GPU

Rows (STS benchmark dev Spearman x100, as in the paper):

* pooling (mean, max, cls) x objective: the NLI classification objective (softmax on
  (u, v, |u-v|), 1 epoch on SNLI dev + SNLI test + MultiNLI dev-matched, the only NLI data
  here) and the STSb regression objective (4 epochs on STSb train);
* concatenation of the classifier input (mean pooling, NLI objective): (u, v), (|u-v|),
  (u*v), (|u-v|, u*v), (u, v, u*v), (u, v, |u-v|), (u, v, |u-v|, u*v).

The paper trained bert-base-uncased on all of SNLI + MultiNLI (~1M pairs); the default
start model here is all-MiniLM-L6-v2 with 29k NLI pairs, so compare the ordering of the
rows with the paper's, not the values. About 12 training runs: hours on 2 CPU cores, minutes
on a GPU. Results go to docs/RESULTS.md (``--markdown`` writes the table).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train import load_data  # noqa: E402

# Reimers & Gurevych (2019), Table 6: STSb dev Spearman x100 (bert-base, full NLI / STSb)
PAPER_POOLING = {"mean": (80.78, 87.44), "max": (79.07, 69.92), "cls": (79.80, 86.62)}
PAPER_CONCAT = {
    ("u", "v"): 66.04,
    ("|u-v|",): 69.78,
    ("u*v",): 70.54,
    ("|u-v|", "u*v"): 78.37,
    ("u", "v", "u*v"): 77.44,
    ("u", "v", "|u-v|"): 80.78,
    ("u", "v", "|u-v|", "u*v"): 80.44,
}
DEFAULT_CONCAT = ("u", "v", "|u-v|")


def train_and_score(model: str, objective: str, pooling: str, concat: tuple[str, ...],
                    data: dict[str, Any], args: argparse.Namespace) -> float:
    """One training run; returns STSb dev Spearman x100."""
    from sbert.encoder import SentenceEncoder
    from sbert.training.checkpoint import seed_everything
    from sbert.training.evaluate import STSEvaluator
    from sbert.training.losses import CosineSimilarityLoss, SoftmaxLoss
    from sbert.training.recipes import set_pooling
    from sbert.training.trainer import TrainConfig, Trainer, TrainTask

    seed_everything(args.seed)
    encoder = SentenceEncoder(model, device=args.device, max_seq_length=args.max_seq_length)
    set_pooling(encoder, pooling)
    if objective == "nli":
        loss: Any = SoftmaxLoss(encoder.network, encoder.dimension, 3, concat)
        train, epochs = data["nli"], 1
    else:
        loss = CosineSimilarityLoss(encoder.network)
        train, epochs = data["sts"], args.sts_epochs
    config = TrainConfig(epochs=epochs, seed=args.seed, show_progress=False, log_steps=10**9)
    Trainer(encoder, [TrainTask(train, loss)], config).train()

    def embed(texts: list[str]) -> Any:
        return encoder.encode(texts, batch_size=64, show_progress=False)

    return STSEvaluator(data["dev"]).score(embed)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


RunKey = tuple[str, str, tuple[str, ...]]  # (objective, pooling, concatenation)
_WORKER: dict[str, Any] = {}


def _init_worker(model: str, data: dict[str, Any], args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.jobs))
    _WORKER.update(model=model, data=data, args=args)


def _run_in_worker(key: RunKey) -> tuple[float, float]:
    start = time.perf_counter()
    score = train_and_score(_WORKER["model"], *key, _WORKER["data"], _WORKER["args"])
    return score, time.perf_counter() - start


def plan(only: str | None) -> list[RunKey]:
    """The distinct training runs the table needs, in table order."""
    keys: list[RunKey] = []
    if only in (None, "pooling"):
        for pooling in PAPER_POOLING:
            keys += [("nli", pooling, DEFAULT_CONCAT), ("sts", pooling, DEFAULT_CONCAT)]
    if only in (None, "concat"):
        keys += [("nli", "mean", concat) for concat in PAPER_CONCAT]
    return list(dict.fromkeys(keys))


def run_all(keys: list[RunKey], model: str, data: dict[str, Any],
            args: argparse.Namespace) -> dict[RunKey, float]:
    """Train and score every run, ``args.jobs`` at a time (separate processes, each seeded)."""
    scores: dict[RunKey, float] = {}

    def report(key: RunKey, score: float, seconds: float) -> None:
        scores[key] = score
        objective, pooling, concat = key
        print(f"  {objective:3s} {pooling:4s} {' '.join(concat):18s} {score:6.2f}  "
              f"({seconds:.0f} s) [{len(scores)}/{len(keys)}]", flush=True)

    if args.jobs <= 1:
        for key in keys:
            start = time.perf_counter()
            report(key, train_and_score(model, *key, data, args), time.perf_counter() - start)
        return scores
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=_init_worker,
                             initargs=(model, data, args)) as pool:
        futures = {pool.submit(_run_in_worker, key): key for key in keys}
        for future in as_completed(futures):
            report(futures[future], *future.result())
    return scores


def table(scores: dict[RunKey, float], only: str | None) -> str:
    rows: list[str] = []
    if only in (None, "pooling"):
        rows += ["| pooling | NLI (ours) | NLI (paper) | STSb (ours) | STSb (paper) |",
                 "| --- | --- | --- | --- | --- |"]
        for pooling, (paper_nli, paper_sts) in PAPER_POOLING.items():
            ours_nli = scores.get(("nli", pooling, DEFAULT_CONCAT))
            ours_sts = scores.get(("sts", pooling, DEFAULT_CONCAT))
            rows.append(f"| {pooling.upper()} | {_fmt(ours_nli)} | {paper_nli:.2f} | "
                        f"{_fmt(ours_sts)} | {paper_sts:.2f} |")
        rows.append("")
    if only in (None, "concat"):
        rows += ["| concatenation | NLI (ours) | NLI (paper) |", "| --- | --- | --- |"]
        for concat, paper in PAPER_CONCAT.items():
            name = ", ".join(concat).replace("|", "\\|")  # a bare | would split the cell
            rows.append(f"| ({name}) | {_fmt(scores.get(('nli', 'mean', concat)))} | "
                        f"{paper:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sts-epochs", type=int, default=4)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--device", default=None)
    parser.add_argument("--jobs", type=int, default=1,
                        help="training runs at once, one process each (a GPU fits several)")
    parser.add_argument("--limit", type=int, default=None, help="first N training examples")
    parser.add_argument("--eval-limit", type=int, default=None, help="first N dev pairs")
    parser.add_argument("--only", choices=["pooling", "concat"], default=None)
    parser.add_argument("--markdown", type=Path, default=None, help="write the table here")
    args = parser.parse_args()

    from sbert.models import resolve_model

    model = str(resolve_model(args.model))
    nli = load_data("nli-softmax", args.limit, args.eval_limit, head_eval=False)
    data = {"nli": nli["train"], "dev": nli["dev"],
            "sts": load_data("sts", args.limit, args.eval_limit)["train"]}
    print(f"start model {args.model}; NLI {len(data['nli'])} pairs, STSb train "
          f"{len(data['sts'])} pairs, STSb dev {len(data['dev'])} pairs", flush=True)
    start = time.perf_counter()
    scores = run_all(plan(args.only), model, data, args)
    text = table(scores, args.only)
    print(f"\nSTS benchmark dev, Spearman x100 ({time.perf_counter() - start:.0f} s)\n" + text)
    if args.limit or args.eval_limit:
        print("(a --limit/--eval-limit run: a smoke test, not a measurement)")
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
