"""benchmarks/serve_latency.py: its parts run on the same sentences, in turn, and the
in-process app is the real server app, its answer checked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]

latency = load_script("sbert_bench_serve_latency", ROOT / "benchmarks" / "serve_latency.py")


def test_every_part_times_the_same_sentences_in_each_block_and_each_leads_in_turn() -> None:
    seen: list[tuple[str, str]] = []

    def part(name: str, ms: float):  # type: ignore[no-untyped-def]
        async def call(sentence: str) -> float:
            seen.append((name, sentence))
            return ms / 1000

        return call

    parts = {"bare": part("bare", 1.0), "app": part("app", 1.1), "http": part("http", 1.4),
             "health": part("health", 0.2)}
    sentences = [f"s{i}" for i in range(101)]
    out = asyncio.run(latency.measure(parts, sentences, blocks=4, calls=3))
    timed = seen[4 * latency.WARMUP_CALLS:]  # after each part's warm-up
    assert len(timed) == 4 * 4 * 3
    for b in range(4):
        block = timed[b * 12:(b + 1) * 12]
        runs = [block[i * 3:(i + 1) * 3] for i in range(4)]
        assert runs[0][0][0] == latency.PARTS[b]  # each part leads in turn
        assert len({tuple(s for _, s in run) for run in runs}) == 1  # the same sentences
    assert {k: len(v) for k, v in out.items()} == {p: 12 for p in latency.PARTS}
    assert out["http"][0] == pytest.approx(1.4)


def test_the_split_sets_the_parts_against_the_allowance() -> None:
    ms = {"bare": [0.8, 0.8, 0.8], "app": [0.85, 0.85, 0.85], "http": [1.05, 1.05, 1.05],
          "health": [0.15, 0.15, 0.15]}
    parts, split, passes = latency.summarize(ms, {"in the app": (0.075, 100), "idle": (0.0, 0)})
    rows = {row["what"].split(":")[0]: row["ms"] for row in split["rows"]}
    assert rows["the goal's allowance"] == pytest.approx(0.16)
    assert rows["the server's own work beyond the bare call"] == pytest.approx(0.05)
    assert rows["what HTTP adds"] == pytest.approx(0.20)
    assert rows["all of it"] == pytest.approx(0.25)
    assert parts["rows"][2]["vs_bare"] == pytest.approx(1.05 / 0.8)
    assert [(r["where"], r["passes"]) for r in passes["rows"]] == [("in the app", 100)]
    assert passes["rows"][0]["ms"] == pytest.approx(0.75)


def test_pass_totals_read_the_servers_pass_histogram_only() -> None:
    text = ("# HELP sbert_batch_seconds forward pass time\n"
            'sbert_batch_seconds_bucket{le="0.001"} 3.0\n'
            "sbert_batch_seconds_count 7.0\n"
            "sbert_batch_seconds_sum 0.0123\n"
            "sbert_request_seconds_count 99.0\n"
            "sbert_request_seconds_sum 5.0\n")
    assert latency.pass_totals(text) == (0.0123, 7.0)
    assert latency.pass_totals("") == (0.0, 0.0)


def test_the_in_process_app_answers_through_the_servers_own_app(tiny_model_dir: Path) -> None:
    from sbert.serve import ServeConfig

    async def run() -> tuple[float, float | None]:
        app = latency.InProcessApp(ServeConfig(str(tiny_model_dir), backend="torch"))
        await app.start()
        try:
            before = app.passes()
            seconds = await app.embed("A man is playing a guitar.")
            # one more pass timed: a batch thread records it after it hands the rows over
            for _ in range(200):
                after = app.passes()
                if after[1] > before[1]:
                    break
                await asyncio.sleep(0.01)
            assert after[1] >= before[1] + 1 and after[0] > before[0]
            # the request went through the guard, which counts it by endpoint and status
            registry = app.app.sbert.metrics.registry
            return seconds, registry.get_sample_value(
                "sbert_requests_total", {"endpoint": "/v1/embeddings", "status": "200"})
        finally:
            await app.stop()

    seconds, answered = asyncio.run(run())
    assert seconds > 0
    assert answered == 1


def test_the_in_process_app_refuses_a_wrong_answer(tiny_model_dir: Path) -> None:
    from sbert.serve import ServeConfig

    async def run() -> None:
        app = latency.InProcessApp(ServeConfig(str(tiny_model_dir), backend="torch"))
        await app.start()
        app.dim += 1  # the answer's rows no longer have the expected width
        try:
            await app.embed("A man is playing a guitar.")
        finally:
            await app.stop()

    with pytest.raises(latency.HttpError, match="in-process app: malformed"):
        asyncio.run(run())
