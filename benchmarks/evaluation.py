"""The paper's evaluation tables for the bundled models and baselines, beside the paper's rows.

    .venv/bin/python benchmarks/evaluation.py [--models M...] [--tasks sts transfer ...]
    .venv/bin/python benchmarks/evaluation.py --models all-MiniLM-L6-v2 glove --limit 200 \
        --out /tmp/bench                                                    # smoke run

Runs ``sbert.evaluation`` on the shared data sets (``SBERT_DATA``) for every model:

* sts: Spearman x100 of cosine vs gold, pooled over each data set (the paper's Table 1
  protocol) on STSb test, dev and train, plus SentEval's per-subset mean and weighted mean
  on the original ``sts-test.csv`` (``--sts-data`` adds other files or STS12-16 folders);
* transfer: the SentEval tasks (Table 5), logistic regression on frozen embeddings, seed 1111;
* triplet: (premise, entailment, contradiction) triplets of the SNLI test set, accuracy;
* paraphrase: every distinct question of the Quora test pairs mined against every other,
  average precision and best F1 against the label-1 pairs.

Writes benchmarks/results/evaluation.<machine>.json. Scores do not depend on the machine's
speed or load; on 2 cores the full run takes about an hour (all-mpnet-base-v2's transfer
tasks are most of it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    DATA,
    add_output_options,
    is_full,
    print_tables,
    table,
    write_result,
)

# model spec -> backend options (the bare ONNX graph has no torch weights)
MODELS = {"all-MiniLM-L6-v2": {}, "all-mpnet-base-v2": {},
          "paraphrase-MiniLM-L3-v2": {"backend": "onnx"}, "glove": {},
          "avg:all-MiniLM-L6-v2": {}, "cls:all-MiniLM-L6-v2": {}}
TASKS = ("sts", "transfer", "triplet", "paraphrase")
STS_DATA = {"stsbenchmark/test.tsv": "STSb test", "stsbenchmark/dev.tsv": "STSb dev",
            "stsbenchmark/train.tsv": "STSb train",
            "stsbenchmark/original/sts-test.csv": "STSb test (sts-test.csv)"}
TRANSFER = ("MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC")
TRIPLETS = "nli/snli_1.0_test.tsv"
DUPLICATES = "quora_qp/quora_qp.test.tsv"

# Reimers & Gurevych (2019): Table 1 (STSb column, Spearman x100) and Table 5 (accuracy x100)
PAPER_STSB = {"Avg. GloVe embeddings (300d)": 58.02, "Avg. BERT embeddings": 46.35,
              "BERT CLS-vector": 16.50, "SBERT-NLI-base": 77.03, "SBERT-NLI-large": 79.23}
PAPER_TRANSFER = {
    "Avg. GloVe embeddings (300d)": (77.25, 78.30, 91.17, 87.85, 80.18, 83.0, 72.87, 81.52),
    "Avg. BERT embeddings": (78.66, 86.25, 94.37, 88.66, 84.40, 92.8, 69.45, 84.94),
    "BERT CLS-vector": (78.68, 84.85, 94.21, 88.23, 84.13, 91.4, 71.13, 84.66),
    "SBERT-NLI-base": (83.64, 89.43, 94.39, 89.86, 88.96, 89.6, 76.00, 87.41),
    "SBERT-NLI-large": (84.88, 90.07, 94.52, 90.33, 90.66, 87.4, 75.94, 87.69),
}
PAPER = "paper"
OURS = "sbert"


def sts_rows(models: dict[str, Any], files: list[str], limit: int | None,
             batch_size: int) -> tuple[list[tuple[str, str, str]], list[dict[str, Any]]]:
    """Columns and rows of the STS table: one Spearman per data set, SentEval means."""
    from sbert.evaluation import StsDataset, evaluate_sts, load_sts

    datasets: list[tuple[str, Any]] = []
    for rel in files:
        path = Path(rel) if Path(rel).is_absolute() else DATA / rel
        for ds in load_sts(path):
            if limit is not None:
                ds = StsDataset(ds.name, ds.sentences1[:limit], ds.sentences2[:limit],
                                ds.scores[:limit], ds.subsets[:limit])
            datasets.append((STS_DATA.get(rel, ds.name), ds))
    columns = [("model", "model", "")]
    columns += [(label, label, "{:.2f}") for label, _ in datasets]
    with_subsets = [label for label, ds in datasets if len(set(ds.subsets)) > 1]
    for label in with_subsets:
        columns += [(f"{label} mean", f"{label}, SentEval mean over subsets", "{:.2f}"),
                    (f"{label} wmean", f"{label}, weighted mean", "{:.2f}")]
    columns.append(("source", "source", ""))
    rows: list[dict[str, Any]] = [
        {"model": name, "STSb test": score, "source": f"{PAPER} (Table 1)"}
        for name, score in PAPER_STSB.items()] if "STSb test" in dict(datasets) else []
    for spec, model in models.items():
        row: dict[str, Any] = {"model": spec, "source": OURS}
        for label, ds in datasets:
            print(f"sts: {spec} on {label} ({len(ds)} pairs)", flush=True)
            result = evaluate_sts(model, ds, batch_size=batch_size)
            row[label] = result["spearman_cosine"]
            if label in with_subsets:
                row[f"{label} mean"] = result.get("senteval_mean_spearman_cosine")
                row[f"{label} wmean"] = result.get("senteval_wmean_spearman_cosine")
        rows.append(row)
    return columns, rows


def transfer_rows(models: dict[str, Any], limit: int | None, batch_size: int,
                  seed: int, inner_folds: int) -> list[dict[str, Any]]:
    """SentEval accuracies per model (MRPC: accuracy and F1), the paper's rows first."""
    from sbert.evaluation import evaluate_task, load_task

    tasks = [load_task(DATA / "senteval", name) for name in TRANSFER]
    if limit is not None:
        tasks = [t.sample(limit, seed) for t in tasks]
    rows: list[dict[str, Any]] = [
        {"model": name, **dict(zip([*TRANSFER, "avg"], scores, strict=True)),
         "source": f"{PAPER} (Table 5)"} for name, scores in PAPER_TRANSFER.items()]
    for spec, model in models.items():
        row: dict[str, Any] = {"model": spec, "source": OURS}
        for task in tasks:
            print(f"transfer: {spec} on {task.name}", flush=True)
            result = evaluate_task(model, task, batch_size=batch_size, seed=seed,
                                   inner_folds=inner_folds)
            row[task.name] = result["accuracy"]
            if task.name == "MRPC":
                row["MRPC_F1"] = result.get("f1")
        row["avg"] = sum(row[t.name] for t in tasks) / len(tasks)
        rows.append(row)
    return rows


