"""The server app in-process, no model loaded: the guard in front of FastAPI, called as an
ASGI app, and what the server sets before its model loads."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

pytest.importorskip("fastapi", reason="needs the server's packages (sbert[serve])")

from sbert.serve import ServeConfig, create_app  # noqa: E402


def _call(app: Any, path: str, chunks: list[bytes]) -> tuple[int, dict[str, Any]]:
    """POST ``chunks`` to ``path`` as a chunked body (no Content-Length): (status, JSON)."""
    left = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if left:
            return {"type": "http.request", "body": left.pop(0), "more_body": bool(left)}
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "http_version": "1.1", "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "headers": [(b"content-type", b"application/json"),
                         (b"transfer-encoding", b"chunked")]}
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], orjson.loads(body)


@pytest.mark.parametrize("path", ["/v1/similarity", "/v1/embeddings"])
def test_a_chunked_body_over_the_limit_is_413_on_every_route(tiny_model_dir: Path,
                                                             path: str) -> None:
    """A body that states no length is cut at the limit as it arrives: 413, not the 400
    that FastAPI's reader makes of any error while it reads."""
    app = create_app(ServeConfig(str(tiny_model_dir), max_body_bytes=1000))
    piece = b'{"pairs": [["a", "b"]], "input": "' + b"y" * 100 + b'"}'
    status, body = _call(app, path, [piece] * 20)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = _call(app, path, [piece])  # under the limit: judged as usual
    assert status != 413


def test_a_torch_server_limits_onednn_kernels_before_its_model_loads(
        tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The torch server keeps at most ONEDNN_KERNELS oneDNN kernels (the default cache's
    slow fill read as a memory climb under load); set before the model loads, and a value
    the user set is kept."""
    pytest.importorskip("torch")
    import os

    from sbert.backends.torch.kernels import PRIMITIVE_CACHE_ENV
    from sbert.serve.state import ONEDNN_KERNELS, ServerState

    seen: list[str | None] = []
    # set, then removed: monkeypatch restores the process's own value (or its absence)
    # at the end, whatever the code under test writes into os.environ
    monkeypatch.setenv(PRIMITIVE_CACHE_ENV, "0")
    monkeypatch.delenv(PRIMITIVE_CACHE_ENV)
    monkeypatch.setattr("sbert.encoder.SentenceEncoder",
                        lambda *a, **k: seen.append(os.environ.get(PRIMITIVE_CACHE_ENV)))
    ServerState(ServeConfig(str(tiny_model_dir), backend="onnx"))._build_encoder()
    ServerState(ServeConfig(str(tiny_model_dir), backend="torch"))._build_encoder()
    assert seen == [None, str(ONEDNN_KERNELS)]  # ONNX Runtime has no oneDNN kernels here
    monkeypatch.setenv(PRIMITIVE_CACHE_ENV, "500")
    ServerState(ServeConfig(str(tiny_model_dir), backend="torch"))._build_encoder()
    assert seen[-1] == "500"
