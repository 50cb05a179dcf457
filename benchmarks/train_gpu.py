"""GPU training speed (issue 16): steps/s of the STSb recipe, sbert's trainer vs
sentence-transformers', both bf16, same model, batch and steps.

    bash benchmarks/gpu_check.sh                  # the documented run, on a CUDA machine
    python benchmarks/train_gpu.py [--steps 350] [--rounds 2]
    .venv/bin/python benchmarks/train_gpu.py --device cpu --steps 3 --rounds 1 \
        --warmup-steps 1 --out /tmp/bench                     # smoke run, on the CPU

The STSb recipe (CosineSimilarityLoss on STS benchmark train pairs, scores / 5) from
all-MiniLM-L6-v2: the first ``steps x batch`` training pairs, one epoch, batch 16, lr 2e-5,
10 % linear warm-up, weight decay 0.01, clipping 1.0, max length 128, bf16 autocast; the same
settings as benchmarks/train.py on the CPU. Each library trains once untimed (a few steps:
CUDA context, kernels, allocator), then ``--rounds`` times each, alternating which goes
first. steps/s is the steps over the wall clock of building the trainer and training
(data preparation included, no evaluation); the loop alone is shown beside it. Goal (issue
16): sbert >= 1.5x sentence-transformers. Writes benchmarks/results/train_gpu.<class>.json.
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

from _common import DATA, add_output_options, is_full, print_tables, table, write_result  # noqa: E402
from _gpu import model_folder  # noqa: E402

GOAL = 1.5
_START = time.perf_counter()


def say(text: str) -> None:
    print(f"[{time.perf_counter() - _START:6.1f}s] {text}", flush=True)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run_sbert(folder: str, train: Any, args: argparse.Namespace) -> dict[str, float]:
    """sbert's Trainer; steps, wall seconds and the loop's own seconds."""
    from sbert.encoder import SentenceEncoder
    from sbert.training.losses import CosineSimilarityLoss
    from sbert.training.trainer import TrainConfig, Trainer, TrainTask

    encoder = SentenceEncoder(folder, device=args.device, backend="torch", precision="fp32",
                              max_seq_length=args.max_seq_length)
    config = TrainConfig(epochs=1, batch_size=args.batch_size, lr=2e-5, warmup=0.1,
                         weight_decay=0.01, max_grad_norm=1.0, precision=args.precision,
                         seed=args.seed, show_progress=False, log_steps=10**9)
    _sync(args.device)
    start = time.perf_counter()
    trainer = Trainer(encoder, [TrainTask(train, CosineSimilarityLoss(encoder.network))], config)
    state = trainer.train()
    _sync(args.device)
    return {"steps": state.step, "seconds": time.perf_counter() - start,
            "loop_seconds": state.train_seconds}


def run_reference(folder: str, train: Any, args: argparse.Namespace) -> dict[str, float]:
    """sentence-transformers' SentenceTransformerTrainer, same settings."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses

    st = SentenceTransformer(folder, device=args.device)
    st.max_seq_length = args.max_seq_length
    columns = {"sentence1": train.columns[0], "sentence2": train.columns[1],
               "score": list(train.labels)}
    with tempfile.TemporaryDirectory() as tmp:
        training_args = SentenceTransformerTrainingArguments(
            output_dir=tmp, num_train_epochs=1, per_device_train_batch_size=args.batch_size,
            learning_rate=2e-5, warmup_steps=0.1, weight_decay=0.01, max_grad_norm=1.0,
            seed=args.seed, data_seed=args.seed, save_strategy="no", eval_strategy="no",
            report_to="none", disable_tqdm=True, logging_steps=10**9,
            use_cpu=args.device == "cpu", bf16=args.precision == "bf16",
        )
        _sync(args.device)
        start = time.perf_counter()
        trainer = SentenceTransformerTrainer(
            model=st, args=training_args, train_dataset=Dataset.from_dict(columns),
            loss=losses.CosineSimilarityLoss(st))
        output = trainer.train()
        _sync(args.device)
        seconds = time.perf_counter() - start
    return {"steps": trainer.state.global_step, "seconds": seconds,
            "loop_seconds": float(output.metrics.get("train_runtime", seconds))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--steps", type=int, default=350)
    parser.add_argument("--warmup-steps", type=int, default=20, help="untimed first run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the script")
    add_output_options(parser)
    args = parser.parse_args()

    import torch

    from sbert.training.data import read_sts

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU (--device cpu runs the script on the CPU, as a smoke "
                         "test)")
    gpu = torch.cuda.get_device_name(torch.device(args.device)) if cuda else "CPU"
    all_train = read_sts(DATA / "stsbenchmark" / "train.tsv")
    if args.steps * args.batch_size > len(all_train):
        raise SystemExit(f"--steps {args.steps} x batch {args.batch_size} is more than the "
                         f"{len(all_train)} STSb training pairs")
    train = all_train.subset(args.steps * args.batch_size)
    folder_path, weights, _ = model_folder(args.model)
    folder = str(folder_path)
    contenders = {"sbert": run_sbert, "sentence-transformers": run_reference}
    notes = [f"{gpu}, torch {torch.__version__}; STSb recipe from {args.model} ({weights}): "
             f"{len(train)} pairs, {args.steps} steps of batch {args.batch_size}, "
             f"{args.precision}, max length {args.max_seq_length}; {args.rounds} alternating "
             "rounds after an untimed run of each; steps/s: wall clock of building the "
             "trainer and training"]
    say(notes[0])
    try:
        import datasets  # noqa: F401  (sentence-transformers' trainer needs it)
    except ImportError as err:
        del contenders["sentence-transformers"]
        notes.append(f"sentence-transformers' trainer not run: {err} (carry the datasets "
                     "wheels: benchmarks/gpu_carry.py)")
        say(notes[-1])
    warm = all_train.subset(args.warmup_steps * args.batch_size)
    for name, fn in contenders.items():
        fn(folder, warm, args)
        say(f"{name}: warm-up run done")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for i in range(args.rounds):
        order = list(contenders) if i % 2 == 0 else list(contenders)[::-1]
        for name in order:
            res = contenders[name](folder, train, args)
            runs[name].append(res)
            say(f"round {i + 1} {name}: {res['steps'] / res['seconds']:.1f} steps/s "
                f"({res['steps']} steps, {res['seconds']:.1f} s; loop {res['loop_seconds']:.1f} s)")
    rows: list[dict[str, Any]] = []
    for name, results in runs.items():
        rows.append({"library": name,
                     "steps_per_s": statistics.fmean(r["steps"] / r["seconds"] for r in results),
                     "loop_steps_per_s": statistics.fmean(r["steps"] / r["loop_seconds"]
                                                          for r in results),
                     "rounds": [r["steps"] / r["seconds"] for r in results]})
    if len(rows) == 2:
        ratio = rows[0]["steps_per_s"] / rows[1]["steps_per_s"]
        rows[0]["ratio"] = ratio
        rows[0]["goal"] = f"{'met' if ratio >= GOAL else 'not met'} (>= {GOAL}x)"
        rows[1]["ratio"] = 1.0
    tables = [table("speed", f"STSb recipe, {args.precision}, batch {args.batch_size}, on {gpu}",
                    [("library", "library", ""), ("steps_per_s", "steps/s", "{:.1f}"),
                     ("ratio", "x sentence-transformers", "{:.2f}x"),
                     ("goal", "goal", ""), ("loop_steps_per_s", "steps/s, loop only", "{:.1f}"),
                     ("rounds", "steps/s per round", "{:.1f}")], rows)]
    print_tables(tables)
    write_result("train_gpu", tables, args, notes=notes, raw={"runs": runs}, device=args.device,
                 full=cuda and len(rows) == 2 and is_full(args, parser, (
                     "model", "steps", "warmup_steps", "rounds", "batch_size", "max_seq_length",
                     "precision", "seed")))


if __name__ == "__main__":
    main()
