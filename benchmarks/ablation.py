"""The paper's Table 6 ablation on the data we have: pooling x objective, and concatenations.

    .venv/bin/python benchmarks/ablation.py [--model all-MiniLM-L6-v2]
    .venv/bin/python benchmarks/ablation.py --limit 64 --eval-limit 100 --sts-epochs 1 \
        --out /tmp/bench                                                           # smoke
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
on a GPU. Writes benchmarks/results/ablation.<machine>.json (a CUDA run: the GPU's class).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    add_output_options,
    is_full,
    print_tables,
    table,
    write_result,
)
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
    from sbert.training.trainer import TrainConfig, Trainer, TrainTask

    seed_everything(args.seed)
    encoder = SentenceEncoder(model, device=args.device, backend="torch", precision="fp32",
                              max_seq_length=args.max_seq_length)
    encoder.set_pooling(pooling)
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


def tables(scores: dict[RunKey, float], only: str | None) -> list[dict[str, Any]]:
    """The pooling table and the concatenation table, ours beside the paper's."""
    out = []
    if only in (None, "pooling"):
        out.append(table("pooling", "pooling x objective, STSb dev Spearman x100", [
            ("pooling", "pooling", ""), ("nli", "NLI (ours)", "{:.2f}"),
            ("nli_paper", "NLI (paper)", "{:.2f}"), ("sts", "STSb (ours)", "{:.2f}"),
            ("sts_paper", "STSb (paper)", "{:.2f}")], [
            {"pooling": pooling.upper(), "nli": scores.get(("nli", pooling, DEFAULT_CONCAT)),
             "nli_paper": paper_nli, "sts": scores.get(("sts", pooling, DEFAULT_CONCAT)),
             "sts_paper": paper_sts}
            for pooling, (paper_nli, paper_sts) in PAPER_POOLING.items()]))
    if only in (None, "concat"):
        out.append(table("concat", "classifier input (mean pooling, NLI), STSb dev Spearman x100",
                         [("concat", "concatenation", ""), ("nli", "NLI (ours)", "{:.2f}"),
                          ("nli_paper", "NLI (paper)", "{:.2f}")], [
            {"concat": f"({', '.join(concat)})", "nli": scores.get(("nli", "mean", concat)),
             "nli_paper": paper} for concat, paper in PAPER_CONCAT.items()]))
    return out


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
    add_output_options(parser)
    args = parser.parse_args()

    from sbert.models import resolve_model

    model = str(resolve_model(args.model))
    nli = load_data("nli-softmax", args.limit, args.eval_limit, head_eval=False)
    data = {"nli": nli["train"], "dev": nli["dev"],
            "sts": load_data("sts", args.limit, args.eval_limit)["train"]}
    notes = [f"start model {args.model}; NLI {len(data['nli'])} pairs (1 epoch), STSb train "
             f"{len(data['sts'])} pairs ({args.sts_epochs} epochs), STSb dev "
             f"{len(data['dev'])} pairs; seed {args.seed}, batch 16, lr 2e-5, max length "
             f"{args.max_seq_length}, device {args.device or 'default'}; paper: Reimers & "
             "Gurevych (2019), Table 6 (bert-base, all of SNLI + MultiNLI)"]
    print(notes[0], flush=True)
    start = time.perf_counter()
    scores = run_all(plan(args.only), model, data, args)
    notes.append(f"{len(scores)} training runs, {time.perf_counter() - start:.0f} s in all, "
                 f"{args.jobs} at a time")
    result = tables(scores, args.only)
    print_tables(result)
    device = args.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    write_result("ablation", result, args, notes=notes, device=device,
                 raw={"scores": [[*k[:2], list(k[2]), v] for k, v in scores.items()]},
                 full=is_full(args, parser, ("seed", "sts_epochs", "max_seq_length", "limit",
                                             "eval_limit", "only")))

if __name__ == "__main__":
    main()
