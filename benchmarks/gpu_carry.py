"""Pack what a GPU machine without registries or model hubs needs for gpu_check.sh.

    .venv/bin/python benchmarks/gpu_carry.py pack        # here, before a GPU run
    .venv/bin/python benchmarks/gpu_carry.py pack --no-wheels --models all-MiniLM-L6-v2

Writes benchmarks/out/gpu_carry/ (ignored by git; a GPU run names it in what it carries),
within the 64 MiB a run may carry:

* ``models/all-MiniLM-L6-v2``: the folder with its weights rounded to fp16 (45 MB instead of
  91); they are widened back to fp32 there (``_gpu.unpack_model``). The minimum cosine
  between the original and the rounded model on the STSb test sentences (fp32, on this CPU)
  is measured here and travels in ``CARRY.json``.
* ``models/all-mpnet-base-v2``: its configuration, tokenizer and sentence-transformers
  files without weights (438 MB cannot travel): it runs with random weights, for speed only.
* ``data/``: the STSb train/dev/test and Quora dev files the benchmarks read.
* ``wheels/``: ``datasets`` and the two packages it needs that the GPU image lacks (for
  sentence-transformers' trainer), for CPython 3.12 on x86-64 Linux.
* ``MANIFEST.json``: the commit packed from, the sizes.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DATA, git_state, min_cosine, sts_test_sentences  # noqa: E402
from _gpu import CARRY, MANIFEST, unpack_model  # noqa: E402

TRAINED_FP16 = ("all-MiniLM-L6-v2",)
RANDOM = ("all-mpnet-base-v2",)
DATA_FILES = ("stsbenchmark/train.tsv", "stsbenchmark/dev.tsv", "stsbenchmark/test.tsv",
              "quora_qp/quora_qp.dev.tsv")
WHEELS = ("datasets", "dill", "multiprocess")  # the GPU image has the rest datasets needs
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
LIMIT = 64 * 2**20
SKIP = {"model.safetensors", "pytorch_model.bin", "onnx", "openvino", "README.md",
        "data_config.json", "train_script.py", "desktop.ini", ".gitattributes"}


def _copy_without_weights(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=lambda _dir, names: [n for n in names if n in SKIP])


def pack_fp16(name: str, target: Path) -> str:
    """``name``'s folder with fp16 weights; returns the note that travels with it."""
    from safetensors.torch import load_file, save_file

    from sbert.encoder import SentenceEncoder
    from sbert.models import resolve_model

    source = resolve_model(name)
    _copy_without_weights(source, target)
    state = load_file(str(source / "model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()},
              str(target / "model.safetensors"), metadata={"format": "pt"})
    (target / MANIFEST).write_text(json.dumps({"weights": "fp16", "note": "pending"}))
    widened = CARRY.parent / "gpu_carry_check" / name
    shutil.rmtree(widened.parent, ignore_errors=True)
    unpack_model(target, widened)
    sents = sts_test_sentences()
    original, rounded = (
        SentenceEncoder(folder, device="cpu", backend="torch", precision="fp32").encode(
            sents, show_progress=False) for folder in (source, widened))
    shutil.rmtree(widened.parent, ignore_errors=True)
    cos = min_cosine(rounded.astype("float64"), original.astype("float64"))
    note = (f"trained weights rounded to fp16 to travel (fp32 there; min cosine {cos:.6f} "
            f"to the original on the {len(sents)} STSb test sentences, fp32 on the CPU)")
    (target / MANIFEST).write_text(json.dumps({"weights": "fp16", "note": note}, indent=1))
    return note


def pack_random(name: str, target: Path) -> str:
    """``name``'s folder without weights (random there); returns its note."""
    from sbert.models import resolve_model

    _copy_without_weights(resolve_model(name), target)
    note = (f"random weights: {name}'s architecture and tokenizer, its trained weights too "
            "large to travel; speed figures only")
    (target / MANIFEST).write_text(json.dumps({"weights": "random", "note": note}, indent=1))
    return note


def download_wheels(target: Path) -> list[str]:
    """The wheels of :data:`WHEELS`, at this environment's versions, for CPython 3.12."""
    shutil.rmtree(target, ignore_errors=True)
    specs = [f"{n}=={importlib.metadata.version(n)}" for n in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "-d", str(target)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run(cmd + specs, check=True)
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["pack"])
    parser.add_argument("--models", nargs="+", default=[*TRAINED_FP16, *RANDOM])
    parser.add_argument("--no-wheels", action="store_true", help="skip the datasets wheels")
    args = parser.parse_args()
    shutil.rmtree(CARRY, ignore_errors=True)
    (CARRY / "models").mkdir(parents=True)
    notes = {}
    for name in args.models:
        pack = pack_random if name in RANDOM else pack_fp16
        notes[name] = pack(name, CARRY / "models" / name)
        print(f"{name}: {notes[name]}", flush=True)
    for rel in DATA_FILES:
        (CARRY / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / rel, CARRY / "data" / rel)
    wheels = [] if args.no_wheels else download_wheels(CARRY / "wheels")
    commit, dirty = git_state()
    size = sum(p.stat().st_size for p in CARRY.rglob("*") if p.is_file())
    manifest = {"commit": commit, "dirty": dirty, "models": notes, "wheels": wheels,
                "data": list(DATA_FILES), "bytes": size,
                "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ")}
    (CARRY / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{CARRY}: {size / 2**20:.1f} MiB (a run carries at most 64 MiB with the tree)")
    if size > LIMIT - 8 * 2**20:
        raise SystemExit("too large to carry beside the working tree: pack fewer models")


if __name__ == "__main__":
    main()
