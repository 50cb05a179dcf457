"""int8 for CPUs without VNNI: u8s8 vs u8u8 weights, per-channel vs per-tensor scales.

    .venv/bin/python benchmarks/int8_isa.py          # full run (graphs, accuracy, speed): idle
    .venv/bin/python benchmarks/int8_isa.py --limit 64 --rounds 1 --out /tmp/bench   # smoke
    # accuracy on onnxruntime's AVX2 kernels, emulated: first natively, then under qemu
    .venv/bin/python benchmarks/int8_isa.py --part accuracy --limit 256 --out /tmp/native
    qemu-x86_64 -cpu Haswell .venv/bin/python benchmarks/int8_isa.py --part accuracy \\
        --limit 256 --emulated qemu-haswell --out benchmarks

Quantizes all-MiniLM-L6-v2's plain graph the way ``sbert export onnx --quantize int8`` does
(``quantize_checked``, then the offline optimisation) with each recipe of :data:`VARIANTS`:
u8s8 (signed int8 weights, optimum's avx512_vnni/avx512/arm64 configs) or u8u8 (optimum's
avx2 config), per-channel or per-tensor weight scales, and u8s8 with 7-bit weights (which
keep its 16-bit sums from saturating). For each it reports, against the fp32 graph run
natively: the minimum, 1st percentile and mean cosine over the STS benchmark test sentences
and the quantizer's probe sentences, the minimum over the probe sentences, STSb test
Spearman; then sentences/s (batch 32, alternating rounds).

Which kernels run is onnxruntime's choice from CPUID: no environment variable lowers it. The
script records whether this CPU's u8s8 kernel saturates (a one-MatMul probe); under
``qemu-x86_64 -cpu Haswell`` it does, as on a real AVX2 CPU, so ``--emulated`` runs the
accuracy part there and adds the native figures of the same batches beside it (speed under
emulation means nothing and is refused). The graphs are built natively first (``--part
prepare``, part of every native run) under benchmarks/out/int8_isa/, and each accuracy run
keeps its embeddings there (an emulated run resumes from its own and compares with the native
run of the same ``--limit``). Writes benchmarks/results/int8_isa.<machine>.json (an emulated
run: ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    OUT,
    add_output_options,
    alternate,
    is_full,
    median,
    print_tables,
    sts_pairs,
    table,
    write_result,
)

from sbert.backends.onnx.targets import Int8Recipe  # noqa: E402

MODEL = "all-MiniLM-L6-v2"
VARIANTS = {r.label: r for r in (
    Int8Recipe("qint8", per_channel=True),   # optimum avx512_vnni, avx512, arm64
    Int8Recipe("qint8", per_channel=False),
    Int8Recipe("qint8", per_channel=True, reduce_range=True),
    Int8Recipe("qint8", per_channel=False, reduce_range=True),
    Int8Recipe("quint8", per_channel=True),  # optimum avx2
    Int8Recipe("quint8", per_channel=False),
)}
OPTIMUM = {"u8s8 per-channel": "avx512_vnni, avx512, arm64", "u8u8 per-channel": "avx2"}
EMULATED = "emulated Haswell/AVX2 under qemu: accuracy only, speed meaningless"
ACCURACY = [("variant", "variant", ""), ("optimum", "optimum config", ""),
            ("fallback", "export fallback", ""), ("plain_probe_min", "probe min w/o it", "{:.4f}"),
            ("min", "min cosine", "{:.4f}"), ("p1", "1st pct", "{:.4f}"),
            ("mean", "mean cosine", "{:.5f}"), ("probe_min", "probe min", "{:.4f}"),
            ("spearman", "STSb Spearman", "{:.2f}"), ("holds", "min >= 0.95", "")]
NATIVE = [("native_min", "native min cosine", "{:.4f}"),
          ("native_mean", "native mean", "{:.5f}"),
          ("native_spearman", "native Spearman", "{:.2f}"),
          ("vs_native", "min cosine vs native", "{:.4f}")]
SPEED = [("variant", "variant", ""), ("rate", "sentences/s", "{:.0f}"),
         ("ratio", "x fp32", "{:.2f}x")]


def u8s8_saturates() -> bool:
    """Whether onnxruntime's u8s8 MatMul here sums pairs in 16 bits (AVX2, AVX-512 w/o VNNI).

    255 x 127, summed over 64 elements, is exact in 32 bits and clipped by ``VPMADDUBSW``.
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    depth = 64
    weights = numpy_helper.from_array(np.full((depth, 16), 127, np.int8), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "probe",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [1, depth])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [1, 16])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"A": np.full((1, depth), 255, np.uint8)})[0]
    return int(out[0, 0]) != depth * 255 * 127


