"""GPU encoding (issue 16): sbert's fp16/bf16 paths vs sentence-transformers fp16, one GPU.

    bash benchmarks/gpu_check.sh                  # the documented run, on a CUDA machine
    python benchmarks/encode_gpu.py [--models all-MiniLM-L6-v2 all-mpnet-base-v2] [--rounds 5]
    .venv/bin/python benchmarks/encode_gpu.py --device cpu --limit 40 --long-count 4 \
        --rounds 1 --models all-MiniLM-L6-v2 --out /tmp/bench   # smoke run, on the CPU

For each model and two input sets, every contender embeds the same texts:

* short: the 2,758 STS benchmark test sentences (sentence1s, then sentence2s);
* long: 1,024 texts of 256-512 tokens, each the next STSb train / Quora dev sentences joined
  with spaces up to a length that steps through 256..510 (``_gpu.long_texts``), cut at 512
  (max_seq_length 512 for every contender).

Contenders: sentence-transformers with its weights in fp16 (``.half()``) at batch 32 (its
default) and 256; sbert fp32 (the reference of every cosine), fp16 and bf16 autocast
(``precision=``) at batch 32, fp16 autocast at batch 256 and by a token budget (length-sorted
batches of at most 16,384 padded tokens, from the tokenizer and ``embed_tokens``); then
experiments that are no library option yet, marked ``*``: the network's weights cast to
fp16/bf16 (as sentence-transformers' fp16 is), and for BERT encoders the packed path of
``backends/torch/packed.py`` and packed tokens with variable-length FlashAttention
(``_varlen.py``) on every batch. Timing: median of ``--rounds`` alternating rounds after a
warm-up each; sentences/s as multiples of sentence-transformers fp16's best batch size;
minimum cosine to sbert fp32 on the same GPU; on short inputs with trained weights, STSb
Spearman. Goal (issue 16): the best sbert row >= 2x sentence-transformers fp16 at min cosine
>= 0.999. The paper's Table 7 figure (SBERT-base with smart batching, V100: 2,042
sentences/s) stands beside the all-mpnet-base-v2 (base size) rows, for reference.

Models come from where the library finds them, else from ``benchmarks/out/gpu_carry``
(``gpu_carry.py``): the notes say which weights each table measured. Writes
benchmarks/results/encode_gpu.<machine class>.json (class ``cuda-<gpu>``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    add_output_options,
    alternate,
    is_full,
    median,
    min_cosine,
    print_tables,
    sts_pairs,
    table,
    write_result,
)
from _gpu import (  # noqa: E402
    attention_implementation,
    encode_by_budget,
    free_gpu,
    long_texts,
    model_folder,
    sbert_encoder,
    synced,
)

MODELS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
ST_BATCHES = (32, 256)
LONG_MAX = 512
GOAL_RATIO, GOAL_COSINE = 2.0, 0.999
PAPER = ("paper Table 7: SBERT-base, smart batching, V100", 2042.0)
BASE_SIZE = "all-mpnet-base-v2"  # the paper's SBERT-base size
ST = "sentence-transformers fp16"
REF = "sbert fp32, batch 32"
_START = time.perf_counter()


def say(text: str) -> None:
    print(f"[{time.perf_counter() - _START:6.1f}s] {text}", flush=True)


Embed = Callable[[list[str]], Any]


def _st_encode(st: Any, batch: int, texts: list[str]) -> Any:
    return st.encode(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)


def _sbert_encode(encoder: Any, batch: int, texts: list[str]) -> Any:
    return encoder.encode(texts, batch_size=batch, show_progress=False)


def _count_tokens(tokenizer: Any, texts: list[str]) -> Any:
    return tokenizer.encode(texts, threads=os.cpu_count() or 1).lengths


def contenders(folder: Any, device: str, budget: int) -> tuple[dict[str, Embed], list[str],
                                                                list[Any]]:
    """Every contender's embed function for one model, notes, and the objects to resize."""
    import torch
    from _varlen import flash_varlen, use_packed, use_varlen
    from sentence_transformers import SentenceTransformer

    notes: list[str] = []
    fns: dict[str, Embed] = {}
    st = SentenceTransformer(str(folder), device=device).half()
    for b in ST_BATCHES:
        fns[f"{ST}, batch {b}"] = partial(_st_encode, st, b)
    encoders: list[Any] = []

    def sbert(precision: str = "fp32", weights: str = "fp32") -> Any:
        enc, note = sbert_encoder(folder, device, precision, weights)
        if note and note not in notes:
            notes.append(note)
        encoders.append(enc)
        return enc

    ref, a16, ab16 = sbert(), sbert("fp16"), sbert("bf16")
    for name, enc, b in ((REF, ref, 32), ("sbert fp16 autocast, batch 32", a16, 32),
                         ("sbert bf16 autocast, batch 32", ab16, 32),
                         ("sbert fp16 autocast, batch 256", a16, 256)):
        fns[name] = partial(_sbert_encode, enc, b)
    tail = f"budget {budget}"
    fns[f"sbert fp16 autocast, {tail}"] = partial(encode_by_budget, a16, budget=budget)
    w16, wb16 = sbert(weights="fp16"), sbert(weights="bf16")
    fns[f"sbert fp16 weights*, {tail}"] = partial(encode_by_budget, w16, budget=budget)
    fns[f"sbert bf16 weights*, {tail}"] = partial(encode_by_budget, wb16, budget=budget)
    packed = sbert(weights="fp16")
    if use_packed(packed.network):
        fns[f"sbert fp16 weights*, {tail}, packed*"] = partial(encode_by_budget, packed,
                                                               budget=budget)
        varlen = sbert(weights="fp16")
        use_varlen(varlen.network)
        fns[f"sbert fp16 weights*, {tail}, varlen*"] = partial(encode_by_budget, varlen,
                                                               budget=budget)
        if not (device.startswith("cuda") and flash_varlen() is not None):
            notes.append("varlen*: no FlashAttention varlen here (CPU, or torch without "
                         "torch.nn.attention.varlen): a loop of SDPA per sentence stands in")
    else:
        notes.append("packed*/varlen*: not a BERT encoder, no packed path")
    notes.append(f"attention: {attention_implementation(ref)} in sbert's transformer; "
                 f"torch {torch.__version__}")
    return fns, notes, [st, *encoders]


