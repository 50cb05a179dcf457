"""The package's public names: every lazily exported name resolves."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["sbert", "sbert.evaluation", "sbert.training"])
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'missing_name'"):
        module.missing_name  # noqa: B018
