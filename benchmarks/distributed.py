"""Ray Data encoding and torch DDP training against their single-process baselines.

    .venv/bin/python benchmarks/distributed.py [--sentences 100000] [--rounds 5] [--train-rounds 3]

Part 1, encoding. ``--sentences`` sentences (the distinct sentences of the shared STSb, NLI
and Quora files in a fixed order, repeated as needed) are written as 4 Parquet shards with an
``id`` column. In one process run, alternating, each ``--rounds`` times:

- plain: load the encoder, then ``SentenceEncoder.encode`` of all of them, in this process
  (read from the shards, written as Parquet);
- plain, 2 processes: the same in 2 processes of one core each, side by side, each on half
  of the shards (the encoders of the 2-actor run, without Ray);
- Ray, 1 actor with every core, and Ray, 2 actors of one core each: ``encode_files`` of the
  shard folder into a fresh output folder (the actors load the encoder), on a local Ray
  cluster started once beforehand. Its start-up, and a first one-shard job that starts Ray
  Data's own service actors (kept by the cluster for every later job), are reported on
  their own lines and not counted as any run's overhead.

All four run all-MiniLM-L6-v2 on the same backend (``--backend``, default ONNX int8: it
makes the 100,000 sentences take minutes, not tens of minutes) at batch 32. The outputs are
compared row by row (ids, order, largest difference, smallest cosine). int8 quantizes each
batch's activations with that batch's own scale, so a row's embedding depends a little on
the sentences it was batched with, and Ray's batches are not plain ``encode``'s: the
comparison is exact only on the torch and ONNX fp32 backends (the tests assert it there).
The table gives sentences/s and each run's overhead against plain ``encode``: per round,
against the plain run of the same round (the host's speed drifts by tens of percent over
minutes), and the median of those; for 2 actors also against the 2 plain processes, which
separates Ray's own cost from that of two single-core encoders instead of one on both
cores; then the GFLOP/s of the sentences' real tokens with their fraction of the machine's
best fp32 matrix-multiply limit (measured after the runs);
a second table splits the plain run into reading, tokenizing, the model and writing (the
scaling plan in docs/distributed.md uses it).

Part 2, training. ``sbert train -r sts`` on the first ``--train-examples`` STSb training pairs
(1 epoch, global batch 16, no checkpoints) with ``--nproc 1`` and ``--nproc 2``: steps/s and
examples/s from the run's own log (training time only, without start-up), the GFLOP/s they
imply (forward + backward counted as 3x the forward of the pairs' real tokens) and the wall
time.

Run it on an idle machine. Smoke run: ``--sentences 2000 --rounds 1 --train-rounds 1
--train-examples 64 --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    DATA,
    TRAIN_FACTOR,
    Column,
    add_output_options,
    flops_cells,
    flops_columns,
    is_full,
    machine_limits,
    median,
    model_flops,
    print_tables,
    table,
    write_result,
)

MODEL = "all-MiniLM-L6-v2"
SHARDS = 4
DIM = 384  # the model's embedding size
PLAN_SIZES = (10_000_000, 100_000_000)  # corpora of the scaling plan's arithmetic
PLAN_ACTORS = (1, 8, 64)
ROW_GROUP = 4096  # rows per Parquet row group: Ray reads (and splits work) by row group
BATCH = 32
PLAIN_TWO = "plain, 2 processes"  # plain encode in 2 single-core processes side by side
SOURCES = [  # (file under the shared data, text columns)
    ("stsbenchmark/train.tsv", ("sentence1", "sentence2")),
    ("stsbenchmark/dev.tsv", ("sentence1", "sentence2")),
    ("stsbenchmark/test.tsv", ("sentence1", "sentence2")),
    ("nli/snli_1.0_dev.tsv", ("premise", "hypothesis")),
    ("nli/snli_1.0_test.tsv", ("premise", "hypothesis")),
    ("nli/multinli_1.0_dev_matched.tsv", ("premise", "hypothesis")),
    ("nli/multinli_1.0_dev_mismatched.tsv", ("premise", "hypothesis")),
    ("quora_qp/quora_qp.dev.tsv", ("sentence1", "sentence2")),
    ("quora_qp/quora_qp.test.tsv", ("sentence1", "sentence2")),
]


def corpus(n: int) -> tuple[list[str], int]:
    """``n`` sentences: the distinct ones of SOURCES in order, cycled; and how many distinct."""
    seen: dict[str, None] = {}
    for name, columns in SOURCES:
        path = DATA / name
        if not path.exists():
            raise SystemExit(f"needs {path} (the shared data sets); set SBERT_DATA to its folder")
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                for col in columns:
                    text = (row.get(col) or "").strip()
                    if text:
                        seen.setdefault(text, None)
    distinct = list(seen)
    return [distinct[i % len(distinct)] for i in range(n)], len(distinct)


def write_shards(sentences: list[str], folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    n = len(sentences)
    for k in range(SHARDS):
        lo, hi = k * n // SHARDS, (k + 1) * n // SHARDS
        pq.write_table(pa.table({"id": list(range(lo, hi)), "text": sentences[lo:hi]}),
                       folder / f"part-{k:02d}.parquet", row_group_size=ROW_GROUP)


def encoder_options(backend: str) -> dict[str, Any]:
    if backend == "onnx-int8":
        return {"backend": "onnx", "quantized": True}
    return {"backend": "torch", "precision": "fp32"}  # not what backend="auto" picks here


def plain_run(folder: Path, out: Path, options: dict[str, Any],
              shards: list[Path] | None = None) -> dict[str, float]:
    """Plain ``encode`` of the shards (default: every shard in ``folder``), timed by phase:
    load, read, tokenize, model, write."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sbert import SentenceEncoder

    times = {"load": 0.0, "read": 0.0, "tokenize": 0.0, "model": 0.0, "write": 0.0}
    out.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    # the model loads inside the timed run, as each Ray run's actors load theirs
    enc = SentenceEncoder(MODEL, **options)
    times["load"] = time.perf_counter() - begin
    for path in shards if shards is not None else sorted(folder.glob("*.parquet")):
        t = time.perf_counter()
        tab = pq.read_table(path)
        texts = tab.column("text").to_pylist()
        times["read"] += time.perf_counter() - t
        t = time.perf_counter()
        enc.tokenizer.encode(texts, threads=enc.backend.threads)  # what encode does first
        times["tokenize"] += time.perf_counter() - t
        t = time.perf_counter()
        emb = enc.encode(texts, batch_size=BATCH, show_progress=False)  # (n, dim)
        times["model"] += time.perf_counter() - t  # tokenizing included; subtracted below
        t = time.perf_counter()
        flat = pa.array(np.ascontiguousarray(emb, dtype=np.float32).reshape(-1))
        column = pa.FixedSizeListArray.from_arrays(flat, emb.shape[1])
        pq.write_table(tab.append_column("embedding", column), out / path.name)
        times["write"] += time.perf_counter() - t
    total = time.perf_counter() - begin
    times["model"] -= times["tokenize"]
    del enc
    return {"seconds": total - times["tokenize"], **times}  # tokenizing once, as encode does


