"""Train with the paper's NLI objectives: softmax classifier or in-batch negatives.

    .venv/bin/python examples/train_nli.py --recipe nli-softmax [--limit 2000]
    .venv/bin/python examples/train_nli.py --recipe nli-mnrl [--limit 2000]

Trains all-MiniLM-L6-v2 for 1 epoch on SNLI dev + SNLI test + MultiNLI dev-matched (the only
NLI pairs in ../shared/data; the paper used the ~1M training pairs), evaluates on the STS
benchmark dev set during training and prints test Spearman and, for the softmax recipe, the
head's accuracy on MultiNLI dev-mismatched. A model already tuned for similarity can lose STS
quality on this little NLI data: the figures say so.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sbert.training.data import read_nli, read_sts  # noqa: E402
from sbert.training.evaluate import STSEvaluator, head_accuracy  # noqa: E402
from sbert.training.recipes import run_recipe  # noqa: E402

DATA = Path(os.environ.get("SBERT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TRAIN = ("snli_1.0_dev.tsv", "snli_1.0_test.tsv", "multinli_1.0_dev_matched.tsv")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", choices=["nli-softmax", "nli-mnrl"], default="nli-softmax")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    output = args.output or Path("runs") / args.recipe
    result = run_recipe(args.recipe, "all-MiniLM-L6-v2", [DATA / "nli" / f for f in TRAIN],
                        output, dev=DATA / "stsbenchmark" / "dev.tsv", limit=args.limit,
                        max_seq_length=128)
    test = STSEvaluator(read_sts(DATA / "stsbenchmark" / "test.tsv"), "stsb_test")
    print("STSb test:", round(test(result.encoder)[test.primary_metric], 2))
    if args.recipe == "nli-softmax":
        mismatched = read_nli(DATA / "nli" / "multinli_1.0_dev_mismatched.tsv")

        def embed(texts: list[str]):
            return result.encoder.encode(texts, batch_size=64)

        print("MultiNLI dev-mismatched accuracy:",
              round(head_accuracy(embed, result.loss.logits, mismatched), 2))
    print(f"saved {result.output}")


if __name__ == "__main__":
    main()
