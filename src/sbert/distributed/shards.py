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


def check_columns(shards: list[Shard], column: str, id_column: str | None) -> None:
    """Refuse shards without the text or id column, or with an ``embedding`` column, and
    shards of one format whose kept columns differ (Parquet: in names or types; JSONL: in
    the keys of their first rows). One dataset reads every shard of a format: rows of one
    would take another's columns (as nulls) or fail on their types half-way. The kept
    columns are ``id_column`` and ``column`` where an id column is given, else all.

    Reads each file's schema or first row only, once.

    Raises:
        UsageError: naming the file, the column and the columns it has.
    """
    first: dict[str, tuple[Shard, dict[str, str]]] = {}  # kind -> its first shard's columns
    for shard in shards:
        if shard.kind == "text":
            if id_column not in (None, LINE_COLUMN):
                raise UsageError(f"{shard.path}: a text file has no column {id_column!r}; its "
                                 f"rows are numbered in {LINE_COLUMN!r}: drop --id-column")
            continue
        found = _columns(shard)
        if found is None:  # an empty JSONL file: no rows, nothing to check
            continue
        names = list(found)
        for name in [column] + ([id_column] if id_column else []):
            if name not in names:
                option = "--id-column" if name == id_column else "--column"
                raise UsageError(f"{shard.path}: no column {name!r}; its columns are {names}: "
                                 f"choose one with {option}")
        if EMBEDDING_COLUMN in names:
            raise UsageError(f"{shard.path}: already has a column {EMBEDDING_COLUMN!r}; drop "
                             "or rename it first")
        kept = {n: t for n, t in found.items() if n in (id_column, column)} if id_column \
            else found
        other = first.setdefault(shard.kind, (shard, kept))
        if kept != other[1]:
            raise UsageError(
                f"{shard.path} and {other[0].path} differ in their columns "
                f"({_describe(kept)} against {_describe(other[1])}); encode them apart "
                "(one folder each), make them alike, or keep fewer with --id-column")


def has_no_rows(shard: Shard) -> bool:
    """An empty text file, or a JSONL file of blank lines (Parquet: not looked at)."""
    if shard.kind == "text":
        return shard.path.stat().st_size == 0
    return shard.kind == "json" and _columns(shard) is None


def _describe(columns: dict[str, str]) -> str:
    return ", ".join(f"{name}: {kind}" if kind else name for name, kind in columns.items())


def _columns(shard: Shard) -> dict[str, str] | None:
    """``{name: type}`` of a Parquet shard's schema, or the keys of a JSONL shard's first
    row (no types); None for a JSONL shard without rows."""
    if shard.kind == "parquet":
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(shard.path)
        except Exception as err:  # pyarrow raises ArrowInvalid for a file that is not Parquet
            raise UsageError(f"{shard.path}: not a readable Parquet file ({err})") from None
        return {name: str(schema.field(name).type) for name in schema.names}
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
            return dict.fromkeys(first, "")
    return None


def stale_partials(shard: Shard) -> list[Path]:
    """Temporary files a killed run left for this shard's output (never finished outputs)."""
    folder = shard.output.parent
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f".{shard.output.name}.*.partial"))