def set_max_len(objects: list[Any], length: int | None, defaults: list[int]) -> None:
    """Every encoder's (and the SentenceTransformer's) max_seq_length, or its default."""
    for obj, default in zip(objects, defaults, strict=True):
        obj.max_seq_length = default if length is None else length


def measure(fns: dict[str, Embed], texts: list[str], rounds: int, device: str,
            pairs: tuple[int, np.ndarray] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Parity and speed of every contender on ``texts``; rows and the raw seconds."""
    from scipy.stats import spearmanr

    ref = np.asarray(fns[REF](texts), dtype=np.float64)
    rows: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for name, fn in fns.items():
        try:
            emb = ref if name == REF else np.asarray(fn(texts), dtype=np.float64)
        except Exception as err:  # an experiment this GPU or torch cannot run: say so, go on
            failed[name] = f"{type(err).__name__}: {err}"[:300]
            say(f"{name} failed: {failed[name]}")
            continue
        row: dict[str, Any] = {"contender": name, "min_cosine": min_cosine(emb, ref)}
        if pairs is not None:
            half, gold = pairs
            a, b = emb[:half], emb[half:]
            cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            row["spearman"] = float(100 * spearmanr(cos, gold).correlation)
        rows[name] = row
    times = alternate({k: synced(partial(f, texts), device)
                       for k, f in fns.items() if k not in failed}, rounds=rounds)
    base = max(len(texts) / median(times[f"{ST}, batch {b}"]) for b in ST_BATCHES)
    for name, seconds in times.items():
        rate = len(texts) / median(seconds)
        rows[name].update(rate=rate, ratio=rate / base)
    return list(rows.values()), {"seconds": times, "st_best": base, "failed": failed}


def goal_row(model: str, inputs: str, rows: list[dict[str, Any]], st_best: float,
             short: bool) -> dict[str, Any]:
    """The best sbert row that keeps cosine >= 0.999, against sentence-transformers fp16."""
    ok = [r for r in rows if r["contender"].startswith("sbert")
          and r["contender"] != REF and r["min_cosine"] >= GOAL_COSINE]
    best = max(ok, key=lambda r: r["rate"], default=None)
    out = {"model": model, "inputs": inputs, "st": st_best,
           "paper": PAPER[1] if model == BASE_SIZE and short else None}
    if best is None:
        return {**out, "goal": "not met (no sbert row at cosine >= 0.999)"}
    met = best["ratio"] >= GOAL_RATIO
    return {**out, "best": best["contender"], "rate": best["rate"], "ratio": best["ratio"],
            "min_cosine": best["min_cosine"],
            "goal": ("met" if met else "not met") + ("" if "*" not in best["contender"]
                                                     else " (by an experiment *)")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS),
                        help="bundled names, hub ids or folders")
    parser.add_argument("--inputs", nargs="+", choices=["short", "long"],
                        default=["short", "long"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--long-count", type=int, default=1024, help="long texts")
    parser.add_argument("--budget", type=int, default=16384,
                        help="padded tokens per batch of the token-budget contenders")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the script")
    parser.add_argument("--limit", type=int, default=None, help="first N short sentences")
    add_output_options(parser)
    args = parser.parse_args()
    # the long texts are cut at 512 tokens on purpose; the notes give their lengths
    warnings.filterwarnings("ignore", message=".*were truncated")

    import torch

    device = args.device
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU (--device cpu runs the script on the CPU, as a smoke "
                         "test)")
    gpu = torch.cuda.get_device_name(torch.device(device)) if cuda else "CPU"
    torch.set_float32_matmul_precision("highest")  # the fp32 reference: no TF32
    first, second, gold = sts_pairs(args.limit)
    notes = [f"{gpu}, torch {torch.__version__}; short: {2 * len(first)} STSb test sentences; "
             f"long: {args.long_count} texts of 256-{LONG_MAX} tokens (STSb train + Quora dev "
             f"sentences joined), max_seq_length {LONG_MAX}; fp32 without TF32; speed: "
             f"median of {args.rounds} "
             "alternating rounds after a warm-up; x sentence-transformers fp16: against its "
             f"best of batch {' and '.join(map(str, ST_BATCHES))}",
             "* an experiment, no library option yet: weights* = the network cast to that "
             "type; packed* = backends/torch/packed.py on every batch; varlen* = packed "
             f"tokens with variable-length attention (_varlen.py); budget = batches of at most "
             f"{args.budget} padded tokens, longest first, from the tokenizer and embed_tokens"]
    say(notes[0])
    full = cuda and is_full(args, parser, ("models", "inputs", "rounds", "long_count",
                                           "budget", "limit"))
    tables: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    for done, model in enumerate(args.models, 1):
        run_model(model, args, (first, second, gold), gpu, tables, summary, raw, notes)
        free_gpu()
        left = args.models[done:]
        partial_note = [f"partial: the run stopped before {', '.join(left)}"] if left else []
        if left:  # what is measured so far survives a run stopped by its time limit
            write_result("encode_gpu", [goals_table(summary, gpu), *tables], args,
                         notes=notes + partial_note, raw=raw, device=device, full=full)
    result = [goals_table(summary, gpu), *tables]
    print_tables(result[:1])
    write_result("encode_gpu", result, args, notes=notes, raw=raw, device=device, full=full)


def run_model(model: str, args: argparse.Namespace,
              sts: tuple[list[str], list[str], np.ndarray], gpu: str,
              tables: list[dict[str, Any]], summary: list[dict[str, Any]],
              raw: dict[str, Any], notes: list[str]) -> None:
    """Measure one model on every input set; appends to ``tables``, ``summary``, ``raw``,
    ``notes``."""
    first, second, gold = sts
    folder, weights, trained = model_folder(model)
    say(f"{model}: {folder} ({weights})")
    fns, model_notes, objects = contenders(folder, args.device, args.budget)
    defaults = [int(o.max_seq_length) for o in objects]
    notes += [f"{model}: {weights}"] + [f"{model}: {n}" for n in model_notes]
    for inputs in args.inputs:
        pairs: tuple[int, np.ndarray] | None = None
        if inputs == "short":
            texts, pairs = first + second, ((len(first), gold) if trained else None)
            set_max_len(objects, None, defaults)
        else:
            tokenizer = objects[1].tokenizer  # sbert's
            set_max_len(objects, min(LONG_MAX, tokenizer.max_positions or LONG_MAX), defaults)
            texts, reused = long_texts(partial(_count_tokens, tokenizer), args.long_count)
            lengths = tokenizer.encode(texts).lengths
            notes.append(f"{model} long: {lengths.min()}-{lengths.max()} tokens, mean "
                         f"{lengths.mean():.0f}" + ("; corpus reused" if reused else ""))
        say(f"{model} {inputs}: {len(texts)} texts, {len(fns)} contenders")
        key = f"{model} {inputs}"
        rows, raw[key] = measure(fns, texts, args.rounds, args.device, pairs)
        if model == BASE_SIZE and inputs == "short":
            rows.append({"contender": PAPER[0], "rate": PAPER[1]})
        columns = [("contender", "contender", ""), ("rate", "sentences/s", "{:.0f}"),
                   ("ratio", "x sentence-transformers fp16", "{:.2f}x"),
                   ("min_cosine", "min cosine to sbert fp32", "{:.5f}")]
        if pairs is not None:
            columns.append(("spearman", "STSb Spearman x100", "{:.2f}"))
        tables.append(table(f"{model}-{inputs}", f"{model}, {inputs} inputs, on {gpu}",
                            columns, rows))
        summary.append(goal_row(model, inputs, rows, raw[key]["st_best"], inputs == "short"))
        print_tables(tables[-1:])


def goals_table(summary: list[dict[str, Any]], gpu: str) -> dict[str, Any]:
    """One row per model and input set: the goal, met or not."""
    return table("goals", f"Goal: sbert >= {GOAL_RATIO:g}x sentence-transformers fp16 at min "
                 f"cosine >= {GOAL_COSINE}, on {gpu}", [
                     ("model", "model", ""), ("inputs", "inputs", ""),
                     ("st", "sentence-transformers fp16, sentences/s", "{:.0f}"),
                     ("best", "best sbert (cosine >= 0.999)", ""),
                     ("rate", "sentences/s", "{:.0f}"),
                     ("ratio", "x sentence-transformers fp16", "{:.2f}x"),
                     ("min_cosine", "min cosine", "{:.5f}"), ("goal", "goal >= 2x", ""),
                     ("paper", "paper Table 7 (V100), sentences/s", "{:.0f}")], summary)


if __name__ == "__main__":
    main()
