"""Helpers shared by the benchmark scripts: data, timing, tables, results (limits: _limits).

Every script prints its tables (Markdown) and writes them, with the machine and the library
versions they came from, to ``benchmarks/results/<name>.<machine class>.json`` through
:func:`write_result`; ``scripts/gen_results.py`` builds docs/RESULTS.md from those files.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sbert.runtime.hardware import ISA_FLAGS, Hardware, detect

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path (gen_results.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _limits import (  # noqa: E402,F401 - the scripts import these from here
    TRAIN_FACTOR,
    bert_flops,
    best_limit,
    flops_cells,
    flops_columns,
    limits_text,
    machine_limits,
    matmul_gflops,
    model_flops,
    onednn_gflops,
    ort_matmul_gflops,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SBERT_DATA", ROOT.parent / "shared" / "data"))
OUT = Path(__file__).resolve().parent / "out"  # caches (embeddings, graphs): not results
RESULTS = Path(__file__).resolve().parent / "results"


def cpu_fields(stat: str | None = None) -> list[int] | None:
    """Jiffies of all CPUs since boot, from ``/proc/stat`` (None elsewhere): user, nice,
    system, idle, iowait, irq, softirq, steal."""
    try:
        text = stat if stat is not None else Path("/proc/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = text.splitlines()[0].split()
    if fields[0] != "cpu" or len(fields) < 9:
        return None
    return [int(v) for v in fields[1:9]]


def cpu_ticks(stat: str | None = None) -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs since boot, from ``/proc/stat`` (None elsewhere).

    Steal is time the hypervisor gave this virtual machine's CPUs to others: on a shared
    host it slows every figure of a run without any process here being busy.
    """
    values = cpu_fields(stat)
    return None if values is None else (values[7], sum(values))


