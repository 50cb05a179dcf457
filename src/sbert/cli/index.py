"""``sbert index create|add|search|delete|info`` and ``sbert search --index DIR "query"``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from sbert.cli.common import drop_blank, load_encoder
from sbert.errors import UsageError

_index_dir = click.argument("index_dir", type=click.Path(path_type=Path))


@contextmanager
def opened(index_dir: Path) -> Iterator[Any]:
    """An open :class:`~sbert.search.index.Index`; its errors become one-line user errors."""
    from sbert.errors import IndexFailure
    from sbert.search.index import Index

    try:
        with Index.open(index_dir) as index:
            yield index
    except IndexFailure as err:
        raise UsageError(str(err)) from err


@click.group("index")
def index_group() -> None:
    """A persistent sentence index (SQLite + usearch): create, add, search, delete, info."""


@index_group.command("create")
@_index_dir
@click.option("--model", "-m", "model", default="all-MiniLM-L6-v2", show_default=True,
              help="The model whose embeddings the index holds.")
@click.option("--metric", type=click.Choice(["cosine", "dot"]), default="cosine",
              show_default=True)
@click.option("--connectivity", default=16, show_default=True, type=click.IntRange(min=2),
              help="HNSW graph degree: higher recalls better and takes more space.")
def create(index_dir: Path, model: str, metric: str, connectivity: int) -> None:
    """Create an empty index in INDEX_DIR for the embeddings of --model."""
    from sbert.errors import IndexFailure
    from sbert.search.index import Index, model_identity

    encoder = load_encoder(model, "cpu")
    identity = model_identity(encoder)
    source = str(Path(model).resolve()) if Path(model).exists() else model
    try:
        Index.create(index_dir, model=identity, dimension=encoder.dimension, metric=metric,
                     connectivity=connectivity, source=source).close()
    except IndexFailure as err:
        raise UsageError(str(err)) from err
    click.echo(f"created {index_dir} ({identity}, {encoder.dimension}-d, {metric})", err=True)


@index_group.command("add")
@_index_dir
@click.argument("input_file", type=click.Path(path_type=Path))
@click.option("--column", "-c", default=None, help="Text column (CSV/TSV) or key (JSONL).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--device", default=None, help="torch device for encoding.")
def add(index_dir: Path, input_file: Path, column: str | None, batch_size: int,
        device: str | None) -> None:
    """Encode the sentences of INPUT_FILE and add them, all or none.

    A .jsonl file may give each sentence an "id" and a "metadata" value.
    """
    texts, ids, metadata = read_records(input_file, column)
    kept = drop_blank(texts, input_file)  # a blank text would answer every empty query
    texts = [texts[i] for i in kept]
    ids = None if ids is None else [ids[i] for i in kept]
    metadata = None if metadata is None else [metadata[i] for i in kept]
    with opened(index_dir) as index:
        encoder = load_encoder(index.source, device)
        added = index.add_texts(texts, encoder, ids=ids, metadata=metadata,
                                batch_size=batch_size)
        click.echo(f"added {len(added)} sentences; the index holds {len(index)}", err=True)


def search_options(func: Any) -> Any:
    """``-k``, ``--exact`` and ``--json`` shared by both search commands."""
    func = click.option("--json", "as_json", is_flag=True, help="One JSON object per hit.")(func)
    func = click.option("--exact", is_flag=True, help="Brute force instead of the ANN graph.")(
        func)
    func = click.option("-k", "--top", "k", default=10, show_default=True,
                        type=click.IntRange(min=1), help="Hits per query.")(func)
    return func


def run_search(index_dir: Path, queries: tuple[str, ...], k: int, exact: bool,
               as_json: bool, device: str | None) -> None:
    """Encode the queries with the index's model and print the hits."""
    with opened(index_dir) as index:
        encoder = load_encoder(index.source, device)
        results = index.search_texts(list(queries), encoder, k=k, exact=exact)
    for query, hits in zip(queries, results, strict=True):
        if not as_json and len(queries) > 1:
            click.echo(f"# {query}")
        for hit in hits:
            if as_json:
                click.echo(json.dumps({"query": query, "id": hit.id, "score": round(hit.score, 6),
                                       "text": hit.text, "metadata": hit.metadata}))
            else:
                click.echo(f"{hit.score:.4f}\t{hit.id}\t{hit.text}")


@index_group.command("search")
@_index_dir
@click.argument("queries", nargs=-1, required=True)
@search_options
@click.option("--device", default=None, help="torch device for encoding.")
def search_in(index_dir: Path, queries: tuple[str, ...], k: int, exact: bool, as_json: bool,
              device: str | None) -> None:
    """The sentences of INDEX_DIR nearest to each QUERY."""
    run_search(index_dir, queries, k, exact, as_json, device)


@click.command("search")
@click.argument("queries", nargs=-1, required=True)
@click.option("--index", "index_dir", required=True, type=click.Path(path_type=Path),
              help="The index folder (see `sbert index create`).")
@search_options
@click.option("--device", default=None, help="torch device for encoding.")
def search(queries: tuple[str, ...], index_dir: Path, k: int, exact: bool, as_json: bool,
           device: str | None) -> None:
    """Semantic search: the indexed sentences nearest to each QUERY."""
    run_search(index_dir, queries, k, exact, as_json, device)


@index_group.command("delete")
@_index_dir
@click.argument("ids", nargs=-1, required=True)
def delete(index_dir: Path, ids: tuple[str, ...]) -> None:
    """Remove sentences by id."""
    with opened(index_dir) as index:
        removed = index.delete(list(ids))
        click.echo(f"deleted {removed} of {len(ids)}; the index holds {len(index)}", err=True)


@index_group.command("info")
@_index_dir
def info(index_dir: Path) -> None:
    """Model, dimension, metric, count and size on disk."""
    with opened(index_dir) as index:
        rows = index.info()
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        click.echo(f"{key:<{width}}  {value}")


def read_records(path: Path, column: str | None) -> tuple[list[str], list[str] | None,
                                                           list[Any] | None]:
    """Texts, and for JSONL the optional ``id`` and ``metadata`` of each object."""
    from sbert.data.text import read_records as read_file
    from sbert.errors import InputFormatError

    texts, objects = read_file(path, column)  # objects: JSONL only, read in the same pass
    if objects is None:
        return texts, None, None
    if any(obj is None for obj in objects):
        raise InputFormatError(f"{path}: mix of strings and objects; use objects throughout")
    ids = [str(obj["id"]) if "id" in obj else "" for obj in objects]
    metadata = [obj.get("metadata") for obj in objects]
    if any(ids) and not all(ids):
        raise InputFormatError(f"{path}: some objects have an 'id' and some not (object "
                               f"{ids.index('') + 1}); give every object an id or none")
    return texts, (ids if any(ids) else None), (metadata if any(
        m is not None for m in metadata) else None)
