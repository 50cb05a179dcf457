"""The paper's Table 6 ablation on the data we have: pooling x objective, and concatenations.

    .venv/bin/python benchmarks/ablation.py [--model all-MiniLM-L6-v2] [--markdown OUT.md]
    .venv/bin/python benchmarks/ablation.py --limit 64 --eval-limit 100 --sts-epochs 1   # smoke

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
import os
import sys
import time
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
    from sbert.losses import CosineSimilarityLoss, SoftmaxLoss
    from sbert.training.checkpoint import seed_everything
    from sbert.training.evaluate import STSEvaluator
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sts-epochs", type=int, default=4)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--device", default=None)
    parser.add_argument("--limit", type=int, default=None, help="first N training examples")
    parser.add_argument("--eval-limit", type=int, default=None, help="first N dev pairs")
    parser.add_argument("--only", choices=["pooling", "concat"], default=None)
    parser.add_argument("--markdown", type=Path, default=None, help="write the table here")
    args = parser.parse_args()

    from sbert.resolve import resolve_model

    model = str(resolve_model(args.model))
    nli = load_data("nli-softmax", args.limit, args.eval_limit)
    data = {"nli": nli["train"], "dev": nli["dev"],
            "sts": load_data("sts", args.limit, args.eval_limit)["train"]}
    print(f"start model {args.model}; NLI {len(data['nli'])} pairs, STSb train "
          f"{len(data['sts'])} pairs, STSb dev {len(data['dev'])} pairs", flush=True)
    rows: list[str] = []
    scores: dict[tuple[str, str, tuple[str, ...]], float] = {}

    def run(objective: str, pooling: str, concat: tuple[str, ...]) -> float:
        key = (objective, pooling, concat)
        if key not in scores:
            start = time.perf_counter()
            scores[key] = train_and_score(model, objective, pooling, concat, data, args)
            print(f"  {objective:3s} {pooling:4s} {' '.join(concat):18s} "
                  f"{scores[key]:6.2f}  ({time.perf_counter() - start:.0f} s)", flush=True)
        return scores[key]

    if args.only in (None, "pooling"):
        rows += ["| pooling | NLI (ours) | NLI (paper) | STSb (ours) | STSb (paper) |",
                 "| --- | --- | --- | --- | --- |"]
        for pooling, (paper_nli, paper_sts) in PAPER_POOLING.items():
            ours_nli = run("nli", pooling, DEFAULT_CONCAT)
            ours_sts = run("sts", pooling, DEFAULT_CONCAT)
            rows.append(f"| {pooling.upper()} | {_fmt(ours_nli)} | {paper_nli:.2f} | "
                        f"{_fmt(ours_sts)} | {paper_sts:.2f} |")
        rows.append("")
    if args.only in (None, "concat"):
        rows += ["| concatenation | NLI (ours) | NLI (paper) |", "| --- | --- | --- |"]
        for concat, paper in PAPER_CONCAT.items():
            ours = run("nli", "mean", concat)
            name = ", ".join(concat).replace("|", "\\|")  # a bare | would split the cell
            rows.append(f"| ({name}) | {_fmt(ours)} | {paper:.2f} |")
    table = "\n".join(rows)
    print("\nSTS benchmark dev, Spearman x100\n" + table)
    if args.limit or args.eval_limit:
        print("(a --limit/--eval-limit run: a smoke test, not a measurement)")
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