def process_cpu(pid: int | str) -> tuple[str, float]:
    """A process's name (the kernel's, 15 characters) and CPU seconds (utime + stime, all
    threads), from ``/proc/<pid>/stat``; raises OSError when it is gone."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    name = stat.split("(", 1)[1].rsplit(")", 1)[0]
    fields = stat.rsplit(")", 1)[1].split()
    return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steal_share(start: tuple[int, int] | None, end: tuple[int, int] | None) -> float | None:
    """The fraction of CPU time the host took between two :func:`cpu_ticks` readings."""
    if start is None or end is None or end[1] <= start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


_TICKS_AT_START = cpu_ticks()  # when the benchmark imported this module
SCHEMA = 1

LIBRARIES = ("sbert", "torch", "onnxruntime", "sentence-transformers", "numpy", "transformers")


def sts_pairs(limit: int | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """STS benchmark test pairs: sentence1s, sentence2s and gold scores (first ``limit // 2``)."""
    path = DATA / "stsbenchmark" / "test.tsv"
    if not path.exists():
        raise SystemExit(f"needs {path} (the shared data sets); set SBERT_DATA to its folder")
    rows = [line.rstrip("\n").split("\t") for line in path.open(encoding="utf-8")][1:]
    if limit is not None:
        rows = rows[: max(1, limit // 2)]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def sts_test_sentences() -> list[str]:
    """The 2,758 sentences of the STS benchmark test set (sentence1s, then sentence2s)."""
    first, second, _ = sts_pairs()
    return first + second


def exported(name: str, reexport: bool) -> Path:
    """The model's ONNX folder (fp32 + int8): the library's own cached export, timed once."""
    import shutil

    from sbert.backends.onnx.cache import cache_folder, cached_export
    from sbert.folder import read_folder
    from sbert.models import resolve_model

    path = resolve_model(name)
    spec = read_folder(path)
    if reexport:
        shutil.rmtree(cache_folder(path, spec), ignore_errors=True)
    start = time.perf_counter()
    out = cached_export(path, spec)
    print(f"ONNX graphs of {name}: {out} ({time.perf_counter() - start:.0f}s)", flush=True)
    return out


def alternate(
    runs: dict[str, Callable[[], object]], rounds: int
) -> dict[str, list[float]]:
    """Run each contender once per round, in turn, after one warm-up each; seconds per run."""
    for fn in runs.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cos.min())


# --- tables: what a script prints is what its JSON holds and what the docs show -------------

Column = tuple[str, str, str]  # (key, label, format such as "{:.2f}x"; "" for str(value))


def table(table_id: str, title: str, columns: Sequence[Column],
          rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One result table; the first column's value names a row (docs quote rows by it)."""
    cols = [{"key": k, "label": label, "fmt": fmt} for k, label, fmt in columns]
    keys = {c["key"] for c in cols}
    out_rows = []
    for row in rows:
        unknown = set(row) - keys
        if unknown:
            raise ValueError(f"table {table_id!r}: row keys {sorted(unknown)} are not columns")
        out_rows.append({k: _plain(row.get(k)) for k in (c["key"] for c in cols)})
    return {"id": table_id, "title": title, "columns": cols, "rows": out_rows}


def _plain(value: Any) -> Any:
    """numpy scalars and tuples to JSON's own types."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def format_cell(value: Any, fmt: str) -> str:
    """A cell as text: ``fmt`` applies to numbers (each one of a list); None is empty."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(format_cell(v, fmt) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and fmt:
        return fmt.format(value)
    return str(value)


def markdown_table(tab: dict[str, Any], rows: Sequence[str] | None = None,
                   columns: Sequence[str] | None = None) -> str:
    """The table as Markdown; ``rows`` (first-column values) and ``columns`` (keys) select."""
    cols = tab["columns"]
    if columns is not None:
        by_key = {c["key"]: c for c in cols}
        missing = [k for k in columns if k not in by_key]
        if missing:
            raise KeyError(f"table {tab['id']!r} has no columns {missing}; it has {list(by_key)}")
        cols = [by_key[k] for k in columns]
    body = tab["rows"]
    if rows is not None:
        first = tab["columns"][0]["key"]
        by_name = {str(r[first]): r for r in body}
        missing = [r for r in rows if r not in by_name]
        if missing:
            raise KeyError(f"table {tab['id']!r} has no rows {missing}; it has {list(by_name)}")
        body = [by_name[r] for r in rows]

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c["label"]) for c in cols) + " |",
             "| " + " | ".join("---" for _ in cols) + " |"]
    for r in body:
        lines.append("| " + " | ".join(cell(format_cell(r[c["key"]], c["fmt"])) for c in cols)
                     + " |")
    return "\n".join(lines)


def print_tables(tables: Sequence[dict[str, Any]]) -> None:
    for tab in tables:
        print(f"\n### {tab['title']}\n{markdown_table(tab)}", flush=True)


# --- results: one JSON per benchmark and machine class --------------------------------------

