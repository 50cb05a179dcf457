"""A persistent, durable vector index: SQLite for texts, ids, metadata and embeddings; usearch
for the vectors.

Layout of an index folder::

    index.sqlite               # WAL mode: meta + items(key, id, text, metadata, embedding)
    vectors-<generation>.usearch

The SQLite transaction is the commit point. Every change (``add``, ``delete``) bumps a
generation number inside its transaction and, before committing, writes the new usearch file
under a new name (a temporary file, fsynced, then renamed). A process killed at any moment
leaves either the old generation (transaction rolled back; the new file is a stray and is
removed on the next write) or the new one. Should the usearch file of the committed
generation be missing or damaged, it is rebuilt from the embeddings kept in SQLite.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sbert.errors import IndexFailure
from sbert.search.index.vectors import METRICS
from sbert.search.index.vectors import chunks as _chunks
from sbert.search.index.vectors import new_vectors as _new_vectors
from sbert.search.index.vectors import progress_bar as _progress_bar
from sbert.search.index.vectors import read_vectors as _read_vectors
from sbert.search.index.vectors import save_vectors as _save_vectors  # patched by crash tests
from sbert.search.index.vectors import vectors_path as _vectors_path
from sbert.similarity import as_matrix
from sbert.similarity import unit_rows as _unit_rows

logger = logging.getLogger(__name__)

DB_NAME = "index.sqlite"
PROGRESS_MIN_ROWS = 50_000  # show the graph build's progress from this many rows on
FORMAT_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT,
    embedding BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: str
    text: str
    score: float
    metadata: Any = None


def model_id(encoder: Any) -> str:
    """The name an index records for an encoder: a folder's name, or the model name."""
    name = str(encoder.name)
    path = Path(name)
    return path.resolve().name if path.exists() else name


