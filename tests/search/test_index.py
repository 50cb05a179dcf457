"""The persistent index: add/search/delete/reopen, model checks, repair, and durability
when a real writer process is killed (SIGKILL) in the middle of ``add``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import has_module

pytestmark = pytest.mark.skipif(not has_module("usearch"), reason="needs usearch (sbert[search])")
ROOT = Path(__file__).resolve().parents[2]


def vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def make(path: Path, n: int = 0, dim: int = 16):
    from sbert.search.index import Index

    index = Index.create(path, model="test-model", dimension=dim)
    if n:
        index.add([f"s{i}" for i in range(n)], vectors(n, dim))
    return index


def test_add_search_delete_reopen(tmp_path: Path) -> None:
    from sbert.search.index import Index

    emb = vectors(200)
    with make(tmp_path / "ix") as index:
        ids = index.add([f"s{i}" for i in range(200)], emb,
                        metadata=[{"n": i} if i % 2 else None for i in range(200)])
        assert len(index) == 200 and ids[:2] == ["1", "2"]
        hits = index.search(emb[:3], k=4)
        assert [h[0].text for h in hits] == ["s0", "s1", "s2"]
        assert hits[1][0].score == pytest.approx(1.0, abs=1e-5) and hits[1][0].metadata == {"n": 1}
        exact = index.search(emb[10], k=5, exact=True)[0]
        scores = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ (
            emb[10] / np.linalg.norm(emb[10]))
        assert [h.text for h in exact] == [f"s{i}" for i in np.argsort(-scores)[:5]]
        assert index.delete(["1", "3", "missing", "3"]) == 2
        generation = index.info()["generation"]
        assert index.delete(["missing"]) == 0 and index.info()["generation"] == generation
        assert index.search(emb[0], k=1, exact=True)[0][0].text != "s0"
    with Index.open(tmp_path / "ix") as index:
        assert len(index) == 198 and index.model == "test-model"
        assert index.get(["2", "1"])[0].text == "s1" and index.get(["1"]) == [None]
        index.add(["extra"], emb[:1], ids=["x"])
        assert index.search(emb[0], k=1)[0][0].id == "x"
        files = sorted(p.name for p in (tmp_path / "ix").glob("vectors-*"))
        assert files == [f"vectors-{index.info()['generation']}.usearch"]


def test_refuses_other_models_and_bad_input(tmp_path: Path, tiny_encoder) -> None:
    from sbert.errors import IndexFailure
    from sbert.search.index import Index

    with make(tmp_path / "ix", n=5) as index:
        with pytest.raises(IndexFailure, match="test-model"):
            index.search(vectors(1), model="other-model")
        with pytest.raises(IndexFailure, match="dimension 32"):
            index.search(np.zeros((1, 32), dtype=np.float32))
        with pytest.raises(IndexFailure, match="test-model"):
            index.search_texts(["a query"], tiny_encoder)
        with pytest.raises(IndexFailure, match="already in the index"):
            index.add(["dup"], vectors(1), ids=["1"])
        assert len(index) == 5 and index.search(vectors(1), k=10)[0][-1].id in set("12345")
    with pytest.raises(IndexFailure, match="not empty"):
        Index.create(tmp_path / "ix", model="m", dimension=16)
    with pytest.raises(IndexFailure, match="no index"):
        Index.open(tmp_path / "nothing")


def test_get_returns_stored_items_without_a_score(tmp_path: Path) -> None:
    from sbert.search.index import Item

    with make(tmp_path / "ix", n=3) as index:
        index.add(["with metadata"], vectors(1, seed=5), ids=["m"], metadata=[{"k": [1, 2]}])
        assert index.get(["m", "nope", "2"]) == [
            Item("m", "with metadata", {"k": [1, 2]}), None, Item("2", "s1")]
        assert not hasattr(index.get(["m"])[0], "score")


def test_automatic_ids_skip_ids_given_by_the_user(tmp_path: Path) -> None:
    from sbert.search.index import Index

    emb = vectors(12, seed=7)
    with make(tmp_path / "ix") as index:
        assert index.add(["u3", "u1"], emb[:2], ids=["3", "1"]) == ["3", "1"]
        assert index.add(["u2", "u5"], emb[2:4], ids=["2", "5"]) == ["2", "5"]
        auto = [index.add([f"a{i}"], emb[4 + i:5 + i])[0] for i in range(3)]
        auto += index.add(["a3", "a4"], emb[7:9])
        assert len(set(auto)) == 5 and not set(auto) & {"1", "2", "3", "5"}
        assert len(index) == 9
        for i, ident in enumerate(auto):
            assert index.get([ident])[0].text == f"a{i}"
            assert index.search(emb[4 + i], k=1, exact=True)[0][0].id == ident
        assert [item.text for item in index.get(["1", "2", "3", "5"])] == ["u1", "u2", "u3", "u5"]
    with Index.open(tmp_path / "ix") as index:
        more = index.add(["b"], emb[9:10])
        assert more[0] not in set(auto) | {"1", "2", "3", "5"}
        assert index.search(emb[9], k=1)[0][0].id == more[0] and len(index) == 10


def test_a_large_k_gets_every_hit_where_the_graph_falls_short(tmp_path: Path) -> None:
    """3,000 equal vectors leave the HNSW graph poorly connected: usearch returned 272 hits
    for k=3000 (and NaN distances past them, a numpy warning). Every hit comes back."""
    import warnings

    from sbert.search.index import Index

    emb = np.ones((3000, 16), dtype=np.float32)
    with Index.create(tmp_path / "ix", model="test-model", dimension=16) as index:
        index.add([f"s{i}" for i in range(3000)], emb)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for exact in (False, True):
                hits = index.search(emb[:2], k=3000, exact=exact)
                assert [len(h) for h in hits] == [3000, 3000]
                assert len({h.id for h in hits[0]}) == 3000
                assert all(abs(h.score - 1.0) < 1e-5 for h in hits[1])
            assert len(index.search(emb[0], k=5)[0]) == 5


def test_encoder_round_trip(tmp_path: Path, tiny_encoder) -> None:
    from sbert.search.index import Index, model_identity

    index = Index.create(tmp_path / "ix", model=model_identity(tiny_encoder),
                         dimension=tiny_encoder.dimension)
    sentences = ["a man is eating food", "the dog runs in the park", "a red car"]
    index.add_texts(sentences, tiny_encoder)
    assert index.search_texts(["the dog runs in the park"], tiny_encoder, k=1)[0][0].text == (
        "the dog runs in the park")


def test_searches_around_a_missing_vector_file(tmp_path: Path) -> None:
    from sbert.search.index import Index

    make(tmp_path / "ix", n=50).close()
    for path in (tmp_path / "ix").glob("vectors-*"):
        path.unlink()
    with Index.open(tmp_path / "ix") as index:
        assert len(index) == 50
        assert index.search(vectors(50)[7], k=1, exact=True)[0][0].text == "s7"


def test_vectors_damaged_in_place_are_detected_and_rebuilt(tmp_path: Path) -> None:
    import hashlib
    import sqlite3

    from sbert.search.index import Index

    make(tmp_path / "ix", n=50).close()
    (path,) = (tmp_path / "ix").glob("vectors-*.usearch")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))  # same size, bytes flipped
    with Index.open(tmp_path / "ix") as index:
        assert index._vectors is None  # refused: searched exactly from SQLite
        assert index.info()["vectors"].startswith("missing")
        assert all(index.search(vectors(50)[i], k=1)[0][0].text == f"s{i}" for i in (0, 7, 49))
        index.add(["after"], vectors(1, seed=9))  # rebuilds the file
        assert index.search(vectors(50)[7], k=1)[0][0].text == "s7"
    (path,) = (tmp_path / "ix").glob("vectors-*.usearch")
    db = sqlite3.connect(tmp_path / "ix" / "index.sqlite")
    recorded = db.execute("SELECT value FROM meta WHERE key = 'vectors_sha256'").fetchone()[0]
    generation = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
    db.close()
    assert recorded == f"{generation}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    assert path.name == f"vectors-{generation}.usearch"
    with Index.open(tmp_path / "ix") as index:
        assert index._vectors is not None and len(index) == 51


def test_an_index_without_checksum_still_loads_its_vectors(tmp_path: Path) -> None:
    import sqlite3

    from sbert.search.index import Index

    make(tmp_path / "ix", n=20).close()
    db = sqlite3.connect(tmp_path / "ix" / "index.sqlite")
    db.execute("DELETE FROM meta WHERE key = 'vectors_sha256'")
    db.commit()
    db.close()
    with Index.open(tmp_path / "ix") as index:
        assert index._vectors is not None
        assert index.search(vectors(20)[3], k=1)[0][0].text == "s3"
        index.add(["after"], vectors(1, seed=9))
        assert len(index) == 21


def create_in_race(base: str, rounds: int, barrier: Any, results: Any) -> None:
    """One of two processes creating the same index folders at the same moments."""
    from sbert.errors import IndexFailure
    from sbert.search.index import Index

    for r in range(rounds):
        barrier.wait()
        try:
            Index.create(Path(base) / f"ix{r}", model="test-model", dimension=16).close()
            results.put((r, "ok"))
        except IndexFailure as err:
            results.put((r, f"IndexFailure: {err}"))
        except BaseException as err:  # noqa: BLE001 - reported to the test
            results.put((r, f"crash: {type(err).__name__}: {err}"))


def test_two_processes_creating_one_index_give_one_index_and_one_failure(tmp_path: Path) -> None:
    import multiprocessing

    from sbert.search.index import Index

    ctx = multiprocessing.get_context("spawn")
    rounds = 40
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=create_in_race, args=(str(tmp_path), rounds, barrier, results))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=120) for _ in range(2 * rounds)]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            proc.kill()
    for r in range(rounds):
        mine = sorted(outcome for i, outcome in outcomes if i == r)
        assert mine[1] == "ok" and mine[0].startswith("IndexFailure: "), mine
        assert ("exists and is not empty" in mine[0]
                or "another process created an index" in mine[0]), mine
        with Index.open(tmp_path / f"ix{r}") as index:
            assert len(index) == 0 and index._vectors is not None
            index.add(["one"], vectors(1))
            assert index.search(vectors(1)[0], k=1)[0][0].text == "one"
        assert len(list((tmp_path / f"ix{r}").glob("vectors-*"))) == 1


@pytest.mark.parametrize("where", ["vectors-save", "vectors-partial", "sqlite"])
def test_a_full_disk_reports_disk_full_and_leaves_the_index_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    import errno

    import sbert.search.index.store as store
    from sbert.errors import IndexFailure
    from sbert.search.index import Index

    make(tmp_path / "ix", n=20).close()
    before = sorted(p.name for p in (tmp_path / "ix").glob("vectors-*"))
    save = store._save_vectors

    def full_disk(vectors: Any, path: Path) -> None:
        if where == "vectors-save":
            save(vectors, path)  # written, then the commit fails
        else:
            path.with_name(path.name + ".tmp").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with Index.open(tmp_path / "ix") as index:
        if where == "sqlite":
            index._open_writer()
            pages = index._db.execute("PRAGMA page_count").fetchone()[0]
            index._db.execute(f"PRAGMA max_page_count = {pages}")
        else:
            monkeypatch.setattr(store, "_save_vectors", full_disk)
        with pytest.raises(IndexFailure, match="disk full") as failure:
            index.add([f"big{i}" for i in range(2000)], vectors(2000, seed=5))
        assert "cannot rollback" not in str(failure.value)
        assert len(index) == 20
        assert index.search(vectors(20)[4], k=1)[0][0].text == "s4"
        assert sorted(p.name for p in (tmp_path / "ix").glob("vectors-*")) == before
        monkeypatch.undo()
        if where == "sqlite":
            index._db.execute("PRAGMA max_page_count = 1073741823")
        index.add(["after"], vectors(1, seed=9))  # space again: writes as usual
        assert len(index) == 21
    with Index.open(tmp_path / "ix") as index:
        assert len(index) == 21 and index._vectors is not None


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import sbert.search.index.store as mod

    path, point = sys.argv[1], sys.argv[2]
    index = mod.Index.open(path)
    save = mod._save_vectors

    def pause():
        print("ready", flush=True)
        time.sleep(60)

    def patched_save(vectors, target):
        if point == "before-save":
            pause()
        save(vectors, target)
        if point == "after-save":
            pause()

    mod._save_vectors = patched_save
    if point == "after-commit":
        index._remove_stale = pause
    if point == "loop":
        for b in range(1000):
            print("batch", b, flush=True)
            index.add([f"b{b}-{i}" for i in range(50)],
                      np.random.default_rng(b).standard_normal((50, 16)).astype(np.float32))
    else:
        index.add([f"new{i}" for i in range(100)],
                  np.random.default_rng(1).standard_normal((100, 16)).astype(np.float32))
""")


