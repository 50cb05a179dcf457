"""SentEval transfer tasks (the paper's Table 5): logistic regression on frozen embeddings.

Protocol (fixed seed, default 1111 as in SentEval):

* MR, CR, SUBJ, MPQA: stratified 10-fold cross-validation; accuracy is the mean over folds.
* SST2: train on train, choose the L2 penalty on dev, test on test.
* TREC, MRPC: train on train, test on test; the penalty is chosen on the training data.
* MRPC features are built as SentEval builds them, ``[|u - v|, u * v]``; ``mrpc_features=
  "full"`` gives ``[u, v, |u - v|, u * v]`` instead.
* The penalty ``C`` is chosen from SentEval's grid ``2^-2 ... 2^3``. SentEval chooses it by an
  inner 10-fold cross-validation (60 extra fits per outer fold); by default we use one
  stratified 10 % validation split of the training part instead (6 fits), which is ~10x
  cheaper and usually picks the same or a neighbouring ``C``; ``inner_folds=10`` restores
  SentEval's inner cross-validation.
* The classifier is scikit-learn's ``LogisticRegression`` (lbfgs, multinomial for TREC) on the
  raw embeddings, as SentEval's ``usepytorch=False`` path (which used liblinear) does.
* Small samples (``--limit``): cross-validation uses fewer folds when a class has fewer than
  10 examples, and ``C`` falls back to 1 when the training data cannot be split for validation
  (a class with one example). :func:`check_task` says what is too small to run at all.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sbert.errors import UsageError
from sbert.evaluation.common import Encoder, encode_unique, model_name
from sbert.evaluation.senteval import CV_TASKS, TASKS, TransferTask, load_task
from sbert.runtime import require

logger = logging.getLogger(__name__)

C_GRID = tuple(2.0**t for t in range(-2, 4))  # SentEval's sklearn grid: 0.25 ... 8
SEED = 1111
MRPC_FEATURES = ("senteval", "full")


def _fit(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> Any:
    linear_model = require("sklearn.linear_model", "eval")
    exceptions = require("sklearn.exceptions", "eval")
    threadpoolctl = require("threadpoolctl", "eval")  # installed with scikit-learn
    clf = linear_model.LogisticRegression(C=c, max_iter=1000, random_state=seed)
    # one BLAS thread: these fits are small, and thread start-up costs more than it saves
    with warnings.catch_warnings(), threadpoolctl.threadpool_limits(1):
        warnings.simplefilter("ignore", exceptions.ConvergenceWarning)
        clf.fit(x, y)
    return clf


def check_labels(labels: Sequence[Any] | np.ndarray, per_class: int, what: str) -> None:
    """Raise :class:`UsageError` unless ``labels`` hold 2 classes and ``per_class`` of each.

    Args:
        labels: one label per example.
        per_class: the fewest examples every class needs.
        what: the protocol step that needs them, for the message.
    """
    unique, counts = np.unique(np.asarray(labels), return_counts=True)
    classes = unique.tolist()  # Python str/int, for the message
    if len(classes) < 2:
        only = f"all {classes[0]!r}" if classes else "none"
        raise UsageError(f"{what} needs 2 classes; its {len(labels)} examples are {only}")
    if counts.min() < per_class:
        fewest = classes[int(np.argmin(counts))]
        raise UsageError(f"{what} needs {per_class} examples of every class; it has "
                         f"{counts.min()} of {fewest!r}")


def check_task(task: TransferTask) -> None:
    """Raise :class:`UsageError` when ``task`` has too few examples for its protocol.

    Cross-validation needs 2 examples of every class (so every training fold sees every
    class); a training split needs 2 classes. Anything above that runs, with fewer folds or
    an untuned ``C`` where the sample is small.
    """
    if "all" in task.splits:
        check_labels(task.splits["all"].labels, 2, "cross-validation")
    else:
        check_labels(task.splits["train"].labels, 1, "the training split")


def _validation_splits(y: np.ndarray, seed: int, inner_folds: int) -> list[Any]:
    """Stratified validation split(s) of ``y``, or ``[]`` when ``y`` is too small for one."""
    ms = require("sklearn.model_selection", "eval")
    counts = np.unique(y, return_counts=True)[1]
    if inner_folds >= 2:
        folds = min(inner_folds, int(counts.min()))
        if folds < 2:
            return []
        return list(ms.StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y))
    if counts.min() < 2:
        return []
    # 10 % as sklearn rounds it, but one example of every class or more (then the rest has too)
    n_val = max(math.ceil(0.1 * len(y)), len(counts))
    splitter = ms.StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    return list(splitter.split(y, y))


def choose_c(x: np.ndarray, y: np.ndarray, seed: int = SEED, inner_folds: int = 0) -> float:
    """Pick the L2 penalty from :data:`C_GRID` on the training data only.

    Args:
        x: ``(n, features)`` training features.
        y: ``(n,)`` integer labels.
        seed: random seed of the split(s).
        inner_folds: 0 for one stratified 10 % validation split; ``k >= 2`` for SentEval's
            inner k-fold cross-validation (fewer folds when a class has fewer than ``k``).

    Returns:
        The ``C`` with the best validation accuracy (the smaller one on a tie); 1 when a
        class has too few examples to validate on.
    """
    splits = _validation_splits(y, seed, inner_folds)
    if not splits:
        logger.warning("%d training examples are too few to choose C on a validation split "
                       "(a class has 1 example); using C=1", len(y))
        return 1.0
    scores = []
    for c in C_GRID:
        acc = [(_fit(x[tr], y[tr], c, seed).predict(x[va]) == y[va]).mean() for tr, va in splits]
        scores.append(float(np.mean(acc)))
    best = C_GRID[int(np.argmax(scores))]
    logger.debug("validation accuracy per C %s -> C=%g", scores, best)
    return best


def cross_validate(
    x: np.ndarray, y: np.ndarray, folds: int = 10, seed: int = SEED, inner_folds: int = 0,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Stratified k-fold accuracy of logistic regression, ``C`` chosen inside each fold.

    Uses fewer folds than ``folds`` when a class has fewer examples (at least 2 are needed).
    Progress (one step per fold) shows by default from 5,000 examples.

    Returns:
        ``accuracy`` (x100, mean over folds), ``accuracy_std``, ``folds`` (those used) and the
        chosen ``C``s.
    """
    ms = require("sklearn.model_selection", "eval")
    check_labels(y, 2, "cross-validation")
    folds = min(folds, int(np.unique(y, return_counts=True)[1].min()))
    accs: list[float] = []
    cs: list[float] = []
    skf = ms.StratifiedKFold(folds, shuffle=True, random_state=seed)
    from tqdm.auto import tqdm

    if show_progress is None:
        show_progress = len(y) >= 5000
    splits = tqdm(list(skf.split(x, y)), desc="folds", unit="fold", disable=not show_progress)
    for train, test in splits:
        c = choose_c(x[train], y[train], seed, inner_folds)
        clf = _fit(x[train], y[train], c, seed)
        accs.append(float((clf.predict(x[test]) == y[test]).mean()))
        cs.append(c)
    return {"accuracy": 100 * float(np.mean(accs)), "accuracy_std": 100 * float(np.std(accs)),
            "folds": folds, "C": cs}


