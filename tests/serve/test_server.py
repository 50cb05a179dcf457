"""The server as a client sees it: a real `sbert serve` process on loopback, over HTTP."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import has_module
from tests.serve.conftest import Server, start_server

WORDS = "a the man woman child dog cat is eating playing guitar piano food park".split()


def sentences(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 30)))) for _ in range(n)]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def metric(server: Server, name: str, labels: str = "") -> float:
    """A sample's value from /metrics (0 when absent)."""
    status, text = server.request("GET", "/metrics")
    assert status == 200
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + "$", text, re.M)
    return float(found.group(1)) if found else 0.0


# -- the OpenAI client ---------------------------------------------------------------------

openai = pytest.importorskip("openai", reason="needs the openai client (sbert[test])")


def test_openai_client_gets_encode_vectors_float_and_base64(tiny_server: Server,
                                                             tiny_encoder) -> None:
    """The official client, float and base64, matches SentenceEncoder.encode row by row."""
    client = openai.OpenAI(base_url=tiny_server.url + "/v1", api_key="unused")
    texts = sentences(20, 0)
    expected = tiny_encoder.encode(texts)
    # the client's default asks for base64 and decodes it itself; explicit base64 is left
    # to the caller (little-endian float32, as OpenAI sends)
    for fmt in (None, "float", "base64"):
        options = {} if fmt is None else {"encoding_format": fmt}
        resp = client.embeddings.create(model="tiny", input=texts, **options)
        got = np.array([np.frombuffer(base64.b64decode(d.embedding), "<f4")
                        if fmt == "base64" else d.embedding for d in resp.data], np.float32)
        assert [d.index for d in resp.data] == list(range(len(texts)))
        assert cosines(got, expected).min() >= 0.99999
        assert resp.model == "tiny"
        tokens = sum(len(x) for x in tiny_encoder.tokenizer.encode(texts).ids)
        assert resp.usage.prompt_tokens == resp.usage.total_tokens == tokens
    one = client.embeddings.create(model="tiny", input=texts[0])
    assert len(one.data) == 1 and cosines(np.array([one.data[0].embedding]),
                                          expected[:1])[0] >= 0.99999


def test_base64_is_little_endian_float32(tiny_server: Server, tiny_encoder) -> None:
    status, body = tiny_server.request("POST", "/v1/embeddings",
                                       {"input": ["a man eats"], "encoding_format": "base64"})
    assert status == 200
    row = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    assert row.shape == (tiny_encoder.dimension,)
    assert cosines(row[None], tiny_encoder.encode(["a man eats"]))[0] >= 0.99999


def test_dimensions_truncates_and_renormalises(tiny_server: Server, tiny_encoder) -> None:
    status, body = tiny_server.request("POST", "/v1/embeddings",
                                       {"input": ["a dog runs"], "dimensions": 8})
    assert status == 200
    row = np.array(body["data"][0]["embedding"])
    full = tiny_encoder.encode(["a dog runs"])[0, :8]
    assert row.shape == (8,) and abs(np.linalg.norm(row) - 1) < 1e-5
    assert cosines(row[None], full[None])[0] >= 0.99999
    status, body = tiny_server.request("POST", "/v1/embeddings",
                                       {"input": ["a"], "dimensions": 10_000})
    assert status == 422 and body["error"]["param"] == "dimensions"


def test_concurrent_requests_each_get_their_own_rows(tiny_server: Server,
                                                     tiny_encoder) -> None:
    """32 clients at once, 1 to 64 sentences each: every answer holds exactly its rows."""
    requests = [sentences(1 + (i * 7) % 64, seed=100 + i) for i in range(32)]
    answers: dict[int, tuple[int, dict]] = {}

    def call(i: int) -> None:
        answers[i] = tiny_server.request("POST", "/v1/embeddings", {"input": requests[i]})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, texts in enumerate(requests):
        status, body = answers[i]
        assert status == 200, body
        got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
        assert got.shape == (len(texts), tiny_encoder.dimension)
        assert cosines(got, tiny_encoder.encode(texts)).min() >= 0.99999
    # they shared forward passes
    assert metric(tiny_server, "sbert_batch_sentences_count") < sum(map(len, requests))


