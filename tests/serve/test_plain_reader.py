"""The embeddings route's fast reader accepts only what the FastAPI route accepts, read alike."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the server's packages (sbert[serve])")

from pydantic import ValidationError  # noqa: E402

from sbert.serve.config import ServeConfig  # noqa: E402
from sbert.serve.routes import plain_embeddings_request  # noqa: E402
from sbert.serve.schemas import request_models  # noqa: E402

CONFIG = ServeConfig(max_inputs=3)
STATE: Any = SimpleNamespace(config=CONFIG, encoder=SimpleNamespace(dimension=8))
MODEL = request_models(CONFIG).embeddings

PLAIN = [  # ordinary requests: read here, not by FastAPI
    b'{"input": "a dog"}',
    b'{"input": ""}',
    b'{"input": ["a", "b", "c"], "model": "m", "user": "u"}',
    b'{"input": "a", "encoding_format": "base64", "dimensions": 8}',
    b'{"input": "a", "encoding_format": "float", "dimensions": 1, "model": null}',
    b'{"input": "a", "extra": {"ignored": true}}',
    '{"input": "caf\u00e9 \u2603"}'.encode(),
]
OTHER = [  # unusual or invalid: left to FastAPI, which answers or refuses them
    b"", b"not json", b"[]", b'"a"', b"{}", b'{"input": []}', b'{"input": 3}',
    b'{"input": ["a", 3]}', b'{"input": ["a", null]}', b'{"input": [101, 102]}',
    b'{"input": ["a", "b", "c", "d"]}', b'{"input": "a", "encoding_format": "int8"}',
    b'{"input": "a", "encoding_format": null}', b'{"input": "a", "dimensions": 0}',
    b'{"input": "a", "dimensions": 9}', b'{"input": "a", "dimensions": 3.0}',
    b'{"input": "a", "dimensions": "3"}', b'{"input": "a", "dimensions": true}',
    b'{"input": "a", "model": 3}', b'{"input": "a", "user": ["u"]}',
    b'{"input": "a", "dimensions": 100000000000000000000000}',
]


def _route_reads(body: bytes) -> tuple[list[str], str, int | None] | None:
    """What the FastAPI route makes of ``body`` (None: it refuses it)."""
    try:
        doc = MODEL.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        return None
    texts = [doc.input] if isinstance(doc.input, str) else list(doc.input)  # type: ignore[attr-defined]
    dims = doc.dimensions  # type: ignore[attr-defined]
    if dims is not None and dims > STATE.encoder.dimension:
        return None  # the route answers 422
    return texts, doc.encoding_format, dims  # type: ignore[attr-defined]


@pytest.mark.parametrize("body", PLAIN)
def test_plain_bodies_are_read_as_the_route_reads_them(body: bytes) -> None:
    got = plain_embeddings_request(body, STATE)
    assert got is not None
    assert got == _route_reads(body)


@pytest.mark.parametrize("body", OTHER)
def test_other_bodies_go_to_the_route(body: bytes) -> None:
    assert plain_embeddings_request(body, STATE) is None
