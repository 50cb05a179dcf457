"""Paraphrase mining: sbert vs sentence-transformers, alternating in one run; 100k memory.

    .venv/bin/python benchmarks/mining.py [--limit 10000] [--rounds 3] [--big 100000]

Sentences: the first ``--limit`` distinct sentences of the STS benchmark, reading train,
dev, test in file order and, within a row, sentence1 then sentence2 (first occurrence wins).
Model: the bundled all-MiniLM-L6-v2. Embeddings are cached in ``benchmarks/out/``.

(a) mining alone on the same embeddings: ``sbert.paraphrase_mining`` vs
    ``sentence_transformers.util.paraphrase_mining_embeddings`` (both defaults: top_k=100,
    max_pairs=500,000), alternating after a warm-up; median ratio; the top-100 pairs must
    be the same set of (i, j) (pairs tied within 1e-5 at the 100th place may swap) with
    scores equal to 1e-5.
(b) the whole job, encode + mine, against ``util.paraphrase_mining`` (one round each).
(c) ``--big`` x 384 embeddings (the real ones tiled with small noise) mined in a fresh
    subprocess: time and peak RSS (goal: < 1.5 GB).
Writes benchmarks/results/mining.<machine>.json. Run it on an idle machine; a smoke run:
``--limit 300 --big 3000 --rounds 1 --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    DATA,
    OUT,
    add_output_options,
    alternate,
    is_full,
    median,
    print_tables,
    table,
    write_result,
)

RSS_GOAL_MB = 1536


def stsb_sentences(limit: int) -> list[str]:
    """The first ``limit`` distinct STSb sentences (train, dev, test; sentence1, sentence2)."""
    seen: dict[str, None] = {}
    for split in ("train", "dev", "test"):
        path = DATA / "stsbenchmark" / f"{split}.tsv"
        if not path.exists():
            raise SystemExit(f"needs {path} (the shared data sets); set SBERT_DATA")
        with path.open(encoding="utf-8") as f:
            next(f)
            for line in f:
                a, b, _ = line.rstrip("\n").split("\t")
                seen.setdefault(a)
                seen.setdefault(b)
                if len(seen) >= limit:
                    return list(seen)[:limit]
    return list(seen)


def cached_embeddings(encoder: object, sentences: list[str]) -> np.ndarray:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"mining_stsb_minilm_{len(sentences)}.npy"
    if path.exists():
        return np.load(path)
    emb = encoder.encode(sentences, show_progress=True)  # type: ignore[attr-defined]
    np.save(path, emb)
    return emb


def same_top(ours: list, ref: list, top: int = 100, tol: float = 1e-5) -> tuple[bool, str]:
    """Whether the top pairs agree as sets, allowing swaps among scores tied at the cut."""
    a = {(i, j): s for s, i, j in ours[:top]}
    b = {(int(i), int(j)): float(s) for s, i, j in ref[:top]}
    common = a.keys() & b.keys()
    max_diff = max((abs(a[p] - b[p]) for p in common), default=0.0)
    cut = min(float(ours[top - 1][0]), float(ref[top - 1][0]))
    differ = (a.keys() ^ b.keys())
    tied = all(abs(a.get(p, b.get(p, 0.0)) - cut) <= tol for p in differ)
    ok = max_diff <= tol and (not differ or tied)
    return ok, (f"{len(common)}/{top} identical pairs, {len(differ)} differing "
                f"({'all tied at the cut' if tied else 'NOT ties'}), max score diff {max_diff:.2e}")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it restarts at exec)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_big(n: int, source: str) -> None:
    """Mine ``n`` x dim embeddings in this fresh process; print time and peak RSS as JSON."""
    from sbert.search.mining import paraphrase_mining

    base = np.load(source)
    rng = np.random.default_rng(0)
    reps = -(-n // len(base))
    emb = np.concatenate([base] * reps)[:n]
    emb += rng.standard_normal(emb.shape, dtype=np.float32) * 0.01  # distinct rows
    before = peak_rss_mb()
    start = time.perf_counter()
    pairs = paraphrase_mining(emb, show_progress=True)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    print(json.dumps({"n": n, "seconds": seconds, "pairs": len(pairs),
                      "peak_rss_mb": peak, "rss_before_mining_mb": before}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=10_000, help="sentences for (a) and (b)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for (a)")
    parser.add_argument("--big", type=int, default=100_000, help="rows for (c); 0 skips it")
    parser.add_argument("--skip-whole-job", action="store_true", help="skip (b)")
    parser.add_argument("--child-big", nargs=2, metavar=("N", "NPY"), help=argparse.SUPPRESS)
    add_output_options(parser)
    args = parser.parse_args()
    if args.child_big:
        child_big(int(args.child_big[0]), args.child_big[1])
        return

    import torch
    from sentence_transformers import SentenceTransformer, util

    from sbert import SentenceEncoder, paraphrase_mining

    sentences = stsb_sentences(args.limit)
    ours_model = SentenceEncoder(device="cpu", backend="torch", precision="fp32")
    emb = cached_embeddings(ours_model, sentences)
    emb_t = torch.from_numpy(emb)
    notes = [f"{len(sentences)} distinct STSb sentences, all-MiniLM-L6-v2 embeddings "
             f"({emb.shape[1]}-d), torch threads {torch.get_num_threads()}; top_k 100, "
             f"max_pairs 500,000 (both libraries' defaults)"]
    print(notes[0], flush=True)

    ours_pairs = paraphrase_mining(emb)
    ref_pairs = util.paraphrase_mining_embeddings(emb_t)
    ok, detail = same_top(ours_pairs, ref_pairs)
    notes.append(f"(a) top-100 pairs {'identical' if ok else 'DIFFER'}: {detail}; "
                 f"{len(ours_pairs)} vs {len(ref_pairs)} pairs returned")
    print(notes[-1], flush=True)
    times = alternate({"sbert": lambda: paraphrase_mining(emb),
                       "sentence-transformers": lambda: util.paraphrase_mining_embeddings(emb_t)},
                      args.rounds)
    ratios = [r / o for o, r in zip(times["sbert"], times["sentence-transformers"], strict=True)]
    rows: list[dict] = [{
        "part": "(a) mining alone", "size": f"{len(emb):,} x {emb.shape[1]}",
        "sbert_s": median(times["sbert"]),
        "reference_s": median(times["sentence-transformers"]), "speedup": median(ratios),
        "rounds": ratios, "check": "top-100 identical" if ok else "top-100 DIFFER",
        "goal": ">= 3x, top-100 identical"}]
    raw: dict = {"mining_seconds": times, "top100": detail}

    if not args.skip_whole_job:
        ref_model = SentenceTransformer(str(ours_model.path), device="cpu")
        job = alternate({
            "sbert": lambda: paraphrase_mining(sentences, encoder=ours_model),
            "sentence-transformers": lambda: util.paraphrase_mining(ref_model, sentences),
        }, 1)
        rows.append({"part": "(b) encode + mine", "size": f"{len(sentences):,} sentences",
                     "sbert_s": job["sbert"][0],
                     "reference_s": job["sentence-transformers"][0],
                     "speedup": job["sentence-transformers"][0] / job["sbert"][0],
                     "goal": "report"})
        raw["whole_job_seconds"] = job

    if args.big:
        source = OUT / f"mining_stsb_minilm_{len(sentences)}.npy"
        out = subprocess.run([sys.executable, __file__, "--child-big", str(args.big),
                              str(source)], check=True, capture_output=True, text=True)
        big = json.loads(out.stdout.strip().splitlines()[-1])
        under = big["peak_rss_mb"] < RSS_GOAL_MB
        rows.append({"part": "(c) large, in a fresh process",
                     "size": f"{big['n']:,} x {emb.shape[1]}",
                     "sbert_s": big["seconds"], "peak_rss_mb": big["peak_rss_mb"],
                     "check": f"{big['pairs']:,} pairs; {big['rss_before_mining_mb']:.0f} MB "
                              "before mining", "goal": "peak RSS < 1.5 GB" + (
                                  "" if under else " (OVER)")})
        raw["big"] = big

    tables = [table("mining", "paraphrase mining, sbert vs sentence-transformers", [
        ("part", "part", ""), ("size", "size", ""), ("sbert_s", "sbert (s)", "{:.3f}"),
        ("reference_s", "sentence-transformers (s)", "{:.3f}"),
        ("speedup", "speed-up", "{:.2f}x"), ("rounds", "per round", "{:.2f}"),
        ("peak_rss_mb", "peak RSS (MB)", "{:,.0f}"), ("check", "check", ""),
        ("goal", "goal", "")], rows)]
    print_tables(tables)
    write_result("mining", tables, args, notes=notes, raw=raw,
                 full=is_full(args, parser, ("limit", "rounds", "big", "skip_whole_job")))

if __name__ == "__main__":
    main()