def train_test(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
    seed: int = SEED, inner_folds: int = 0,
    dev: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Fit on the training split and score the test split; ``C`` chosen on dev or on train.

    Returns:
        ``accuracy`` (x100), the chosen ``C`` and, for binary labels, ``f1`` (x100).
    """
    check_labels(y_train, 1, "the training split")
    if dev is not None:
        x_dev, y_dev = dev
        scores = [(_fit(x_train, y_train, c, seed).predict(x_dev) == y_dev).mean() for c in C_GRID]
        c = C_GRID[int(np.argmax(scores))]
    else:
        c = choose_c(x_train, y_train, seed, inner_folds)
    pred = _fit(x_train, y_train, c, seed).predict(x_test)
    out: dict[str, Any] = {"accuracy": 100 * float((pred == y_test).mean()), "C": c}
    if len(np.unique(y_train)) == 2:
        tp = float(((pred == 1) & (y_test == 1)).sum())
        denom = float((pred == 1).sum() + (y_test == 1).sum())
        out["f1"] = 100 * 2 * tp / denom if denom else 0.0
    return out


def pair_features(u: np.ndarray, v: np.ndarray, kind: str = "senteval") -> np.ndarray:
    """Pair features: SentEval's ``[|u-v|, u*v]``, or ``full`` ``[u, v, |u-v|, u*v]``."""
    if kind == "senteval":
        return np.concatenate([np.abs(u - v), u * v], axis=1)  # (n, 2 * dim)
    if kind == "full":
        return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)  # (n, 4 * dim)
    raise UsageError(f"unknown pair features {kind!r}; expected one of {MRPC_FEATURES}")


