"""Fine-tune all-MiniLM-L6-v2 on the STS benchmark (the paper's regression objective).

    .venv/bin/python examples/train_sts.py [--limit 256] [--epochs 4] [--output runs/sts]

Same as ``sbert train -r sts --train .../train.tsv --dev .../dev.tsv -o runs/sts``. Prints
STS benchmark test Spearman before and after training. The full run (4 epochs, 5,749 pairs)
takes about 10 minutes on 2 CPU cores; ``--limit`` trains on fewer pairs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sbert import SentenceEncoder  # noqa: E402
from sbert.training.data import read_sts  # noqa: E402
from sbert.training.evaluate import STSEvaluator  # noqa: E402
from sbert.training.recipes import run_recipe  # noqa: E402

DATA = Path(os.environ.get("SBERT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--output", type=Path, default=Path("runs/sts"))
    args = parser.parse_args()
    sts = DATA / "stsbenchmark"
    test = STSEvaluator(read_sts(sts / "test.tsv"), "stsb_test")
    print("before:", test(SentenceEncoder("all-MiniLM-L6-v2"))[test.primary_metric])
    result = run_recipe("sts", "all-MiniLM-L6-v2", [sts / "train.tsv"], args.output,
                        dev=sts / "dev.tsv", epochs=args.epochs, limit=args.limit,
                        max_seq_length=128)
    print("after: ", test(result.encoder)[test.primary_metric])
    print(f"saved {result.output} (README.md, loss_curve.png); "
          f"{result.state.examples_per_second:.1f} training examples/s")


if __name__ == "__main__":
    main()
