"""Writing encoded rows, in input order, into one Parquet file per input shard.

Rows arrive as Arrow batches that carry their file in a ``path`` column; a batch may span
two shards. Each shard's rows go to a temporary file beside its output, renamed to the
output when the next shard's rows begin (or at the end): an output that exists is complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sbert.distributed.shards import EMBEDDING_COLUMN, LINE_COLUMN, Shard
from sbert.errors import UsageError
from sbert.files import atomic_path

_PATH_COLUMN = "path"


class ShardWriter:
    """Route batches to their shard's output, finishing shards in input order.

    Args:
        shards: the shards being encoded, in the order their rows arrive.
        text_column: the encoded column, named when a row of it had no text.
        columns: output columns in order; None keeps every column but the path.
        number_lines: add ``line``, the row's 1-based number in its shard (text input).
        empty_schema: the output schema when no shard had a row (all files empty), so that
            each still gets its output, and a rerun does not take it for unfinished.
    """

    def __init__(self, shards: list[Shard], text_column: str, columns: list[str] | None,
                 number_lines: bool, empty_schema: Callable[[], Any] | None = None) -> None:
        self._by_name = {s.path.name: s for s in shards}
        self._pending = list(shards)
        self._text, self._columns, self._number_lines = text_column, columns, number_lines
        self._current: Shard | None = None
        self._stack: contextlib.ExitStack | None = None
        self._writer: Any = None  # pyarrow.parquet.ParquetWriter of the current shard
        self._row = 0  # rows of the current shard written so far
        self._schema: Any = None  # the output schema, for shards without rows
        self._empty_schema = empty_schema
        self.written: list[Path] = []
        self.rows = 0

    def write(self, batch: Any) -> None:
        """Write a ``pyarrow.Table`` of encoded rows (with the ``path`` column)."""
        names = batch.column(_PATH_COLUMN).to_pylist()
        start = 0
        for i in range(1, len(names) + 1):
            if i == len(names) or names[i] != names[start]:
                self._write_rows(self._shard_of(names[start]), batch.slice(start, i - start))
                start = i

    def finish(self) -> None:
        """Complete the last shard, and write shards that had no rows as empty files."""
        self._close_current()
        if self._pending and self._schema is None and self._empty_schema is not None:
            self._schema = self._empty_schema()
        for shard in list(self._pending):
            if self._schema is not None:
                self._open(shard)
                self._close_current()

    def abort(self) -> None:
        """Drop the shard being written (its temporary file goes; finished ones stay)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        self._writer = None
        if self._stack is not None:
            stack, self._stack = self._stack, None
            with contextlib.suppress(Exception):
                stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def _shard_of(self, path: str) -> Shard:
        shard = self._by_name.get(Path(path).name)
        if shard is None:
            raise RuntimeError(f"rows of {path}, which is not one of the shards being encoded")
        return shard

    def _write_rows(self, shard: Shard, rows: Any) -> None:
        if shard is not self._current:
            self._close_current()
            self._open(shard)
        self._check_texts(shard, rows)
        table = self._shape(rows)
        self._writer.write_table(table)
        self._row += table.num_rows
        self.rows += table.num_rows

    def _check_texts(self, shard: Shard, rows: Any) -> None:
        embeddings = rows.column(EMBEDDING_COLUMN)
        if embeddings.null_count:
            first = embeddings.is_null().to_pylist().index(True)
            raise UsageError(f"{shard.path}: row {self._row + first + 1}: {self._text!r} is "
                             "empty (null) or not text; fill or drop such rows, or choose "
                             "another column")

    def _shape(self, rows: Any) -> Any:
        import pyarrow as pa

        rows = rows.drop_columns([_PATH_COLUMN])
        if self._number_lines:
            numbers = pa.array(range(self._row + 1, self._row + 1 + rows.num_rows), pa.int64())
            rows = rows.append_column(LINE_COLUMN, numbers)
        if self._columns is not None:
            rows = rows.select(self._columns)
        if self._schema is None:
            self._schema = rows.schema
        return rows.cast(self._schema) if rows.schema != self._schema else rows

    def _open(self, shard: Shard) -> None:
        import pyarrow.parquet as pq

        if shard not in self._pending:
            raise RuntimeError(f"rows of {shard.path} arrived after its output was finished; "
                               "the input order was not kept")
        self._pending.remove(shard)
        self._current, self._row = shard, 0
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(shard.output))
        self._writer = pq.ParquetWriter(str(tmp), self._schema) if self._schema is not None \
            else _LazyWriter(tmp)

    def _close_current(self) -> None:
        if self._current is None:
            return
        self._writer.close()
        assert self._stack is not None
        self._stack.close()  # renames the temporary file to the output
        self.written.append(self._current.output)
        self._current, self._writer, self._stack = None, None, None


class _LazyWriter:
    """A ParquetWriter opened on the first table, when the output schema is known."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: Any = None

    def write_table(self, table: Any) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(str(self._path), table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