def _label_ids(labels: Sequence[str], classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[label] for label in labels], dtype=np.int64)


def evaluate_task(
    model: Encoder, task: TransferTask, *, batch_size: int = 32, seed: int = SEED,
    inner_folds: int = 0, mrpc_features: str = "senteval", show_progress: bool | None = None,
) -> dict[str, Any]:
    """Encode a task's texts with the frozen ``model`` and run its SentEval protocol.

    Returns:
        ``dataset`` (task name), ``model``, ``accuracy`` (x100, the primary metric), ``n``
        (examples), ``protocol`` and the chosen penalties.
    """
    check_task(task)
    classes = sorted({label for s in task.splits.values() for label in s.labels})
    feats: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    for split_name, split in task.splits.items():
        if split.texts2 is not None:
            n = len(split.texts)
            emb = encode_unique(model, split.texts + split.texts2, batch_size, show_progress)
            feats[split_name] = pair_features(emb[:n], emb[n:], mrpc_features)
        else:
            feats[split_name] = encode_unique(model, split.texts, batch_size, show_progress)
        labels[split_name] = _label_ids(split.labels, classes)
    result: dict[str, Any] = {"dataset": task.name, "model": model_name(model)}
    if task.name in CV_TASKS or "all" in task.splits:
        result["n"] = int(len(labels["all"]))
        result.update(cross_validate(feats["all"], labels["all"], 10, seed, inner_folds,
                                     show_progress))
        result["protocol"] = f"{result['folds']}-fold CV"
    else:
        dev = (feats["dev"], labels["dev"]) if "dev" in feats else None
        result["n"] = int(len(labels["train"]) + len(labels["test"]))
        result["protocol"] = "train/dev/test" if dev is not None else "train/test"
        result.update(train_test(feats["train"], labels["train"], feats["test"], labels["test"],
                                 seed, inner_folds, dev))
    result["primary_metric"] = "accuracy"
    logger.info("%s: accuracy %.2f", task.name, result["accuracy"])
    return result


def evaluate_transfer(
    model: Encoder, root: str | Path, tasks: Sequence[str] = TASKS, **options: Any
) -> list[dict[str, Any]]:
    """Run several SentEval tasks; the last row is their ``average`` accuracy.

    Args:
        model: the frozen encoder.
        root: the SentEval data folder (``MR/``, ``CR/``...).
        tasks: task names (default: all seven).
        **options: passed to :func:`evaluate_task`.
    """
    rows = [evaluate_task(model, load_task(root, name), **options) for name in tasks]
    if len(rows) > 1:
        rows.append({"dataset": "average", "model": model_name(model),
                     "accuracy": float(np.mean([r["accuracy"] for r in rows])),
                     "primary_metric": "accuracy"})
    return rows