def sentences() -> tuple[list[str], np.ndarray, int]:
    """STSb test sentence1s + sentence2s, then the probe sentences; gold scores; pair count."""
    from sbert.backends.onnx.quantize import PROBE_SENTENCES

    left, right, gold = sts_pairs()
    return left + right + list(PROBE_SENTENCES), gold, len(left)


def subset(n_pairs: int, limit: int | None) -> np.ndarray:
    """Row indices of the first ``limit // 2`` pairs (both sides) and every probe sentence."""
    from sbert.backends.onnx.quantize import PROBE_SENTENCES

    keep = n_pairs if limit is None else max(1, min(n_pairs, limit // 2))
    return np.concatenate([np.arange(keep), n_pairs + np.arange(keep),
                           2 * n_pairs + np.arange(len(PROBE_SENTENCES))])


def encoder(folder: Path, graph: Path, threads: int | None) -> Any:
    from sbert import SentenceEncoder

    return SentenceEncoder(str(folder), backend="onnx", file=str(graph.resolve()),
                           threads=threads)


def embed(folder: Path, graph: Path, texts: list[str], threads: int | None) -> np.ndarray:
    return encoder(folder, graph, threads).encode(texts, batch_size=32, normalize=True,
                                                  show_progress=False)


def fallback(graph: Path) -> str:
    """What ``quantize_checked`` had to do to reach 0.95: smoothing, fp32 MatMuls (or none)."""
    import onnx

    g = onnx.load(str(graph), load_external_data=False).graph
    weights = {i.name for i in g.initializer}
    smoothed = sum(n.name.endswith("_smooth") for n in g.node)
    kept = sum(n.op_type == "MatMul" and any(i in weights for i in n.input) for n in g.node)
    parts = ([f"{smoothed} inputs smoothed"] if smoothed else []) + (
        [f"{kept} MatMuls fp32"] if kept else [])
    return ", ".join(parts) or "none"


def prepare(work: Path, threads: int | None) -> dict[str, Any]:
    """Build the graphs and the native embeddings of every sentence (once; needs torch)."""
    manifest = work / "manifest.json"
    if manifest.exists():
        return dict(json.loads(manifest.read_text(encoding="utf-8")))
    from _common import exported

    from sbert.backends.onnx.export import export_transformer
    from sbert.backends.onnx.graph import optimize_graph
    from sbert.backends.onnx.quantize import (
        _min_cosine,
        _probe_embeddings,
        probe_feed,
        quantize_checked,
        quantize_int8,
    )
    from sbert.encoder import SentenceEncoder
    from sbert.folder import read_folder
    from sbert.models import resolve_model

    folder = exported(MODEL, reexport=False)  # tokenizer, pooling, the optimised fp32 graph
    work.mkdir(parents=True, exist_ok=True)
    plain = work / "plain.onnx"
    source = SentenceEncoder(str(resolve_model(MODEL)), backend="torch", precision="fp32")
    export_transformer(source.backend, source.tokenizer, plain)
    spec = read_folder(folder)
    texts, _, _ = sentences()
    np.save(work / "fp32.npy", embed(folder, plain, texts, threads))
    feed = probe_feed(source.tokenizer)
    reference = _probe_embeddings(spec, plain, feed)
    graphs = {}
    for label, recipe in VARIANTS.items():
        graph = work / (label.replace(" ", "_") + ".onnx")
        quantize_int8(plain, graph, recipe)  # every MatMul int8, no fallback: for the record
        plain_min = _min_cosine(reference, _probe_embeddings(spec, graph, feed))
        probe_min = quantize_checked(spec, source.tokenizer, plain, graph, recipe)
        done = fallback(graph)
        optimize_graph(graph)
        graphs[label] = {"graph": graph.name, "plain_probe_min": plain_min,
                         "check_probe_min": probe_min, "fallback": done}
        print(f"{label}: built ({done}), native probe min {plain_min:.4f} without the "
              f"fallback, {probe_min:.4f} written", flush=True)
    record = {"folder": str(folder), "graphs": graphs, "saturates": u8s8_saturates()}
    manifest.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def embed_batches(folder: Path, graph: Path, texts: list[str], threads: int | None,
                  keep: Path | None, saved_only: bool = False) -> np.ndarray:
    """Embeddings of ``texts`` in fixed batches of 32 (by length), the same on every CPU.

    Dynamic quantization scales each batch by its own range, so native and emulated runs
    must see the same batches to be compared. With ``keep`` (a file stem), each batch's
    embeddings are saved and reused: a run cut short resumes. ``saved_only``: every batch
    must already be saved (an emulated run reading the native embeddings must not make them
    on the emulated CPU).
    """
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    enc = None
    out = np.zeros((len(texts), 0), np.float32)
    for start in range(0, len(order), 32):
        rows = order[start:start + 32]
        saved = keep.with_name(f"{keep.name}.{start // 32}.npy") if keep else None
        if saved is not None and saved.exists():
            emb = np.load(saved)
        elif saved_only:
            raise SystemExit(f"no native embeddings {saved or keep} of {graph.name}: run the "
                             "same command natively without --emulated first")
        else:
            enc = enc or encoder(folder, graph, threads)
            emb = enc.encode([texts[i] for i in rows], batch_size=32, normalize=True,
                             show_progress=False)
            if saved is not None:
                np.save(saved, emb)
        if out.shape[1] == 0:
            out = np.zeros((len(texts), emb.shape[1]), np.float32)
        out[rows] = emb
    return out


def accuracy(work: Path, manifest: dict[str, Any], limit: int | None, threads: int | None,
             emulated: str | None) -> dict[str, Any]:
    """The accuracy table of the graphs run on this CPU's kernels (cosine to native fp32).

    Each graph's embeddings are kept under ``work`` (``<graph>.<native|LABEL>.<limit>.*``);
    an emulated run reads the native ones of the same ``--limit`` (run that first).
    """
    from sbert.evaluation.stats import spearman

    texts, gold, n_pairs = sentences()
    rows_idx = subset(n_pairs, limit)
    keep = (len(rows_idx) - (len(texts) - 2 * n_pairs)) // 2
    picked = [texts[i] for i in rows_idx]
    ref = np.load(work / "fp32.npy")[rows_idx]
    folder = Path(manifest["folder"])

    def scores(emb: np.ndarray) -> dict[str, float]:
        cos = (emb * ref).sum(1)
        pair = (emb[:keep] * emb[keep:2 * keep]).sum(1)
        return {"min": float(cos.min()), "p1": float(np.percentile(cos, 1)),
                "mean": float(cos.mean()), "probe_min": float(cos[2 * keep:].min()),
                "spearman": 100 * spearman(pair, gold[:keep])}

    rows = [{"variant": "fp32", **scores(ref)}]
    for label, info in manifest["graphs"].items():
        start = time.perf_counter()
        graph = work / info["graph"]
        stem = graph.with_suffix("")
        emb = embed_batches(folder, graph, picked, threads,
                            stem.with_name(f"{stem.name}.{emulated or 'native'}.{limit}"))
        here = scores(emb)
        row = {"variant": label, "optimum": OPTIMUM.get(label, ""), "fallback": info["fallback"],
               "plain_probe_min": info["plain_probe_min"], **here,
               "holds": "yes" if here["min"] >= 0.95 else "no"}
        if emulated:
            native = embed_batches(folder, graph, picked, threads,
                                   stem.with_name(f"{stem.name}.native.{limit}"),
                                   saved_only=True)
            there = scores(native)
            row.update(native_min=there["min"], native_mean=there["mean"],
                       native_spearman=there["spearman"],
                       vs_native=float((emb * native).sum(1).min()))
        rows.append(row)
        print(f"{label}: min {here['min']:.4f} mean {here['mean']:.5f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    columns = ACCURACY + (NATIVE if emulated else [])
    where = EMULATED if emulated else "this CPU's kernels"
    return table("accuracy", f"{MODEL} int8 variants vs fp32 ({where}): {2 * keep} STSb test "
                 f"sentences ({keep} pairs) + {len(rows_idx) - 2 * keep} probe sentences, "
                 "fixed batches of 32", columns, rows)


def speed(work: Path, manifest: dict[str, Any], limit: int | None, rounds: int,
          threads: int | None) -> dict[str, Any]:
    """sentences/s of the optimised fp32 graph and each int8 graph, batch 32."""
    left, right, _ = sts_pairs(limit)
    texts = left + right
    folder = Path(manifest["folder"])
    graphs = {"fp32": folder / "onnx" / "model.onnx"}
    graphs.update({label: work / info["graph"] for label, info in manifest["graphs"].items()})
    encoders = {label: encoder(folder, graph, threads) for label, graph in graphs.items()}
    times = alternate({label: (lambda e=enc: e.encode(texts, batch_size=32,
                                                      show_progress=False))
                       for label, enc in encoders.items()}, rounds)
    base = median(times["fp32"])
    rows = [{"variant": label, "rate": len(texts) / median(t), "ratio": base / median(t)}
            for label, t in times.items()]
    return table("speed", f"{MODEL}: {len(texts)} STSb test sentences, batch 32, median of "
                 f"{rounds} alternating rounds", SPEED, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("all", "prepare", "accuracy", "speed"), default="all")
    parser.add_argument("--limit", type=int, default=None,
                        help="first N STSb test sentences (N/2 pairs); smoke runs, emulation")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--emulated", metavar="LABEL", default=None,
                        help="the CPU is emulated (e.g. qemu-haswell): accuracy only, with the "
                             "native figures beside it")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        metavar="VARIANT", help=f"some of {list(VARIANTS)} (default: all)")
    parser.add_argument("--work", type=Path, default=OUT / "int8_isa")
    add_output_options(parser)
    args = parser.parse_args()
    if args.emulated and args.part != "accuracy":
        parser.error("--emulated runs --part accuracy only (speed under emulation means nothing)")

    saturates = u8s8_saturates()
    kernel = ("onnxruntime's u8s8 MatMul on this CPU saturates (16-bit pair sums: AVX2, "
              "AVX-512 without VNNI)" if saturates else
              "onnxruntime's u8s8 MatMul on this CPU is exact (VNNI, AMX or Arm)")
    print(kernel, flush=True)
    manifest_file = args.work / "manifest.json"
    if args.part in ("all", "prepare"):
        manifest = prepare(args.work, args.threads)
    elif not manifest_file.exists():
        raise SystemExit(f"no graphs in {args.work}: run `.venv/bin/python "
                         "benchmarks/int8_isa.py --part prepare` natively first")
    else:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest["graphs"] = {k: manifest["graphs"][k] for k in args.variants  # in this order
                          if k in manifest["graphs"]}
    if manifest["saturates"] and not args.emulated:
        print("note: the graphs' native embeddings were made on a CPU whose u8s8 kernel "
              "saturates", flush=True)
    notes = [kernel, f"{MODEL}; graphs quantized as `sbert export onnx --quantize int8` does "
             "(quantize_checked: if a probe sentence falls below cosine 0.95 natively with every "
             "MatMul int8, activations are smoothed, then the feed-forward outputs kept fp32 - "
             "the 'export fallback' column; then the offline optimisation); reference: the "
             "plain fp32 graph run natively",
             "native probe check of the graph written (min cosine): " + ", ".join(
                 f"{k} {v['check_probe_min']:.4f}" for k, v in manifest["graphs"].items())]
    if args.emulated:
        notes.insert(0, f"{args.emulated}: {EMULATED}")
    tables = []
    if args.part in ("all", "accuracy"):
        tables.append(accuracy(args.work, manifest, args.limit, args.threads, args.emulated))
    if args.part in ("all", "speed"):
        tables.append(speed(args.work, manifest, args.limit, args.rounds, args.threads))
    if not tables:
        return
    print_tables(tables)
    name = f"int8_isa-{args.emulated}" if args.emulated else "int8_isa"
    # an emulated CPU's matrix-multiply limits mean nothing (and take hours to measure)
    write_result(name, tables, args, notes=notes, raw={"u8s8_saturates": saturates},
                 limits={} if args.emulated else None,
                 full=args.part == "all" and is_full(args, parser, ("limit", "rounds", "threads",
                                                                      "emulated", "variants")))


if __name__ == "__main__":
    main()
