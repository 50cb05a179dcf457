"""The server against its own OpenAPI schema, fuzzed by schemathesis.

schemathesis reads ``/openapi.json`` of a running server (tiny model, an index, an API key, so
every route exists) and sends generated requests, valid and invalid, to each operation. The
checks: no 500, every status code and content type is one the schema declares, every body
matches the declared schema, and invalid requests are refused (4xx).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import Server, start_index_server

pytest.importorskip("schemathesis", reason="the schema test needs schemathesis (sbert[test])")

KEY = "k"
# Not positive_data_acceptance: some rules span fields and the schema does not state them
# (similarity takes `pairs` or `source`+`targets`, not both; index items have ids on all or
# none, unique; `dimensions` at most the model's), so schema-valid bodies may get a 422.
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
])
SEED = 20240601  # a fixed seed: a failure reproduces with the same command
MAX_EXAMPLES = 40  # per operation: the whole run takes well under a minute on two cores


@pytest.fixture(scope="module")
def index_server(tiny_model_dir: Path, tiny_encoder: object,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The tiny model served with a five-sentence index and an API key."""
    server = start_index_server(tiny_model_dir, tiny_encoder,
                                tmp_path_factory.mktemp("serve-schema"), KEY,
                                "--max-inputs", "32")
    yield server
    assert server.stop() == 0, server.output()


def test_schemathesis_finds_no_violation(index_server: Server, tmp_path: Path) -> None:
    """Every operation of the schema (embeddings, similarity, models, search, index reads and
    writes, health, metrics, the page) answers generated requests without a 500, with a
    declared status code and content type, a body matching its schema, and a 4xx for each
    request the schema forbids."""
    status, schema = index_server.request("GET", "/openapi.json")
    assert status == 200
    assert "/v1/search" in schema["paths"] and "/v1/index/add" in schema["paths"]
    operations = sum(len(methods) for methods in schema["paths"].values())
    cli = Path(sys.executable).with_name("schemathesis")
    command = [
        str(cli) if cli.exists() else "schemathesis", "run",
        f"{index_server.url}/openapi.json",
        "--checks", CHECKS,
        "--header", f"Authorization: Bearer {KEY}",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",
        "--request-timeout", "30",
        "--report-dir", str(tmp_path / "report"),
        "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, (
        f"schemathesis exit {run.returncode}:\n{output}\n--- server log ---\n"
        f"{index_server.output()}")
    assert f"Tested: {operations}" in output, output  # every operation was reached
    print(output)  # the run's summary, shown with pytest -rP
