"""The package's public names: every lazily exported name resolves, every moved name is found."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"


def _moves() -> list[tuple[str, str]]:
    text = CHANGELOG.read_text(encoding="utf-8")
    block = text[text.index("<!-- moves -->"):text.index("<!-- /moves -->")]
    return re.findall(r"^\| `([\w.]+)` \| `([\w.]+)` \|$", block, flags=re.M)


def _resolve(path: str) -> object:
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(path)


@pytest.mark.parametrize("package", ["sbert", "sbert.evaluation", "sbert.training", "sbert.search"])
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'missing_name'"):
        module.missing_name  # noqa: B018


def test_changelog_lists_the_moves() -> None:
    assert len(_moves()) > 40


@pytest.mark.parametrize(("old", "new"), _moves())
def test_every_moved_name_is_at_its_new_path(old: str, new: str) -> None:
    assert _resolve(new) is not None
    assert old.rsplit(".", 1)[-1] in new or new.endswith("paraphrase_mining") or \
        new.endswith("UsageError")
