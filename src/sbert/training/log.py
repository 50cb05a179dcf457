"""The run's JSONL log: one object per line (train windows and evaluations), resumable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOG_FILE = "training_log.jsonl"


def append_entry(folder: Path | None, entry: dict[str, Any]) -> None:
    """Add ``entry`` as one line of ``folder/training_log.jsonl`` (nothing without a folder)."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOG_FILE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def entries(path: Path) -> Iterator[str]:
    """The non-empty lines of a log file."""
    with path.open(encoding="utf-8") as f:
        yield from (line for line in f if line.strip())


def truncate_after(folder: Path | None, step: int) -> None:
    """Drop entries a killed run wrote after the checkpoint it resumes from (step ``step``)."""
    if folder is None or not (folder / LOG_FILE).exists():
        return
    path = folder / LOG_FILE
    kept = [line for line in entries(path) if json.loads(line)["step"] <= step]
    path.write_text("".join(kept), encoding="utf-8")
