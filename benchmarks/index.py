"""The persistent index at scale: build time, recall@10 of ANN vs exact, latency, size, memory.

    .venv/bin/python benchmarks/index.py [--limit N] [--synthetic 1000000] [--queries 1000]

1. Every distinct sentence of ``../shared/data`` (all ``*.tsv``/``*.tsv.gz`` outside
   ``original/``, text columns sentence/sentence1/sentence2/premise/hypothesis, first
   occurrence wins), embedded with the bundled all-MiniLM-L6-v2 and cached in
   ``benchmarks/out/`` (the first run encodes ~200k sentences: ~7 min at ~500/s).
   ``--queries`` sentences are held out as queries; the rest are added in one ``add``.
2. ``--synthetic`` clustered 384-d vectors (1,000 clusters of intrinsic dimension 32,
   normalized; see ``synthetic``), added in one ``add``; ``--queries`` fresh vectors from
   the same clusters serve as queries.

Each part runs in a fresh subprocess (numpy, SQLite and usearch only; no torch) that reports
build seconds, recall@10 of the HNSW search against exact brute force (``sbert.search``),
single-query latency p50/p99 (ANN and exact, SQLite lookup included), reopen time, size on
disk, and peak RSS (VmHWM); the table goes to benchmarks/results/index.<machine>.json.
Smoke run: ``--limit 3000 --synthetic 20000 --queries 100 --out /tmp/bench``. The HNSW
build dominates: expect a few minutes for the 1M vectors on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    DATA,
    OUT,
    add_output_options,
    is_full,
    print_tables,
    table,
    write_result,
)

TEXT_COLUMNS = ("sentence", "sentence1", "sentence2", "premise", "hypothesis")


def all_sentences() -> list[str]:
    """Every distinct non-empty sentence of the shared data sets, in path order."""
    files = sorted(p for p in DATA.rglob("*.tsv*") if "original" not in p.parts)
    if not files:
        raise SystemExit(f"no data under {DATA}; set SBERT_DATA")
    seen: dict[str, None] = {}
    for path in files:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            header = next(f).rstrip("\n").split("\t")
            cols = [i for i, name in enumerate(header) if name in TEXT_COLUMNS]
            for line in f:
                fields = line.rstrip("\n").split("\t")
                for i in cols:
                    if fields[i].strip():
                        seen.setdefault(fields[i])
    return list(seen)


def cached_embeddings(sentences: list[str]) -> Path:
    """``.npy`` of the sentences' embeddings (computed once, then reused)."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"index_all_sentences_minilm_{len(sentences)}.npy"
    if not path.exists():
        from sbert import SentenceEncoder

        print(f"encoding {len(sentences):,} sentences once (cached in {path})", flush=True)
        enc = SentenceEncoder(device="cpu", backend="torch", precision="fp32")
        emb = enc.encode(sentences, batch_size=64, normalize=True)
        np.save(path, emb)
    return path


