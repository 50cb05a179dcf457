"""Data files: one reader per format, shared by the CLI, training and evaluation.

* :mod:`.tables`: rows of TSV/CSV/JSONL files (gzip, file:line errors) under every reader.
* :mod:`.text`: sentences from text/CSV/TSV/JSONL files; embeddings to .npy/.parquet/JSONL.
* :mod:`.sts`: scored sentence pairs (STS benchmark, SICK, SemEval STS12-16, generic tables).
* :mod:`.nli`: NLI pairs and the triplets made from them.
* :mod:`.triplets`: (anchor, positive, negative) triplets, or those of an NLI file.
* :mod:`.duplicates`: labelled duplicate pairs (Quora) for paraphrase mining.
"""
