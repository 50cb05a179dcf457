"""Training parity and speed: sbert's trainer vs sentence-transformers', alternating in one run.

    .venv/bin/python benchmarks/train.py --recipe sts [--seeds 1 2 3] [--epochs 4]
    .venv/bin/python benchmarks/train.py --recipe nli-softmax --seeds 1 2 3
    .venv/bin/python benchmarks/train.py --recipe nli-mnrl --seeds 1 2 3
    .venv/bin/python benchmarks/train.py --recipe sts --limit 64 --seeds 1 --epochs 1 \
        --eval-limit 200 --out /tmp/bench                                   # smoke run

Both libraries start from the same folder (all-MiniLM-L6-v2 by default) and train on the same
data with the same batch size (16), learning rate (2e-5), 10 % linear warm-up, weight decay
0.01, gradient clipping 1.0, max length (128) and seed; for each seed the two run one after
the other, in alternating order, after an untimed warm-up run of each. Printed per run and
as means: training examples/s (wall clock of the whole training call, data preparation
included) with the GFLOP/s it implies (forward + backward counted as 3x the forward of the
real tokens) and its fraction of the machine's best fp32 matrix-multiply limit, STS benchmark
test Spearman x100 and, for nli-softmax, the accuracy of the trained softmax head on MultiNLI
dev-mismatched. Goals (issue 4): speed >= 1.25x the reference;
STSb within 0.3 (sts) / 0.5 (NLI recipes); head accuracy within 1.0.

Data (../shared/data): sts = stsbenchmark/train.tsv; NLI = SNLI dev + SNLI test + MultiNLI
dev-matched (no NLI training split is available here); nli-mnrl uses (anchor, entailment,
contradiction) triplets built from the same pairs. Writes
benchmarks/results/train-<recipe>.<machine>.json. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    DATA,
    TRAIN_FACTOR,
    add_output_options,
    best_limit,
    flops_cells,
    flops_columns,
    is_full,
    machine_limits,
    model_flops,
    print_tables,
    table,
    write_result,
)

NLI_TRAIN = ("snli_1.0_dev.tsv", "snli_1.0_test.tsv", "multinli_1.0_dev_matched.tsv")
GOALS = {"speed": 1.25, "sts": 0.3, "nli-softmax": 0.5, "nli-mnrl": 0.5, "accuracy": 1.0}
RECIPES = ("sts", "nli-softmax", "nli-mnrl")


def load_data(recipe: str, limit: int | None, eval_limit: int | None,
              head_eval: bool = True) -> dict[str, Any]:
    """Training examples, STSb dev/test pairs and (nli-softmax, ``head_eval``) MultiNLI
    dev-mismatched."""
    from sbert.training.data import concat_examples, nli_triplets, read_nli, read_sts

    if not (DATA / "stsbenchmark" / "test.tsv").exists():
        raise SystemExit(f"needs the shared data sets in {DATA}; set SBERT_DATA")
    if recipe.startswith("sts"):
        train = read_sts(DATA / "stsbenchmark" / "train.tsv")
    else:
        train = concat_examples([read_nli(DATA / "nli" / name) for name in NLI_TRAIN])
        if recipe == "nli-mnrl":
            train = nli_triplets(train)
    out = {
        "train": train.subset(limit),
        "test": read_sts(DATA / "stsbenchmark" / "test.tsv").subset(eval_limit),
        "dev": read_sts(DATA / "stsbenchmark" / "dev.tsv").subset(eval_limit),
    }
    if recipe == "nli-softmax" and head_eval:
        mm = read_nli(DATA / "nli" / "multinli_1.0_dev_mismatched.tsv")
        out["mismatched"] = mm.subset(eval_limit)
    return out


def run_ours(model: str, recipe: str, data: dict[str, Any], args: argparse.Namespace,
             seed: int) -> dict[str, Any]:
    """Train with sbert's Trainer; returns examples/s and the quality metrics."""
    import torch

    from sbert.encoder import SentenceEncoder
    from sbert.training.evaluate import STSEvaluator, head_accuracy
    from sbert.training.losses import (
        CosineSimilarityLoss,
        MultipleNegativesRankingLoss,
        SoftmaxLoss,
    )
    from sbert.training.trainer import TrainConfig, Trainer, TrainTask

    encoder = SentenceEncoder(model, device="cpu", backend="torch", precision="fp32",
                              max_seq_length=args.max_seq_length)
    torch.manual_seed(seed)
    net = encoder.network
    loss: Any
    if recipe == "sts":
        loss = CosineSimilarityLoss(net)
    elif recipe == "nli-softmax":
        loss = SoftmaxLoss(net, encoder.dimension, 3)
    else:
        loss = MultipleNegativesRankingLoss(net)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                         warmup=0.1, weight_decay=0.01, show_progress=False,
                         precision=args.precision, log_steps=10**9)
    train = data["train"]
    start = time.perf_counter()
    task = TrainTask(train, loss, no_duplicates=recipe == "nli-mnrl")
    Trainer(encoder, [task], config).train()
    seconds = time.perf_counter() - start

    def embed(texts: list[str]) -> Any:
        return encoder.encode(texts, batch_size=64, show_progress=False)

    result = {"seconds": seconds, "examples_per_s": len(train) * args.epochs / seconds,
              "stsb_test": STSEvaluator(data["test"]).score(embed)}
    if recipe == "nli-softmax":
        result["mnli_mm_accuracy"] = head_accuracy(embed, loss.logits, data["mismatched"])
    return result