def run_and_kill(path: Path, point: str, wait_for: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), point],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.strip() == wait_for:
                break
        else:
            pytest.fail(f"the writer exited before {wait_for!r} (code {proc.wait()})")
        if point == "loop":
            time.sleep(0.05)  # somewhere inside the next add
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize(("point", "expected"),
                         [("before-save", 20), ("after-save", 20), ("after-commit", 120)])
def test_killed_writer_leaves_all_or_nothing(tmp_path: Path, point: str, expected: int) -> None:
    from sbert.search.index import Index

    make(tmp_path / "ix", n=20).close()
    run_and_kill(tmp_path / "ix", point, "ready")
    with Index.open(tmp_path / "ix") as index:
        assert len(index) == expected
        new = index.search(np.random.default_rng(1).standard_normal(16), k=1, exact=True)[0][0]
        assert new.text.startswith("new") == (expected == 120)
        index.add(["after"], vectors(1, seed=9))  # still writable; strays cleaned up
        assert len(index) == expected + 1
        assert len(list((tmp_path / "ix").glob("vectors-*"))) == 1


def test_killed_at_a_random_moment_keeps_whole_batches(tmp_path: Path) -> None:
    from sbert.search.index import Index

    make(tmp_path / "ix").close()
    run_and_kill(tmp_path / "ix", "loop", "batch 3")
    with Index.open(tmp_path / "ix") as index:
        n = len(index)
        assert n % 50 == 0 and n >= 150
        texts = {hit.text for hit in index.get([str(k) for k in range(1, n + 1)]) if hit}
        assert texts == {f"b{b}-{i}" for b in range(n // 50) for i in range(50)}
        hits = index.search(vectors(3, seed=4), k=5)
        assert all(len(h) == 5 for h in hits)


def test_a_reader_sees_another_writers_batch(tmp_path: Path) -> None:
    from sbert.search.index import Index

    make(tmp_path / "ix", n=10).close()
    with Index.open(tmp_path / "ix") as reader, Index.open(tmp_path / "ix") as writer:
        assert reader.search(vectors(1, seed=7), k=1)[0][0].text.startswith("s")
        writer.add(["fresh"], vectors(1, seed=7))
        assert reader.search(vectors(1, seed=7), k=1)[0][0].text == "fresh"


@pytest.mark.skipif(not has_module("onnxruntime"), reason="needs onnxruntime")
def test_an_onnx_encoder_loads_in_a_process_that_opened_an_index(tmp_path: Path) -> None:
    # `sbert index add/search` open the index, then load the (ONNX) encoder: onnxruntime's
    # extension used to crash the process (SIGSEGV) when it loaded after usearch
    child = textwrap.dedent(f"""
        import numpy as np
        from sbert.search.index import Index
        with Index.create({str(tmp_path / 'ix')!r}, model="m", dimension=4) as index:
            index.add(["a"], np.ones((1, 4), dtype=np.float32))
        import onnxruntime
        print("loaded", onnxruntime.__version__)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"rc {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.startswith("loaded")


def test_one_string_is_one_id_and_one_query(tmp_path: Path, tiny_encoder) -> None:
    """delete("12") used to delete ids "1" and "2" (a string iterated as characters)."""
    with make(tmp_path / "ix", n=0, dim=tiny_encoder.dimension) as index:
        emb = vectors(20, tiny_encoder.dimension)
        index.add([f"s{i}" for i in range(20)], emb, ids=[str(i) for i in range(20)])
        assert [item.id for item in index.get("12") if item] == ["12"]
        assert index.delete("12") == 1
        assert [item is None for item in index.get(["1", "2", "12"])] == [False, False, True]


def test_bad_embeddings_texts_ids_and_k_are_refused(tmp_path: Path) -> None:
    """A NaN row topped every search (and pushed the best hit out of an exact one)."""
    from sbert.errors import IndexFailure

    with make(tmp_path / "ix", n=5) as index:
        bad = vectors(2)
        bad[1, 3] = np.nan
        with pytest.raises(IndexFailure, match="row 1 holds NaN or infinity"):
            index.add(["a", "b"], bad)
        bad[1] = np.inf
        with pytest.raises(IndexFailure, match="row 1 holds NaN or infinity"):
            index.add(["a", "b"], bad)
        with pytest.raises(IndexFailure, match="row 0 is all zeros"):
            index.add(["z"], np.zeros((1, 16), dtype=np.float32))
        with pytest.raises(IndexFailure, match="text 0 is NoneType, not str"):
            index.add([None], vectors(1))  # type: ignore[list-item]
        with pytest.raises(IndexFailure, match="'x' is given twice in this batch"):
            index.add(["a", "b"], vectors(2), ids=["x", "x"])
        for k in (0, -1, True):
            with pytest.raises(IndexFailure, match="k must be a whole number"):
                index.search(vectors(1), k=k)
        assert len(index) == 5
        assert index.search(vectors(1, seed=3), k=3)[0]


def test_a_closed_index_says_so(tmp_path: Path) -> None:
    from sbert.errors import IndexFailure
    from sbert.search.index import Index

    index = make(tmp_path / "ix", n=3)
    index.close()
    index.close()  # twice is fine
    with pytest.raises(IndexFailure, match="is closed; open it again with Index.open"):
        len(index)
    with pytest.raises(IndexFailure, match="is closed"):
        index.search(vectors(1))
    with pytest.raises(IndexFailure, match=r"Python: Index.create"):
        Index.open(tmp_path / "nothing")
