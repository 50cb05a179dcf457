"""Load the SentEval transfer tasks (MR, CR, SUBJ, MPQA, SST2, TREC, MRPC) from TSV files.

Layout (``../shared/data/senteval``): ``MR/mr.tsv``, ``CR/cr.tsv``, ``SUBJ/subj.tsv``,
``MPQA/mpqa.tsv`` (``sentence, label``); ``SST2/sst2.{train,dev,test}.tsv[.gz]``;
``TREC/trec.{train,test}.tsv`` (``sentence, label, fine_label``: the coarse label is used);
``MRPC/mrpc.{train,test}.tsv`` (``sentence1, sentence2, label, ...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sbert.data.tables import open_table

CV_TASKS = ("MR", "CR", "SUBJ", "MPQA")  # 10-fold cross-validation
SPLIT_TASKS = ("SST2", "TREC", "MRPC")  # standard train (/dev) / test splits
TASKS = CV_TASKS + SPLIT_TASKS


@dataclass
class LabelledSplit:
    """Texts (one, or two for sentence-pair tasks) with a label each."""

    texts: list[str]
    labels: list[str]
    texts2: list[str] | None = None


@dataclass
class TransferTask:
    """One SentEval task: ``all`` for cross-validation, or ``train``/``dev``/``test`` splits."""

    name: str
    splits: dict[str, LabelledSplit] = field(default_factory=dict)

    @property
    def is_pair_task(self) -> bool:
        return any(s.texts2 is not None for s in self.splits.values())

    def sample(self, limit: int, seed: int) -> TransferTask:
        """A seeded random subset of at most ``limit`` examples per split (quick runs).

        With one seed, the sample of a larger ``limit`` holds that of a smaller one.
        """
        import numpy as np

        rng = np.random.default_rng(seed)
        splits = {}
        for name, s in self.splits.items():
            idx = sorted(rng.permutation(len(s.labels))[:limit].tolist())
            splits[name] = LabelledSplit(
                [s.texts[i] for i in idx], [s.labels[i] for i in idx],
                [s.texts2[i] for i in idx] if s.texts2 is not None else None,
            )
        return TransferTask(self.name, splits)


def read_labelled_tsv(path: Path, pair: bool = False) -> LabelledSplit:
    """A table with ``sentence``/``label`` (or ``sentence1``/``sentence2``/``label``) columns.

    Read by :func:`sbert.data.tables.open_table`: TSV with no quoting, CSV or JSONL, optionally
    ``.gz``; a malformed row names the file and line.
    """
    texts: list[str] = []
    texts2: list[str] = []
    labels: list[str] = []
    with open_table(path) as table:
        keys = table.require(*(("sentence1", "sentence2", "label") if pair
                               else ("sentence", "label")))
        for _, row in table.select(keys):
            texts.append(row[0])
            if pair:
                texts2.append(row[1])
            labels.append(row[-1])
    return LabelledSplit(texts, labels, texts2 if pair else None)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.tsv", folder / f"{stem}.tsv.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"transfer data {folder / stem}.tsv[.gz] does not exist")


def load_task(root: str | Path, name: str) -> TransferTask:
    """Load one task from the SentEval folder ``root``.

    Args:
        root: the folder holding ``MR/``, ``CR/``... sub-folders.
        name: one of :data:`TASKS`.
    """
    name = name.upper()
    if name not in TASKS:
        raise ValueError(f"unknown transfer task {name!r}; expected one of {TASKS}")
    folder = Path(root) / name
    if not folder.is_dir():
        raise FileNotFoundError(f"transfer task folder {folder} does not exist")
    low = name.lower()
    if name in CV_TASKS:
        return TransferTask(name, {"all": read_labelled_tsv(_find(folder, low))})
    splits = ("train", "dev", "test") if name == "SST2" else ("train", "test")
    return TransferTask(
        name, {s: read_labelled_tsv(_find(folder, f"{low}.{s}"), pair=name == "MRPC")
               for s in splits}
    )
