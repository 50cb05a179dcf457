"""``sbert serve``: an OpenAI-compatible embedding server with dynamic batching.

Importing this package is light; FastAPI and uvicorn load with :func:`create_app` and
:func:`run_server` (``pip install 'sbert[serve]'``).
"""

from __future__ import annotations

from sbert._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "ServeConfig": "sbert.serve.config",
    "create_app": "sbert.serve.app",
    "run_server": "sbert.serve.server",
    "Batcher": "sbert.serve.batcher",
}

__getattr__, __dir__ = lazy_exports("sbert.serve", _LAZY, globals())

__all__ = list(_LAZY)
