"""Start infinity-emb (github.com/michaelfeil/infinity) as a local CPU baseline server.

infinity-emb lives in its own virtualenv, ``benchmarks/.venv-infinity``, made by
``benchmarks/setup_infinity.sh`` (infinity-emb 0.0.78, torch 2.13.0+cpu, optimum 2.1.0 +
optimum-onnx 0.1.0, onnxruntime 1.32.0, sentence-transformers 3.4.1, transformers 4.57.6).

Engines:

* ``torch``: infinity loads the sentence-transformers folder as it is.
* ``optimum``: ONNX Runtime. infinity needs an ``*.onnx`` file in the folder and never exports
  one. :func:`infinity_prepare` writes a copy under ``benchmarks/out/infinity/`` with the fp32
  graph from ``sbert export onnx`` at the folder's root as ``model.onnx``. It must be at the
  root and the server must run with that folder as its working directory and ``--model-id .``:
  infinity 0.0.78 passes the graph's path as ``file_name`` and optimum-onnx 0.1.0 only accepts
  a bare file name. On CPU infinity prefers a file whose name contains ``quantize``; the copy
  holds none, so it loads the fp32 graph and does not quantize it.

Flags that differ from infinity's defaults (see :func:`infinity_command`):

* ``--device cpu`` rather than ``auto``.
* ``--no-compile``: the default ``torch.compile(dynamic=True)`` would compile with inductor on
  our 2 CPU cores during warm-up.
* ``--no-bettertransformer``: a no-op, since optimum 2.x has no ``optimum.bettertransformer``.
* ``--no-vector-disk-cache``: never serve repeated benchmark inputs from a cache.
* ``--pooling-method mean``: the optimum engine's ``auto`` means CLS pooling, which is wrong for
  all-MiniLM-L6-v2. The torch engine ignores the flag and uses the folder's Pooling module.
* ``--onnx-disable-optimize``: infinity's own ORT optimisation fails under optimum 2.x
  (``OptimizationConfig`` has no ``optimize_with_onnxruntime_only``) and falls back to the
  unoptimised graph anyway.

The rest are infinity's defaults: ``--batch-size 32`` (dynamic batching, at most 32 sentences a
forward pass), ``--model-warmup``, ``--lengths-via-tokenize``. The optimum engine truncates at
``max_position_embeddings`` (512) and not at sentence-transformers' ``max_seq_length`` (256).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
INFINITY_VENV: Path = BENCHMARKS / ".venv-infinity"
INFINITY_PYTHON: Path = INFINITY_VENV / "bin" / "python"
INFINITY_BIN: Path = INFINITY_VENV / "bin" / "infinity_emb"
INFINITY_OUT: Path = BENCHMARKS / "out" / "infinity"
SETUP_SCRIPT = "benchmarks/setup_infinity.sh"

ENGINES: tuple[str, ...] = ("torch", "optimum")
HEALTH_PATH = "/health"  # GET -> {"unix": <time>}
EMBEDDINGS_PATH = "/embeddings"  # POST {"model": MODEL_NAME, "input": [...]}; no /v1 prefix
MODEL_NAME = "all-MiniLM-L6-v2"  # --served-model-name; with one model any name is accepted
ONNX_FILE = "model.onnx"

_VERSION_PACKAGES = (
    "infinity-emb",
    "torch",
    "optimum",
    "optimum-onnx",
    "onnxruntime",
    "sentence-transformers",
    "transformers",
)


def infinity_available() -> str | None:
    """None when the infinity venv is usable, else the reason it is not."""
    if not INFINITY_BIN.is_file() or not INFINITY_PYTHON.is_file():
        return f"infinity-emb is not installed in {INFINITY_VENV}: run {SETUP_SCRIPT}"
    probe = "import infinity_emb, optimum.onnxruntime, sentence_transformers"
    done = subprocess.run(
        [str(INFINITY_PYTHON), "-c", probe], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"infinity venv is broken ({last}): rerun {SETUP_SCRIPT}"
    return None


def infinity_versions() -> dict[str, str]:
    """Versions of the packages that matter, read inside the infinity venv."""
    code = (
        "import json, sys\n"
        "from importlib.metadata import PackageNotFoundError, version\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        out[name] = version(name)\n"
        "    except PackageNotFoundError:\n"
        "        out[name] = 'missing'\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(INFINITY_PYTHON), "-c", code, *_VERSION_PACKAGES],
        capture_output=True,
        text=True,
        check=True,
    )
    versions: dict[str, str] = json.loads(done.stdout)
    return versions


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"unknown infinity engine {engine!r}; expected one of {ENGINES}")


def _sbert_cli() -> str:
    beside = Path(sys.executable).with_name("sbert")
    return str(beside) if beside.is_file() else "sbert"


def infinity_prepare(model_folder: Path, engine: str) -> Path:
    """The folder to serve: the model itself for torch, an ONNX copy (made once) for optimum."""
    _check_engine(engine)
    model_folder = Path(model_folder).resolve()
    if engine == "torch":
        return model_folder
    key = hashlib.sha1(str(model_folder).encode()).hexdigest()[:10]
    serve = INFINITY_OUT / f"{model_folder.name}-{key}-onnx"
    if (serve / ONNX_FILE).is_file() and (serve / "tokenizer_config.json").is_file():
        return serve
    INFINITY_OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=INFINITY_OUT) as tmp:
        export = Path(tmp) / "export"
        subprocess.run(
            [_sbert_cli(), "export", "onnx", str(model_folder), str(export)],
            check=True,
        )
        staged = Path(tmp) / "serve"
        # Tokenizer and config files only: no torch weights, no onnx/ subfolder, so the one
        # graph infinity can find is the fp32 model.onnx at the root.
        shutil.copytree(
            model_folder,
            staged,
            ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "onnx", "openvino"),
        )
        shutil.copy2(export / "onnx" / ONNX_FILE, staged / ONNX_FILE)
        if serve.exists():
            shutil.rmtree(serve)
        staged.rename(serve)
    return serve


def infinity_command(
    model_folder: Path, port: int, engine: str
) -> tuple[list[str], dict[str, str]]:
    """argv and environment that start infinity on 127.0.0.1:port serving model_folder.

    model_folder is what :func:`infinity_prepare` returned for the same engine.
    """
    _check_engine(engine)
    folder = Path(model_folder).resolve()
    args = [
        "v2",
        "--model-id",
        str(folder),
        "--served-model-name",
        MODEL_NAME,
        "--engine",
        engine,
        "--device",
        "cpu",
        "--no-compile",
        "--no-bettertransformer",
        "--no-vector-disk-cache",
        "--pooling-method",
        "mean",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    argv = [str(INFINITY_BIN), *args]
    if engine == "optimum":
        if not (folder / ONNX_FILE).is_file():
            raise FileNotFoundError(f"{folder / ONNX_FILE} is missing: use infinity_prepare()")
        args[2] = "."
        args.append("--onnx-disable-optimize")
        # env execs the server, so the child's pid is infinity's own.
        argv = ["env", "-C", str(folder), str(INFINITY_BIN), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        {
            "PATH": f"{INFINITY_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "INFINITY_ANONYMOUS_USAGE_STATS": "0",
            "DO_NOT_TRACK": "1",
            "HF_HOME": str(INFINITY_OUT / "hf-home"),
        }
    )
    return argv, env