def plain_child(folder: Path, out: Path, index: int, processes: int, backend: str) -> None:
    """One process of a plain run in ``processes`` processes: shards ``index::processes``,
    one core. Says READY once imported, starts at a line on stdin, prints its seconds."""
    options = {**encoder_options(backend), "threads": 1}
    shards = sorted(folder.glob("*.parquet"))[index::processes]
    print("READY", flush=True)
    sys.stdin.readline()
    result = plain_run(folder, out, options, shards)
    print(json.dumps(result), flush=True)


def plain_processes_run(folder: Path, out: Path, processes: int, backend: str) -> float:
    """Plain ``encode`` in ``processes`` processes of one core each, side by side, each on
    its share of the shards (as many single-core encoders as the Ray run has actors, without
    Ray): seconds from the start signal, once every process is imported, to the last one's
    end (each loads its encoder inside that time, as plain and Ray runs do)."""
    procs = [subprocess.Popen([sys.executable, __file__, "--plain-child", str(folder), str(out),
                               str(k), str(processes), "--backend", backend],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for k in range(processes)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "READY":
                raise SystemExit(f"a plain child process did not start: {line!r}")
        begin = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdout is not None
            json.loads(proc.stdout.readline())  # its phases: it finished
        seconds = time.perf_counter() - begin
    finally:
        for proc in procs:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.close()
            proc.wait(60)
    if any(proc.returncode for proc in procs):
        raise SystemExit("a plain child process failed")
    return seconds


def ray_run(folder: Path, out: Path, actors: int, cores: int,
            options: dict[str, Any], limit_shards: int | None = None) -> float:
    from sbert.distributed import encode_files

    shards = SHARDS
    if limit_shards is not None:  # the warm-up job: the first shard(s) only
        source = folder.parent / f"{folder.name}-first{limit_shards}"
        if not source.exists():
            source.mkdir()
            for path in sorted(folder.glob("*.parquet"))[:limit_shards]:
                shutil.copy(path, source / path.name)
        folder, shards = source, limit_shards
    begin = time.perf_counter()
    # each actor reserves 1 of Ray's CPUs (the cluster counts one more than the cores, for
    # the read and write tasks) and runs its encoder on cores / actors threads
    summary = encode_files(folder, out, MODEL, column="text", id_column="id", actors=actors,
                           batch_size=BATCH, progress=False, num_cpus=1,
                           threads=cores // actors, **options)
    seconds = time.perf_counter() - begin
    if len(summary.written) != shards:
        raise SystemExit(f"ray run wrote {len(summary.written)} of {shards} shards")
    return seconds


def _matrix(column: Any) -> Any:
    """A Parquet list-of-float32 column as an ``(n, dim)`` array."""
    import numpy as np
    import pyarrow.compute as pc

    flat = pc.list_flatten(column).to_numpy()
    return np.asarray(flat, dtype=np.float32).reshape(len(column), -1)


def check_same(plain: Path, ray: Path) -> tuple[float, float]:
    """Largest |difference| and smallest cosine between the two runs' embeddings, row by
    row; ids and order must be the same."""
    import numpy as np
    import pyarrow.parquet as pq

    worst, cosine = 0.0, 1.0
    for path in sorted(plain.glob("*.parquet")):
        a, b = pq.read_table(path), pq.read_table(ray / path.name)
        if a.column("id").to_pylist() != b.column("id").to_pylist():
            raise SystemExit(f"{path.name}: the Ray output's ids or order differ")
        ea, eb = _matrix(a.column("embedding")), _matrix(b.column("embedding"))
        worst = max(worst, float(np.abs(ea - eb).max()))
        cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
        cosine = min(cosine, float(cos.min()))
    return worst, cosine


def counting_encoder() -> Any:
    """An encoder of MODEL for counting tokens (its tokenizer and max_seq_length, as every
    run's encoder and ``sbert train -r sts`` without ``--max-seq-length`` cut them)."""
    from sbert import SentenceEncoder

    return SentenceEncoder(MODEL, backend="torch", precision="fp32")


def encode_part(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], Any]:
    from sbert.distributed.ray_encode import ray_session
    from sbert.runtime import available_cores

    sentences, distinct = corpus(args.sentences)
    folder = work / "input"
    write_shards(sentences, folder)
    options = encoder_options(args.backend)
    cores = available_cores()
    n = len(sentences)
    runs: dict[str, list[float]] = {"plain encode": [], PLAIN_TWO: [], "ray, 1 actor": [],
                                    "ray, 2 actors": []}
    phases: list[dict[str, float]] = []
    diff, cosine = 0.0, 1.0
    begin = time.perf_counter()
    with ray_session("local", num_cpus=cores + 1):
        startup = time.perf_counter() - begin
        print(f"local Ray cluster up in {startup:.1f}s ({cores} CPUs)", flush=True)
        # a first Ray Data job starts the cluster's own service actors (Ray Data's stats
        # actor, its autoscaling coordinator, the idle workers), which then serve every later
        # job: part of bringing the cluster up, not of a job's overhead
        begin = time.perf_counter()
        ray_run(folder, work / "out-warmup", 1, cores, options, limit_shards=1)
        warmup = time.perf_counter() - begin
        print(f"first Ray job (one shard, starts Ray Data's service actors): {warmup:.1f}s",
              flush=True)
        for r in range(args.rounds):
            order = list(runs)
            order = order[r % len(order):] + order[: r % len(order)]
            for name in order:
                out = work / f"out-{r}-{name.replace(' ', '').replace(',', '-')}"
                if name == "plain encode":
                    result = plain_run(folder, out, options)
                    phases.append(result)
                    seconds = result["seconds"]
                elif name == PLAIN_TWO:
                    seconds = plain_processes_run(folder, out, 2, args.backend)
                else:
                    actors = 1 if "1 actor" in name else 2
                    seconds = ray_run(folder, out, actors, cores, options)
                runs[name].append(seconds)
                print(f"  round {r + 1}, {name}: {n / seconds:.0f} sentences/s "
                      f"({seconds:.1f}s)", flush=True)
            plain_out = next(work.glob(f"out-{r}-plainencode"))
            for other in ("plain-2processes", "ray-1actor", "ray-2actors"):
                d, c = check_same(plain_out, next(work.glob(f"out-{r}-{other}")))
                diff, cosine = max(diff, d), min(cosine, c)
    plain = median(runs["plain encode"])
    n_tokens, flops = model_flops(counting_encoder(), sentences)  # after every timed run
    limits = machine_limits()
    rows = []
    for name, v in runs.items():
        # each run against the plain run of its own round: the host's speed drifts by
        # tens of percent over minutes, which a ratio of medians over the rounds keeps
        paired = (None if name == "plain encode"
                  else [s / p - 1 for s, p in zip(v, runs["plain encode"], strict=True)])
        # 2 actors also against 2 plain processes of one core each: Ray's own part
        two = ([s / p - 1 for s, p in zip(v, runs[PLAIN_TWO], strict=True)]
               if name == "ray, 2 actors" else None)
        rows.append({"run": name, "sentences_s": n / median(v), "per_round": [n / s for s in v],
                     "seconds": median(v), "vs_plain": plain / median(v),
                     "overhead": median(paired) if paired else None,
                     "overhead_per_round": paired,
                     "of_medians": median(v) / plain - 1 if paired else None,
                     "vs_two": median(two) if two else None, "vs_two_per_round": two,
                     **flops_cells(flops / median(v), limits)})
    cols: list[Column] = [
        ("run", "run", ""), ("sentences_s", "sentences/s", "{:.0f}"),
        ("per_round", "per round", "{:.0f}"), ("seconds", "seconds", "{:.1f}"),
        ("vs_plain", "x plain encode", "{:.2f}x"),
        ("overhead", "over plain encode (median of rounds)", "{:+.1%}"),
        ("overhead_per_round", "overhead per round", "{:+.1%}"),
        ("of_medians", "over plain encode, of the medians", "{:+.1%}"),
        ("vs_two", "over plain, 2 processes (median of rounds)", "{:+.1%}"),
        ("vs_two_per_round", "per round, over 2 processes", "{:+.1%}"),
        *flops_columns(limits)]
    phase_rows = []
    for key in ("load", "read", "tokenize", "model", "write"):
        value = median([p[key] for p in phases])
        phase_rows.append({"phase": key, "seconds": value, "share": value / plain,
                           "per_1m": value / n * 1e6 / 60})
    phase_cols: list[Column] = [("phase", "phase", ""), ("seconds", "seconds", "{:.2f}"),
                                ("share", "of plain encode", "{:.1%}"),
                                ("per_1m", "minutes per 1M sentences", "{:.2f}")]
    title = (f"Encoding {n:,} sentences ({min(n, distinct):,} distinct, {SHARDS} Parquet "
             f"shards), {MODEL}, {args.backend}, batch {BATCH}, {cores} cores")
    tables = [table("encode", title, cols, rows),
              table("phases", f"Where plain encode's time goes ({args.backend})", phase_cols,
                    phase_rows)]
    tables += plan_tables(tables[0], tables[1])
    raw = {"runs": runs, "phases": phases, "ray_startup_s": startup, "ray_first_job_s": warmup,
           "max_abs_diff_vs_plain": diff, "min_cosine_vs_plain": cosine, "distinct": distinct,
           "real_tokens": n_tokens, "flops": flops}
    print(f"Ray vs plain encode, every row: largest |difference| {diff:.2e}, smallest cosine "
          f"{cosine:.6f}", flush=True)
    return tables, raw


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def plan_tables(encode: dict[str, Any], phases: dict[str, Any]) -> list[dict[str, Any]]:
    """The scaling plan's arithmetic from a run's tables: time for 10M and 100M sentences at
    the measured 1-actor rate (perfect scaling: sentences / rate / actors), the embeddings'
    size on disk, and how many such actors one driver's Parquet writer keeps up with."""
    rate = next(r["sentences_s"] for r in encode["rows"] if r["run"] == "ray, 1 actor")
    plain = next(r for r in encode["rows"] if r["run"] == "plain encode")
    n = plain["sentences_s"] * plain["seconds"]
    write = next(r["seconds"] for r in phases["rows"] if r["phase"] == "write")
    rows = [{"sentences": f"{size // 1_000_000} million",
             **{f"actors_{a}": _duration(size / rate / a) for a in PLAN_ACTORS},
             "disk_gb": size * DIM * 4 / 1e9} for size in PLAN_SIZES]
    cols: list[Column] = [("sentences", "sentences", ""),
                          *[(f"actors_{a}", f"{a} actor{'s' if a > 1 else ''}", "")
                            for a in PLAN_ACTORS],
                          ("disk_gb", f"embeddings on disk ({DIM} x float32), GB", "{:.1f}")]
    writer_rows_s = n / write
    limit_rows = [{"what": "1-actor rate (ray, 1 actor), sentences/s", "value": rate},
                  {"what": "driver's Parquet writer, rows/s of one core", "value": writer_rows_s},
                  {"what": "actors one writer keeps up with", "value": writer_rows_s / rate},
                  {"what": f"rows/s reaching the driver at {PLAN_ACTORS[-1]} actors",
                   "value": rate * PLAN_ACTORS[-1]},
                  {"what": f"MB/s of embeddings at {PLAN_ACTORS[-1]} actors",
                   "value": rate * PLAN_ACTORS[-1] * DIM * 4 / 1e6}]
    limit_cols: list[Column] = [("what", "figure", ""), ("value", "value", "{:,.0f}")]
    return [table("plan", "Time to encode at the measured 1-actor rate, perfect scaling",
                  cols, rows),
            table("writer", "The driver's writer against the actors", limit_cols, limit_rows)]


def add_plan(path: Path) -> None:
    """Add the plan tables to a result written before they existed (its figures unchanged)."""
    doc = json.loads(path.read_text())
    tabs = {t["id"]: t for t in doc["tables"]}
    doc["tables"] = [t for t in doc["tables"] if t["id"] not in ("plan", "writer")]
    doc["tables"] += plan_tables(tabs["encode"], tabs["phases"])
    doc["notes"].append("plan and writer tables: arithmetic on this run's encode and phases "
                        "tables, added afterwards by `benchmarks/distributed.py --plan-from`")
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print_tables(doc["tables"][-2:])


def train_once(nproc: int, examples: int, out: Path) -> dict[str, float]:
    train = DATA / "stsbenchmark" / "train.tsv"
    cmd = [sys.executable, "-m", "sbert", "train", "-r", "sts", "-m", MODEL, "--train",
           str(train), "-o", str(out), "--epochs", "1", "--batch-size", "16", "--limit",
           str(examples), "--checkpoint-steps", "0", "--log-steps", "1", "--nproc", str(nproc)]
    begin = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - begin
    entries = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    last = [e for e in entries if e.get("type") == "train"][-1]
    return {"steps": last["step"], "train_seconds": last["train_seconds"],
            "examples_s": last["examples_per_s"], "wall": wall}


def train_flops(examples: int) -> tuple[int, float]:
    """Real tokens of the first ``examples`` STSb training pairs (both sentences) and the
    FLOPs of training on them once: forward + backward, counted as 3x the forward."""
    from sbert.training.recipes import get_recipe

    pairs = get_recipe("sts").read(DATA / "stsbenchmark" / "train.tsv").subset(examples)
    tokens, forward = model_flops(counting_encoder(), [t for col in pairs.columns for t in col])
    return tokens, TRAIN_FACTOR * forward


def train_part(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], Any]:
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for r in range(args.train_rounds):
        for nproc in ((1, 2) if r % 2 == 0 else (2, 1)):
            result = train_once(nproc, args.train_examples, work / f"train-{r}-{nproc}")
            runs[nproc].append(result)
            print(f"  round {r + 1}, DDP {nproc} process(es): {result['examples_s']:.1f} "
                  f"examples/s, {result['train_seconds']:.1f}s training, "
                  f"{result['wall']:.1f}s wall", flush=True)
    base = median([x["examples_s"] for x in runs[1]])
    tokens, flops = train_flops(args.train_examples)
    per_example = flops / args.train_examples
    limits = machine_limits()
    rows = []
    for nproc, results in runs.items():
        rate = median([x["examples_s"] for x in results])
        steps = results[0]["steps"]
        rows.append({"processes": nproc, "examples_s": rate,
                     "steps_s": steps / median([x["train_seconds"] for x in results]),
                     "per_round": [x["examples_s"] for x in results],
                     "wall": median([x["wall"] for x in results]), "vs_one": rate / base,
                     **flops_cells(rate * per_example, limits)})
    cols: list[Column] = [
        ("processes", "processes", ""), ("examples_s", "examples/s", "{:.1f}"),
        ("steps_s", "steps/s", "{:.2f}"), ("per_round", "examples/s per round", "{:.1f}"),
        ("wall", "wall s (start-up included)", "{:.1f}"), ("vs_one", "x 1 process", "{:.2f}x"),
        *flops_columns(limits)]
    title = (f"DDP training on the CPU (gloo): sbert train -r sts, {MODEL}, "
             f"{args.train_examples} STSb pairs, global batch 16")
    raw = {"runs": {str(k): v for k, v in runs.items()}, "real_tokens": tokens, "flops": flops}
    return [table("ddp", title, cols, rows)], raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the encoding runs")
    parser.add_argument("--train-rounds", type=int, default=3, help="rounds of the DDP runs")
    parser.add_argument("--backend", choices=("onnx-int8", "torch"), default="onnx-int8")
    parser.add_argument("--train-examples", type=int, default=1024)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--plan-from", type=Path, metavar="RESULT",
                        help="only add the plan tables to an earlier result file")
    parser.add_argument("--plain-child", nargs=4, metavar=("FOLDER", "OUT", "K", "N"),
                        help=argparse.SUPPRESS)  # one process of the 2-process plain run
    add_output_options(parser)
    args = parser.parse_args()
    if args.plain_child:
        folder, out, index, processes = args.plain_child
        plain_child(Path(folder), Path(out), int(index), int(processes), args.backend)
        return
    if args.plan_from:
        add_plan(args.plan_from)
        return

    work = Path(tempfile.mkdtemp(prefix="sbert-distributed-"))
    try:
        tables, raw = encode_part(args, work)
        if not args.skip_train:
            more, raw_train = train_part(args, work)
            tables += more
            raw = {"encode": raw, "train": raw_train}
        else:
            raw = {"encode": raw}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_tables(tables)
    notes = [f"encoding: median of {args.rounds} rounds, runs alternating (the order rotates "
             "each round); a run's overhead in a round is its time over the plain run's of "
             "the same round, and the table gives the median of those per-round overheads "
             "(and, beside it, the overhead of the medians); 2 Ray actors are also set against "
             "plain encode in 2 processes of one core each (each its half of the shards, the "
             "same encoder per core as the actors), the same per round"
             + ("" if args.skip_train else f"; DDP: median of {args.train_rounds} rounds")
             + "; the Ray runs share one local "
             "cluster started beforehand (its start-up is in raw.encode.ray_startup_s, a first "
             "one-shard job that starts Ray Data's service actors in ray_first_job_s)",
             "plain encode's phases: loading the encoder, reading the shards with pyarrow, "
             "tokenizing (Tokenizer.encode), the model (encode minus its tokenizing) and "
             "writing Parquet",
             "GFLOP/s: the matrix work of the real (unpadded) tokens the run processed over its "
             "seconds (encoding: the sentences' tokens; DDP training: the pairs' tokens, "
             "forward + backward counted as 3x the forward, over the log's training time); "
             "'of ... limit': of the machine's best fp32 matrix-multiply limit (the int8 "
             "backend can pass 100 %: its multiplies are not fp32)"]
    write_result("distributed", tables, args, limits=machine_limits(),
                 full=is_full(args, parser, ("sentences", "rounds", "train_rounds", "backend",
                                             "train_examples", "skip_train")),
                 notes=notes, raw=raw)


if __name__ == "__main__":
    main()
