"""Ray Data encoding: a real local Ray cluster, the tiny model, shards on disk, a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import WORDS, has_module, run_cli

pytestmark = pytest.mark.skipif(
    not has_module("ray"), reason="needs Ray Data: pip install 'sbert[ray]' (the test extra has it)"
)

SHARDS = 3
ROWS = 200


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(2, 14))) for _ in range(n)]


def read_outputs(out_dir: Path) -> list[dict[str, list]]:
    import pyarrow.parquet as pq

    return [pq.read_table(p).to_pydict() for p in sorted(out_dir.glob("*.parquet"))]


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs in this process, shut down after the module."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 2**20)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int], list[str]]:
    """A folder of 3 Parquet shards: ``id`` (not in row order) and ``text``, 200 rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("corpus")
    texts = sentences(ROWS)
    ids = [1000 + (37 * i) % ROWS for i in range(ROWS)]
    bounds = np.linspace(0, ROWS, SHARDS + 1, dtype=int)
    for k in range(SHARDS):
        a, b = bounds[k], bounds[k + 1]
        pq.write_table(pa.table({"id": ids[a:b], "text": texts[a:b]}),
                       folder / f"part-{k}.parquet")
    return folder, ids, texts


@pytest.fixture(scope="module")
def onnx_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported to ONNX (fp32 and int8 graphs)."""
    from sbert import SentenceEncoder

    out = tmp_path_factory.mktemp("tiny_onnx") / "model"
    SentenceEncoder(tiny_model_dir, device="cpu").export_onnx(out, quantize="int8")
    return out


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_shards_keep_ids_order_and_match_single_process(
    ray_cluster: str, corpus: tuple[Path, list[int], list[str]], tiny_model_dir: Path,
    onnx_model_dir: Path, tmp_path: Path, backend: str,
) -> None:
    from sbert import SentenceEncoder
    from sbert.distributed import encode_files

    folder, ids, texts = corpus
    model = tiny_model_dir if backend == "torch" else onnx_model_dir
    out = tmp_path / "out"
    summary = encode_files(folder, out, model, id_column="id", actors=1, batch_size=16,
                           progress=False, backend=backend)

    assert [p.name for p in summary.written] == [f"part-{k}.parquet" for k in range(SHARDS)]
    assert summary.rows == ROWS and summary.skipped == []
    tables = read_outputs(out)
    assert [len(t["id"]) for t in tables] == np.diff(np.linspace(0, ROWS, SHARDS + 1,
                                                                  dtype=int)).tolist()
    got_ids = [i for t in tables for i in t["id"]]
    got_texts = [s for t in tables for s in t["text"]]
    assert got_ids == ids and got_texts == texts
    assert list(tables[0]) == ["id", "text", "embedding"]
    got = np.array([v for t in tables for v in t["embedding"]], dtype=np.float32)  # (200, 32)
    reference = SentenceEncoder(model, device="cpu", backend=backend, threads=1)
    expected = reference.encode(texts, batch_size=16)
    assert got.shape == expected.shape == (ROWS, 32)
    assert np.abs(got - expected).max() <= 1e-6


def test_encode_dataset_keeps_columns_and_adds_embedding(
    ray_cluster: str, tiny_encoder, tiny_model_dir: Path
) -> None:
    import ray.data

    from sbert.distributed import encode_dataset

    texts = sentences(12, seed=1)
    rows = [{"text": t, "id": f"doc-{i}", "lang": "en", "score": i / 2}
            for i, t in enumerate(texts)]
    ds = encode_dataset(ray.data.from_items(rows), tiny_model_dir, actors=1, normalize=True)
    ds.context.execution_options.preserve_order = True
    out = ds.take_all()

    assert [r["id"] for r in out] == [r["id"] for r in rows]
    assert all(set(r) == {"text", "id", "lang", "score", "embedding"} for r in out)
    assert [(r["lang"], r["score"]) for r in out] == [(r["lang"], r["score"]) for r in rows]
    got = np.array([r["embedding"] for r in out], dtype=np.float32)  # (12, 32)
    expected = tiny_encoder.encode(texts, normalize=True)
    assert np.abs(got - expected).max() <= 1e-6
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_text_file_gets_line_numbers(ray_cluster: str, tiny_encoder, tiny_model_dir: Path,
                                     tmp_path: Path) -> None:
    from sbert.distributed import encode_files

    texts = sentences(9, seed=2)
    texts[4] = ""  # an empty line is a row too: line numbers stay those of the file
    (tmp_path / "notes.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    summary = encode_files(tmp_path / "notes.txt", tmp_path / "out", tiny_model_dir, actors=1,
                           progress=False)

    [table] = read_outputs(tmp_path / "out")
    assert summary.written == [tmp_path / "out" / "notes.parquet"]
    assert list(table) == ["line", "text", "embedding"]
    assert table["line"] == list(range(1, 10)) and table["text"] == texts
    got = np.array(table["embedding"], dtype=np.float32)
    assert np.abs(got - tiny_encoder.encode(texts)).max() <= 1e-6


def _sbert(*args: str) -> list[str]:
    return [sys.executable, "-m", "sbert", *args]


def _session_pids(sid: int) -> list[int]:
    """Processes still alive in session ``sid`` (the killed CLI and everything it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] != "Z":  # fields[3]: session id
                found.append(int(entry.name))
    return found


