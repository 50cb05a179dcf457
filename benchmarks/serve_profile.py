"""Where an ``sbert serve`` process spends its CPU under load: by thread, and on the event loop.

    .venv/bin/python benchmarks/serve_profile.py [--server ours-onnx-int8] [--shape 64x1]

``benchmarks/serve.py`` says how fast each server is; this script says where one of ours
spends the machine. It starts the server as serve.py does (``sbert serve`` on a free
loopback port, all-MiniLM-L6-v2), warms it up with the same closed-loop clients
(benchmarks/_load.py, the STSb test sentences), then runs them for ``--duration`` seconds
while

- ``/proc/<pid>/stat`` gives the server's CPU seconds over the window (all threads), and the
  client's own CPU is read in this process, so the CPU per request is measured, not guessed;
- py-spy samples the server's Python threads (``--rate`` Hz, ``--nonblocking``, active
  samples only): per thread, the share of the window it was seen running or runnable (on 2
  cores a runnable thread may be waiting for a core), and the event-loop thread's leading
  functions (leaf frames; native code shows as its Python caller, uvloop's as
  ``Runner.run``).

Then, per round of ``--gil-rounds`` (layouts alternating), the server is started afresh in
two layouts and measured with no profiler over a window of the same length: its default
(one process, a batch thread per core) and one process per core (``--workers``, one batch
thread each). Per layout: sentences/s, the machine's idle CPU, the server's and client's
CPU, and (one process) the event-loop thread's own CPU per request from
``/proc/<pid>/task/<pid>``. Idle cores under a load that is short of CPU are time the batch
threads spent waiting, in one process, for the interpreter lock the event loop held.

Last, the cost table sets the one-process server's CPU per sentence, by part (the event-loop
thread, the server's other threads, which run the passes, the load generator, the idle
cores), against offline ``encode`` at batch 32 measured in this process before and after the
layout rounds (the machine's cores over its rate): what each part takes of the CPU that
offline spends on a sentence.

Run it on an idle machine, alone. Needs py-spy (in the ``test`` extra) and permission to
attach to a child process (root, or ``ptrace_scope`` 0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    add_output_options,
    cpu_fields,
    is_full,
    median,
    print_tables,
    process_cpu,
    sts_test_sentences,
    table,
    write_result,
)
from _load import Target, load, run_async  # noqa: E402

from serve import (  # noqa: E402
    BACKEND,
    HOST,
    LOGS,
    OURS,
    Offline,
    Server,
    free_port,
    ours_spec,
    parse_shapes,
)

TOP_FRAMES = 12
LOOP_THREAD = "MainThread"
# the GIL windows: the default server (one process: the event loop and one batch thread per
# core share one interpreter lock) against one process per core (each: its own loop, one
# batch thread, its own lock), without py-spy
LAYOUTS: tuple[tuple[str, list[str]], ...] = (
    ("one process, a batch thread per core", []),
    ("a process per core (--workers), one batch thread each", ["--workers", "CORES"]),
)


def _idle_ticks() -> tuple[int, int]:
    """(idle + iowait, all) jiffies of the whole machine."""
    values = cpu_fields()
    if values is None:
        raise SystemExit("no /proc/stat: this script reads Linux's CPU counters")
    return values[3] + values[4], sum(values)


class CpuWindow:
    """CPU use over a window: processes' (and threads', as ``"<pid>/task/<tid>"``) CPU
    seconds per wall second, and the machine's idle cores, from ``/proc``."""

    def __init__(self, pids: Sequence[int | str]) -> None:
        self.pids = pids
        self._cpu = [process_cpu(pid)[1] for pid in pids]
        self._idle = _idle_ticks()
        self._wall = time.perf_counter()

    def close(self) -> tuple[list[float], float]:
        """(cores of each pid, idle cores of the machine) since the window opened."""
        wall = time.perf_counter() - self._wall
        cores = [(process_cpu(pid)[1] - cpu) / wall
                 for pid, cpu in zip(self.pids, self._cpu, strict=True)]
        idle = _idle_ticks()
        idle_share = (idle[0] - self._idle[0]) / max(1, idle[1] - self._idle[1])
        return cores, idle_share * (os.cpu_count() or 1)


