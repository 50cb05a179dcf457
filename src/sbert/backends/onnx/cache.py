"""Exports made on demand: a folder with torch weights only gets its ONNX graphs once, in the
sbert cache, the first time it is loaded with ``backend="onnx"``."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from sbert.backends.onnx.targets import int8_file_for, int8_target
from sbert.errors import MissingExtraError
from sbert.folder import FP32_FILE, FolderSpec
from sbert.runtime import cache_dir, has_module

logger = logging.getLogger(__name__)

# bump when the export's defaults change, so cached exports are made again
# (8: the int8 graph is this CPU's target's, named as sentence-transformers names it)
EXPORT_FORMAT = 8


def cache_folder(path: Path, spec: FolderSpec) -> Path:
    """Where :func:`cached_export` keeps the export of ``path``.

    The key covers the folder's path, its weight and config files' sizes and times,
    :data:`EXPORT_FORMAT` and this CPU's int8 target (a cache shared by machines of other
    kinds keeps one export per kind).
    """
    stamp = [str(Path(path).resolve()), str(EXPORT_FORMAT), int8_target()]
    for f in sorted(spec.transformer_path.iterdir()):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"):
            st = f.stat()
            stamp.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    key = hashlib.sha256("|".join(stamp).encode()).hexdigest()[:16]
    return cache_dir() / "onnx" / f"{Path(path).name}-{key}"


def cached_export(path: Path, spec: FolderSpec) -> Path:
    """The ONNX export (fp32, and int8 for this CPU) of a folder with torch weights only, made once.

    ``SentenceEncoder(name, backend="onnx")`` on such a folder calls this: the first load
    exports into ``<sbert cache>/onnx/`` (needs torch, about a minute for a small model);
    later loads reuse the export (in :func:`cache_folder`). The int8 graph is the one for
    this CPU's target (:func:`~sbert.backends.onnx.targets.int8_file_for`).

    Returns:
        The exported folder.
    """
    out = cache_folder(path, spec)
    if (out / int8_file_for()).exists() and (out / FP32_FILE).exists():
        return out
    if not has_module("torch"):
        raise MissingExtraError(
            f"{path} has no ONNX graph, and exporting one needs torch once: install it "
            "(pip install 'sbert[torch]') or run `sbert export onnx MODEL OUT --quantize int8` "
            "on a machine that has it, then load OUT"
        )
    from sbert.backends.onnx.export import export_onnx
    from sbert.backends.torch.backend import TorchBackend

    logger.warning("%s has no ONNX graph: exporting it once to %s (later loads reuse it)",
                   path, out)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    source = _source_line(path)
    try:
        export_onnx(TorchBackend(spec, device="cpu"), spec, tmp, quantize="int8")
        (tmp / SOURCE_FILE).write_text(source, encoding="utf-8")
        if out.exists():  # another process finished first, or an incomplete earlier export
            shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _drop_older_exports(out, source)
    return out


SOURCE_FILE = ".sbert-source"  # in each export: the folder and CPU target it was made for


def _source_line(path: Path) -> str:
    return f"{Path(path).resolve()}\t{int8_target()}\t{EXPORT_FORMAT}\n"


def _drop_older_exports(out: Path, source: str) -> None:
    """Remove the exports of the same folder, for the same CPU target, made before its
    weights changed: each re-save of a model would otherwise leave a full copy behind."""
    for other in out.parent.glob(f"{out.name.rsplit('-', 1)[0]}-*"):
        marker = other / SOURCE_FILE
        if other == out or not marker.is_file():
            continue
        try:
            # the same folder and target; another export format is stale as well
            same = marker.read_text(encoding="utf-8").split("\t")[:2] == source.split("\t")[:2]
        except OSError:
            continue
        if same:
            shutil.rmtree(other, ignore_errors=True)
            logger.info("removed %s, the export of the folder's earlier weights", other)
