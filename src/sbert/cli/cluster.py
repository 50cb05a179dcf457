"""``sbert cluster``: cluster the sentences of a file, write JSONL and a 2-D map (PNG)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from sbert.cli.common import check_not_input, drop_blank, load_encoder, model_option, plural
from sbert.errors import UsageError
from sbert.files import atomic_path

# the file types matplotlib's Agg canvas writes
PLOT_FORMATS = ("png", "jpg", "jpeg", "pdf", "svg", "svgz", "eps", "ps", "tif", "tiff", "webp")


@click.command()
@click.argument("input_file", type=click.Path(path_type=Path))
@click.option("--method", type=click.Choice(["community", "kmeans", "agglomerative"]),
              default="community", show_default=True)
@click.option("--threshold", "-t", default=0.75, show_default=True, type=float,
              help="community: minimum cosine similarity to the centre; agglomerative "
                   "without --clusters: merge while similarity >= threshold.")
@click.option("--min-size", default=3, show_default=True, type=click.IntRange(min=1),
              help="community: smallest community.")
@click.option("--clusters", "-k", "n_clusters", default=None, type=click.IntRange(min=1),
              help="kmeans (required) / agglomerative: number of clusters.")
@click.option("--column", "-c", default=None, help="Text column (CSV/TSV) or key (JSONL).")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Clusters as JSONL; default: INPUT_FILE's name + .clusters.jsonl here.")
@click.option("--plot", type=click.Path(path_type=Path), default=None,
              help="2-D map (PCA) PNG; default: the output's name with .png.")
@click.option("--no-plot", is_flag=True, help="Do not draw the map.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@model_option
def cluster(input_file: Path, method: str, threshold: float, min_size: int,
            n_clusters: int | None, column: str | None, output: Path | None, plot: Path | None,
            no_plot: bool, batch_size: int, model: str, device: str | None) -> None:
    """Cluster the sentences of INPUT_FILE; write the clusters (JSONL) and a map (PNG)."""
    from sbert.data.text import read_sentences
    from sbert.search import clustering

    if method == "kmeans" and n_clusters is None:
        raise UsageError("--method kmeans needs --clusters K")
    rows = read_sentences(input_file, column)
    kept = drop_blank(rows, input_file)  # ids in the output: rows of the input
    sentences = [rows[i] for i in kept]
    if not sentences:
        raise UsageError(f"{input_file} holds no sentences")
    if n_clusters is not None and n_clusters > len(sentences):
        raise UsageError(f"--clusters {n_clusters} but {input_file} holds {len(sentences)} "
                        "sentences")
    output = output or Path(f"{input_file.stem}.clusters.jsonl")
    plot = None if no_plot else (plot or output.with_suffix(".png"))
    check_not_input(output, input_file)
    check_not_input(plot, input_file)
    for path in (output, plot):
        _check_parent(path)
    if plot is not None and plot.suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise UsageError(f"--plot {plot}: unknown image type {plot.suffix or '(none)'!r}; "
                         f"use one of {', '.join('.' + f for f in PLOT_FORMATS)}")
    emb = load_encoder(model, device).encode(sentences, batch_size=batch_size, normalize=True)
    if method == "community":
        groups = clustering.community_detection(emb, threshold=threshold, min_size=min_size)
        labels = clustering.labels_from_communities(groups, len(sentences))
    else:
        if method == "kmeans":
            assert n_clusters is not None
            labels = clustering.kmeans(emb, n_clusters)
        else:
            labels = clustering.agglomerative(
                emb, n_clusters=n_clusters,
                distance_threshold=None if n_clusters else 1.0 - threshold,
            )
        groups = clustering.communities_from_labels(labels)
        labels = clustering.labels_from_communities(groups, len(sentences))  # rank order
    write_clusters(output, groups, labels, sentences, kept)
    click.echo(f"wrote {plural(len(groups), 'cluster')} of "
               f"{plural(len(sentences), 'sentence')} to {output}", err=True)
    if plot is not None:
        plot_map(plot, emb, labels, sentences, groups, f"{input_file.name}: {method}")
        click.echo(f"wrote the map to {plot}", err=True)


def write_clusters(path: Path, groups: list[list[int]], labels: np.ndarray,
                   sentences: list[str], ids: list[int] | None = None) -> None:
    """One JSON object per cluster (largest first), then the unclustered ones as cluster -1.

    ``ids``: each sentence's id (its row in the input); default: its position.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    rest = np.flatnonzero(labels < 0).tolist()
    name = ids or list(range(len(sentences)))
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for rank, members in enumerate(groups):
            f.write(json.dumps({"cluster": rank, "size": len(members),
                                "ids": [name[i] for i in members],
                                "sentences": [sentences[i] for i in members]}) + "\n")
        if rest:
            f.write(json.dumps({"cluster": -1, "size": len(rest), "ids": [name[i] for i in rest],
                                "sentences": [sentences[i] for i in rest]}) + "\n")


def pca_2d(emb: np.ndarray) -> np.ndarray:
    """``(n, 2)`` coordinates on the two principal axes."""
    centred = emb - emb.mean(axis=0, keepdims=True)  # (n, dim)
    if centred.shape[0] < 2:
        return np.zeros((centred.shape[0], 2), dtype=np.float32)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # vt: (r, dim)
    axes = vt[:2] if vt.shape[0] >= 2 else np.vstack([vt, np.zeros_like(vt)])
    return centred @ axes.T  # (n, 2)


def _check_parent(path: Path | None) -> None:
    """Refuse, before the slow work, a path that goes through a file as if it were a folder."""
    if path is None:
        return
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{path}: {folder} is a file, not a folder; choose another path")


def plot_map(path: Path, emb: np.ndarray, labels: np.ndarray, sentences: list[str],
             groups: list[list[int]], title: str) -> None:
    """Scatter the sentences on their PCA plane, coloured by cluster, centres labelled."""
    from sbert.runtime import require

    matplotlib = require("matplotlib", "search")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = pca_2d(emb)
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    rest = labels < 0
    ax.scatter(xy[rest, 0], xy[rest, 1], s=12, c="lightgrey", label="unclustered")
    cmap = plt.get_cmap("tab20")
    for rank, members in enumerate(groups):
        colour = cmap(rank % 20)
        ax.scatter(xy[members, 0], xy[members, 1], s=18, color=colour,
                   label=f"{rank} ({len(members)})" if rank < 20 else None)
        if rank < 12:
            centre = members[0]
            ax.annotate(_short(sentences[centre]), xy[centre], fontsize=7, color=colour,
                        xytext=(4, 4), textcoords="offset points")
    ax.set_title(f"{title}: {len(groups)} clusters, {len(sentences)} sentences (PCA)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    if groups:
        ax.legend(fontsize=7, markerscale=1.2, loc="best", title="cluster (size)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
