"""The model card (README.md) and loss-curve PNG written next to a trained model."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from sbert.training.log import LOG_FILE

logger = logging.getLogger(__name__)

CURVE_FILE = "loss_curve.png"


def read_log(output: Path) -> list[dict[str, Any]]:
    """The entries of ``training_log.jsonl`` (empty when there is none)."""
    path = output / LOG_FILE
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_loss_curve(output: Path) -> Path | None:
    """Plot training loss (and the evaluation metric) against steps into ``loss_curve.png``.

    Returns:
        The PNG, or None when matplotlib is missing or nothing was logged.
    """
    log = read_log(output)
    train = [e for e in log if e.get("type") == "train"]
    if not train:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'sbert[eval]'): no loss curve")
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    # a marker on each point while there are few: one point alone draws no line at all
    ax.plot([e["step"] for e in train], [e["loss"] for e in train], color="tab:blue",
            label="loss", marker="o" if len(train) < 50 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss", color="tab:blue")
    evals = [e for e in log if e.get("type") == "eval"]
    metric = _primary(evals)
    if metric:
        ax2 = ax.twinx()
        ax2.plot([e["step"] for e in evals], [e[metric] for e in evals], "o-", color="tab:orange")
        label = metric if metric.startswith("dev") else f"dev {metric}"  # not "dev dev_..."
        ax2.set_ylabel(label, color="tab:orange")
    ax.set_title("training loss" + (f" and {label}" if metric else ""))
    fig.tight_layout()
    path = output / CURVE_FILE
    fig.savefig(path)
    plt.close(fig)
    return path


def _primary(evals: list[dict[str, Any]]) -> str | None:
    if not evals:
        return None
    keys = [k for k in evals[-1] if k not in ("type", "step", "epoch", "pairs")]
    spearman = [k for k in keys if "spearman" in k and "cosine" in k] or [
        k for k in keys if "spearman" in k
    ]
    found = spearman or keys
    return found[0] if found else None


def write_model_card(output: Path, info: dict[str, Any]) -> Path:
    """Write ``README.md``: recipe, data, hyper-parameters, evaluation results, loss curve.

    Args:
        output: the model folder.
        info: ``recipe``, ``description``, ``start_model``, ``train_files``,
            ``train_examples``, ``dev_file``, ``pooling``, ``max_seq_length``, ``config``
            (TrainConfig), ``state`` (TrainState).
    """
    raw = info["config"]
    config = asdict(raw) if is_dataclass(raw) and not isinstance(raw, type) else dict(raw)
    state = info["state"]
    curve = plot_loss_curve(output)
    evals = [e for e in read_log(output) if e.get("type") == "eval"]
    metric = _primary(evals)
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags: [sentence-transformers, sentence-similarity, sbert]",
        "---",
        "",
        f"# {output.name}",
        "",
        f"A sentence embedding model trained with `sbert train --recipe {info['recipe']}` "
        f"from `{info['start_model']}`: {info['description']}.",
        "It is a sentence-transformers folder: `SentenceTransformer(path)` or "
        "`sbert.SentenceEncoder(path)` loads it.",
        "",
        "## Training data",
        "",
        *[f"- `{f}`" for f in info["train_files"]],
        f"- {info['train_examples']} training examples",
        "",
        "## Hyper-parameters",
        "",
        "| setting | value |",
        "| --- | --- |",
        f"| pooling | {info['pooling']} |",
        f"| max_seq_length | {info['max_seq_length']} |",
        *[f"| {k} | {v} |" for k, v in config.items()],
        f"| optimizer steps | {state.step} |",
        f"| training examples/s | {state.examples_per_second:.1f} |",
        "",
        "## Evaluation",
        "",
    ]
    if metric and info.get("dev_file"):
        lines += [
            f"Dev set `{info['dev_file']}`, `{metric}` (x100) during training:",
            "",
            "| step | epoch | " + metric + " |",
            "| --- | --- | --- |",
            *[f"| {e['step']} | {e['epoch']} | {e[metric]:.2f} |" for e in evals],
            "",
        ]
        if state.best_step is not None:
            lines.append(f"Best: {state.best_metric:.2f} at step {state.best_step}.")
    else:
        lines.append("No dev set was given.")
    if curve is not None:
        lines += ["", "## Loss curve", "", f"![loss curve]({CURVE_FILE})"]
    lines += [
        "",
        "## Citation",
        "",
        "Reimers & Gurevych (2019), *Sentence-BERT: Sentence Embeddings using Siamese "
        "BERT-Networks*, EMNLP.",
        "",
    ]
    path = output / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