def synthetic(n: int, dim: int = 384, clusters: int = 1000, rank: int = 32,
              seed: int = 0) -> np.ndarray:
    """``n`` normalized clustered vectors of low intrinsic dimension, like real embeddings.

    A Gaussian mixture of ``clusters`` centres in ``rank`` dimensions, projected to ``dim``
    by a fixed random matrix, plus a little isotropic noise (the structure is fixed by seed
    0; ``seed`` draws the points). Isotropic high-dimensional noise instead would make every
    neighbour nearly equidistant, a case real sentence embeddings never present.
    """
    structure = np.random.default_rng(0)
    centres = structure.standard_normal((clusters, rank), dtype=np.float32)
    project = structure.standard_normal((rank, dim), dtype=np.float32) / np.sqrt(rank)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(n, start + 100_000) - start
        z = centres[rng.integers(0, clusters, m)]
        z += 0.5 * rng.standard_normal((m, rank), dtype=np.float32)
        rows = z @ project + 0.1 * rng.standard_normal((m, dim), dtype=np.float32)
        out[start:start + m] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(kind: str, source: str, n: int, n_queries: int) -> None:
    """Build, query and measure one index in this fresh process; print JSON."""
    from sbert.search.index import Index
    from sbert.search.semantic import semantic_search

    if kind == "data":
        emb = np.load(source)[:n]
        rng = np.random.default_rng(0)
        held = rng.choice(len(emb), size=min(n_queries, len(emb) // 10), replace=False)
        mask = np.ones(len(emb), dtype=bool)
        mask[held] = False
        queries, corpus = emb[held], emb[mask]
    else:
        corpus = synthetic(n)
        queries = synthetic(n_queries, seed=1)
    texts = [f"row {i}" for i in range(len(corpus))]
    root = Path(tempfile.mkdtemp(prefix="sbert-index-bench-"))
    try:
        start = time.perf_counter()
        index = Index.create(root / "ix", model="all-MiniLM-L6-v2", dimension=corpus.shape[1])
        index.add(texts, corpus)
        build = time.perf_counter() - start
        index.close()
        start = time.perf_counter()
        index = Index.open(root / "ix")
        reopen = time.perf_counter() - start

        exact = semantic_search(queries, corpus, top_k=10)
        ann_ms, exact_ms, recall = [], [], []
        for q, want in zip(queries, exact, strict=True):
            t0 = time.perf_counter()
            hits = index.search(q, k=10)[0]
            ann_ms.append(1000 * (time.perf_counter() - t0))
            got = {int(h.id) - 1 for h in hits}  # ids are the 1-based insertion keys
            recall.append(len(got & {i for i, _ in want}) / 10)
        for q in queries[:100]:
            t0 = time.perf_counter()
            index.search(q, k=10, exact=True)
            exact_ms.append(1000 * (time.perf_counter() - t0))
        info = index.info()
        files = {p.name: p.stat().st_size for p in (root / "ix").iterdir()}
        index.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({
        "n": len(corpus), "queries": len(queries), "build_s": build, "reopen_s": reopen,
        "recall_at_10": float(np.mean(recall)),
        "ann_p50_ms": float(np.percentile(ann_ms, 50)),
        "ann_p99_ms": float(np.percentile(ann_ms, 99)),
        "exact_p50_ms": float(np.percentile(exact_ms, 50)),
        "size_mb": info["size_bytes"] / 2**20,
        "files_mb": {k: round(v / 2**20, 1) for k, v in files.items()},
        "peak_rss_mb": peak_rss_mb(),
    }))


def run_child(kind: str, source: str, n: int, n_queries: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, source, str(n),
                          str(n_queries)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{kind} part failed:\n{out.stderr[-3000:]}")
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def row(data: str, r: dict) -> dict:
    """One table row from a child's measurements."""
    return {"data": data, "vectors": r["n"], "queries": r["queries"], "build_s": r["build_s"],
            "recall": r["recall_at_10"], "ann_p50": r["ann_p50_ms"], "ann_p99": r["ann_p99_ms"],
            "exact_p50": r["exact_p50_ms"], "reopen_ms": 1000 * r["reopen_s"],
            "size_mb": r["size_mb"], "peak_rss_mb": r["peak_rss_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N sentences only")
    parser.add_argument("--synthetic", type=int, default=1_000_000, help="0 skips part 2")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    add_output_options(parser)
    args = parser.parse_args()
    if args.child:
        kind, source, n, n_queries = args.child
        child(kind, source, int(n), int(n_queries))
        return

    sentences = all_sentences()[: args.limit]
    notes = [f"{len(sentences):,} distinct sentences in the shared data sets (all-MiniLM-L6-v2 "
             f"embeddings), {args.queries} of them held out as queries; usearch HNSW + SQLite; "
             "recall@10 against exact search (sbert.search.semantic_search)"]
    print(notes[0], flush=True)
    source = cached_embeddings(sentences)
    children = {"data": run_child("data", str(source), len(sentences), args.queries)}
    rows = [row("every distinct sentence of the shared data (MiniLM)", children["data"])]
    if args.synthetic:
        children["synthetic"] = run_child("synthetic", "-", args.synthetic, args.queries)
        rows.append(row("synthetic clustered 384-d", children["synthetic"]))
    tables = [table("index", "persistent index: build, recall, latency, size", [
        ("data", "data", ""), ("vectors", "vectors", "{:,}"), ("queries", "queries", "{:,}"),
        ("build_s", "build (s)", "{:.1f}"), ("recall", "recall@10", "{:.4f}"),
        ("ann_p50", "ANN p50 (ms)", "{:.2f}"), ("ann_p99", "ANN p99 (ms)", "{:.2f}"),
        ("exact_p50", "exact p50 (ms)", "{:.1f}"), ("reopen_ms", "reopen (ms)", "{:.0f}"),
        ("size_mb", "on disk (MB)", "{:,.0f}"), ("peak_rss_mb", "peak RSS (MB)", "{:,.0f}")],
        rows)]
    print_tables(tables)
    write_result("index", tables, args, notes=notes, raw=children,
                 full=is_full(args, parser, ("limit", "synthetic", "queries")))

if __name__ == "__main__":
    main()
