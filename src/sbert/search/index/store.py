"""A persistent, durable vector index: SQLite for texts, ids, metadata and embeddings; usearch
for the vectors.

Layout of an index folder::

    index.sqlite               # WAL mode: meta + items(key, id, text, metadata, embedding)
    vectors-<generation>.usearch

The SQLite transaction is the commit point. Every change (``add``, ``delete``) bumps a
generation number inside its transaction and, before committing, writes the new usearch file
under a new name (a temporary file, fsynced, then renamed). A process killed at any moment
leaves either the old generation (transaction rolled back; the new file is a stray and is
removed on the next write) or the new one.

Opening writes nothing: the database is read through a read-only connection until the first
change. Each transaction records the sha256 of its usearch file; should that file be missing
or damaged (checksum differs), searches run exactly over the embeddings kept in SQLite, and the
next change writes a new file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np

from sbert.errors import IndexFailure
from sbert.files import file_digest as _file_digest
from sbert.search.index import db as _db
from sbert.search.index.identity import ModelIdentity, check_model, model_identity
from sbert.search.index.records import Hit, Item
from sbert.search.index.vectors import METRICS
from sbert.search.index.vectors import build_vectors as _build_vectors
from sbert.search.index.vectors import discard_vectors as _discard_vectors
from sbert.search.index.vectors import new_vectors as _new_vectors
from sbert.search.index.vectors import progress_bar as _progress_bar
from sbert.search.index.vectors import rank as _rank
from sbert.search.index.vectors import rank_exact as _rank_exact
from sbert.search.index.vectors import read_vectors as _read_vectors
from sbert.search.index.vectors import remove_other_generations as _remove_other_generations
from sbert.search.index.vectors import save_vectors as _save_vectors  # patched by crash tests
from sbert.search.index.vectors import vectors_path as _vectors_path
from sbert.similarity import as_matrix
from sbert.similarity import unit_rows as _unit_rows

logger = logging.getLogger(__name__)

PROGRESS_MIN_ROWS = 50_000  # show the graph build's progress from this many rows on


class Index:
    """A folder holding sentences, their embeddings and an ANN graph over them.

    Example::

        index = Index.create("my-index", model=model_identity(encoder),
                             dimension=encoder.dimension)
        index.add_texts(["A man eats."], encoder)
        hits = index.search_texts(["Someone is eating."], encoder, k=5)[0]

    Args:
        path: the index folder (use :meth:`create` or :meth:`open`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db, meta = _db.open_index(self.path)
        self._writer = False
        self.format = int(meta.get("format", "1"))
        self.model: str = meta["model"]
        self.model_digest: str | None = meta.get("model_digest") or None
        if self.format < 2:
            logger.warning("%s was made by an older sbert: adds and searches are checked by the "
                           "model's name (%r) only, not its content; to check by content, "
                           "create a new index and add the texts again", self.path, self.model)
        self.dimension = int(meta["dimension"])
        self.metric: str = meta["metric"]
        self.source = str(meta.get("source") or self.model)
        self._generation = -1
        self._vectors: Any = None  # None: no usable file; search the stored embeddings
        self._stored: tuple[np.ndarray, np.ndarray] | None = None  # keys, embeddings
        self._writable = False
        self._load_vectors()

    # ---- creation and opening -------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, model: str | ModelIdentity, dimension: int,
               metric: str = "cosine", connectivity: int = 16,
               source: str | None = None) -> Index:
        """Create an empty index folder.

        Args:
            path: a folder that does not exist yet or is empty.
            model: the model whose embeddings it will hold: :func:`model_identity` of an
                encoder (checked by content), or a plain name (checked by name).
            dimension: the embedding dimension.
            metric: ``"cosine"`` or ``"dot"``.
            connectivity: HNSW graph degree (higher: better recall, bigger index).
            source: where the model loads from (a bundled name or a folder), for the CLI;
                default: the model's name.
        """
        if metric not in METRICS:
            raise IndexFailure(f"unknown metric {metric!r}; expected one of {tuple(METRICS)}")
        root = Path(path)
        if root.exists() and any(root.iterdir()):
            raise IndexFailure(f"{root} exists and is not empty; choose a new folder")
        name, digest = (model.name, model.digest) if isinstance(model, ModelIdentity) else (
            str(model), "")
        root.mkdir(parents=True, exist_ok=True)
        db = _db.connect_writer(root)
        try:
            _db.begin_create(db, root)
            meta = {"format": str(_db.FORMAT_VERSION), "model": name, "model_digest": digest,
                    "dimension": str(dimension), "source": source or name, "metric": metric,
                    "connectivity": str(connectivity), "generation": "0",
                    "next_key": "1", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            _save_vectors(_new_vectors(dimension, metric, connectivity), _vectors_path(root, 0))
            db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            _db.set_vectors_digest(db, 0, _file_digest(_vectors_path(root, 0)))
            db.execute("COMMIT")
        finally:
            db.close()
        return cls(root)

    @classmethod
    def open(cls, path: str | Path) -> Index:
        """Open an existing index, read-only until the first change (vectors memory-mapped)."""
        return cls(path)

    def close(self) -> None:
        """Release the database and the vectors (using the index afterwards is an error)."""
        self._vectors = self._stored = None
        self._db.close()
        self._db = cast(Any, _Closed(self.path))

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return _db.count(self._db)

    def __repr__(self) -> str:
        return (f"Index({str(self.path)!r}, model={self.model!r}, dim={self.dimension}, "
                f"n={len(self)})")

    # ---- vectors file -------------------------------------------------------------------

    def _meta(self, key: str) -> str:
        return _db.meta_value(self._db, key)

    def _load_vectors(self) -> None:
        """Map the usearch file of the committed generation; without a good one, search the
        embeddings in SQLite until the next change writes a new file. Writes nothing."""
        self._db.execute("BEGIN")  # one snapshot: the generation and its row count
        try:
            generation = int(self._meta("generation"))
            vectors = _read_vectors(_vectors_path(self.path, generation), True, len(self),
                                    _db.vectors_digest(self._db, generation))
        finally:
            self._db.execute("COMMIT")
        if vectors is None:
            logger.warning("vectors of %s are missing or stale: searching the embeddings stored "
                           "in SQLite exactly; the next change writes a new file", self.path)
        self._vectors, self._generation, self._writable = vectors, generation, False
        self._stored = None

    def _open_writer(self) -> None:
        """Swap the read-only connection for a writer (WAL, full syncs) on the first change."""
        if not self._writer:
            writer = _db.connect_writer(self.path)
            self._db.close()
            self._db, self._writer = writer, True

    @contextmanager
    def _write(self) -> Iterator[int]:
        """A write transaction; yields the new generation. Commit happens on a clean exit."""
        self._open_writer()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if "readonly" in str(err):
                raise _db.read_only(self.path, err) from err
            raise
        try:
            generation = int(self._meta("generation"))
            if generation != self._generation or not self._writable:
                self._load_vectors_in_transaction(generation)
            yield generation + 1
            _db.set_vectors_digest(self._db, generation + 1,
                                   _file_digest(_vectors_path(self.path, generation + 1)))
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'generation'",
                             (str(generation + 1),))
            self._db.execute("COMMIT")
        except BaseException as err:
            _discard_vectors(_vectors_path(self.path, int(self._meta("generation")) + 1))
            _db.rollback(self._db)  # SQLite may have rolled back itself (a full disk)
            self._load_vectors()  # the in-memory vectors may hold the failed change
            if (failure := _db.disk_full(self.path, err)) is None:
                raise
            raise failure from err
        self._generation = generation + 1
        self._stored = None
        self._remove_stale()

    def _load_vectors_in_transaction(self, generation: int) -> None:
        vectors = _read_vectors(_vectors_path(self.path, generation), False, len(self),
                                _db.vectors_digest(self._db, generation))
        if vectors is None:  # rebuilt from every embedding stored in SQLite
            vectors = _build_vectors(_db.stored_embeddings(self._db, self.dimension),
                                     self.dimension, self.metric, int(self._meta("connectivity")))
        self._vectors, self._generation, self._writable = vectors, generation, True

    def _remove_stale(self) -> None:
        """Delete vector files of other generations (strays of killed writers included)."""
        _remove_other_generations(self.path, self._generation)

    # ---- changes ------------------------------------------------------------------------

    def add(self, texts: Sequence[str], embeddings: Any, ids: Sequence[str] | None = None,
            metadata: Sequence[Any] | None = None, model: str | ModelIdentity | None = None,
            show_progress: bool | None = None) -> list[str]:
        """Add a batch of sentences with their embeddings, all or nothing.

        Args:
            texts: the sentences.
            embeddings: ``(n, dim)`` numpy or torch, from the index's model.
            ids: unique string ids; default: automatic ids, each the internal key as a
                string (``"1"``, ``"2"``...). Keys whose string is already some sentence's id
                (say ``"3"``, given by the user) are skipped, so automatic ids never collide
                with ids given earlier; an id given later that equals an automatic one is
                refused like any duplicate.
            metadata: one JSON-serializable value per sentence (or None).
            model: the model that made ``embeddings`` (its :func:`model_identity`, or a
                name); refused if not the index's.
            show_progress: progress bar of the graph build; default: on from 50,000 rows.

        Returns:
            The ids of the added sentences.
        """
        texts = _listed(texts)
        ids = None if ids is None else _listed(ids)
        emb = self._check_embeddings(embeddings, model)
        n = len(texts)
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise IndexFailure(f"text {bad} is {type(texts[bad]).__name__}, not str")
        if ids is not None:
            counts = Counter(str(i) for i in ids)
            again = next((i for i, c in counts.items() if c > 1), None)
            if again is not None:
                raise IndexFailure(f"the id {again!r} is given twice in this batch; ids are "
                                   "unique")
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
            if ids is None:
                keys = _db.free_keys(self._db, first, n)
                out_ids = [str(k) for k in keys.tolist()]
            else:
                keys = np.arange(first, first + n, dtype=np.uint64)
                out_ids = [str(i) for i in ids]
            meta_json = [None if m is None else json.dumps(m) for m in (metadata or [None] * n)]
            try:
                self._db.executemany(
                    "INSERT INTO items (key, id, text, metadata, embedding) VALUES (?,?,?,?,?)",
                    zip(keys.tolist(), out_ids, texts, meta_json,
                        (row.tobytes() for row in stored), strict=True),
                )
            except sqlite3.IntegrityError as err:
                taken = list(_db.rows_by_id(self._db, out_ids))
                named = ", ".join(repr(i) for i in taken[:5])
                named += f" and {len(taken) - 5} more" if len(taken) > 5 else ""
                what = f"ids already in the index: {named}" if taken else (
                    f"an id is already in the index ({err})")
                raise IndexFailure(f"{what}; delete them first or choose new ids") from err
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_key'",
                             (str(int(keys[-1]) + 1),))
            if show_progress is None:
                show_progress = n >= PROGRESS_MIN_ROWS
            with _progress_bar(n, show_progress) as progress:
                self._vectors.add(keys, stored, progress=progress)
            _save_vectors(self._vectors, _vectors_path(self.path, generation))
        return out_ids

    def delete(self, ids: Sequence[str]) -> int:
        """Remove sentences by id (unknown ids are ignored); returns how many were removed.

        ``ids``: a list of ids, or one id (a string is one id, not its characters).
        """
        unique = list(dict.fromkeys(str(i) for i in _listed(ids)))
        if not _db.keys_of(self._db, unique):
            return 0
        with self._write() as generation:
            keys = _db.keys_of(self._db, unique)
            self._db.executemany("DELETE FROM items WHERE key = ?", [(k,) for k in keys])
            if keys:
                self._vectors.remove(np.array(keys, dtype=np.uint64))
            _save_vectors(self._vectors, _vectors_path(self.path, generation))
        return len(keys)

    # ---- queries ------------------------------------------------------------------------

    def search(self, queries: Any, k: int = 10, exact: bool = False,
               model: str | ModelIdentity | None = None) -> list[list[Hit]]:
        """The ``k`` nearest sentences of each query embedding.

        Args:
            queries: ``(q, dim)`` or ``(dim,)`` numpy or torch, from the index's model.
            k: hits per query.
            exact: brute-force search instead of the HNSW graph.
            model: the model that made ``queries`` (its :func:`model_identity`, or a name);
                refused if not the index's.

        Returns:
            For each query, hits best first.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise IndexFailure(f"k must be a whole number >= 1, got {k!r}")
        q = self._check_embeddings(queries, model)
        if int(self._meta("generation")) != self._generation:  # another process wrote
            self._load_vectors()
        if len(self) == 0 or q.shape[0] == 0:
            return [[] for _ in range(q.shape[0])]
        if self.metric == "cosine":
            q = _unit_rows(q)
        ranked = (self._search_stored(q, k) if self._vectors is None
                  else _rank(self._vectors, q, k, exact))
        rows = _db.rows_by_key(self._db, sorted({key for hits in ranked for key, _ in hits}))
        return [[Hit(rows[key][0], rows[key][1], score, _loads(rows[key][2]))
                 for key, score in hits if key in rows] for hits in ranked]

    def _search_stored(self, q: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Exact search over the embeddings in SQLite (held in memory until the next change)."""
        if self._stored is None:
            parts = list(_db.stored_embeddings(self._db, self.dimension))
            if not parts:  # emptied by another process since the count
                return [[] for _ in range(q.shape[0])]
            self._stored = (np.concatenate([p[0] for p in parts]),  # (n,)
                            np.concatenate([p[1] for p in parts]))  # (n, dim)
        return _rank_exact(*self._stored, q, k)

    def get(self, ids: Sequence[str]) -> list[Item | None]:
        """Stored sentences by id, None for unknown ids (a string is one id)."""
        ids = _listed(ids)
        found = _db.rows_by_id(self._db, [str(i) for i in ids])
        return [Item(str(i), found[str(i)][0], _loads(found[str(i)][1]))
                if str(i) in found else None for i in ids]

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """All ids and their stored embeddings ``(n, dim)`` (normalized for cosine)."""
        rows = self._db.execute("SELECT id, embedding FROM items ORDER BY key").fetchall()
        emb = np.frombuffer(b"".join(e for _, e in rows), dtype=np.float32)
        return [i for i, _ in rows], emb.reshape(len(rows), self.dimension)

    def info(self) -> dict[str, Any]:
        """Model, its digest, dimension, metric, size on disk and counts."""
        size = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        vectors = (_vectors_path(self.path, self._generation).name if self._vectors is not None
                   else "missing or stale: exact search; the next change writes it")
        return {"path": str(self.path), "model": self.model,
                "model_digest": self.model_digest or "none: the model is checked by name",
                "format": self.format, "dimension": self.dimension, "metric": self.metric,
                "count": len(self), "generation": self._generation, "vectors": vectors,
                "created": self._meta("created"), "size_bytes": size}

    # ---- encoder conveniences -----------------------------------------------------------

    def add_texts(self, texts: Sequence[str], encoder: Any, ids: Sequence[str] | None = None,
                  metadata: Sequence[Any] | None = None, batch_size: int = 32) -> list[str]:
        """Encode ``texts`` with ``encoder`` (which must be the index's model) and add them."""
        texts = _listed(texts)  # one string is one text; a generator is read once
        identity = model_identity(encoder)
        self._check_model(identity)
        emb = encoder.encode(texts, batch_size=batch_size)
        return self.add(texts, emb, ids=ids, metadata=metadata, model=identity)

    def search_texts(self, queries: Sequence[str], encoder: Any, k: int = 10,
                     exact: bool = False) -> list[list[Hit]]:
        """Encode ``queries`` with ``encoder`` (the index's model) and search."""
        identity = model_identity(encoder)
        self._check_model(identity)
        return self.search(encoder.encode(_listed(queries)), k=k, exact=exact, model=identity)

    def _check_model(self, model: str | ModelIdentity | None) -> None:
        check_model(self.model, self.model_digest, model, self.source)

    def _check_embeddings(self, embeddings: Any, model: str | ModelIdentity | None) -> np.ndarray:
        self._check_model(model)
        emb = as_matrix(embeddings)
        if emb.shape[1] != self.dimension:
            raise IndexFailure(
                f"embeddings have dimension {emb.shape[1]} but this index holds {self.dimension}"
                f"-d embeddings of {self.model!r}; encode with that model"
            )
        finite = np.isfinite(emb).all(axis=1)  # (n,)
        if not finite.all():  # a NaN row would top every search, or push the best one out
            raise IndexFailure(f"embedding row {int(np.argmin(finite))} holds NaN or infinity; "
                               "check the model's output")
        if self.metric == "cosine" and emb.shape[0]:
            zero = ~np.any(emb, axis=1)  # (n,)
            if zero.any():
                raise IndexFailure(f"embedding row {int(np.argmax(zero))} is all zeros: it has "
                                   "no direction for the cosine metric")
        return emb


class _Closed:
    """Stands for the database of a closed index: any use says so (not sqlite3's
    "Cannot operate on a closed database")."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        raise IndexFailure(f"the index at {self._path} is closed; open it again with "
                           "Index.open")

    def close(self) -> None:  # closing twice is fine
        pass


def _listed(values: Any) -> list[Any]:
    """``values`` as a list; one string is one value (not its characters)."""
    return [values] if isinstance(values, str) else list(values)


def _loads(meta: str | None) -> Any:
    return None if meta is None else json.loads(meta)