def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` (default benchmarks/results) and ``--no-write``."""
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder for the JSON results (default: benchmarks/results; "
                             "smoke runs: a temporary folder)")
    parser.add_argument("--no-write", action="store_true", help="print only; write no JSON")


def is_full(args: argparse.Namespace, parser: argparse.ArgumentParser,
            keys: Sequence[str]) -> bool:
    """Whether ``args`` has the defaults for every option in ``keys`` (the documented run)."""
    return all(getattr(args, k) == parser.get_default(k) for k in keys)


def machine_class(flags: Sequence[str], gpu: str | None = None) -> str:
    """``avx512-amx``, ``avx512-vnni``, ``avx2``, ``arm-sve``...; ``cuda-<gpu>`` for GPU runs."""
    if gpu:
        return "cuda-" + re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")
    return Hardware(arch=platform.machine(), vendor="", model="", features=frozenset(flags),
                    cores=1, cpu_features=frozenset(flags)).machine_class


def machine_info(device: str | None = None) -> dict[str, Any]:
    """CPU vendor, model, ISA flags (the CPU's, and any caps in force), cores, class; the GPU
    for a CUDA device. From :func:`sbert.runtime.hardware.detect`, the library's one owner."""
    hw = detect()
    gpu = None
    if device is not None and str(device).startswith("cuda"):
        import torch

        gpu = torch.cuda.get_device_name(torch.device(device))
    flags = [f for f in ISA_FLAGS if f in hw.cpu_features]
    name = machine_class(flags, gpu)
    if hw.caps and not gpu:  # an emulated lower ISA is a class of its own, never the CPU's
        name += "-capped-" + "-".join(dict.fromkeys(c.split("=", 1)[1].lower() for c in hw.caps))
    return {"class": name, "cpu": hw.model, "vendor": hw.vendor,
            "isa": flags, "caps": list(hw.caps), "cores": hw.cores, "arch": hw.arch,
            "gpu": gpu}


def library_versions() -> dict[str, str | None]:
    """Installed versions of sbert and the libraries it is measured against (None: absent)."""
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    if out["sbert"] is None:  # run from src/ without an install (a GPU machine's copy)
        from sbert._version import __version__

        out["sbert"] = __version__
    return out


def git_state() -> tuple[str | None, bool]:
    """The checked-out commit and whether tracked files differ from it (results files
    aside: a clone that ran one benchmark still runs the same code for the next).

    Where the tree came without its git folder (a copy on a GPU machine), ``SBERT_COMMIT``
    and ``SBERT_DIRTY=1`` say it instead (benchmarks/gpu_check.sh sets them).
    """
    def git(*cmd: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *cmd], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain",
                                                  "--untracked-files=no", "--", ".",
                                                  ":(exclude)benchmarks/results"))
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("SBERT_COMMIT") or None, os.environ.get("SBERT_DIRTY") == "1"


def command_line() -> str:
    """How this run was started, relative to the repository (a line to paste again)."""
    exe = Path(sys.executable)
    python = ".venv/bin/python" if exe.parent == ROOT / ".venv" / "bin" else "python"
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(ROOT):
        script = script.relative_to(ROOT)
    return shlex.join([python, str(script), *sys.argv[1:]])


def write_result(name: str, tables: Sequence[dict[str, Any]], args: argparse.Namespace, *,
                 full: bool, notes: Sequence[str] = (), limits: dict[str, float] | None = None,
                 raw: dict[str, Any] | None = None, device: str | None = None) -> Path | None:
    """Write ``<args.out>/<name>.<machine class>.json``: the tables and where they came from.

    Args:
        name: the benchmark (the script's name, or ``train-sts`` for one recipe).
        tables: from :func:`table`, in the order to show them.
        args: the parsed options (``out``, ``no_write``; all are recorded).
        full: whether this is the documented run (default sizes); a run that is not is
            written only to an explicit ``--out``, never into benchmarks/results.
        notes: lines that go with the tables (sizes, settings).
        limits: the machine's measured matrix-multiply limits, GFLOP/s; None (a script that
            measured none): :func:`_limits.machine_limits` of ``device``, so that every
            result says how close to the machine's limit its figures ran.
        raw: anything else worth keeping (per-round seconds...).
        device: the torch device measured; a CUDA device makes the class ``cuda-<gpu>``.

    Returns:
        The file written, or None.
    """
    if args.no_write:
        return None
    out = Path(args.out)
    if not full and out.resolve() == RESULTS.resolve():
        print(f"\nnot the documented run (smaller or other options): no JSON written to "
              f"{RESULTS}; pass --out DIR to keep it", flush=True)
        return None
    if limits is None:
        limits = machine_limits(device)
    commit, dirty = git_state()
    machine = machine_info(device)
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "benchmark": name,
        "full": full,
        "command": command_line(),
        "args": {k: _jsonable(v) for k, v in sorted(vars(args).items())},
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "dirty": dirty,
        "machine": machine,
        "versions": library_versions(),
        "limits_gflops": {k: round(v, 1) for k, v in limits.items()},
        "notes": list(notes),
        "tables": list(tables),
        "raw": raw or {},
    }
    steal = steal_share(_TICKS_AT_START, cpu_ticks())
    record["host_steal"] = steal
    if steal is not None:
        record["notes"].append(f"host steal during the run: {steal:.1%} of this machine's CPU "
                               "time went to other guests of the host (/proc/stat)")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.{machine['class']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"\nwrote {path}", flush=True)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
