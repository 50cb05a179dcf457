"""Turn a model name or path into a local folder: disk, then bundled packages, then the hub."""

from __future__ import annotations

import os
from pathlib import Path

from sbert.errors import ModelNotFoundError
from sbert.models.bundled import DEFAULT_MODEL, bundled_model


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
    bundled = bundled_model(name)
    if bundled is not None:
        return bundled.folder()
    if path.exists():
        raise ModelNotFoundError(f"{name} is a file, not a model folder")
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise ModelNotFoundError(f"model folder {name} does not exist")
    return _from_hub(name)


def _from_hub(name: str) -> Path:
    hint = (
        f"model {name!r} is not on disk and could not be downloaded; pass the path of a local "
        "model folder (e.g. ./my-model) or a bundled name such as 'all-MiniLM-L6-v2'"
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise ModelNotFoundError(hint) from err
    try:
        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not in the local cache: try the network next
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelNotFoundError(hint + " (HF_HUB_OFFLINE=1)")
    try:
        return Path(snapshot_download(name, etag_timeout=5))
    except Exception as err:  # any failure means the same thing to the user
        raise ModelNotFoundError(f"{hint} ({type(err).__name__})") from err
