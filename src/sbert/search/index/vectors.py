"""The usearch side of :mod:`sbert.search.index`: file names, atomic saves, checked reads."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from sbert.files import file_digest
from sbert.runtime import has_module, require
from sbert.search.semantic import semantic_search

logger = logging.getLogger(__name__)

METRICS = {"cosine": "cos", "dot": "ip"}  # our score name -> usearch metric


def _usearch() -> Any:
    """``usearch.index``, with onnxruntime loaded before it where onnxruntime is installed.

    onnxruntime's extension crashes the process (SIGSEGV) when it loads after usearch's
    compiled module (usearch 2.26 with numkong 7.8, onnxruntime 1.32), and any command that
    opens an index may then load an ONNX encoder; the other order works.
    """
    if "usearch.index" not in sys.modules and has_module("onnxruntime"):
        try:
            importlib.import_module("onnxruntime")
        except ImportError:  # a broken onnxruntime: the ONNX backend reports it when asked
            pass
    return require("usearch.index", "search")


def vectors_path(root: Path, generation: int) -> Path:
    """The usearch file of one generation of an index folder."""
    return root / f"vectors-{generation}.usearch"


def save_vectors(vectors: Any, path: Path) -> None:
    """Write a usearch index atomically: temporary file, fsync, rename, fsync the folder."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        vectors.save(str(tmp))
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)  # a partial file (full disk): no stray left behind
        raise
    os.replace(tmp, path)
    if os.name == "posix":  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def discard_vectors(path: Path) -> None:
    """Delete the file of a generation that was not committed, and its temporary file."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)


def read_vectors(path: Path, view: bool, expected: int, digest: str | None = None) -> Any:
    """The usearch index in ``path`` if it reads, holds ``expected`` vectors and, when
    ``digest`` is given (None: an index from before checksums), has that sha256; else None."""
    usearch = _usearch()
    if not path.is_file():
        return None
    if digest is not None and file_digest(path) != digest:
        logger.warning("%s is damaged (its checksum differs from the one committed)", path)
        return None
    try:
        vectors = usearch.Index.restore(str(path), view=view)
    except Exception as err:  # any damage means: rebuild
        logger.warning("cannot read %s (%s)", path, err)
        return None
    return vectors if vectors is not None and len(vectors) == expected else None


def new_vectors(dimension: int, metric: str, connectivity: int) -> Any:
    """An empty float32 usearch HNSW index."""
    usearch = _usearch()
    return usearch.Index(ndim=dimension, metric=METRICS[metric], dtype="f32",
                         connectivity=connectivity)


def build_vectors(batches: Iterable[tuple[np.ndarray, np.ndarray]], dimension: int,
                  metric: str, connectivity: int) -> Any:
    """A usearch index of ``(keys (b,), embeddings (b, dim))`` batches."""
    vectors = new_vectors(dimension, metric, connectivity)
    for keys, emb in batches:
        vectors.add(keys, emb)
    return vectors


def remove_other_generations(root: Path, generation: int) -> None:
    """Delete the vectors files of every other generation (strays of killed writers too)."""
    keep = vectors_path(root, generation).name
    for path in root.glob("vectors-*.usearch*"):
        if path.name != keep:
            path.unlink(missing_ok=True)


def rank(vectors: Any, q: np.ndarray, k: int, exact: bool) -> list[list[tuple[int, float]]]:
    """The ``k`` best ``(key, score)`` of each query ``(q, dim)`` in a usearch index.

    The graph can return fewer than ``k`` hits while the index holds more (many equal
    vectors leave it poorly connected: 272 of 3,000 in a test); those queries are searched
    again by brute force, so a query gets ``min(k, len(vectors))`` hits either way.
    """
    q, want = np.atleast_2d(q), min(k, len(vectors))
    ranked = _matches(vectors.search(q, want, exact=exact))
    short = [i for i, hits in enumerate(ranked) if len(hits) < want]
    if short and not exact:
        for i, hits in zip(short, _matches(vectors.search(q[short], want, exact=True)),
                           strict=True):
            ranked[i] = hits
    return ranked


def _matches(matches: Any) -> list[list[tuple[int, float]]]:
    """usearch's matches as ``(key, score)`` lists, each cut at its query's count (the slots
    past it hold no match: NaN distances)."""
    keys = np.atleast_2d(matches.keys)  # (q, k)
    distances = np.atleast_2d(matches.distances)  # (q, k); cos / ip distances are 1 - score
    counts = np.atleast_1d(getattr(matches, "counts", len(matches.keys)))  # (q,)
    return [list(zip(row_keys[:c].tolist(), (1.0 - row[:c]).tolist(), strict=True))
            for row_keys, row, c in zip(keys, distances, counts, strict=True)]


def rank_exact(keys: np.ndarray, emb: np.ndarray, q: np.ndarray,
               k: int) -> list[list[tuple[int, float]]]:
    """Like :func:`rank`, by brute force over ``keys (n,)`` and ``emb (n, dim)``: the dot
    product is the score (rows and queries are unit length for cosine)."""
    return [[(int(keys[i]), score) for i, score in hits]
            for hits in semantic_search(q, emb, top_k=k, score="dot")]


@contextmanager
def progress_bar(total: int, show: bool) -> Iterator[Any]:
    """A usearch progress callback drawing a tqdm bar (None when ``show`` is False)."""
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="index", unit="vec") as bar:
        step = max(1, total // 200)

        def progress(processed: int, total: int) -> bool:
            if processed - bar.n >= step or processed == total:
                bar.update(processed - bar.n)
            return True

        # usearch checks the annotations as types, not as the strings this module makes
        progress.__annotations__ = {"processed": int, "total": int, "return": bool}
        yield progress
