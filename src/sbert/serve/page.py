"""The search page at ``GET /``: one HTML file with a little JavaScript, no build step."""

from __future__ import annotations

import html
from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=1)
def _template() -> str:
    return (files("sbert.serve") / "page.html").read_text(encoding="utf-8")


def render_page(model: str, backend: str, index_size: int | None, needs_key: bool) -> str:
    """The page, with the model, the backend and the index size filled in (escaped)."""
    if index_size is None:
        index_text = "no index: start the server with --index DIR to search"
    else:
        index_text = f"{index_size:,} sentences"
    values = {"MODEL": model, "BACKEND": backend, "INDEX": index_text,
              "HAS_INDEX": "true" if index_size is not None else "false",
              "NEEDS_KEY": "true" if needs_key else "false"}
    page = _template()
    for key, value in values.items():
        page = page.replace("{{" + key + "}}", html.escape(value, quote=True))
    return page
