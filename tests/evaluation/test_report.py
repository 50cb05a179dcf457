from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sbert.evaluation.report import markdown_table, text_table, write_json, write_report
from tests.conftest import has_module

RESULTS = [
    {"model": "m1", "dataset": "sts-test", "pairs": 3, "spearman_cosine": 82.0325,
     "gold": np.array([0.0, 2.5, 5.0]), "cosine": np.array([0.1, 0.5, 0.9])},
    {"model": "m2", "dataset": "sts-test", "pairs": 3, "spearman_cosine": float("nan")},
]


def test_tables_format_two_decimals_and_nan() -> None:
    text = text_table(RESULTS, ["model", "dataset", "spearman_cosine", "missing"])
    lines = text.splitlines()
    assert lines[0].split() == ["model", "dataset", "spearman_cosine", "missing"]
    assert "82.03" in lines[2] and "nan" in lines[3]
    md = markdown_table(RESULTS, ["model", "spearman_cosine"])
    assert md.splitlines()[2] == "| m1 | 82.03 |"


def test_json_drops_arrays_and_nan(tmp_path: Path) -> None:
    path = write_json(tmp_path / "out" / "r.json", RESULTS, ["m1", "m2"], "sts")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["models"] == ["m1", "m2"] and doc["task"] == "sts"
    assert doc["results"][0]["spearman_cosine"] == 82.0325
    assert "gold" not in doc["results"][0]
    assert doc["results"][1]["spearman_cosine"] is None


@pytest.mark.skipif(not has_module("matplotlib"), reason="needs sbert[eval]")
def test_report_writes_markdown_scatter_and_comparison(tmp_path: Path) -> None:
    files = write_report(tmp_path / "rep", RESULTS, ["model", "dataset", "spearman_cosine"],
                         "sts", "spearman_cosine", ["sbert eval sts --data x"])
    names = sorted(f.name for f in files)
    assert names == ["comparison.png", "report.md", "scatter_m1_sts-test.png"]
    md = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "sbert eval sts --data x" in md and "![comparison.png](comparison.png)" in md
    for f in files:
        if f.suffix == ".png":
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000


@pytest.mark.skipif(not has_module("matplotlib"), reason="needs sbert[eval]")
def test_report_plots_a_paraphrase_precision_recall_curve(tmp_path: Path) -> None:
    result = {"model": "m1", "dataset": "quora", "average_precision": 75.0, "precision": 80.0,
              "recall": 60.0, "precision_curve": np.array([1.0, 0.8, 0.5]),
              "recall_curve": np.array([0.2, 0.6, 0.7])}
    files = write_report(tmp_path, [result], ["model", "average_precision"], "paraphrase",
                         "average_precision")
    assert sorted(f.name for f in files) == ["precision_recall_m1_quora.png", "report.md"]
    assert files[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and files[1].stat().st_size > 5000