def read_samples(path: Path) -> tuple[Counter[str], Counter[str]]:
    """py-spy's raw output: active samples per thread, and the loop thread's leaf frames."""
    threads: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        head = frames[0]  # "thread (0x...): name" with --threads
        name = head.split("): ", 1)[1] if "): " in head else head
        threads[name] += int(count)
        if name == LOOP_THREAD and len(frames) > 1:
            leaves[frames[-1]] += int(count)
    return threads, leaves


def gil_window(name: str, extra: list[str], args: argparse.Namespace, sentences: list[str],
               clients: int, per_request: int) -> dict[str, Any]:
    """One layout of the server under the load, no profiler: rate and where the CPU went."""
    cores = os.cpu_count() or 1
    port = free_port()
    spec = ours_spec(args.server, port)
    spec.argv += [str(cores) if arg == "CORES" else arg for arg in extra]
    server = Server(spec, port, LOGS / f"profile-{args.server}-gil.log")
    target = Target(HOST, port, spec.embeddings, spec.model)
    try:
        server.start(args.start_timeout)
        assert server.proc is not None
        run_async(load(target, sentences, clients, per_request, 0.0, args.warmup))
        pids = server.pids()
        one = len(pids) == 1
        # one process: its main thread is the event loop's
        window = CpuWindow([*pids, *([f"{pids[0]}/task/{pids[0]}"] if one else [])])
        result = run_async(load(target, sentences, clients, per_request, 0.0, args.duration))
        used, idle = window.close()
    finally:
        server.stop()
    summary = result.summary()
    server_cores = sum(used[:len(pids)])
    rate = summary["sentences_s"]
    return {"layout": name, "sentences_s": rate, "idle": idle,
            "server": server_cores, "client": result.client_cpu,
            "loop_ms": used[-1] * 1000 / summary["requests_s"] if one else None,
            # every other thread of the server (batch threads, ONNX Runtime's, tokenizer's)
            "rest_ms": (server_cores - used[-1]) * 1000 / rate if one and rate else None,
            "failures": summary["failures"], "processes": len(pids)}


