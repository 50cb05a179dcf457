"""Where Ray's overhead goes on this machine: the per-job cost without a model, and CPU by process.

    .venv/bin/python benchmarks/ray_overhead.py [--sentences 32000] [--rounds 2]

``benchmarks/distributed.py`` measures Ray Data encoding against plain ``encode``; this script
splits the difference. On one local Ray cluster (2 cores + 1 CPU for read tasks, as there),
after a first one-shard job that starts Ray Data's service actors, each round runs:

- **empty jobs**: the same pipeline as ``sbert encode --ray`` (read the Parquet shards,
  repartition into 8,192-row blocks, one map call per block, rows back to the driver) with
  an identity function instead of the encoder, once as a task map and once on a pool of one
  actor. Their wall time is what Ray Data costs per job before any model runs.
- **plain encode and a 1-actor Ray encode** of the same shards (``distributed.py``'s own
  functions), while a sampler reads every process's CPU time from ``/proc`` every 0.5 s during
  the Ray job and adds it up by process: the encoder actor, Ray's idle/read workers, the
  driver, Ray's service actors and daemons.

Run it on an idle machine; the table gives medians over the rounds. Smoke run:
``--sentences 2000 --rounds 1 --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    Column,
    add_output_options,
    is_full,
    median,
    print_tables,
    process_cpu,
    table,
    write_result,
)

from distributed import corpus, encoder_options, plain_run, ray_run, write_shards  # noqa: E402

SAMPLE_EVERY_S = 0.5


def _kind(name: str, cmdline: str) -> str | None:
    """The group a process's CPU time is counted in (None: not Ray's nor the benchmark's).

    ``name`` is the kernel's 15-character process name, which Ray sets to ``ray::<task>``.
    """
    if name.startswith("ray::MapWorker"):
        return "encoder actor"
    if name.startswith(("ray::_StatsActo", "ray::_Autoscali", "ray::ActorLocat")):
        return "Ray Data service actors"
    if name.startswith("ray::"):
        return "Ray workers (idle, read, repartition)"
    if "ray_overhead.py" in cmdline:
        return "driver (this process)"
    if name in ("raylet", "gcs_server") or "site-packages/ray/" in cmdline:
        return "Ray daemons (raylet, GCS, log monitor)"
    return None


class CpuSampler:
    """CPU seconds by process group while running, from ``/proc/<pid>/stat``."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last: dict[str, float] = {}
        while True:
            stop = self._stop.is_set()
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    name, seconds = process_cpu(pid)
                    with open(f"/proc/{pid}/cmdline", "rb") as fb:
                        cmdline = fb.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                kind = _kind(name, cmdline)
                if kind is None:
                    continue
                if pid in last:
                    self.seconds[kind] += seconds - last[pid]
                last[pid] = seconds
            if stop:
                return
            self._stop.wait(SAMPLE_EVERY_S)


class _Identity:
    def __call__(self, batch: Any) -> Any:
        return batch


def empty_job(folder: Path, actor: bool) -> float:
    """Seconds of the encode pipeline (``sbert encode --ray``'s reading) with an identity map."""
    import ray.data

    from sbert.distributed.ray_encode import ROWS_PER_CALL, read_blocks

    begin = time.perf_counter()
    ds = read_blocks([str(p) for p in sorted(folder.glob("*.parquet"))], "parquet")
    if actor:
        ds = ds.map_batches(_Identity, batch_format="pyarrow", batch_size=ROWS_PER_CALL,
                            compute=ray.data.ActorPoolStrategy(size=1))
    else:
        ds = ds.map_batches(_Identity(), batch_format="pyarrow", batch_size=ROWS_PER_CALL)
    for _ in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        pass
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=32_000)
    parser.add_argument("--rounds", type=int, default=2)
    add_output_options(parser)
    args = parser.parse_args()

    from sbert.distributed.ray_encode import ray_session
    from sbert.runtime import available_cores

    work = Path(tempfile.mkdtemp(prefix="sbert-ray-overhead-"))
    cores = available_cores()
    options = encoder_options("onnx-int8")
    runs: dict[str, list[float]] = {"empty job, task map": [], "empty job, 1 actor": [],
                                    "plain encode": [], "ray encode, 1 actor": []}
    cpu: list[defaultdict[str, float]] = []
    try:
        sentences, _ = corpus(args.sentences)
        folder = work / "input"
        write_shards(sentences, folder)
        with ray_session("local", num_cpus=cores + 1):
            begin = time.perf_counter()
            ray_run(folder, work / "warmup", 1, cores, options, limit_shards=1)
            print(f"first Ray job (one shard): {time.perf_counter() - begin:.1f}s", flush=True)
            for r in range(args.rounds):
                for name in runs:
                    if name.startswith("empty"):
                        seconds = empty_job(folder, actor="actor" in name)
                    elif name == "plain encode":
                        seconds = plain_run(folder, work / f"plain-{r}", options)["seconds"]
                    else:
                        with CpuSampler() as sampler:
                            seconds = ray_run(folder, work / f"ray-{r}", 1, cores, options)
                        cpu.append(sampler.seconds)
                    runs[name].append(seconds)
                    print(f"  round {r + 1}, {name}: {seconds:.1f}s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    plain = median(runs["plain encode"])
    rows = [{"run": name, "seconds": median(v), "per_round": v,
             "vs_plain": median(v) / plain - 1 if name == "ray encode, 1 actor" else None}
            for name, v in runs.items()]
    columns: list[Column] = [("run", "run", ""), ("seconds", "seconds", "{:.1f}"),
                             ("per_round", "per round", "{:.1f}"),
                             ("vs_plain", "overhead vs plain", "{:+.1%}")]
    job = median(runs["ray encode, 1 actor"])
    kinds = sorted({k for c in cpu for k in c}, key=lambda k: -median([c.get(k, 0.0) for c in cpu]))
    cpu_rows = [{"process": k, "cpu_s": median([c.get(k, 0.0) for c in cpu]),
                 "cores": median([c.get(k, 0.0) for c in cpu]) / job} for k in kinds]
    cpu_columns: list[Column] = [("process", "process", ""), ("cpu_s", "CPU seconds", "{:.1f}"),
                                 ("cores", "cores (CPU s / job s)", "{:.2f}")]
    n = args.sentences
    tables = [table("jobs", f"Ray Data jobs on {n:,} sentences (4 Parquet shards), {cores} "
                    "cores: without a model, and encoding (ONNX int8, batch 32)", columns, rows),
              table("cpu", f"CPU by process during the 1-actor Ray encode ({job:.1f}s, "
                    f"{cores} cores = {job * cores:.0f} CPU s)", cpu_columns, cpu_rows)]
    print_tables(tables)
    notes = [f"median of {args.rounds} rounds on one warm local cluster (num_cpus = cores + 1)",
             f"CPU: /proc/<pid>/stat utime+stime sampled every {SAMPLE_EVERY_S}s during each "
             "1-actor Ray encode, summed by process group"]
    write_result("ray_overhead", tables, args, notes=notes,
                 full=is_full(args, parser, ("sentences", "rounds")),
                 raw={"runs": runs, "cpu": [dict(c) for c in cpu]})


if __name__ == "__main__":
    main()
