"""Results as a terminal/Markdown table, JSON, and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sbert import files
from sbert.runtime import require


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def table_rows(results: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[list[str]]:
    """One row of formatted cells per result (missing values are empty)."""
    return [[_fmt(r.get(c, "")) for c in columns] for r in results]


def text_table(results: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """An aligned plain-text table."""
    rows = [list(columns), *table_rows(results, columns)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(results: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub Markdown table."""
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join(" --- " for _ in columns) + "|"
    body = ["| " + " | ".join(row) + " |" for row in table_rows(results, columns)]
    return "\n".join([head, sep, *body])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def strip_arrays(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its arrays (``cosine``, ``gold``, the precision-recall curve)."""
    return {k: v for k, v in result.items() if not isinstance(v, np.ndarray)}


def write_json(path: str | Path, results: Sequence[dict[str, Any]], models: Sequence[str],
               task: str) -> Path:
    """Write ``{"task", "model", "models", "results": [...]}``; metrics are x100, NaN -> null."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"task": task, "model": models[0] if len(models) == 1 else list(models),
           "models": list(models), "results": [_jsonable(strip_arrays(r)) for r in results]}
    return files.write_json(path, doc)


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "eval")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def scatter_plot(path: str | Path, gold: np.ndarray, predicted: np.ndarray, title: str,
                 spearman: float | None = None) -> Path:
    """Gold score vs predicted cosine similarity of one STS dataset."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    jitter = np.random.default_rng(0).uniform(-0.06, 0.06, len(gold))  # ties in gold scores
    ax.scatter(np.asarray(gold) + jitter, predicted, s=6, alpha=0.35, linewidths=0)
    ax.set_xlabel("gold similarity score")
    ax.set_ylabel("predicted cosine similarity")
    label = f"{title}  (n={len(gold)}"
    label += f", Spearman {spearman:.2f})" if spearman is not None else ")"
    return _save(plt, fig, ax, label, path)


def _save(plt: Any, fig: Any, ax: Any, title: str, path: str | Path) -> Path:
    """Title and grid a one-panel figure, write it to ``path`` and free it."""
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def precision_recall_plot(path: str | Path, precision: np.ndarray, recall: np.ndarray,
                          title: str, average_precision: float | None = None,
                          best: tuple[float, float] | None = None) -> Path:
    """Precision against recall (fractions) of one paraphrase-mining ranking.

    Args:
        best: ``(recall, precision)`` at the best-F1 threshold, marked on the curve.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    ax.plot(recall, precision, linewidth=1.2)
    if best is not None:
        ax.scatter([best[0]], [best[1]], s=25, color="C3", zorder=3, label="best F1")
        ax.legend(fontsize=8, loc="lower left")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall (gold pairs never mined count as missed)")
    ax.set_ylabel("precision")
    label = f"{title}  (AP {average_precision:.2f})" if average_precision is not None else title
    return _save(plt, fig, ax, label, path)


def bar_chart(path: str | Path, results: Sequence[dict[str, Any]], metric: str,
              title: str) -> Path:
    """Grouped bars of ``metric`` per dataset (groups) and model (bars)."""
    plt = _pyplot()
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    models = list(dict.fromkeys(r.get("model", "?") for r in results))
    value = {(r["dataset"], r.get("model", "?")): r.get(metric, float("nan")) for r in results}
    width = 0.8 / len(models)
    x = np.arange(len(datasets))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(datasets) + 2) + 2.0, 4.2), dpi=110)
    for i, m in enumerate(models):
        heights = [value.get((d, m), float("nan")) for d in datasets]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, heights, width, label=m)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(x, datasets, rotation=20, ha="right")
    ax.set_ylabel(metric.replace("_", " ") + " (x100)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def write_report(
    folder: str | Path, results: Sequence[dict[str, Any]], columns: Sequence[str], task: str,
    primary: str, commands: Sequence[str] = (), table: Sequence[dict[str, Any]] | None = None,
) -> list[Path]:
    """Write ``report.md`` (table + image links), a scatter plot per STS result holding
    ``gold``/``cosine`` arrays, a precision-recall plot per paraphrase result holding
    ``precision_curve``/``recall_curve``, and ``comparison.png`` when several models are
    compared.

    Args:
        folder: output folder (created).
        results: one dict per (model, dataset).
        columns: table columns.
        task: task name for titles.
        primary: the metric of the bar chart.
        commands: shell commands shown above the table.
        table: rows of the Markdown table when they differ from ``results`` (e.g. with
            per-subset rows).

    Returns:
        The files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    images: list[str] = []
    for r in results:
        slug = f"{_slug(r.get('model', 'model'))}_{_slug(r['dataset'])}"
        title = f"{r.get('model', '')} on {r['dataset']}"
        if isinstance(r.get("gold"), np.ndarray) and isinstance(r.get("cosine"), np.ndarray):
            name = f"scatter_{slug}.png"
            written.append(scatter_plot(folder / name, r["gold"], r["cosine"], title,
                                        r.get("spearman_cosine")))
            images.append(name)
        if (isinstance(r.get("precision_curve"), np.ndarray)
                and isinstance(r.get("recall_curve"), np.ndarray)):
            name = f"precision_recall_{slug}.png"
            best = (r["recall"] / 100, r["precision"] / 100) if "recall" in r else None
            written.append(precision_recall_plot(folder / name, r["precision_curve"],
                                                 r["recall_curve"], title,
                                                 r.get("average_precision"), best))
            images.append(name)
    if len({r.get("model") for r in results}) > 1:
        written.append(bar_chart(folder / "comparison.png", results, primary,
                                 f"{task}: {primary}"))
        images.insert(0, "comparison.png")
    lines = [f"# sbert eval {task}", ""]
    if commands:
        lines += ["```bash", *commands, "```", ""]
    lines += [markdown_table(results if table is None else table, columns), "",
              "Correlations, accuracies and precisions are x100.", ""]
    lines += [f"![{img}]({img})" for img in images]
    md = folder / "report.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.insert(0, md)
    return written
