"""Evaluation that reproduces the paper's tables: STS, SentEval transfer, triplets, mining.

Evaluators return a dict of metrics (correlations, accuracies, precisions x100) with one
``primary_metric``, like sentence-transformers' evaluators. Heavy dependencies (scikit-learn,
matplotlib) load only in the modules that need them (:mod:`.transfer`, :mod:`.report`).
"""

from __future__ import annotations

from sbert._lazy import lazy_exports

# public name -> module; resolved on first access so ``import sbert.evaluation`` stays light.
# The dataset readers are those of sbert.data (one per format, shared with training).
_LAZY: dict[str, str] = {
    "StsDataset": "sbert.data.sts",
    "load_sts": "sbert.data.sts",
    "read_pairs_table": "sbert.data.sts",
    "read_stsb_csv": "sbert.data.sts",
    "read_sick": "sbert.data.sts",
    "read_semeval_folder": "sbert.data.sts",
    "evaluate_sts": "sbert.evaluation.sts",
    "sts_metrics": "sbert.evaluation.sts",
    "EmbeddingSimilarityEvaluator": "sbert.evaluation.sts",
    "load_task": "sbert.evaluation.senteval",
    "evaluate_task": "sbert.evaluation.transfer",
    "evaluate_transfer": "sbert.evaluation.transfer",
    "TripletDataset": "sbert.data.triplets",
    "read_triplets": "sbert.data.triplets",
    "evaluate_triplets": "sbert.evaluation.triplet",
    "DuplicatesDataset": "sbert.data.duplicates",
    "read_duplicates": "sbert.data.duplicates",
    "evaluate_paraphrase_mining": "sbert.evaluation.paraphrase",
}


__getattr__, __dir__ = lazy_exports("sbert.evaluation", _LAZY, globals())

__all__ = list(_LAZY)