def run_reference(model: str, recipe: str, data: dict[str, Any], args: argparse.Namespace,
                  seed: int) -> dict[str, Any]:
    """Train with sentence-transformers' SentenceTransformerTrainer, same settings."""
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses

    from sbert.training.evaluate import STSEvaluator, head_accuracy

    st = SentenceTransformer(model, device="cpu")
    st.max_seq_length = args.max_seq_length
    torch.manual_seed(seed)
    train = data["train"]
    names = ["sentence1", "sentence2", "sentence3"][: len(train.columns)]
    columns: dict[str, list[Any]] = dict(zip(names, train.columns, strict=True))
    if recipe == "sts":
        loss: Any = losses.CosineSimilarityLoss(st)
        columns["score"] = list(train.labels)
    elif recipe == "nli-softmax":
        loss = losses.SoftmaxLoss(st, st.get_embedding_dimension(), 3)
        columns["label"] = [int(x) for x in train.labels]
    else:
        loss = losses.MultipleNegativesRankingLoss(st)
    with tempfile.TemporaryDirectory() as tmp:
        training_args = SentenceTransformerTrainingArguments(
            output_dir=tmp, num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
            warmup_steps=0.1, weight_decay=0.01, max_grad_norm=1.0, seed=seed, data_seed=seed,
            save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
            use_cpu=True, logging_steps=10**9, bf16=args.precision == "bf16",
            batch_sampler="no_duplicates" if recipe == "nli-mnrl" else "batch_sampler",
        )
        start = time.perf_counter()
        trainer = SentenceTransformerTrainer(model=st, args=training_args,
                                             train_dataset=Dataset.from_dict(columns), loss=loss)
        trainer.train()
        seconds = time.perf_counter() - start
    st.eval()

    def embed(texts: list[str]) -> Any:
        return st.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)

    result = {"seconds": seconds, "examples_per_s": len(train) * args.epochs / seconds,
              "stsb_test": STSEvaluator(data["test"]).score(embed)}
    if recipe == "nli-softmax":

        def logits(u: Any, v: Any) -> Any:
            return loss.classifier(torch.cat([u, v, (u - v).abs()], dim=1))

        result["mnli_mm_accuracy"] = head_accuracy(embed, logits, data["mismatched"])
    return result


