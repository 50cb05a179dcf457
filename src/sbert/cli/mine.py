"""``sbert mine``: the most similar pairs of sentences in a file (paraphrase mining)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sbert.cli.common import check_not_input, drop_blank, load_encoder, model_option
from sbert.errors import UsageError
from sbert.files import atomic_path

PAIR_SUFFIXES = (".tsv", ".jsonl")
# a sentence's own backslashes, tabs and line breaks would shift columns or split rows
TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@click.command()
@click.argument("input_file", type=click.Path(path_type=Path))
@click.option("--top", "-n", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many pairs to print or write.")
@click.option("--threshold", "-t", default=None, type=float,
              help="Keep only pairs with at least this cosine similarity.")
@click.option("--per-sentence", "top_k", default=100, show_default=True,
              type=click.IntRange(min=1),
              help="Candidate neighbours kept per sentence (as in sentence-transformers).")
@click.option("--column", "-c", default=None, help="Text column (CSV/TSV) or key (JSONL).")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Write the pairs to a .tsv or .jsonl file instead of printing them.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@model_option
def mine(input_file: Path, top: int, threshold: float | None, top_k: int, column: str | None,
         output: Path | None, batch_size: int, model: str, device: str | None) -> None:
    """Find the most similar pairs of sentences in INPUT_FILE (exact, in bounded memory).

    Printed and .tsv pairs escape a sentence's backslashes, tabs and line breaks as \\\\, \\t,
    \\n and \\r, so each pair stays one row of columns; .jsonl keeps the sentences as they are.
    """
    from sbert.data.text import read_sentences
    from sbert.search.mining import paraphrase_mining

    if output is not None and output.suffix.lower() not in PAIR_SUFFIXES:
        raise UsageError(f"output {output}: unknown format; use one of {PAIR_SUFFIXES}")
    check_not_input(output, input_file)
    sentences = read_sentences(input_file, column)
    kept = drop_blank(sentences, input_file)
    if len(kept) < 2:
        raise UsageError(f"{input_file} holds {len(kept)} sentence(s) that are not blank; "
                         "mining needs two")
    encoder = load_encoder(model, device)
    emb = encoder.encode([sentences[i] for i in kept], batch_size=batch_size)
    pairs = [(score, kept[i], kept[j]) for score, i, j in  # i, j: rows of the input
             paraphrase_mining(emb, top_k=top_k, threshold=threshold, max_pairs=top)]
    if not pairs:  # say so: an empty answer is otherwise silence
        click.echo(f"no pairs scored {threshold} or more; lower --threshold"
                   if threshold is not None else "no pairs found", err=True)
    if output is None:
        for score, i, j in pairs:
            a, b = (tsv_field(sentences[k]) for k in (i, j))
            click.echo(f"{score:.4f}\t{a}\t{b}")
        return
    write_pairs(output, pairs, sentences)
    click.echo(f"wrote {len(pairs)} pairs to {output}", err=True)


def write_pairs(path: Path, pairs: list[tuple[float, int, int]], sentences: list[str]) -> None:
    """Pairs as TSV (score, i, j, sentence1, sentence2; escaped, no quoting) or JSONL objects."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        if path.suffix.lower() == ".tsv":
            f.write("score\ti\tj\tsentence1\tsentence2\n")
            for score, i, j in pairs:
                a, b = (tsv_field(sentences[k]) for k in (i, j))
                f.write(f"{score:.6f}\t{i}\t{j}\t{a}\t{b}\n")
        else:
            for score, i, j in pairs:
                f.write(json.dumps({"score": round(score, 6), "i": i, "j": j,
                                    "sentence1": sentences[i], "sentence2": sentences[j]}) + "\n")


def tsv_field(text: str) -> str:
    """``text`` with backslash, tab, newline and carriage return escaped (``\\\\``, ``\\t``...)."""
    return text.translate(TSV_ESCAPES)