class Index:
    """A folder holding sentences, their embeddings and an ANN graph over them.

    Example::

        index = Index.create("my-index", model="all-MiniLM-L6-v2", dimension=384)
        index.add(["A man eats."], encoder.encode(["A man eats."]))
        hits = index.search(encoder.encode(["Someone is eating."]), k=5)[0]

    Args:
        path: the index folder (use :meth:`create` or :meth:`open`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        db = self.path / DB_NAME
        if not db.is_file():
            raise IndexFailure(f"no index at {self.path}; create one with `sbert index create`")
        self._db = sqlite3.connect(str(db), isolation_level=None, timeout=30.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise IndexFailure(f"{db} is not a readable sbert index ({err})") from err
        if "model" not in meta:
            self._db.close()
            raise IndexFailure(f"the index at {self.path} is incomplete (its creation was "
                               "interrupted); delete the folder and create it again")
        self.model: str = meta["model"]
        self.dimension = int(meta["dimension"])
        self.metric: str = meta["metric"]
        self.source = str(meta.get("source") or self.model)
        self._generation = -1
        self._vectors: Any = None
        self._writable = False
        self._load_vectors(view=True)

    # ---- creation and opening -------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, model: str, dimension: int, metric: str = "cosine",
               connectivity: int = 16, source: str | None = None) -> Index:
        """Create an empty index folder.

        Args:
            path: a folder that does not exist yet or is empty.
            model: the name of the model whose embeddings it will hold.
            dimension: the embedding dimension.
            metric: ``"cosine"`` or ``"dot"``.
            connectivity: HNSW graph degree (higher: better recall, bigger index).
            source: where the model loads from (a bundled name or a folder), for the CLI;
                default: ``model``.
        """
        if metric not in METRICS:
            raise IndexFailure(f"unknown metric {metric!r}; expected one of {tuple(METRICS)}")
        root = Path(path)
        if root.exists() and any(root.iterdir()):
            raise IndexFailure(f"{root} exists and is not empty; choose a new folder")
        root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(root / DB_NAME), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            meta = {"format": FORMAT_VERSION, "model": model, "dimension": str(dimension),
                    "source": source or model, "metric": metric,
                    "connectivity": str(connectivity), "generation": "0",
                    "next_key": "1", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            db.execute("BEGIN IMMEDIATE")
            _save_vectors(_new_vectors(dimension, metric, connectivity), _vectors_path(root, 0))
            db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            db.execute("COMMIT")
        finally:
            db.close()
        return cls(root)

    @classmethod
    def open(cls, path: str | Path) -> Index:
        """Open an existing index (its vectors memory-mapped until the first change)."""
        return cls(path)

    def close(self) -> None:
        """Release the database and the vectors."""
        self._vectors = None
        self._db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def __repr__(self) -> str:
        return (f"Index({str(self.path)!r}, model={self.model!r}, dim={self.dimension}, "
                f"n={len(self)})")

    # ---- vectors file -------------------------------------------------------------------

    def _meta(self, key: str) -> str:
        return str(self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def _load_vectors(self, view: bool) -> None:
        """Open the usearch file of the committed generation; repair it when it is bad."""
        generation = int(self._meta("generation"))
        vectors = _read_vectors(_vectors_path(self.path, generation), view, len(self))
        if vectors is None:  # a no-op write rebuilds it from SQLite under a new generation
            logger.warning("vectors of %s are missing or stale; rebuilding from SQLite", self.path)
            with self._write() as new_generation:
                _save_vectors(self._vectors, _vectors_path(self.path, new_generation))
            return
        self._vectors, self._generation, self._writable = vectors, generation, not view

    def _rebuild(self) -> Any:
        """A usearch index of every embedding stored in SQLite."""
        vectors = _new_vectors(self.dimension, self.metric, int(self._meta("connectivity")))
        rows = self._db.execute("SELECT key, embedding FROM items ORDER BY key")
        while batch := rows.fetchmany(50_000):
            keys = np.array([k for k, _ in batch], dtype=np.uint64)
            emb = np.frombuffer(b"".join(e for _, e in batch), dtype=np.float32)
            vectors.add(keys, emb.reshape(len(batch), self.dimension))
        return vectors

    @contextmanager
    def _write(self) -> Iterator[int]:
        """A write transaction; yields the new generation. Commit happens on a clean exit."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            generation = int(self._meta("generation"))
            if generation != self._generation or not self._writable:
                self._load_vectors_in_transaction(generation)
            yield generation + 1
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'generation'",
                             (str(generation + 1),))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            # the in-memory vectors may hold the failed change: back to the committed file
            self._generation = -1
            committed = _read_vectors(
                _vectors_path(self.path, int(self._meta("generation"))), True, len(self))
            if committed is not None:
                self._vectors = committed
            self._writable = False
            raise
        self._generation = generation + 1
        self._remove_stale()

    def _load_vectors_in_transaction(self, generation: int) -> None:
        vectors = _read_vectors(_vectors_path(self.path, generation), False, len(self))
        if vectors is None:
            vectors = self._rebuild()
        self._vectors, self._generation, self._writable = vectors, generation, True

    def _remove_stale(self) -> None:
        """Delete vector files of other generations (strays of killed writers included)."""
        keep = _vectors_path(self.path, self._generation).name
        for path in self.path.glob("vectors-*.usearch*"):
            if path.name != keep:
                path.unlink(missing_ok=True)

    # ---- changes ------------------------------------------------------------------------

    def add(self, texts: Sequence[str], embeddings: Any, ids: Sequence[str] | None = None,
            metadata: Sequence[Any] | None = None, model: str | None = None,
            show_progress: bool | None = None) -> list[str]:
        """Add a batch of sentences with their embeddings, all or nothing.

        Args:
            texts: the sentences.
            embeddings: ``(n, dim)`` numpy or torch, from the index's model.
            ids: unique string ids; default: the internal key as a string.
            metadata: one JSON-serializable value per sentence (or None).
            model: the model that made ``embeddings``; refused if not the index's.
            show_progress: progress bar of the graph build; default: on from 50,000 rows.

        Returns:
            The ids of the added sentences.
        """
        emb = self._check_embeddings(embeddings, model)
        n = len(texts)
        if emb.shape[0] != n:
            raise IndexFailure(f"{n} texts but {emb.shape[0]} embeddings")
        if ids is not None and len(ids) != n:
            raise IndexFailure(f"{n} texts but {len(ids)} ids")
        if metadata is not None and len(metadata) != n:
            raise IndexFailure(f"{n} texts but {len(metadata)} metadata values")
        if n == 0:
            return []
        stored = _unit_rows(emb) if self.metric == "cosine" else emb
        with self._write() as generation:
            first = int(self._meta("next_key"))
            keys = np.arange(first, first + n, dtype=np.uint64)
            out_ids = [str(k) for k in keys.tolist()] if ids is None else [str(i) for i in ids]
            meta_json = [None if m is None else json.dumps(m) for m in (metadata or [None] * n)]
            try:
                self._db.executemany(
                    "INSERT INTO items (key, id, text, metadata, embedding) VALUES (?,?,?,?,?)",
                    zip(keys.tolist(), out_ids, texts, meta_json,
                        (row.tobytes() for row in stored), strict=True),
                )
            except sqlite3.IntegrityError as err:
                raise IndexFailure(f"an id is already in the index ({err}); delete it first "
                                   "or choose new ids") from err
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_key'", (str(first + n),))
            if show_progress is None:
                show_progress = n >= PROGRESS_MIN_ROWS
            with _progress_bar(n, show_progress) as progress:
                self._vectors.add(keys, stored, progress=progress)
            _save_vectors(self._vectors, _vectors_path(self.path, generation))
        return out_ids

    def delete(self, ids: Sequence[str]) -> int:
        """Remove sentences by id (unknown ids are ignored); returns how many were removed."""
        unique = list(dict.fromkeys(str(i) for i in ids))
        if not self._keys_of(unique):
            return 0
        with self._write() as generation:
            keys = self._keys_of(unique)
            self._db.executemany("DELETE FROM items WHERE key = ?", [(k,) for k in keys])
            if keys:
                self._vectors.remove(np.array(keys, dtype=np.uint64))
            _save_vectors(self._vectors, _vectors_path(self.path, generation))
        return len(keys)

    def _keys_of(self, ids: list[str]) -> list[int]:
        sql = "SELECT key FROM items WHERE id IN ({})"
        return [key for chunk in _chunks(ids, 500)
                for (key,) in self._db.execute(sql.format(",".join("?" * len(chunk))), chunk)]

    # ---- queries ------------------------------------------------------------------------

    def search(self, queries: Any, k: int = 10, exact: bool = False,
               model: str | None = None) -> list[list[Hit]]:
        """The ``k`` nearest sentences of each query embedding.

        Args:
            queries: ``(q, dim)`` or ``(dim,)`` numpy or torch, from the index's model.
            k: hits per query.
            exact: brute-force search instead of the HNSW graph.
            model: the model that made ``queries``; refused if not the index's.

        Returns:
            For each query, hits best first.
        """
        q = self._check_embeddings(queries, model)
        if int(self._meta("generation")) != self._generation:  # another process wrote
            self._load_vectors(view=True)
        if len(self) == 0 or q.shape[0] == 0:
            return [[] for _ in range(q.shape[0])]
        if self.metric == "cosine":
            q = _unit_rows(q)
        matches = self._vectors.search(q, min(k, len(self._vectors)), exact=exact)
        keys = np.atleast_2d(matches.keys)  # (q, k)
        distances = np.atleast_2d(matches.distances)  # (q, k)
        counts = np.atleast_1d(getattr(matches, "counts", len(matches.keys)))  # (q,)
        wanted = sorted({int(key) for row, c in zip(keys, counts, strict=True) for key in row[:c]})
        rows = self._rows(wanted)
        out: list[list[Hit]] = []
        for row_keys, row_dist, count in zip(keys, distances, counts, strict=True):
            hits = []
            for key, dist in zip(row_keys[:count].tolist(), row_dist[:count].tolist(), strict=True):
                if key in rows:
                    ident, text, meta = rows[key]
                    hits.append(Hit(ident, text, 1.0 - float(dist),
                                    None if meta is None else json.loads(meta)))
            out.append(hits)
        return out

    def get(self, ids: Sequence[str]) -> list[Hit | None]:
        """Stored sentences by id (score 1.0), None for unknown ids."""
        found: dict[str, Hit] = {}
        for chunk in _chunks(list(ids), 500):
            sql = f"SELECT id, text, metadata FROM items WHERE id IN ({','.join('?' * len(chunk))})"
            for ident, text, meta in self._db.execute(sql, chunk):
                found[ident] = Hit(ident, text, 1.0, None if meta is None else json.loads(meta))
        return [found.get(i) for i in ids]

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """All ids and their stored embeddings ``(n, dim)`` (normalized for cosine)."""
        rows = self._db.execute("SELECT id, embedding FROM items ORDER BY key").fetchall()
        emb = np.frombuffer(b"".join(e for _, e in rows), dtype=np.float32)
        return [i for i, _ in rows], emb.reshape(len(rows), self.dimension)

    def info(self) -> dict[str, Any]:
        """Model, dimension, metric, size on disk and counts."""
        size = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        return {"path": str(self.path), "model": self.model, "dimension": self.dimension,
                "metric": self.metric, "count": len(self), "generation": self._generation,
                "created": self._meta("created"), "size_bytes": size}

    # ---- encoder conveniences -----------------------------------------------------------

    def add_texts(self, texts: Sequence[str], encoder: Any, ids: Sequence[str] | None = None,
                  metadata: Sequence[Any] | None = None, batch_size: int = 32) -> list[str]:
        """Encode ``texts`` with ``encoder`` (which must be the index's model) and add them."""
        self._check_model(model_id(encoder))
        emb = encoder.encode(list(texts), batch_size=batch_size)
        return self.add(texts, emb, ids=ids, metadata=metadata, model=model_id(encoder))

    def search_texts(self, queries: Sequence[str], encoder: Any, k: int = 10,
                     exact: bool = False) -> list[list[Hit]]:
        """Encode ``queries`` with ``encoder`` (the index's model) and search."""
        self._check_model(model_id(encoder))
        return self.search(encoder.encode(list(queries)), k=k, exact=exact,
                           model=model_id(encoder))

    def _check_model(self, model: str | None) -> None:
        if model is not None and model != self.model:
            raise IndexFailure(
                f"this index holds embeddings of {self.model!r} but these come from {model!r}; "
                f"use --model {self.model}"
            )

    def _check_embeddings(self, embeddings: Any, model: str | None) -> np.ndarray:
        self._check_model(model)
        emb = as_matrix(embeddings)
        if emb.shape[1] != self.dimension:
            raise IndexFailure(
                f"embeddings have dimension {emb.shape[1]} but this index holds {self.dimension}"
                f"-d embeddings of {self.model!r}; encode with that model"
            )
        return emb

    def _rows(self, keys: list[int]) -> dict[int, tuple[str, str, str | None]]:
        out: dict[int, tuple[str, str, str | None]] = {}
        for chunk in _chunks(keys, 500):
            sql = ("SELECT key, id, text, metadata FROM items WHERE key IN "
                   f"({','.join('?' * len(chunk))})")
            for key, ident, text, meta in self._db.execute(sql, chunk):
                out[key] = (ident, text, meta)
        return out
