"""Which backend and precision run when the caller leaves them to sbert (``"auto"``).

The policy, :func:`choose_path`: the fastest path whose embeddings keep cosine >= 0.9999 to
fp32 on this hardware, from the figures of ``benchmarks/encode.py`` (docs/hardware.md):

- a CUDA device runs torch fp32 (no GPU measurement of the other paths exists yet);
- a CPU with AMX bf16 runs torch with bf16 autocast (the fastest exact path measured on such
  a CPU, above ONNX fp32);
- any other CPU runs ONNX fp32 where onnxruntime is installed and the folder has an fp32
  graph or can export one (once, into the sbert cache), else torch fp32;
- bf16 is never chosen without native bf16 (oneDNN emulates it, several times slower);
  int8 (``quantized=True``) changes results and is never chosen;
- a folder with ONNX graphs only runs ONNX; an explicit ``backend``/``precision`` wins.

``SBERT_BACKEND`` and ``SBERT_PRECISION`` pin the default of a deployment (or a test suite):
they stand in for an ``"auto"`` the caller left, where the folder and the other arguments
allow them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sbert.errors import ModelFolderError, UsageError
from sbert.folder import FP32_FILE, FolderSpec, read_folder
from sbert.runtime import has_module
from sbert.runtime.hardware import Hardware, cuda_available, detect

logger = logging.getLogger(__name__)

AUTO = "auto"
BACKEND_CHOICES = (AUTO, "torch", "onnx")
PRECISION_CHOICES = (AUTO, "fp32", "bf16", "fp16")  # fp16: torch autocast, for CUDA GPUs
HALF = ("bf16", "fp16")  # torch autocast types
BACKEND_ENV = "SBERT_BACKEND"
PRECISION_ENV = "SBERT_PRECISION"
# backend options only the ONNX backend takes: given, they choose it
ONNX_OPTIONS = ("quantized", "file", "providers")

FP16_WARNING = (
    "precision='fp16' on a CPU: fp16 autocast is the CUDA path, and sbert has no measurement "
    "of it on CPUs; leave precision to 'auto' (or pass 'fp32', or 'bf16' where the CPU has "
    "native bf16: `sbert info` says)."
)
BF16_WARNING = (
    "precision='bf16' on a CPU without native bf16 (no AVX512-BF16, AMX or Arm BF16{caps}): "
    "oneDNN emulates bf16 here, several times slower than fp32 (docs/hardware.md). Leave "
    "precision to 'auto' (or pass 'fp32'); `sbert info` shows the path this machine runs "
    "fastest."
)


@dataclass(frozen=True)
class Available:
    """What the folder and the installed packages allow.

    Attributes:
        torch: torch is installed.
        weights: the folder has torch weights.
        onnxruntime: onnxruntime is installed.
        graph: the folder has an fp32 ONNX graph.
        export: an fp32 graph can be exported into the sbert cache (weights, torch and onnx).
    """

    torch: bool
    weights: bool
    onnxruntime: bool
    graph: bool
    export: bool

    @property
    def run_torch(self) -> bool:
        return self.torch and self.weights

    @property
    def run_onnx(self) -> bool:
        return self.onnxruntime and (self.graph or self.export)


@dataclass(frozen=True)
class PathChoice:
    """The path an encoder runs, and why.

    Attributes:
        backend: ``"torch"`` or ``"onnx"``.
        precision: ``"fp32"``, ``"bf16"``/``"fp16"`` (torch autocast) or ``"int8"`` (an int8
            graph).
        reason: why, in a few words (``"auto: AMX bf16 on this CPU"``).
        chosen: sbert (or an ``SBERT_*`` pin) chose part of it; False: all of it was asked for.
        warning: said once per process: an asked-for path that runs slowly here.
    """

    backend: str
    precision: str
    reason: str
    chosen: bool = True
    warning: str | None = None

    def describe(self) -> str:
        """``torch bf16 (auto: AMX bf16 on this CPU)``."""
        return f"{self.backend} {self.precision} ({self.reason})"


def _check(name: str, value: str, choices: tuple[str, ...], source: str = "") -> str:
    if value not in choices:
        where = f" (from {source})" if source else ""
        raise UsageError(f"unknown {name} {value!r}{where}; expected one of {choices}")
    return value


def check_request(backend: str, precision: str) -> None:
    """Refuse an unknown ``backend`` or ``precision`` (before any model is looked for)."""
    _check("backend", backend, BACKEND_CHOICES)
    _check("precision", precision, PRECISION_CHOICES)


def choose_path(
    hw: Hardware,
    available: Available,
    *,
    backend: str = AUTO,
    precision: str = AUTO,
    device: str | None = None,
    cuda: bool = False,
    onnx_options: tuple[str, ...] = (),
    quantized: bool = False,
) -> PathChoice:
    """The backend and precision to run (the module doc gives the policy).

    Args:
        hw: the machine (features after the ``ONEDNN_MAX_CPU_ISA``/``ATEN_CPU_CAPABILITY``
            caps).
        available: what the folder and the installed packages allow.
        backend: ``auto``, ``torch`` or ``onnx``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (the last two: torch autocast).
        device: the device asked for; None: the default one.
        cuda: the default device is CUDA.
        onnx_options: the ONNX-only options given (:data:`ONNX_OPTIONS`).
        quantized: an int8 graph was asked for.

    Returns:
        The path, with its reason and, for an asked-for path that is slow here, a warning.
    """
    check_request(backend, precision)
    gpu = device is not None and not device.startswith("cpu")
    if onnx_options:
        if backend == "torch":
            raise UsageError(f"{', '.join(onnx_options)} go with the ONNX backend; drop "
                             "backend='torch' or them")
        backend_given = backend == "onnx"
        backend, why = "onnx", f"{'/'.join(onnx_options)} asked for"
    else:
        backend_given = backend != AUTO
        why = "asked for"
    if backend == "onnx":
        if precision in HALF:
            raise UsageError(f"precision={precision!r} is torch autocast; the ONNX backend "
                             "runs fp32, or int8 with quantized=True")
        if gpu:
            raise UsageError(f"the onnx backend runs on the CPU; got device={device!r}")
        chosen = not backend_given and not onnx_options
        return PathChoice("onnx", "int8" if quantized else "fp32",
                          f"auto: {why}" if chosen else why, chosen)
    on_gpu = gpu or (device is None and cuda)
    if backend == AUTO:
        backend, why = _choose_backend(hw, available, precision, on_gpu, device)
    if backend == "onnx":
        return PathChoice("onnx", "fp32", f"auto: {why}")
    warning = None
    if precision == AUTO:
        amx = not on_gpu and "amx_bf16" in hw.features
        precision = "bf16" if amx else "fp32"
        if backend_given:
            why = "AMX bf16 on this CPU" if amx else (
                "no GPU measurement of bf16 yet" if on_gpu else "no AMX bf16 on this CPU")
        return PathChoice("torch", precision, f"auto: {why}")
    if precision == "bf16" and not on_gpu and not hw.native_bf16:
        caps = f"; capped by {', '.join(hw.caps)}" if hw.caps else ""
        warning = BF16_WARNING.format(caps=caps)
    if precision == "fp16" and not on_gpu:
        warning = FP16_WARNING
    return PathChoice("torch", precision, f"auto: {why}" if not backend_given else "asked for",
                      not backend_given, warning)


def _choose_backend(
    hw: Hardware, available: Available, precision: str, on_gpu: bool, device: str | None
) -> tuple[str, str]:
    """The backend ``auto`` picks, and why."""
    if on_gpu:
        return "torch", f"{device or 'CUDA'} device: no GPU measurement of the other paths yet"
    if precision in HALF:
        return "torch", f"{precision} is torch autocast"
    if not available.run_torch:
        if available.onnxruntime and (available.graph or not available.weights):
            return "onnx", ("the folder has ONNX graphs only" if not available.weights
                            else "torch is not installed")
        return "torch", "no other path"  # torch's own errors say what is missing
    if precision == AUTO and "amx_bf16" in hw.features:
        return "torch", "AMX bf16 on this CPU"
    if available.run_onnx:
        if precision == "fp32":
            return "onnx", "ONNX fp32 is the fastest fp32 path on a CPU"
        return "onnx", "no AMX bf16 on this CPU: ONNX fp32 is the fastest exact path"
    if not available.onnxruntime:
        return "torch", "onnxruntime is not installed"
    return "torch", "no fp32 ONNX graph, and no onnx package to export one"


def _int8_file(options: Mapping[str, object]) -> bool:
    """Whether ``file=`` names an int8 graph (by the names optimum and sbert give them)."""
    from sbert.folder import int8_graph_kind

    file = options.get("file")
    return isinstance(file, (str, os.PathLike)) and int8_graph_kind(os.fspath(file)) is not None


def has_fp32_graph(spec: FolderSpec) -> bool:
    """Whether the folder has an ONNX graph that is not int8."""
    return any("int8" not in Path(f).name for f in spec.onnx_files)


def available_for(spec: FolderSpec) -> Available:
    """What ``spec``'s folder and this environment's packages allow (imports nothing)."""
    graph = has_fp32_graph(spec)
    torch = has_module("torch")
    return Available(torch=torch, weights=spec.has_torch_weights,
                     onnxruntime=has_module("onnxruntime"), graph=graph,
                     export=spec.has_torch_weights and torch and has_module("onnx")
                     and not graph)


def pinned(
    backend: str, precision: str, options: Mapping[str, object], device: str | None,
    available: Available, env: Mapping[str, str] | None = None,
) -> tuple[str, str, list[str]]:
    """``backend``/``precision`` with an ``auto`` replaced by ``SBERT_BACKEND``/``_PRECISION``.

    A pin gives way where it cannot apply: ``torch`` to a folder without torch weights or to
    ONNX-only options, ``onnx`` to bf16/fp16 or a GPU device, ``bf16``/``fp16`` to the ONNX
    backend.

    Returns:
        The backend, the precision and the pins applied (``NAME=value``).
    """
    env = os.environ if env is None else env
    used = []
    onnx_options = any(options.get(k) for k in ONNX_OPTIONS)
    gpu = device is not None and not device.startswith("cpu")
    pin = env.get(BACKEND_ENV, "").strip().lower()
    if backend == AUTO and pin and pin != AUTO:
        _check("backend", pin, BACKEND_CHOICES, BACKEND_ENV)
        if (pin == "torch" and available.weights and not onnx_options) or (
            pin == "onnx" and precision not in HALF and not gpu
        ):
            backend = pin
            used.append(f"{BACKEND_ENV}={pin}")
    pin = env.get(PRECISION_ENV, "").strip().lower()
    if precision == AUTO and pin and pin != AUTO:
        _check("precision", pin, PRECISION_CHOICES, PRECISION_ENV)
        if pin == "fp32" or (backend != "onnx" and not onnx_options):
            precision = pin
            used.append(f"{PRECISION_ENV}={pin}")
    return backend, precision, used


def path_for(
    spec: FolderSpec,
    *,
    backend: str = AUTO,
    precision: str = AUTO,
    device: str | None = None,
    options: Mapping[str, object] | None = None,
    hw: Hardware | None = None,
    pins: bool = True,
) -> PathChoice:
    """The path an encoder of ``spec`` runs here: the pins, this machine and :func:`choose_path`.

    Args:
        spec: the model folder.
        backend: as given to the encoder (``auto``: the policy, or ``SBERT_BACKEND``).
        precision: as given (``auto``: the policy, or ``SBERT_PRECISION``).
        device: the device asked for.
        options: the backend options (``quantized``, ``file``...).
        hw: the machine; default: :func:`~sbert.runtime.hardware.detect`.
        pins: honour ``SBERT_BACKEND``/``SBERT_PRECISION`` (False: the policy's own pick).
    """
    options = options or {}
    check_request(backend, precision)
    if not spec.has_torch_weights and not spec.onnx_files:
        raise ModelFolderError(
            f"{spec.transformer_path} has no weights: no model.safetensors or pytorch_model.bin "
            "and no ONNX graph (onnx/*.onnx); copy the whole model folder (a download may "
            "have stopped half-way)")
    available = available_for(spec)
    backend, precision, used = pinned(backend, precision, options, device, available,
                                      None if pins else {})
    onnx_options = tuple(k for k in ONNX_OPTIONS if options.get(k))
    cuda = (device is None and backend != "onnx" and not onnx_options
            and available.run_torch and cuda_available())
    choice = choose_path(hw or detect(), available, backend=backend, precision=precision,
                         device=device, cuda=cuda, onnx_options=onnx_options,
                         quantized=bool(options.get("quantized")) or _int8_file(options))
    if used:
        reason = ", ".join(used)
        if choice.chosen and choice.reason.startswith("auto:") and len(used) < 2:
            reason += f"; {choice.reason}"
        choice = PathChoice(choice.backend, choice.precision, reason, True, choice.warning)
    return choice


def onnx_source(
    path: Path, spec: FolderSpec, choice: PathChoice, options: Mapping[str, object],
    name: str = "",
) -> tuple[Path, FolderSpec, PathChoice]:
    """The folder an encoder loads for ``choice``: ``path``, or the cached ONNX export of it.

    A folder with torch weights and no graph for the ONNX path is exported once into the
    sbert cache (the time it took is logged). When that export fails on a path ``auto``
    chose, the encoder runs torch fp32 instead, with a warning.

    Returns:
        The folder, its spec and the path (torch fp32 after a failed export).
    """
    if choice.backend != "onnx" or options.get("file"):
        return path, spec, choice
    quantized = bool(options.get("quantized"))
    if not spec.has_torch_weights:
        if spec.onnx_files and not quantized and not has_fp32_graph(spec):
            raise ModelFolderError(
                f"{path} has only int8 ONNX graphs {spec.onnx_files}; int8 changes the "
                "embeddings, so sbert does not pick it for you: pass quantized=True "
                "(CLI: --quantized)"
            )
        return path, spec, choice
    if (spec.onnx_files if quantized else has_fp32_graph(spec)):
        return path, spec, choice
    from sbert.backends.onnx.cache import cache_folder, cached_export

    first = not (cache_folder(path, spec) / FP32_FILE).exists()
    start = time.perf_counter()
    try:
        out = cached_export(path, spec)  # once; later loads find it in the cache
    except Exception as err:  # any failure: auto still has torch
        if not choice.chosen:
            raise
        logger.warning("the ONNX export of %s failed (%s: %s); running torch fp32 instead",
                       name or path, type(err).__name__, err)
        return path, spec, PathChoice("torch", "fp32", f"{choice.reason}; the ONNX export "
                                      "failed")
    if first:
        logger.warning("exported %s to ONNX in %.1f s for the %s path; later loads reuse it "
                       "(%s=torch skips the export)", name or path, time.perf_counter() - start,
                       choice.describe(), BACKEND_ENV)
    return out, read_folder(out), choice
