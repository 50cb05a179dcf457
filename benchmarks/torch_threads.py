"""One-sentence torch passes by calling thread: why a server calls torch from one thread only.

    .venv/bin/python benchmarks/torch_threads.py [--calls 200] [--rounds 3]

torch's CPU wheels run their intra-op parallel regions on GNU OpenMP (libgomp), which keeps
a pool of threads for each thread that opens a region, and spins those threads between
regions only while the process's pool threads do not outnumber its cores. A server that
calls torch from its event loop as well as from a batch worker holds two pools. Each case
below runs in a fresh process: all-MiniLM-L6-v2 on the torch backend (fp32, every core),
one sentence per call, the median of ``--calls`` timed calls after a warm-up:

- **main thread**: the process's main thread only (one pool), as a bare ``encode`` call;
- **one worker thread**: another thread only, the main thread never calls torch (one pool),
  as ``sbert serve``'s torch batcher since this change;
- **worker thread, main called first**: the main thread ran the warm-up, so its pool stays,
  then the worker thread is timed (two pools), as the server before.

The cases alternate over ``--rounds`` rounds, each round in a new order. Smoke run:
``--calls 20 --rounds 1 --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    add_output_options,
    is_full,
    median,
    print_tables,
    table,
    write_result,
)

SENTENCE = "A man is playing a guitar on the stage tonight."
WARMUP_CALLS = 20
CASES = ("main thread", "one worker thread", "worker thread, main called first")


def _os_threads() -> int:
    """OS threads of this process (libgomp's pool threads among them)."""
    return len(os.listdir(f"/proc/{os.getpid()}/task"))


def child(case: str, calls: int) -> dict[str, float]:
    """Time one case in this (fresh) process; what the parent prints and keeps."""
    from sbert import SentenceEncoder

    enc = SentenceEncoder(backend="torch", precision="fp32")
    texts = [SENTENCE]

    def timed() -> float:
        for _ in range(WARMUP_CALLS):
            enc.encode(texts)
        seconds = []
        for _ in range(calls):
            start = time.perf_counter()
            enc.encode(texts)
            seconds.append(time.perf_counter() - start)
        return median(seconds)

    if case == "main thread":
        return {"ms": timed() * 1e3, "threads": _os_threads()}
    if case == "worker thread, main called first":
        for _ in range(WARMUP_CALLS):
            enc.encode(texts)
    out: dict[str, float] = {}

    def work() -> None:
        out["ms"] = timed() * 1e3
        out["threads"] = _os_threads()

    worker = threading.Thread(target=work, name="worker")
    worker.start()
    worker.join()
    return out


def _openmp(torch: Any) -> str:
    """torch's OpenMP version line and the runtime library it ships (libgomp, libiomp5)."""
    info = [line.strip() for line in torch.__config__.parallel_info().splitlines()
            if line.strip().startswith("OpenMP")]
    lib = Path(torch.__file__).parent / "lib"
    libs = sorted(p.name for pattern in ("libgomp*", "libiomp*", "libomp*")
                  for p in lib.glob(pattern))
    shipped = ", ".join(libs) or "no OpenMP library in torch/lib"
    return f"{info[0] if info else 'no OpenMP'}; {shipped}"


def run_case(case: str, calls: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", case, "--calls", str(calls)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case {case!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="timed calls per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    add_output_options(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.calls)))
        return
    import torch

    ms: dict[str, list[float]] = {case: [] for case in CASES}
    threads: dict[str, int] = {}
    for r in range(args.rounds):
        order = CASES[r % len(CASES):] + CASES[: r % len(CASES)]
        for case in order:
            got = run_case(case, args.calls)
            ms[case].append(got["ms"])
            threads[case] = int(got["threads"])
            print(f"  round {r + 1}, {case}: {got['ms']:.2f} ms", flush=True)
    base = median(ms["main thread"])
    rows = [{"case": case, "ms": median(ms[case]), "per_round": ms[case],
             "vs_main": median(ms[case]) / base, "os_threads": threads[case]}
            for case in CASES]
    tab = table("passes", "one-sentence torch pass by calling thread (median ms)",
                [("case", "case", ""), ("ms", "ms per call", "{:.2f}"),
                 ("per_round", "per round", "{:.2f}"), ("vs_main", "x main thread", "{:.2f}x"),
                 ("os_threads", "OS threads at the end", "")], rows)
    notes = [f"all-MiniLM-L6-v2, torch fp32, {torch.get_num_threads()} intra-op threads, one "
             f"sentence per call, median of {args.calls} calls per case and round, "
             f"{args.rounds} rounds; each case in a fresh process",
             f"torch's OpenMP runtime: {_openmp(torch)}"]
    print_tables([tab])
    for line in notes:
        print(line)
    write_result("torch_threads", [tab], args, full=is_full(args, parser, ("calls", "rounds")),
                 notes=notes, raw={"ms": ms})


if __name__ == "__main__":
    main()