def train_flops(model: str, train: Any, args: argparse.Namespace) -> tuple[int, float]:
    """Real tokens of one epoch's texts (every column, cut at ``--max-seq-length``) and the
    FLOPs of training on them for ``args.epochs``: forward + backward as 3x the forward."""
    from sbert.encoder import SentenceEncoder

    encoder = SentenceEncoder(model, device="cpu", backend="torch", precision="fp32",
                              max_seq_length=args.max_seq_length)
    tokens, forward = model_flops(encoder, [t for col in train.columns for t in col])
    return tokens, TRAIN_FACTOR * forward * args.epochs


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.fmean(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", choices=RECIPES, default="sts")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=None, help="default: 4 sts, 1 NLI")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--limit", type=int, default=None, help="first N training examples")
    parser.add_argument("--eval-limit", type=int, default=None, help="first N test pairs")
    parser.add_argument("--warmup-limit", type=int, default=32,
                        help="examples of the untimed warm-up run of each library")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--only", choices=["sbert", "reference"], default=None,
                        help="run one library (compare with the other's figures at the same seeds)")
    add_output_options(parser)
    args = parser.parse_args()
    defaults_epochs = args.epochs is None
    args.epochs = args.epochs or (4 if args.recipe == "sts" else 1)

    import torch

    from sbert.models import resolve_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = str(resolve_model(args.model))
    data = load_data(args.recipe, args.limit, args.eval_limit)
    print(f"{args.recipe}: {len(data['train'])} training examples x {args.epochs} epochs, "
          f"model {args.model}, torch threads {torch.get_num_threads()}")
    contenders = {"sbert": run_ours, "reference": run_reference}
    if args.only:
        contenders = {args.only: contenders[args.only]}
    warm = dict(data, train=data["train"].subset(args.warmup_limit))
    warm_args = argparse.Namespace(**{**vars(args), "epochs": 1})
    for fn in contenders.values():  # untimed warm-up: imports, allocator, thread pools
        fn(model, args.recipe, warm, warm_args, args.seeds[0])
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    for i, seed in enumerate(args.seeds):
        order = list(contenders) if i % 2 == 0 else list(contenders)[::-1]
        for name in order:
            res = contenders[name](model, args.recipe, data, args, seed)
            results[name].append(res)
            extra = (f"  mnli-mm acc {res['mnli_mm_accuracy']:.2f}"
                     if "mnli_mm_accuracy" in res else "")
            print(f"seed {seed} {name:9s}: {res['examples_per_s']:7.1f} examples/s "
                  f"({res['seconds']:.1f} s)  STSb test {res['stsb_test']:.2f}{extra}", flush=True)
    tokens, flops = train_flops(model, data["train"], args)  # after every timed run
    per_example = flops / (len(data["train"]) * args.epochs)
    limits = machine_limits()
    notes = [f"{args.recipe}: {len(data['train'])} training examples x {args.epochs} epochs, "
             f"start model {args.model}, batch {args.batch_size}, lr {args.lr}, max length "
             f"{args.max_seq_length}, {args.precision}, torch threads {torch.get_num_threads()}; "
             f"seeds {args.seeds}; examples/s: wall clock of the whole training call",
             f"GFLOP/s: the matrix work of the {tokens} real (unpadded) tokens of an epoch's "
             f"texts, forward + backward counted as {TRAIN_FACTOR}x the forward "
             f"({flops / 1e12:.2f} TFLOP in all), over that wall clock (data preparation "
             "included); 'of ... limit': of the machine's best fp32 matrix-multiply limit"]
    run_rows = [{"seed": seed, "library": name, "examples_per_s": res["examples_per_s"],
                 "seconds": res["seconds"], "stsb_test": res["stsb_test"],
                 **flops_cells(res["examples_per_s"] * per_example, limits),
                 **({"mnli_mm_accuracy": res["mnli_mm_accuracy"]}
                    if "mnli_mm_accuracy" in res else {})}
                for name, runs in results.items()
                for seed, res in zip(args.seeds, runs, strict=True)]
    run_columns = [("seed", "seed", "{:d}"), ("library", "library", ""),
                   ("examples_per_s", "examples/s", "{:.1f}"), ("seconds", "seconds", "{:.0f}"),
                   ("stsb_test", "STSb test", "{:.2f}")]
    run_columns[3:3] = flops_columns(limits)  # beside examples/s and seconds
    if args.recipe == "nli-softmax":
        run_columns.append(("mnli_mm_accuracy", "MultiNLI mm head accuracy", "{:.2f}"))
    tables = [table("runs", f"{args.recipe}: each run", run_columns, run_rows)]
    summary: list[dict[str, Any]] = []
    if not args.only:
        ours, ref = results["sbert"], results["reference"]
        speed = [o["examples_per_s"] / r["examples_per_s"]
                 for o, r in zip(ours, ref, strict=True)]
        summary.append({"metric": "examples/s", "sbert": _mean(ours, "examples_per_s"),
                        "reference": _mean(ref, "examples_per_s"),
                        "compare": f"{statistics.fmean(speed):.2f}x",
                        "goal": f">= {GOALS['speed']}x"})
        gflops = [_mean(runs, "examples_per_s") * per_example / 1e9 for runs in (ours, ref)]
        best_name, best = best_limit(limits)
        shares = (" / ".join(f"{g / best:.0%}" for g in gflops) + f" of {best_name} limit"
                  if best else "")
        summary.append({"metric": f"GFLOP/s (forward + backward = {TRAIN_FACTOR}x forward)",
                        "sbert": gflops[0], "reference": gflops[1], "compare": shares,
                        "goal": "report"})
        summary.append({"metric": "STSb test Spearman x100", "sbert": _mean(ours, "stsb_test"),
                        "reference": _mean(ref, "stsb_test"),
                        "compare": f"{_mean(ours, 'stsb_test') - _mean(ref, 'stsb_test'):+.2f}",
                        "goal": f"within {GOALS[args.recipe]}"})
        if args.recipe == "nli-softmax":
            acc = _mean(ours, "mnli_mm_accuracy") - _mean(ref, "mnli_mm_accuracy")
            summary.append({"metric": "MultiNLI dev-mismatched head accuracy",
                            "sbert": _mean(ours, "mnli_mm_accuracy"),
                            "reference": _mean(ref, "mnli_mm_accuracy"),
                            "compare": f"{acc:+.2f}", "goal": f"within {GOALS['accuracy']}"})
        tables.append(table("summary", f"{args.recipe}: mean over {len(args.seeds)} seed(s)", [
            ("metric", "mean over seeds", ""), ("sbert", "sbert", "{:.2f}"),
            ("reference", "sentence-transformers", "{:.2f}"),
            ("compare", "ratio / delta", ""), ("goal", "goal", "")], summary))
    print_tables(tables)
    write_result(f"train-{args.recipe}", tables, args, notes=notes, limits=limits,
                 raw={"results": results, "real_tokens": tokens, "flops": flops},
                 full=defaults_epochs and is_full(args, parser, (
                     "model", "seeds", "batch_size", "lr", "max_seq_length", "precision",
                     "limit", "eval_limit", "threads", "only")))

if __name__ == "__main__":
    main()
