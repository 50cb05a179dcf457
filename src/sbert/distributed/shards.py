"""The input shards of a corpus and their output files: what to read, what is already done.

A source is one file or a folder of shards (Parquet, JSONL, or text with one sentence per
line). Each input shard ``<stem>.<suffix>`` has one output ``<out_dir>/<stem>.parquet``,
written under a temporary name and renamed when complete, so an output that exists is a
finished shard and a rerun skips it. Nothing here reads more than a file's schema or first
line: the rows stream through Ray.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sbert.errors import UsageError

# input suffix -> reader kind
READERS = {".parquet": "parquet", ".jsonl": "json", ".txt": "text"}
# the column a text file's lines land in, and the line-number column added beside it
TEXT_COLUMN = "text"
LINE_COLUMN = "line"
EMBEDDING_COLUMN = "embedding"
OUTPUT_SUFFIX = ".parquet"


@dataclass(frozen=True)
class Shard:
    """One input file and the output file it becomes."""

    path: Path
    kind: str  # "parquet", "json" or "text"
    output: Path

    @property
    def done(self) -> bool:
        """Whether the output exists (written completely: it only appears by a rename)."""
        return self.output.is_file()

    def text_column(self, column: str) -> str:
        """The column holding the sentences: a text file's lines, else ``column``."""
        return TEXT_COLUMN if self.kind == "text" else column


def list_shards(source: str | Path, out_dir: str | Path) -> list[Shard]:
    """The input shards of ``source`` (a file or a folder), sorted by name.

    In a folder, names starting with ``.`` or ``_`` (``_SUCCESS``, partial files) are left
    out; any other file must have a known suffix.

    Raises:
        UsageError: the source is missing or empty, has a file of unknown format, or two
            shards share a stem (they would write the same output).
    """
    source, out_dir = Path(source), Path(out_dir)
    if source.is_dir():
        entries = sorted(p for p in source.iterdir() if not p.name.startswith((".", "_")))
        folders = [p for p in entries if p.is_dir()]
        if folders:
            raise UsageError(f"{folders[0]} is a folder: shards are read from the top of "
                             f"{source} only; encode it on its own, or move its files up")
        files = [p for p in entries if p.is_file()]
        if not files:
            raise UsageError(f"{source}: the folder has no input files; put Parquet, JSONL or "
                             f"text shards ({', '.join(READERS)}) in it")
    elif source.is_file():
        files = [source]
    else:
        raise UsageError(f"{source} does not exist; give a file or a folder of shards")
    shards: list[Shard] = []
    seen: dict[str, Path] = {}
    for path in files:
        kind = READERS.get(path.suffix.lower())
        if kind is None:
            raise UsageError(f"{path}: unknown format {path.suffix or '(no suffix)'!r}; "
                             f"use one of {', '.join(READERS)}, or move the file out of the "
                             "folder")
        if path.stem in seen:
            raise UsageError(f"{path} and {seen[path.stem]} would both write "
                             f"{path.stem}{OUTPUT_SUFFIX}; rename one")
        seen[path.stem] = path
        shards.append(Shard(path, kind, out_dir / f"{path.stem}{OUTPUT_SUFFIX}"))
    return shards


def check_columns(shard: Shard, column: str, id_column: str | None) -> None:
    """Refuse a shard without the text or id column, reading only its schema or first row.

    Raises:
        UsageError: naming the file, the missing column and the columns it has.
    """
    if shard.kind == "text":
        if id_column not in (None, LINE_COLUMN):
            raise UsageError(f"{shard.path}: a text file has no column {id_column!r}; its "
                             f"rows are numbered in {LINE_COLUMN!r}: drop --id-column")
        return
    names = _column_names(shard)
    if names is None:  # an empty JSONL file: no rows, nothing to check
        return
    wanted = [column] + ([id_column] if id_column else [])
    for name in wanted:
        if name not in names:
            option = "--id-column" if name == id_column else "--column"
            raise UsageError(f"{shard.path}: no column {name!r}; its columns are {names}: "
                             f"choose one with {option}")
    if EMBEDDING_COLUMN in names:
        raise UsageError(f"{shard.path}: already has a column {EMBEDDING_COLUMN!r}; drop or "
                         "rename it first")


def check_same_columns(shards: list[Shard], column: str, id_column: str | None) -> None:
    """Refuse Parquet shards whose kept columns differ in names or types, or JSONL shards
    whose first rows differ in keys: one dataset reads them all, and rows of one shard would
    take the other's columns (nulls) or fail on the types half-way.

    The kept columns are ``id_column`` and ``column`` where an id column is given, else all.
    """
    for kind in ("parquet", "json"):
        first: tuple[Shard, dict[str, str]] | None = None
        for shard in (s for s in shards if s.kind == kind):
            found = _columns_of(shard, column, id_column)
            if found is None:  # an empty JSONL file
                continue
            if first is None:
                first = shard, found
                continue
            if found != first[1]:
                raise UsageError(
                    f"{shard.path} and {first[0].path} differ in their columns "
                    f"({_describe(found)} against {_describe(first[1])}); encode them apart "
                    "(one folder each), make them alike, or keep fewer with --id-column")


def _columns_of(shard: Shard, column: str, id_column: str | None) -> dict[str, str] | None:
    """``{name: type}`` of the columns of ``shard`` the output keeps (JSONL: no types)."""
    if shard.kind == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(shard.path)
        found = {name: str(schema.field(name).type) for name in schema.names}
    else:
        names = _column_names(shard)
        if names is None:
            return None
        found = dict.fromkeys(names, "")
    if id_column:
        return {name: kind for name, kind in found.items() if name in (id_column, column)}
    return found


def _describe(columns: dict[str, str]) -> str:
    return ", ".join(f"{name}: {kind}" if kind else name for name, kind in columns.items())


def _column_names(shard: Shard) -> list[str] | None:
    if shard.kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(shard.path).names)
        except Exception as err:  # pyarrow raises ArrowInvalid for a file that is not Parquet
            raise UsageError(f"{shard.path}: not a readable Parquet file ({err})") from None
    with shard.path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                first = json.loads(line)
            except json.JSONDecodeError as err:
                raise UsageError(f"{shard.path}:{lineno}: not valid JSON ({err})") from None
            if not isinstance(first, dict):
                raise UsageError(f"{shard.path}:{lineno}: expected one JSON object a line")
            return list(first)
    return None


def stale_partials(shard: Shard) -> list[Path]:
    """Temporary files a killed run left for this shard's output (never finished outputs)."""
    folder = shard.output.parent
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f".{shard.output.name}.*.partial"))