def gil_table(args: argparse.Namespace, sentences: list[str], clients: int,
              per_request: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The layouts alternating over ``--gil-rounds`` rounds; medians per layout."""
    runs: list[dict[str, Any]] = []
    for r in range(args.gil_rounds):
        for name, extra in (LAYOUTS if r % 2 == 0 else LAYOUTS[::-1]):
            print(f"GIL window, round {r + 1}: {name}...", flush=True)
            runs.append(gil_window(name, extra, args, sentences, clients, per_request))
            print(f"  {runs[-1]['sentences_s']:.0f} sentences/s, idle "
                  f"{runs[-1]['idle']:.2f} cores", flush=True)
    rows = []
    for name, _ in LAYOUTS:
        mine = [run for run in runs if run["layout"] == name]
        row: dict[str, Any] = {"layout": name}
        for key in ("sentences_s", "idle", "server", "client"):
            row[key] = median([run[key] for run in mine])
        for key in ("loop_ms", "rest_ms"):
            found = [run[key] for run in mine if run[key] is not None]
            row[key] = median(found) if found else None
        row["per_round"] = [run["sentences_s"] for run in mine]
        row["failures"] = sum(run["failures"] for run in mine)
        rows.append(row)
    tab = table("gil", f"Server layouts without a profiler, {args.shape}, "
                f"{args.duration:.0f}s windows, median of {args.gil_rounds} alternating rounds",
                [("layout", "layout", ""), ("sentences_s", "sentences/s", "{:.0f}"),
                 ("per_round", "per round", "{:.0f}"),
                 ("idle", "idle CPU of the machine, cores", "{:.2f}"),
                 ("server", "server CPU, cores", "{:.2f}"),
                 ("client", "client CPU, cores", "{:.2f}"),
                 ("loop_ms", "event-loop thread CPU per request, ms", "{:.3f}"),
                 ("rest_ms", "other threads' CPU per sentence, ms", "{:.3f}"),
                 ("failures", "failed requests", "")], rows)
    return tab, runs


def cost_table(args: argparse.Namespace, runs: list[dict[str, Any]], per_request: int
               ) -> dict[str, Any]:
    """The one-process server's CPU per sentence, by part, against offline ``encode``.

    Offline: ``encode`` at batch 32 in this process before and after the layout rounds (no
    server running), as CPU per sentence: the machine's cores over its rate. The server's
    parts per sentence, medians over its rounds: the event-loop thread, its other threads
    (the passes), the load generator, and the machine's idle cores.
    """
    cores = os.cpu_count() or 1
    offline = [run["rate"] for run in runs if run.get("layout") == "offline"]
    mine = [run for run in runs if run.get("layout") == LAYOUTS[0][0]]
    if not offline or not mine:
        return table("cost", "CPU per sentence", [("part", "part", "")], [])
    off_ms = cores * 1000 / median(offline)
    rate = median([run["sentences_s"] for run in mine])
    parts = [
        ("event-loop thread", median([run["loop_ms"] / per_request for run in mine])),
        ("other server threads (the passes)", median([run["rest_ms"] for run in mine])),
        ("load generator", median([run["client"] * 1000 / run["sentences_s"] for run in mine])),
        ("idle cores", median([run["idle"] * 1000 / run["sentences_s"] for run in mine])),
    ]
    rows = [{"part": part, "ms": ms, "of_offline": ms / off_ms} for part, ms in parts]
    rows.append({"part": "all: the machine's cores over the server's rate",
                 "ms": cores * 1000 / rate, "of_offline": cores * 1000 / rate / off_ms})
    rows.append({"part": "offline encode, batch 32: the machine's cores over its rate",
                 "ms": off_ms, "of_offline": 1.0})
    return table("cost", f"CPU per sentence, {args.shape}: the one-process server by part "
                 f"against offline encode (median of {len(offline)} offline rounds, "
                 f"{len(mine)} server rounds)",
                 [("part", "part", ""), ("ms", "core-ms per sentence", "{:.3f}"),
                  ("of_offline", "of offline's", "{:.0%}")], rows)


def offline_rounds(server: str, sentences: list[str], rounds: int) -> list[dict[str, Any]]:
    """``rounds`` offline rates of the server's backend, measured in this process."""
    probe = Offline(BACKEND[server], sentences)
    try:
        return [{"layout": "offline", "rate": rate} for rate in probe.rates(rounds)]
    finally:
        probe.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", choices=OURS, default="ours-onnx-int8")
    parser.add_argument("--shape", default="64x1", help="clients x sentences per request")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument("--gil-rounds", type=int, default=2,
                        help="rounds of the layouts table (0: leave it out)")
    add_output_options(parser)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    (clients, per_request), = parse_shapes(args.shape)
    sentences = sts_test_sentences()
    port = free_port()
    server = Server(ours_spec(args.server, port), port, LOGS / f"profile-{args.server}.log")
    work = Path(tempfile.mkdtemp(prefix="sbert-serve-profile-"))
    samples = work / "samples.txt"
    target = Target(HOST, port, server.spec.embeddings, server.spec.model)
    try:
        server.start(args.start_timeout)
        assert server.proc is not None
        pid = server.proc.pid
        run_async(load(target, sentences, clients, per_request, 0.0, args.warmup))
        window = CpuWindow([pid])
        wall0 = time.perf_counter()
        with (work / "py-spy.log").open("wb") as log:
            record = subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--duration", str(int(args.duration)),
                 "--rate", str(args.rate), "--format", "raw", "--output", str(samples),
                 "--threads", "--nonblocking"], stdout=log, stderr=subprocess.STDOUT)
        result = run_async(load(target, sentences, clients, per_request, 0.0, args.duration))
        wall = time.perf_counter() - wall0
        (server_cores,), idle_cores = window.close()
        _, status, usage = os.wait4(record.pid, 0)  # py-spy's own CPU, from its rusage
        code = os.waitstatus_to_exitcode(status)
        spy_cores = (usage.ru_utime + usage.ru_stime) / wall
        if code != 0 or not samples.exists():
            log_text = (work / "py-spy.log").read_text(errors="replace")[-500:]
            raise SystemExit(f"py-spy failed ({code}): {log_text}")
        threads, leaves = read_samples(samples)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    gil, gil_runs, cost = None, [], None
    if args.gil_rounds:
        print("offline encode, before the layouts...", flush=True)
        gil_runs += offline_rounds(args.server, sentences, 2)
        gil, layout_runs = gil_table(args, sentences, clients, per_request)
        gil_runs += layout_runs
        print("offline encode, after the layouts...", flush=True)
        gil_runs += offline_rounds(args.server, sentences, 2)
        cost = cost_table(args, gil_runs, per_request)
    summary = result.summary()
    requests_s = summary["requests_s"]
    window = args.rate * args.duration  # samples a thread active all the time would have
    loop_samples = max(1, threads.get(LOOP_THREAD, 0))
    rows_summary: list[dict[str, Any]] = [
        {"what": "sentences/s", "value": summary["sentences_s"]},
        {"what": "requests/s", "value": requests_s},
        {"what": "p50 latency, ms", "value": summary["p50"]},
        {"what": "server CPU, cores (all threads, /proc)", "value": server_cores},
        {"what": "client CPU, cores (this process)", "value": result.client_cpu},
        {"what": "py-spy's own CPU, cores", "value": spy_cores},
        {"what": "idle CPU of the machine, cores (/proc/stat)", "value": idle_cores},
        {"what": "server CPU per request, ms", "value": server_cores * 1000 / requests_s},
        {"what": "client CPU per request, ms", "value": result.client_cpu * 1000 / requests_s},
        {"what": "failed requests", "value": summary["failures"]},
    ]
    rows_threads = [{"thread": name, "active": count / window}
                    for name, count in threads.most_common()]
    rows_loop = [{"frame": frame, "share": count / loop_samples,
                  "ms_per_request": count / args.rate / args.duration / requests_s * 1000}
                 for frame, count in leaves.most_common(TOP_FRAMES)]
    title = f"{args.server}, {args.shape} (clients x sentences/request), {args.duration:.0f}s"
    tables = [
        table("summary", f"Load and CPU: {title}", [("what", "figure", ""),
                                                    ("value", "value", "{:.2f}")], rows_summary),
        table("threads", "Server threads: share of the window py-spy saw each active "
              "(running or waiting for a core)",
              [("thread", "thread", ""), ("active", "active", "{:.0%}")], rows_threads),
        table("loop", f"The event loop's leading functions (leaf frames, of its "
              f"{loop_samples} active samples)",
              [("frame", "function (file:line)", ""), ("share", "of the loop's samples", "{:.1%}"),
               ("ms_per_request", "active ms per request", "{:.3f}")], rows_loop),
    ]
    if gil is not None and cost is not None:
        tables += [gil, cost]
    print_tables(tables)
    notes = [f"py-spy {args.rate} Hz, --nonblocking, active samples only; warm-up "
             f"{args.warmup:.0f}s of the same load before the window",
             "server CPU: utime+stime of the server process over the window; client: this "
             "process's CPU time over the load; py-spy: its rusage; idle: /proc/stat over the "
             "window, in cores of this machine",
             "layouts: each a fresh server, warmed up as above, then a window of the same "
             "length with no profiler; server CPU sums every process of the server; the "
             "event-loop thread's CPU is read from /proc/<pid>/task/<pid> (one process only)",
             "cost: offline encode at batch 32 in this process, 2 rounds before and 2 after the "
             "layouts, no server running; the server's parts are its one-process rounds"]
    write_result("serve_profile", tables, args, notes=notes,
                 full=is_full(args, parser, ("server", "shape", "duration", "rate", "warmup",
                                             "gil_rounds")),
                 raw={"threads": dict(threads), "loop_leaves": dict(leaves.most_common(50)),
                      "gil_runs": gil_runs})


if __name__ == "__main__":
    main()
