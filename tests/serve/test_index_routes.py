"""The index routes of a real server (``--index``, ``--api-key``): search, add, delete, and
bad values refused before they reach the index (one stored value that cannot be written back
as JSON used to turn every later search that met it into a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import has_module
from tests.serve.conftest import INDEX_SENTENCES, Server, start_index_server

pytestmark = pytest.mark.skipif(not has_module("usearch"), reason="needs usearch (sbert[search])")

KEY = "secret"
AUTH = {"Authorization": f"Bearer {KEY}"}
SENTENCES = INDEX_SENTENCES


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tiny_encoder: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_index_server(tiny_model_dir, tiny_encoder,
                             tmp_path_factory.mktemp("serve-index"), KEY)
    yield srv
    assert srv.stop() == 0, srv.output()


def count(server: Server) -> int:
    status, body = server.request("GET", "/v1/index", headers=AUTH)
    assert status == 200, body
    return int(body["count"])


def test_search_add_and_delete(server: Server, tiny_encoder: Any) -> None:
    status, body = server.request("POST", "/v1/search", {"query": SENTENCES[1], "k": 3},
                                  headers=AUTH)
    assert status == 200, body
    hits = body["results"]
    assert len(hits) == 3 and hits[0]["text"] == SENTENCES[1]
    assert hits[0]["metadata"] == {"n": 1}
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    before = count(server)
    items = [{"text": "a bird sings", "id": "bird", "metadata": {"tags": ["x", "é"]}},
             {"text": "rain falls", "id": "rain"}]
    status, body = server.request("POST", "/v1/index/add", {"items": items}, headers=AUTH)
    assert status == 200 and body == {"ids": ["bird", "rain"], "count": before + 2}, body
    status, body = server.request("POST", "/v1/search", {"query": "a bird sings", "k": 1},
                                  headers=AUTH)
    assert body["results"][0]["id"] == "bird"
    assert body["results"][0]["metadata"] == {"tags": ["x", "é"]}

    # all or nothing: one id taken refuses the whole request, and names that id
    again = [{"text": "new", "id": "new-1"}, {"text": "a bird again", "id": "bird"}]
    status, body = server.request("POST", "/v1/index/add", {"items": again}, headers=AUTH)
    assert status == 409 and "'bird'" in body["error"]["message"], body
    assert "UNIQUE" not in body["error"]["message"]
    assert count(server) == before + 2

    status, body = server.request("POST", "/v1/index/delete", {"ids": ["bird", "rain", "no"]},
                                  headers=AUTH)
    assert status == 200 and body == {"deleted": 2, "count": before}, body


def test_writes_need_the_key(server: Server) -> None:
    status, body = server.request("POST", "/v1/index/add", {"items": [{"text": "x"}]})
    assert status == 401, body
    status, body = server.request("POST", "/v1/index/add", {"items": [{"text": "x"}]},
                                  headers={"Authorization": "Bearer wrong"})
    assert status == 401, body


BAD = [
    ("surrogate text", b'{"items": [{"text": "a\\ud800"}]}', "/v1/index/add", "items"),
    ("surrogate id", b'{"items": [{"text": "a", "id": "\\udfff"}]}', "/v1/index/add", "items"),
    ("surrogate metadata", b'{"items": [{"text": "a", "metadata": "\\ud800"}]}',
     "/v1/index/add", "items"),
    ("surrogate metadata key", b'{"items": [{"text": "a", "metadata": {"\\ud800": 1}}]}',
     "/v1/index/add", "items"),
    # 1e400 reads as infinity, which JSON cannot write back: it would come back as null
    ("infinite metadata", b'{"items": [{"text": "a", "metadata": {"a": 1e400}}]}',
     "/v1/index/add", "items"),
    ("empty id", b'{"items": [{"text": "a", "id": ""}]}', "/v1/index/add", "items"),
    ("surrogate query", b'{"query": "\\ud800"}', "/v1/search", "query"),
    ("k true", b'{"query": "a", "k": true}', "/v1/search", "k"),
    ("k string", b'{"query": "a", "k": "3"}', "/v1/search", "k"),
    ("surrogate delete id", b'{"ids": ["\\ud800"]}', "/v1/index/delete", "ids"),
]


@pytest.mark.parametrize(("raw", "path", "param"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_values_are_422_and_change_nothing(server: Server, raw: bytes, path: str,
                                               param: str) -> None:
    before = count(server)
    status, body = server.request("POST", path, raw=raw, headers=AUTH)
    assert status == 422, body
    assert body["error"]["param"] == param and body["error"]["code"] == "invalid_value"
    assert count(server) == before
    status, body = server.request("POST", "/v1/search", {"query": "food", "k": 100},
                                  headers=AUTH)
    assert status == 200, body


def test_similarity_refuses_a_lone_surrogate(server: Server) -> None:
    for body in ({"source": "\ud800", "targets": ["a"]}, {"pairs": [["a", "b"], ["c", "\udfff"]]}):
        status, answer = server.request("POST", "/v1/similarity", body, headers=AUTH)
        assert status == 422 and "surrogate" in answer["error"]["message"], answer
