"""Opening an index writes nothing: searching changes no file, a missing vectors file is
searched around (and rebuilt by the next change), and a read-only folder can be searched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import has_module

pytestmark = pytest.mark.skipif(not has_module("usearch"), reason="needs usearch (sbert[search])")
ROOT = Path(__file__).resolve().parents[2]
# SQLite's WAL reader creates an empty log and a shared-memory file (its lock table, which
# readers write) next to the database if they are absent; neither holds index data
WAL, SHM = "index.sqlite-wal", "index.sqlite-shm"
EMPTY = hashlib.sha256(b"").hexdigest()


def vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def make(path: Path, n: int) -> None:
    from sbert.search.index import Index

    with Index.create(path, model="test-model", dimension=16) as index:
        index.add([f"s{i}" for i in range(n)], vectors(n))


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every file's sha256, modification time and mode."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns,
                     p.stat().st_mode) for p in sorted(folder.iterdir())}


def assert_unchanged(before: dict[str, tuple[str, int, int]], folder: Path) -> None:
    """No file changed, appeared or went away, but for SQLite's reader files (see above)."""
    after = {k: v for k, v in snapshot(folder).items() if k != SHM}
    if WAL in after and WAL not in before:
        assert after.pop(WAL)[0] == EMPTY
    assert after == {k: v for k, v in before.items() if k != SHM}


def use(index, emb: np.ndarray) -> None:
    assert [h[0].text for h in index.search(emb[:3], k=2)] == ["s0", "s1", "s2"]
    assert index.search(emb[7], k=1, exact=True)[0][0].text == "s7"
    assert index.get(["8"])[0].text == "s7" and len(index) == 40
    assert index.info()["count"] == 40 and len(index.embeddings()[0]) == 40


def test_opening_and_searching_change_no_file(tmp_path: Path) -> None:
    from sbert.search.index import Index

    make(tmp_path / "ix", n=40)
    before = snapshot(tmp_path / "ix")
    with Index.open(tmp_path / "ix") as index:
        use(index, vectors(40))
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            index._db.execute("CREATE TABLE probe (x)")  # read-only until the first change
    assert_unchanged(before, tmp_path / "ix")


def test_a_missing_vectors_file_is_searched_around_and_rebuilt_by_the_next_change(
        tmp_path: Path) -> None:
    from sbert.search.index import Index

    make(tmp_path / "ix", n=40)
    for path in (tmp_path / "ix").glob("vectors-*"):
        path.unlink()
    before = snapshot(tmp_path / "ix")
    with Index.open(tmp_path / "ix") as index:
        use(index, vectors(40))  # exact over the embeddings in SQLite
        assert index.search(vectors(40)[5], k=3)[0][0].score == pytest.approx(1.0, abs=1e-5)
        state = index.info().get("vectors")
    assert_unchanged(before, tmp_path / "ix")  # no vectors file written by a reader
    assert state.startswith("missing")
    with Index.open(tmp_path / "ix") as index:
        index.add(["new"], vectors(1, seed=3))
        generation = index.info()["generation"]
        assert [p.name for p in (tmp_path / "ix").glob("vectors-*")] == [
            f"vectors-{generation}.usearch"]
        assert index.search(vectors(40)[9], k=1)[0][0].text == "s9"
    with Index.open(tmp_path / "ix") as index:
        assert index.info()["vectors"] == f"vectors-{generation}.usearch" and len(index) == 41


CHILD = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import usearch.index  # everything imported before the privileges go (/root is closed)
    import sbert.search.semantic
    from sbert.errors import IndexFailure
    from sbert.search.index import Index

    emb = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
    if os.geteuid() == 0:  # root ignores file permissions: read as nobody
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    with Index.open(sys.argv[1]) as index:
        out = {"uid": os.geteuid(), "n": len(index),
               "hits": [h[0].text for h in index.search(emb[:3], k=1)],
               "exact": index.search(emb[7], k=1, exact=True)[0][0].text}
        try:
            index.add(["more"], emb[:1])
        except IndexFailure as err:
            out["add"] = str(err)
    print(json.dumps(out))
""")


def test_a_read_only_folder_can_be_searched(tmp_path: Path) -> None:
    # root ignores permissions: the reader turns into nobody then, in a folder nobody may read
    base = Path(tempfile.mkdtemp(prefix="sbert-ro-"))
    folder = base / "ix"
    try:
        make(folder, n=40)
        for path in [*folder.iterdir(), folder]:
            path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
                       | (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0))
        base.chmod(0o755)
        before = snapshot(folder)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HOME": str(base)}
        proc = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True,
                              text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["uid"] == (65534 if os.geteuid() == 0 else os.geteuid())
        assert out["hits"] == ["s0", "s1", "s2"] and out["exact"] == "s7" and out["n"] == 40
        assert "read-only" in out["add"] and "copy the folder" in out["add"]
        assert snapshot(folder) == before  # not even SQLite's reader files
    finally:
        for path in [base, *base.rglob("*")]:
            path.chmod(0o700)
        shutil.rmtree(base)
