"""The shard writer: rows routed to their shard's file in order, complete files only."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbert.distributed.shards import list_shards
from sbert.distributed.writer import ShardWriter
from sbert.errors import UsageError

pa = pytest.importorskip("pyarrow", reason="needs pyarrow: pip install 'sbert[io]'")
pq = pytest.importorskip("pyarrow.parquet")


def encoded(paths: list[str], texts: list[str | None]) -> object:
    """A batch as the actors return it: path, text, and a 2-d embedding (null without text)."""
    values = pa.array([float(i) for i in range(2 * len(texts))], pa.float32())
    mask = pa.array([t is None for t in texts])
    return pa.table({"path": paths, "text": texts,
                     "embedding": pa.FixedSizeListArray.from_arrays(values, 2, mask=mask)})


@pytest.fixture()
def shards(tmp_path: Path) -> list:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (src / name).write_text("x\n", encoding="utf-8")
    return list_shards(src, tmp_path / "out")


def test_batches_spanning_shards_land_in_order_with_line_numbers(shards: list) -> None:
    shards[0].output.parent.mkdir()
    a, b, c = (str(s.path) for s in shards)
    writer = ShardWriter(shards, "text", ["line", "text", "embedding"], number_lines=True)
    writer.write(encoded([a, a, b], ["a1", "a2", "b1"]))
    assert shards[0].done and not shards[1].done  # a is complete once b's rows begin
    writer.write(encoded([b, b], ["b2", "b3"]))
    writer.finish()  # c had no rows: an empty file with the same columns

    assert writer.written == [s.output for s in shards] and writer.rows == 5
    tables = [pq.read_table(s.output).to_pydict() for s in shards]
    assert tables[0]["line"] == [1, 2] and tables[0]["text"] == ["a1", "a2"]
    assert tables[1]["line"] == [1, 2, 3] and tables[1]["text"] == ["b1", "b2", "b3"]
    assert tables[2] == {"line": [], "text": [], "embedding": []}
    assert sorted(p.name for p in shards[0].output.parent.iterdir()) == [
        "a.parquet", "b.parquet", "c.parquet"]


def test_a_row_without_text_names_file_and_row_and_leaves_no_partial(shards: list) -> None:
    shards[0].output.parent.mkdir()
    a, b, _ = (str(s.path) for s in shards)
    writer = ShardWriter(shards, "text", None, number_lines=False)
    writer.write(encoded([a, b], ["a1", "b1"]))
    with pytest.raises(UsageError, match=r"b\.txt: row 3: 'text' is empty \(null\)"):
        writer.write(encoded([b, b], ["b2", None]))
    writer.abort()

    assert shards[0].done and not shards[1].done
    assert [p.name for p in shards[0].output.parent.iterdir()] == ["a.parquet"]


def test_rows_of_a_finished_shard_mean_the_order_was_lost(shards: list) -> None:
    shards[0].output.parent.mkdir()
    a, b, _ = (str(s.path) for s in shards)
    writer = ShardWriter(shards, "text", None, number_lines=False)
    writer.write(encoded([a, b], ["a1", "b1"]))
    with pytest.raises(RuntimeError, match="input order was not kept"):
        writer.write(encoded([a], ["a2"]))