def test_models_health_and_similarity(tiny_server: Server, tiny_encoder) -> None:
    client = openai.OpenAI(base_url=tiny_server.url + "/v1", api_key="unused")
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    with pytest.raises(openai.NotFoundError, match="this server runs 'tiny'"):
        client.models.retrieve("gpt-4")
    assert tiny_server.request("GET", "/health") == (200, {
        "status": "ok", "model": "tiny", "backend": "torch", "message": None})
    # load balancers and uptime checks often ask with HEAD: the GET's status, no body
    for path in ("/health", "/"):
        req = urllib.request.Request(tiny_server.url + path, method="HEAD")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200 and resp.read() == b"", path
    a, b = ["a man eats food", "a dog plays"], ["a man is eating", "the cat sits"]
    status, body = tiny_server.request("POST", "/v1/similarity",
                                       {"pairs": [list(p) for p in zip(a, b, strict=True)]})
    assert status == 200 and body["similarity_fn"] == "cosine"
    expected = tiny_encoder.similarity_pairwise(tiny_encoder.encode(a), tiny_encoder.encode(b))
    np.testing.assert_allclose(body["scores"], expected, atol=1e-5)
    status, body = tiny_server.request("POST", "/v1/similarity",
                                       {"source": a[0], "targets": b})
    expected = tiny_encoder.similarity(tiny_encoder.encode(a[:1]), tiny_encoder.encode(b))[0]
    np.testing.assert_allclose(body["scores"], expected, atol=1e-5)
    status, body = tiny_server.request("POST", "/v1/similarity", {"source": "x"})
    assert status == 422 and body["error"]["param"] == "targets"


# -- bad input: 4xx in OpenAI's shape, never 500 -----------------------------------------

BAD = [
    ("not json", b"{bad", 400, "invalid_json"),
    ("array body", b"[1, 2]", 422, "invalid_body"),
    ("no input", b"{}", 422, "invalid_value"),
    ("empty list", b'{"input": []}', 422, "empty_input"),
    ("number", b'{"input": 3}', 422, "invalid_value"),
    ("mixed list", b'{"input": ["a", 3]}', 422, "invalid_value"),
    ("null item", b'{"input": ["a", null]}', 422, "invalid_value"),
    ("token ids", b'{"input": [101, 2023, 102]}', 422, "token_ids_not_supported"),
    ("token id lists", b'{"input": [[101, 102]]}', 422, "token_ids_not_supported"),
    ("bad format", b'{"input": "a", "encoding_format": "int8"}', 422, "invalid_value"),
    ("zero dimensions", b'{"input": "a", "dimensions": 0}', 422, "invalid_value"),
    ("not utf-8", b'{"input": "caf\xe9"}', 400, "invalid_json"),
    ("nested too deeply", b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400,
     "invalid_json"),
    ("true dimensions", b'{"input": "a", "dimensions": true}', 422, "invalid_value"),
    ("string dimensions", b'{"input": "a", "dimensions": "3"}', 422, "invalid_value"),
    # JSON escapes can spell a lone UTF-16 surrogate: no tokenizer takes it (was a 500)
    ("lone surrogate", b'{"input": "a\\ud800b"}', 422, "invalid_value"),
    ("lone surrogate in a list", b'{"input": ["ok", "\\udfff"]}', 422, "invalid_value"),
]