def triplet_rows(models: dict[str, Any], limit: int | None,
                 batch_size: int) -> list[dict[str, Any]]:
    from sbert.evaluation import TripletDataset, evaluate_triplets, read_triplets

    ds = read_triplets(DATA / TRIPLETS)
    if limit is not None:
        ds = TripletDataset(ds.name, ds.anchors[:limit], ds.positives[:limit],
                            ds.negatives[:limit])
    rows = []
    for spec, model in models.items():
        print(f"triplet: {spec} ({len(ds)} triplets)", flush=True)
        result = evaluate_triplets(model, ds, batch_size=batch_size)
        rows.append({"model": spec, "triplets": len(ds),
                     "cosine": result["accuracy_cosine"],
                     "euclidean": result["accuracy_euclidean"]})
    return rows


def paraphrase_rows(models: dict[str, Any], limit: int | None,
                    batch_size: int) -> list[dict[str, Any]]:
    from sbert.evaluation import evaluate_paraphrase_mining, read_duplicates

    ds = read_duplicates(DATA / DUPLICATES, limit=limit)  # the first N pairs, as sbert eval
    rows = []
    for spec, model in models.items():
        print(f"paraphrase: {spec} ({len(ds.sentences)} sentences)", flush=True)
        r = evaluate_paraphrase_mining(model, ds, batch_size=batch_size)
        rows.append({"model": spec, "sentences": r["sentences"], "gold_pairs": r["gold_pairs"],
                     "ap": r["average_precision"], "f1": r["f1"], "precision": r["precision"],
                     "recall": r["recall"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--sts-data", nargs="+", default=list(STS_DATA),
                        help="STS files or folders, relative to SBERT_DATA or absolute")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA if any)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1111, help="transfer tasks' seed")
    parser.add_argument("--inner-folds", type=int, default=0,
                        help="transfer: 0 picks C on one validation split; 10: SentEval's CV")
    parser.add_argument("--limit", type=int, default=None, help="first N examples (smoke)")
    add_output_options(parser)
    args = parser.parse_args()

    from sbert.evaluation.baselines import load_model

    if not (DATA / "stsbenchmark").exists():
        raise SystemExit(f"needs the shared data sets in {DATA}; set SBERT_DATA")
    models = {spec: load_model(spec, args.device, **MODELS.get(spec, {}))
              for spec in args.models}
    notes = [f"models: {', '.join(args.models)} (glove: averaged GloVe 6B 50d; avg:/cls:: the "
             "transformer's averaged tokens / CLS vector); x100; paper: Reimers & Gurevych "
             "(2019), bert-base/large trained on SNLI + MultiNLI"]
    tables = []
    if "sts" in args.tasks:
        columns, rows = sts_rows(models, args.sts_data, args.limit, args.batch_size)
        tables.append(table("sts", "STS: Spearman x100 of cosine vs gold", columns, rows))
    if "transfer" in args.tasks:
        notes.append(f"transfer: logistic regression on the frozen embeddings, seed {args.seed}; "
                     "10-fold CV for MR, CR, SUBJ, MPQA; standard splits for SST2, TREC, MRPC "
                     "(MRPC on [|u-v|, u*v]); C from SentEval's grid "
                     + ("by inner 10-fold CV" if args.inner_folds else
                        "on a 10 % validation split"))
        rows = transfer_rows(models, args.limit, args.batch_size, args.seed, args.inner_folds)
        tables.append(table("transfer", "SentEval transfer tasks: accuracy x100", [
            ("model", "model", ""), *((t, t, "{:.2f}") for t in TRANSFER),
            ("MRPC_F1", "MRPC F1", "{:.2f}"), ("avg", "avg", "{:.2f}"),
            ("source", "source", "")], rows))
    if "triplet" in args.tasks:
        tables.append(table("triplet", "SNLI test triplets (premise, entailment, contradiction)",
                            [("model", "model", ""), ("triplets", "triplets", "{:,}"),
                             ("cosine", "accuracy (cosine)", "{:.2f}"),
                             ("euclidean", "accuracy (Euclidean)", "{:.2f}")],
                            triplet_rows(models, args.limit, args.batch_size)))
    if "paraphrase" in args.tasks:
        tables.append(table("paraphrase", "paraphrase mining on the Quora test pairs", [
            ("model", "model", ""), ("sentences", "sentences", "{:,}"),
            ("gold_pairs", "gold pairs", "{:,}"), ("ap", "average precision", "{:.2f}"),
            ("f1", "best F1", "{:.2f}"), ("precision", "precision", "{:.2f}"),
            ("recall", "recall", "{:.2f}")], paraphrase_rows(models, args.limit,
                                                              args.batch_size)))
    print_tables(tables)
    write_result("evaluation", tables, args, notes=notes,
                 full=is_full(args, parser, ("models", "tasks", "sts_data", "seed",
                                             "inner_folds", "limit")))


if __name__ == "__main__":
    main()