def test_sigkill_then_rerun_redoes_only_unfinished_shards(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Kill ``sbert encode --ray local`` once its first shard is written; the rerun keeps it."""
    source, out = tmp_path / "jsonl", tmp_path / "out"
    source.mkdir()
    shard_rows = 6000  # ~1.5 s a shard on one actor: the kill lands while shards are left
    texts = sentences(4 * shard_rows, seed=3)
    for k in range(4):
        with (source / f"shard-{k}.jsonl").open("w", encoding="utf-8") as f:
            for i in range(k * shard_rows, (k + 1) * shard_rows):
                f.write(json.dumps({"doc": f"d{i}", "sentence": texts[i]}) + "\n")
    args = _sbert("encode", str(source), "-o", str(out), "-m", str(tiny_model_dir),
                  "--column", "sentence", "--id-column", "doc", "--actors", "1",
                  "--threads", "1", "--ray", "local")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    first = out / "shard-0.parquet"
    try:
        deadline = time.monotonic() + 240
        while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.exists(), proc.stderr.read().decode() if proc.poll() is not None else ""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    finished = sorted(p.name for p in out.glob("*.parquet"))
    assert "shard-3.parquet" not in finished, "the run ended before the kill; make shards bigger"
    before = {name: (out / name).stat() for name in finished}
    # a partial file of a killed run never counts as finished, and the rerun removes it
    (out / ".shard-3.parquet.99999.partial").write_bytes(b"PAR1 torn")

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipped {len(finished)} finished" in rerun.stderr
    for name, stat in before.items():
        now = (out / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), name
    assert sorted(p.name for p in out.iterdir()) == [
        "_sbert_encode.json", *(f"shard-{k}.parquet" for k in range(4))]
    tables = read_outputs(out)
    assert [d for t in tables for d in t["doc"]] == [f"d{i}" for i in range(4 * shard_rows)]
    assert [s for t in tables for s in t["sentence"]] == texts
    dims = {len(v) for t in tables for v in t["embedding"]}
    assert dims == {32}
    assert _session_pids(proc.pid) == []  # the killed run's Ray processes went with it


@pytest.mark.parametrize("case", ["missing column", "unknown suffix", "empty folder",
                                  "subfolder", "types differ", "columns differ"])
def test_bad_input_is_one_line_and_exit_2(
    corpus: tuple[Path, list[int], list[str]], tiny_model_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], case: str,
) -> None:
    folder, _, _ = corpus
    column = "text"
    if case == "missing column":
        column = "body"
    elif case == "unknown suffix":
        folder = tmp_path / "mixed"
        folder.mkdir()
        (folder / "a.jsonl").write_text('{"text": "a dog"}\n', encoding="utf-8")
        (folder / "b.csv").write_text("text\na cat\n", encoding="utf-8")
    elif case == "subfolder":  # its files would be left out without a word
        folder = tmp_path / "nested"
        (folder / "more").mkdir(parents=True)
        (folder / "a.txt").write_text("a dog\n", encoding="utf-8")
    elif case in ("types differ", "columns differ"):
        # one dataset reads the shards: one would fail half-way on the other's types, or
        # get the other's extra column as nulls
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = tmp_path / "apart"
        folder.mkdir()
        pq.write_table(pa.table({"id": [1], "text": ["a dog"]}), folder / "a.parquet")
        other = ({"id": ["x"], "text": ["a cat"]} if case == "types differ" else
                 {"id": [2], "text": ["a cat"], "extra": ["e"]})
        pq.write_table(pa.table(other), folder / "b.parquet")
    else:
        folder = tmp_path / "empty"
        folder.mkdir()
    code, _, err = run_cli(["encode", str(folder), "-o", str(tmp_path / "out"), "-m",
                            str(tiny_model_dir), "--column", column, "--ray", "local"], capsys)

    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    expected = {"missing column": "part-0.parquet: no column 'body'; its columns are "
                                  "['id', 'text']: choose one with --column",
                "unknown suffix": "b.csv: unknown format '.csv'",
                "empty folder": "the folder has no input files",
                "subfolder": "more is a folder: shards are read from the top of",
                "types differ": "(id: string, text: string against id: int64, text: string)",
                "columns differ": "differ in their columns"}[case]
    assert expected in err
    assert not (tmp_path / "out").exists()


def test_ray_options_need_ray(tiny_model_dir: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in.txt").write_text("a dog\n", encoding="utf-8")
    code, _, err = run_cli(["encode", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o.npy"),
                            "-m", str(tiny_model_dir), "--actors", "2"], capsys)
    assert code == 2 and "--actors and --id-column go with --ray" in err


@pytest.mark.parametrize(("address", "said"), [
    ("not-an-address", "cannot join a Ray cluster at 'not-an-address'"),
    # a host:port where nothing listens: Ray itself would retry for many minutes
    ("127.0.0.1:1", "nothing answers at 127.0.0.1:1"),
])
def test_a_bad_cluster_address_is_one_line(corpus: tuple[Path, list[int], list[str]],
                                           tiny_model_dir: Path, tmp_path: Path,
                                           address: str, said: str) -> None:
    folder, _, _ = corpus
    out = subprocess.run(_sbert("encode", str(folder), "-o", str(tmp_path / "out"), "-m",
                                str(tiny_model_dir), "--ray", address),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert said in out.stderr


def test_a_pool_the_cluster_cannot_hold_is_refused_not_left_waiting(
        ray_cluster: str, caplog: pytest.LogCaptureFixture) -> None:
    """A fixed pool holding every CPU starves the read tasks, and a GPU pool on a cluster
    without one never starts: Ray Data would wait forever without a word."""
    from sbert.distributed.ray_encode import check_resources
    from sbert.errors import UsageError

    check_resources(1, 1, 0, strict=True)  # 2 CPUs: one actor, one CPU left for reading
    check_resources(None, 1, 0, strict=True)  # Ray sizes the pool
    with pytest.raises(UsageError, match="at most 1 actor"):
        check_resources(2, 1, 0, strict=True)
    with pytest.raises(UsageError, match="1 GPU, and the cluster has 0 GPU"):
        check_resources(1, 1, 1, strict=True)
    with caplog.at_level("WARNING", logger="sbert.distributed.ray_encode"):
        check_resources(4, 1, 0, strict=False)  # a cluster that may grow: a warning
    assert "until the cluster grows" in caplog.text


def test_too_many_actors_on_a_local_cluster_is_one_line(
        corpus: tuple[Path, list[int], list[str]], tiny_model_dir: Path,
        tmp_path: Path) -> None:
    folder, _, _ = corpus
    out = subprocess.run(_sbert("encode", str(folder), "-o", str(tmp_path / "out"), "-m",
                                str(tiny_model_dir), "--ray", "local", "--actors", "64"),
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 2, out.stderr
    assert "the actors do not fit the Ray cluster" in out.stderr
    assert "Traceback" not in out.stderr
    # the cluster sbert started said nothing of its own (Ray's token-authentication notice)
    assert "Token authentication" not in out.stderr, out.stderr


def test_a_rerun_with_other_settings_is_refused(
        ray_cluster: str, corpus: tuple[Path, list[int], list[str]], tiny_model_dir: Path,
        tmp_path: Path) -> None:
    """Finished shards are skipped on a rerun: one that asks for other embeddings (here
    normalized) would mix two encodings in one folder, so it is refused."""
    from sbert.distributed import encode_files
    from sbert.errors import UsageError

    folder, _, _ = corpus
    out = tmp_path / "out"
    encode_files(folder, out, tiny_model_dir, id_column="id", actors=1, progress=False)
    again = encode_files(folder, out, tiny_model_dir, id_column="id", actors=1, progress=False,
                         num_cpus=1)  # how it runs may change, what it writes may not
    assert len(again.skipped) == SHARDS and again.written == []
    with pytest.raises(UsageError, match="normalize: False then, True now"):
        encode_files(folder, out, tiny_model_dir, id_column="id", actors=1, progress=False,
                     normalize=True)


def test_empty_files_get_empty_outputs(ray_cluster: str, tiny_model_dir: Path,
                                       tmp_path: Path) -> None:
    """Each input gets its output, rows or none, so a rerun does not redo empty files."""
    import pyarrow.parquet as pq

    from sbert.distributed import encode_files

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "in" / "b.txt").write_text("", encoding="utf-8")
    summary = encode_files(tmp_path / "in", tmp_path / "out", tiny_model_dir, actors=1,
                           progress=False)
    assert sorted(p.name for p in summary.written) == ["a.parquet", "b.parquet"]
    a, b = (pq.read_table(tmp_path / "out" / n) for n in ("a.parquet", "b.parquet"))
    assert a.num_rows == b.num_rows == 0
    assert a.schema.names == ["text", "embedding"]
    assert b.schema.names == ["line", "text", "embedding"]
    assert a.schema.field("embedding").type.list_size == 32
    rerun = encode_files(tmp_path / "in", tmp_path / "out", tiny_model_dir, actors=1,
                         progress=False)
    assert len(rerun.skipped) == 2 and rerun.written == []


def test_executor_poll_starts_quick_slows_once_flowing_and_is_put_back() -> None:
    from ray.data._internal.execution import streaming_executor_state as state

    from sbert.distributed.ray_encode import executor_poll

    before = state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S
    with executor_poll(before + 0.05, before + 0.9) as flowing:
        assert state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == before + 0.05
        flowing()
        assert state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == before + 0.9
        flowing()  # once per batch: stays
        assert state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == before + 0.9
    assert state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == before
    with pytest.raises(RuntimeError), executor_poll(0.2, 2.5):
        raise RuntimeError("a failed job")
    assert state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == before