@pytest.mark.parametrize(("raw", "status", "code"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_bodies_are_openai_style_4xx(tiny_server: Server, raw: bytes, status: int,
                                         code: str) -> None:
    got, body = tiny_server.request("POST", "/v1/embeddings", raw=raw)
    assert got == status, body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code and body["error"]["message"]


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded", "text/plain"])
def test_a_body_not_sent_as_json_says_so(tiny_server: Server, ctype: str) -> None:
    """curl's -d without -H sends a form: the answer names the header to send."""
    status, body = tiny_server.request("POST", "/v1/embeddings", raw=b'{"input": "hi"}',
                                       headers={"Content-Type": ctype})
    assert status == 422 and body["error"]["code"] == "invalid_content_type", body
    assert "Content-Type: application/json" in body["error"]["message"]


def test_fast_reader_and_fastapi_route_answer_alike(tiny_server: Server) -> None:
    """``dimensions: 4`` is read by the guard's fast reader; ``4.0`` goes through FastAPI
    (pydantic accepts it as 4): both answers must be the same."""
    texts = sentences(3, 7)
    answers = []
    for dims in (b"4", b"4.0"):
        raw = b'{"input": %s, "dimensions": %s}' % (json.dumps(texts).encode(), dims)
        status, body = tiny_server.request("POST", "/v1/embeddings", raw=raw)
        assert status == 200, body
        answers.append(body)
    assert answers[0] == answers[1]
    assert len(answers[0]["data"][0]["embedding"]) == 4


def test_unknown_route_and_method(tiny_server: Server) -> None:
    status, body = tiny_server.request("GET", "/v1/nothing")
    assert status == 404 and body["error"]["type"] == "not_found_error"
    status, body = tiny_server.request("GET", "/v1/embeddings")
    assert status == 405 and "error" in body


def test_limits_inputs_chars_and_body(tiny_model_dir: Path, tmp_path: Path) -> None:
    """--max-inputs, --max-input-chars and the body size are refused with 4xx, then served."""
    server = start_server([str(tiny_model_dir), "--max-inputs", "4", "--max-queue", "16",
                           "--max-input-chars", "50"], tmp_path)
    try:
        status, body = server.request("POST", "/v1/embeddings", {"input": ["a"] * 5})
        assert status == 422 and body["error"]["param"] == "input"
        assert "--max-inputs" in body["error"]["message"]
        status, body = server.request("POST", "/v1/embeddings", {"input": ["a " * 30]})
        assert status == 413 and body["error"]["code"] == "input_too_long"
        # the error names the field the text came from
        status, body = server.request("POST", "/v1/similarity",
                                      {"source": "a", "targets": ["b", "a " * 30]})
        assert status == 413 and body["error"]["param"] == "targets"
        assert body["error"]["message"].startswith("targets[1] has 60 characters")
        # a body over 64 MiB is refused from its Content-Length, before it is sent
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 70000000\r\n\r\n")
            head = b""
            while b"}}" not in head:  # the whole JSON error, which may come in two reads
                chunk = sock.recv(65536)
                if not chunk:
                    break
                head += chunk
        assert head.startswith(b"HTTP/1.1 413") and b"body_too_large" in head
        assert server.request("POST", "/v1/embeddings", {"input": ["a"] * 4})[0] == 200
    finally:
        assert server.stop() == 0


def test_long_inputs_truncated_and_counted_or_refused(tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    long = "the man is eating food in the park " * 40  # over the tiny model's 64 tokens
    server = start_server([str(tiny_model_dir)], tmp_path)
    try:
        before = metric(server, "sbert_truncated_inputs_total")
        status, body = server.request("POST", "/v1/embeddings", {"input": [long, "a", long]})
        assert status == 200 and body["usage"]["prompt_tokens"] == 64 + 3 + 64
        assert metric(server, "sbert_truncated_inputs_total") == before + 2
    finally:
        assert server.stop() == 0
    server = start_server([str(tiny_model_dir), "--no-truncate"], tmp_path)
    try:
        status, body = server.request("POST", "/v1/embeddings", {"input": ["a", long]})
        assert status == 413 and "input 1" in body["error"]["message"]
        assert server.request("POST", "/v1/embeddings", {"input": ["a"]})[0] == 200
    finally:
        assert server.stop() == 0


def test_api_key(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A key from the environment: missing or wrong is 401; probes stay open."""
    server = start_server([str(tiny_model_dir)], tmp_path, env={"SBERT_API_KEY": "s3cret"})
    try:
        status, body = server.request("POST", "/v1/embeddings", {"input": "a"})
        assert status == 401 and body["error"]["code"] == "missing_api_key"
        status, body = server.request("POST", "/v1/embeddings", {"input": "a"},
                                      headers={"Authorization": "Bearer wrong"})
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        assert server.request("GET", "/health")[0] == 200
        assert server.request("GET", "/metrics")[0] == 200
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="s3cret")
        assert len(client.embeddings.create(model="m", input=["a", "b"]).data) == 2
    finally:
        assert server.stop() == 0


def test_cors_origin_lets_a_browser_page_call_the_api(tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    """--cors-origin: the browser's preflight (no key) is answered for that origin only,
    and the API's answers carry the header the browser checks; the key is still needed."""
    origin = "https://app.example.com"
    server = start_server([str(tiny_model_dir), "--api-key", "k", "--cors-origin", origin],
                          tmp_path)
    try:
        def preflight(source: str) -> tuple[int, str | None]:
            req = urllib.request.Request(server.url + "/v1/embeddings", method="OPTIONS",
                                         headers={"Origin": source,
                                                  "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers":
                                                      "authorization,content-type"})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, resp.headers["access-control-allow-origin"]
            except urllib.error.HTTPError as err:
                return err.code, err.headers["access-control-allow-origin"]

        assert preflight(origin) == (200, origin)
        assert preflight("https://evil.example.com")[1] is None
        req = urllib.request.Request(server.url + "/v1/embeddings", data=b'{"input": "a"}',
                                     headers={"Origin": origin, "Authorization": "Bearer k",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
            assert resp.headers["access-control-allow-origin"] == origin
        status, _ = server.request("POST", "/v1/embeddings", {"input": "a"},
                                   headers={"Origin": origin})
        assert status == 401
    finally:
        assert server.stop() == 0


def test_metrics_are_prometheus(tiny_server: Server) -> None:
    tiny_server.request("POST", "/v1/embeddings", {"input": ["a", "b", "c"]})
    tiny_server.request("POST", "/v1/embeddings", raw=b"{bad")
    status, text = tiny_server.request("GET", "/metrics")
    assert status == 200
    for name in ("sbert_requests_total", "sbert_request_seconds_bucket",
                 "sbert_queue_sentences", "sbert_batch_sentences_bucket",
                 "sbert_batch_tokens_bucket", "sbert_truncated_inputs_total"):
        assert name in text
    assert metric(tiny_server, "sbert_requests_total",
                  'endpoint="/v1/embeddings",status="400"') >= 1
    assert metric(tiny_server, "sbert_requests_total",
                  'endpoint="/v1/embeddings",status="200"') >= 1


def test_batch_metrics_count_the_clients_passes_only(tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    """The warm-up passes before /health says ok are not in the batch histograms."""
    server = start_server([str(tiny_model_dir)], tmp_path)
    try:
        assert metric(server, "sbert_batch_sentences_count") == 0
        server.request("POST", "/v1/embeddings", {"input": ["a", "b", "c"]})
        assert metric(server, "sbert_batch_sentences_sum") == 3
    finally:
        assert server.stop() == 0


# -- load: a bounded queue, a client that leaves, SIGTERM ---------------------------------

def _flood(server: Server, clients: int, texts: list[str], seconds: float) -> list[int]:
    statuses: list[int] = []
    retry_after: list[str] = []
    stop = time.monotonic() + seconds

    def client() -> None:
        import urllib.error
        import urllib.request

        while time.monotonic() < stop:
            req = urllib.request.Request(server.url + "/v1/embeddings",
                                         data=json.dumps({"input": texts}).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    statuses.append(resp.status)
            except urllib.error.HTTPError as err:
                statuses.append(err.code)
                if err.code == 429:
                    retry_after.append(err.headers.get("Retry-After", ""))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r.isdigit() and int(r) >= 1 for r in retry_after)
    return statuses


def test_overload_is_429_then_recovers(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A queue of 64 sentences under 24 clients of 32: some 429s, no 5xx, then served."""
    server = start_server([str(tiny_model_dir), "--max-queue", "64", "--max-inputs", "32"],
                          tmp_path)
    try:
        statuses = _flood(server, 24, sentences(32, 7), seconds=4)
        assert set(statuses) <= {200, 429}, sorted(set(statuses))
        assert statuses.count(429) > 0 and statuses.count(200) > 0
        assert metric(server, "sbert_rejected_total", 'reason="queue_full"') > 0
        assert metric(server, "sbert_queue_sentences") == 0
        assert server.request("POST", "/v1/embeddings", {"input": ["after"]})[0] == 200
    finally:
        assert server.stop() == 0


def test_disconnected_client_leaves_no_work(tiny_model_dir: Path, tmp_path: Path) -> None:
    server = start_server([str(tiny_model_dir), "--max-batch-size", "1"], tmp_path)
    try:
        body = json.dumps({"input": sentences(2000, 3)}).encode()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                time.sleep(0.3)  # queued; then the client goes away
        deadline = time.monotonic() + 30
        while metric(server, "sbert_cancelled_requests_total") < 3:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)
        assert metric(server, "sbert_queue_sentences") == 0
        assert metric(server, "sbert_batch_sentences_sum") < 3 * 2000  # most never ran
    finally:
        assert server.stop() == 0


def test_sigterm_drains_accepted_requests_and_exits_0(tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    """Requests in flight when SIGTERM arrives all get full answers; the exit code is 0."""
    server = start_server([str(tiny_model_dir), "--max-batch-size", "8", "--max-queue", "8192"],
                          tmp_path)
    requests = [sentences(400, 50 + i) for i in range(6)]
    answers: list[tuple[int, dict] | BaseException] = [ValueError("no answer")] * len(requests)

    def call(i: int) -> None:
        try:
            answers[i] = server.request("POST", "/v1/embeddings", {"input": requests[i]},
                                        timeout=120)
        except BaseException as err:  # noqa: BLE001 - reported below
            answers[i] = err

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while metric(server, "sbert_queue_sentences") < 1000:  # accepted and queued
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    code = server.stop(timeout=120)
    for t in threads:
        t.join(120)
    assert code == 0, server.output()
    for texts, answer in zip(requests, answers, strict=True):
        assert not isinstance(answer, BaseException), answer
        status, body = answer
        assert status == 200 and len(body["data"]) == len(texts)


def test_startup_errors_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "sbert", "serve", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Error:" in result.stderr
    with socket.socket() as taken:  # a port in use: found before the model loads
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run([sys.executable, "-m", "sbert", "serve", "--port", port],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "cannot listen on 127.0.0.1:" in result.stderr


@pytest.mark.skipif(not has_module("onnxruntime"), reason="needs onnxruntime (sbert[onnx])")
def test_onnx_backend_matches_encode(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sbert import SentenceEncoder

    folder = SentenceEncoder(tiny_model_dir, device="cpu").export_onnx(tmp_path / "onnx",
                                                                        quantize="int8")
    texts = sentences(40, 9)
    for flags in ([], ["--quantized"]):
        encoder = SentenceEncoder(folder, backend="onnx", quantized=bool(flags))
        server = start_server([str(folder), "--backend", "onnx", *flags], tmp_path)
        try:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
            got = np.array([d.embedding for d in
                            client.embeddings.create(model="m", input=texts).data])
            assert cosines(got, encoder.encode(texts)).min() >= 0.99999
        finally:
            assert server.stop() == 0


@pytest.mark.slow
def test_minilm_default_model_over_openai_client(minilm, tmp_path: Path) -> None:
    """`sbert serve` with no model argument serves the bundled all-MiniLM-L6-v2."""
    server = start_server([], tmp_path)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
        texts = ["A man is eating food.", "A man is riding a horse.", "Ein Mann isst."]
        resp = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
        got = np.array([d.embedding for d in resp.data])
        assert resp.model == "all-MiniLM-L6-v2"
        assert cosines(got, minilm.encode(texts)).min() >= 0.99999
    finally:
        assert server.stop() == 0


def test_workers_share_the_port_and_stop_on_sigterm(tiny_model_dir: Path, tmp_path: Path,
                                                    tiny_encoder) -> None:
    """--workers 2: two processes answer on one port; SIGTERM stops both, exit code 0."""
    server = start_server([str(tiny_model_dir), "--workers", "2"], tmp_path)
    try:
        texts = sentences(5, 11)
        answered = 0
        deadline = time.monotonic() + 60
        while answered < 6:
            assert time.monotonic() < deadline, server.output()
            status, body = server.request("POST", "/v1/embeddings", {"input": texts})
            if status == 503:  # the other worker is still loading: what /health says too
                assert body["error"]["code"] == "model_not_ready"
                time.sleep(0.2)
                continue
            assert status == 200, body
            got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
            assert cosines(got, tiny_encoder.encode(texts)).min() >= 0.99999
            answered += 1
    finally:
        assert server.stop() == 0, server.output()


@pytest.mark.skipif(not has_module("usearch"), reason="needs usearch (sbert[search])")
@pytest.mark.parametrize("workers", [1, 2])
def test_a_model_that_fails_to_load_stops_the_server_with_1(tiny_model_dir: Path,
                                                             tmp_path: Path,
                                                             workers: int) -> None:
    """An index of another model fails the start after the port is open: one process or
    several, the server says why and exits 1 (a worker left up said 503 forever)."""
    import subprocess

    from sbert.search.index import Index

    Index.create(tmp_path / "ix", model="some-other-model", dimension=32).close()
    server = Server([str(tiny_model_dir), "--index", str(tmp_path / "ix"), "--workers",
                     str(workers)], log=tmp_path / "server.log")
    try:
        code = server.proc.wait(120)
    except subprocess.TimeoutExpired:
        server.stop()
        pytest.fail(f"the server did not exit:\n{server.output()}")
    assert code == 1, server.output()
    assert "could not be opened" in server.output()


def test_a_queue_smaller_than_the_warm_up_starts(tiny_model_dir: Path, tmp_path: Path) -> None:
    server = start_server([str(tiny_model_dir), "--max-queue", "4", "--max-inputs", "4"],
                          tmp_path)
    try:
        status, body = server.request("POST", "/v1/embeddings", {"input": ["a", "b", "c", "d"]})
        assert status == 200 and len(body["data"]) == 4, body
    finally:
        assert server.stop() == 0, server.output()


def test_sigterm_cuts_a_stalled_client_after_the_shutdown_timeout(tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    """A client that never sends the rest of its body does not hold the server up forever."""
    server = start_server([str(tiny_model_dir), "--shutdown-timeout", "2"], tmp_path)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 1000\r\n\r\n{\"input\": \"a")
        time.sleep(0.5)
        begin = time.monotonic()
        code = server.stop(timeout=30)
        assert code == 0, server.output()
        assert time.monotonic() - begin < 20
