"""``sbert eval sts|transfer|triplet|paraphrase``: reproduce the paper's evaluation tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from sbert.cli.common import backend_flags, current_backend_options, plural
from sbert.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

STS_COLUMNS = ("model", "dataset", "pairs", "spearman_cosine", "pearson_cosine", "spearman_dot",
               "spearman_euclidean", "spearman_manhattan", "senteval_mean_spearman_cosine",
               "senteval_wmean_spearman_cosine")
TRANSFER_COLUMNS = ("model", "dataset", "n", "protocol", "accuracy", "f1")
TRIPLET_COLUMNS = ("model", "dataset", "triplets", "accuracy_cosine", "accuracy_euclidean",
                   "accuracy_manhattan", "accuracy_dot")
PARAPHRASE_COLUMNS = ("model", "dataset", "sentences", "gold_pairs", "mined_pairs",
                      "average_precision", "f1", "precision", "recall", "threshold")


def common_options(limit: str) -> Callable[[F], F]:
    """``--model`` (repeatable), ``--device``, ``--data``, ``--batch-size``, ``--limit``,
    ``--json``, ``--report``; ``limit`` says what ``--limit N`` keeps."""
    options = [
        click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
                     help="Write report.md and PNG plots into this folder."),
        click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
                     help="Write the results as JSON to this file."),
        click.option("--limit", type=click.IntRange(min=2), default=None,
                     help=f"Smoke runs: {limit}."),
        click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1)),
        click.option("--data", "data", type=click.Path(path_type=Path), required=True,
                     help="Data file or folder."),
        click.option("--device", default=None, help="torch device; default: CUDA if available."),
        click.option("--model", "-m", "models", multiple=True, default=("all-MiniLM-L6-v2",),
                     show_default=True,
                     help="Model folder or name, or a baseline: glove, avg:MODEL, cls:MODEL. "
                          "Repeat to compare models."),
    ]

    def decorate(func: F) -> F:
        for option in options:
            func = option(func)
        return backend_flags(func)

    return decorate


@click.group(name="eval")
def eval_group() -> None:
    """Evaluate models: STS correlations, SentEval transfer, triplets, paraphrase mining."""


def _load(spec: str, device: str | None) -> Any:
    from sbert.evaluation.baselines import load_model

    try:
        return load_model(spec, device, **current_backend_options())
    except ValueError as err:
        raise UsageError(str(err)) from err


def _finish(task: str, results: list[dict[str, Any]], columns: Sequence[str], primary: str,
            models: Sequence[str], json_out: Path | None, report_dir: Path | None,
            rows: list[dict[str, Any]] | None = None) -> None:
    from sbert.evaluation.report import text_table, write_json, write_report

    click.echo(text_table(rows if rows is not None else results, columns))
    if json_out is not None:
        write_json(json_out, results, models, task)
        click.echo(f"wrote {json_out}", err=True)
    if report_dir is not None:
        import shlex
        import sys

        command = "sbert " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        files = write_report(report_dir, results, columns, task, primary, [command], rows)
        click.echo(f"wrote {plural(len(files), 'file')} to {report_dir}", err=True)


@eval_group.command()
@common_options(limit="use the first N pairs of each data set")
@click.option("--sick-split", default="TEST", show_default=True,
              type=click.Choice(["TEST", "TRAIN", "TRIAL"], case_sensitive=False),
              help="Rows of the full SICK.txt to use.")
def sts(models: tuple[str, ...], device: str | None, data: Path, batch_size: int,
        limit: int | None, json_out: Path | None, report_dir: Path | None,
        sick_split: str) -> None:
    """Spearman/Pearson (x100) of gold scores vs cosine, dot, Euclidean and Manhattan.

    DATA: a .tsv/.csv with sentence1, sentence2, score; an STS benchmark sts-*.csv; SICK.txt or
    SICK_test_annotated.txt; a SemEval STS12-16 folder (STS.input.*.txt + STS.gs.*.txt); or a
    folder of these. Years are scored pooled ("all", the paper's protocol) and per subset
    (SentEval mean / weighted mean).
    """
    from sbert.data import sts as readers
    from sbert.evaluation.sts import evaluate_sts

    if data.is_file() and data.name.startswith("SICK"):
        datasets = [readers.read_sick(data, split=sick_split)]
    else:
        datasets = readers.load_sts(data)
    if limit is not None:
        datasets = [_head_sts(d, limit) for d in datasets]
    results: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for spec in models:
        model = _load(spec, device)
        for ds in datasets:
            click.echo(f"{spec}: {ds.name} ({len(ds)} pairs)", err=True)
            try:
                result = evaluate_sts(model, ds, batch_size=batch_size, return_similarities=True)
            except ValueError as err:
                raise UsageError(f"{ds.name}: {err}") from err
            result["model"] = spec
            results.append(result)
            rows.append(result)
            for name, sub in result.get("subsets", {}).items():
                rows.append({"model": spec, "dataset": f"  {ds.name}/{name}", **sub})
    _finish("sts", results, STS_COLUMNS, "spearman_cosine", models, json_out, report_dir, rows)


def _head_sts(ds: Any, n: int) -> Any:
    from sbert.data.sts import StsDataset

    return StsDataset(ds.name, ds.sentences1[:n], ds.sentences2[:n], ds.scores[:n],
                      ds.subsets[:n])


@eval_group.command()
@common_options(limit="use a seeded sample of N examples of each split; where a class then "
                      "has fewer than 10, cross-validation uses fewer folds")
@click.option("--tasks", default="MR,CR,SUBJ,MPQA,SST2,TREC,MRPC", show_default=True,
              help="Comma-separated SentEval tasks.")
@click.option("--seed", default=1111, show_default=True, type=int)
@click.option("--inner-folds", default=0, show_default=True, type=click.IntRange(min=0),
              help="0: choose C on one 10% validation split (fast); 10: SentEval's inner CV.")
@click.option("--mrpc-features", default="senteval", show_default=True,
              type=click.Choice(["senteval", "full"]),
              help="senteval: [|u-v|, u*v] as SentEval; full: [u, v, |u-v|, u*v].")
def transfer(models: tuple[str, ...], device: str | None, data: Path, batch_size: int,
             limit: int | None, json_out: Path | None, report_dir: Path | None, tasks: str,
             seed: int, inner_folds: int, mrpc_features: str) -> None:
    """SentEval transfer tasks: logistic regression on frozen embeddings, accuracy x100.

    DATA: the SentEval folder with MR/, CR/, SUBJ/, MPQA/, SST2/, TREC/, MRPC/ (TSV files).
    """
    from sbert.evaluation.senteval import TASKS, load_task
    from sbert.evaluation.transfer import evaluate_task

    names = [t.strip().upper() for t in tasks.split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise UsageError(f"unknown transfer task(s) {unknown}; expected some of {list(TASKS)}")
    if not data.is_dir():
        raise UsageError(f"{data} is not a folder; expected the SentEval data folder")
    loaded = [load_task(data, name) for name in names]
    if limit is not None:
        loaded = _sample_tasks(loaded, limit, seed)
    results: list[dict[str, Any]] = []
    for spec in models:
        model = _load(spec, device)
        own: list[dict[str, Any]] = []
        for task in loaded:
            click.echo(f"{spec}: {task.name}", err=True)
            try:
                result = evaluate_task(model, task, batch_size=batch_size, seed=seed,
                                       inner_folds=inner_folds, mrpc_features=mrpc_features)
            except ValueError as err:
                raise UsageError(f"{task.name}: {err}") from err
            result["model"] = spec
            own.append(result)
        if len(own) > 1:
            mean = sum(r["accuracy"] for r in own) / len(own)
            own.append({"model": spec, "dataset": "average", "accuracy": mean})
        results += own
    _finish("transfer", results, TRANSFER_COLUMNS, "accuracy", models, json_out, report_dir)


def _sample_tasks(tasks: list[Any], limit: int, seed: int) -> list[Any]:
    """Each task's ``sample(limit, seed)``, or a one-line error naming the smallest ``--limit``
    that leaves every task enough examples of each class."""
    from sbert.evaluation.transfer import check_task

    def error(task: Any) -> ValueError | None:
        try:
            check_task(task)
        except ValueError as err:
            return err
        return None

    samples = [t.sample(limit, seed) for t in tasks]
    failed = [(t, err) for t, s in zip(tasks, samples, strict=True) if (err := error(s))]
    if not failed:
        return samples
    needed = []
    for task, err in failed:
        # samples of one seed nest, so whether a limit is enough only grows with it
        low, high = limit, max(len(s.labels) for s in task.splits.values())
        if error(task.sample(high, seed)) is not None:
            raise UsageError(f"{task.name}: {err}") from err  # too few even in full
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if error(task.sample(mid, seed)) is None else (mid, high)
        needed.append(high)
    task, err = failed[0]
    raise UsageError(f"--limit {limit} is too small: {task.name}: {err}; use --limit "
                     f"{max(needed)} or more (with --seed {seed})") from err


@eval_group.command()
@common_options(limit="use the first N triplets of each file")
def triplet(models: tuple[str, ...], device: str | None, data: Path, batch_size: int,
            limit: int | None, json_out: Path | None, report_dir: Path | None) -> None:
    """Triplet accuracy: share of d(anchor, positive) < d(anchor, negative), x100.

    DATA: a TSV with anchor, positive, negative columns, or an NLI TSV (premise, hypothesis,
    label) from which (premise, entailment, contradiction) triplets are built, or a folder:
    every TSV in it is scored.
    """
    from sbert.data.triplets import TripletDataset, read_triplets
    from sbert.evaluation.triplet import evaluate_triplets

    files = sorted(p for p in data.iterdir() if ".tsv" in p.suffixes) if data.is_dir() else [data]
    if not files:
        raise UsageError(f"{data}: no .tsv files")
    datasets = [read_triplets(p) for p in files]
    if limit is not None:
        datasets = [TripletDataset(d.name, d.anchors[:limit], d.positives[:limit],
                                   d.negatives[:limit]) for d in datasets]
    results: list[dict[str, Any]] = []
    for spec in models:
        model = _load(spec, device)
        for ds in datasets:
            if len(ds) == 0:
                raise UsageError(f"{ds.name}: no triplets")
            click.echo(f"{spec}: {ds.name} ({len(ds)} triplets)", err=True)
            result = evaluate_triplets(model, ds, batch_size=batch_size)
            result["model"] = spec
            results.append(result)
    _finish("triplet", results, TRIPLET_COLUMNS, "accuracy_cosine", models, json_out,
            report_dir)


@eval_group.command()
@common_options(limit="read the first N pairs (rows) of the file; their distinct sentences "
                      "are mined and their label-1 rows are the gold pairs")
@click.option("--top-k", default=100, show_default=True, type=click.IntRange(min=1),
              help="Neighbours mined per sentence.")
@click.option("--max-pairs", default=500_000, show_default=True, type=click.IntRange(min=1))
def paraphrase(models: tuple[str, ...], device: str | None, data: Path, batch_size: int,
               limit: int | None, json_out: Path | None, report_dir: Path | None, top_k: int,
               max_pairs: int) -> None:
    """Paraphrase mining vs gold duplicates: average precision and best F1 (x100).

    DATA: a TSV with sentence1, sentence2 and a 0/1 label (the Quora pairs); every distinct
    sentence is mined against every other. --report adds a precision-recall curve.
    """
    from sbert.data.duplicates import read_duplicates
    from sbert.evaluation.paraphrase import evaluate_paraphrase_mining

    ds = read_duplicates(data, limit=limit)
    if not ds.duplicates:
        within = f" in its first {limit} pairs; raise --limit" if limit is not None else ""
        raise UsageError(f"{data}: no duplicate pairs (label 1) to score against{within}")
    results: list[dict[str, Any]] = []
    for spec in models:
        model = _load(spec, device)
        click.echo(f"{spec}: {ds.name} ({len(ds.sentences)} sentences)", err=True)
        result = evaluate_paraphrase_mining(model, ds, batch_size=batch_size, top_k=top_k,
                                            max_pairs=max_pairs, return_curve=True)
        result["model"] = spec
        results.append(result)
    _finish("paraphrase", results, PARAPHRASE_COLUMNS, "average_precision", models, json_out,
            report_dir)
