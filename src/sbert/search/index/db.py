"""The SQLite side of :mod:`sbert.search.index`: the schema, the connections, row look-ups.

An index is opened with a read-only connection, which can change no file: SQLite's
``mode=ro``, or, in a folder this process may not write, ``immutable=1`` (a WAL reader there
cannot create the ``-shm`` file it would otherwise need). The first change opens a writer
connection, which puts the database in WAL mode and syncs fully.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sbert.errors import IndexFailure

DB_NAME = "index.sqlite"
# 1: the model known by name only; 2: also by content (``model_digest``, see identity.py)
FORMAT_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT,
    embedding BLOB NOT NULL
);
"""
_TIMEOUT = 30.0  # seconds a connection waits for another writer's lock
_SQLITE_FULL = 13  # SQLite's result code for "database or disk is full"


def open_index(root: Path) -> tuple[sqlite3.Connection, dict[str, str]]:
    """A read-only connection to the index in ``root`` and its ``meta`` table, checked."""
    path = root / DB_NAME
    if not path.is_file():
        raise IndexFailure(f"no index at {root}; create one with `sbert index create` (Python: "
                           "Index.create)")
    try:
        db = connect_reader(root)
    except sqlite3.DatabaseError as err:
        raise IndexFailure(f"{path} is not a readable sbert index ({err})") from err
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if "model" not in meta:
            raise IndexFailure(f"the index at {root} is incomplete (its creation was "
                               "interrupted); delete the folder and create it again")
        if int(meta.get("format", "1")) > FORMAT_VERSION:
            raise IndexFailure(f"the index at {root} has format {meta['format']}, newer than "
                               f"this sbert reads ({FORMAT_VERSION}); upgrade sbert")
    except sqlite3.DatabaseError as err:
        db.close()
        raise IndexFailure(f"{path} is not a readable sbert index ({err})") from err
    except IndexFailure:
        db.close()
        raise
    return db, meta


def connect_reader(root: Path) -> sqlite3.Connection:
    """A read-only connection to the index in ``root`` (see the module doc)."""
    path = root / DB_NAME
    uri = path.resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=_TIMEOUT)
    try:
        db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
        return db
    except sqlite3.OperationalError:
        db.close()
        if os.access(root, os.W_OK):
            raise
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise IndexFailure(
            f"{root} is read-only and {wal.name} holds changes not yet in {DB_NAME}; run "
            f"`sqlite3 {path} 'PRAGMA wal_checkpoint(TRUNCATE)'` as a user who may write it"
        )
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)


def connect_writer(root: Path) -> sqlite3.Connection:
    """A read-write connection in WAL mode with full syncs."""
    db = sqlite3.connect(str(root / DB_NAME), isolation_level=None, timeout=_TIMEOUT)
    deadline = time.monotonic() + _TIMEOUT
    while True:
        try:  # switching to WAL does not wait on another connection's lock by itself
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            return db
        except sqlite3.OperationalError as err:
            if "locked" in str(err) and time.monotonic() < deadline:
                time.sleep(0.01)
                continue
            db.close()
            if "locked" in str(err):
                raise IndexFailure(f"the index at {root} is busy: another process held it for "
                                   f"{_TIMEOUT:.0f}s ({err}); try again") from err
            raise read_only(root, err) from err


def begin_create(db: sqlite3.Connection, root: Path) -> None:
    """Lay out the schema and take the write lock for a new index in ``root``; refuse if
    another process created one there meanwhile (two racing creates: one wins, one fails)."""
    try:
        db.executescript(SCHEMA)
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as err:
        raise IndexFailure(f"cannot create an index at {root} ({err}); another process may be "
                           "creating one there") from err
    if db.execute("SELECT 1 FROM meta LIMIT 1").fetchone() is not None:
        db.execute("ROLLBACK")
        raise IndexFailure(f"another process created an index at {root} at the same time; "
                           "open that one, or choose a new folder")


def read_only(root: Path, err: Exception) -> IndexFailure:
    """The error for a change to an index this process may not write."""
    return IndexFailure(f"cannot change the index at {root} ({err}): it is read-only here; "
                        "search it as it is, or copy the folder somewhere writable")


def rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already (it does on a full disk)."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def disk_full(root: Path, err: BaseException) -> IndexFailure | None:
    """The error to report for a change that failed for want of disk space, else None."""
    code = getattr(err, "sqlite_errorcode", None)  # SQLite's own full disk, or the file system's
    full = (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        isinstance(err, sqlite3.Error) and code == _SQLITE_FULL
    ) or any(text in str(err) for text in ("database or disk is full", "No space left on device"))
    if not full:
        return None
    return IndexFailure(f"disk full: cannot change the index at {root} ({err}); it is left as "
                        "it was: free some space and try again")


def meta_value(db: sqlite3.Connection, key: str) -> str:
    """One value of the ``meta`` table."""
    return str(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])


def vectors_digest(db: sqlite3.Connection, generation: int) -> str | None:
    """The sha256 committed for the vectors file of ``generation``; None if none was (an
    index from before checksums, or one last written by such an sbert)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'vectors_sha256'").fetchone()
    if row is None or ":" not in row[0]:
        return None
    committed, digest = str(row[0]).split(":", 1)
    return digest if committed == str(generation) else None


def set_vectors_digest(db: sqlite3.Connection, generation: int, digest: str) -> None:
    """Record the sha256 of the vectors file of ``generation`` (inside its transaction)."""
    db.execute("INSERT OR REPLACE INTO meta VALUES ('vectors_sha256', ?)",
               (f"{generation}:{digest}",))


def count(db: sqlite3.Connection) -> int:
    """The number of stored sentences."""
    return int(db.execute("SELECT COUNT(*) FROM items").fetchone()[0])


def chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """Consecutive slices of at most ``size`` items (SQLite limits ``IN (...)`` lists)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def keys_of(db: sqlite3.Connection, ids: list[str]) -> list[int]:
    """The internal keys of the known ``ids``."""
    sql = "SELECT key FROM items WHERE id IN ({})"
    return [key for chunk in chunks(ids)
            for (key,) in db.execute(sql.format(",".join("?" * len(chunk))), chunk)]


def rows_by_key(db: sqlite3.Connection, keys: list[int]) -> dict[int, tuple[str, str, Any]]:
    """``{key: (id, text, metadata JSON or None)}`` of the known ``keys``."""
    out: dict[int, tuple[str, str, Any]] = {}
    for chunk in chunks(keys):
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT key, id, text, metadata FROM items WHERE key IN ({marks})"
        for key, ident, text, meta in db.execute(sql, chunk):
            out[key] = (ident, text, meta)
    return out


def rows_by_id(db: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[str, Any]]:
    """``{id: (text, metadata JSON or None)}`` of the known ``ids``."""
    out: dict[str, tuple[str, Any]] = {}
    for chunk in chunks(ids):
        sql = f"SELECT id, text, metadata FROM items WHERE id IN ({','.join('?' * len(chunk))})"
        for ident, text, meta in db.execute(sql, chunk):
            out[ident] = (text, meta)
    return out


def stored_embeddings(db: sqlite3.Connection, dimension: int,
                      batch: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of ``(keys (b,), embeddings (b, dim))`` in key order."""
    rows = db.execute("SELECT key, embedding FROM items ORDER BY key")
    while part := rows.fetchmany(batch):
        keys = np.array([k for k, _ in part], dtype=np.uint64)  # (b,)
        emb = np.frombuffer(b"".join(e for _, e in part), dtype=np.float32)
        yield keys, emb.reshape(len(part), dimension)  # (b, dim)


def free_keys(db: sqlite3.Connection, first: int, n: int) -> np.ndarray:
    """``n`` increasing keys from ``first`` on whose strings are no stored id yet, for
    automatic ids (call inside the write transaction)."""
    keys: list[int] = []
    start = first
    while len(keys) < n:
        candidates = [str(k) for k in range(start, start + n - len(keys))]
        taken = rows_by_id(db, candidates)
        keys += [int(c) for c in candidates if c not in taken]
        start += len(candidates)
    return np.array(keys, dtype=np.uint64)
