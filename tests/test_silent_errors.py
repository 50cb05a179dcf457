"""No silent wrong results (issue 13, point 5): bad gold scores, option ranges, TSV escaping."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbert.errors import DataError
from tests.conftest import run_cli


# -- gold scores must be finite numbers ---------------------------------------------------------
@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-Infinity"])
def test_sts_readers_refuse_non_finite_scores(tmp_path: Path, bad: str) -> None:
    from sbert.data import sts

    table = tmp_path / "pairs.tsv"
    table.write_text(f"sentence1\tsentence2\tscore\na\tb\t3.0\nc\td\t{bad}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"pairs.tsv:3: score '{bad}' is not a finite number"):
        sts.read_pairs_table(table)
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n'
                     '{"sentence1": "c", "sentence2": "d", "score": NaN}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs.jsonl:2: score .* is not a finite number"):
        sts.read_pairs_table(jsonl)
    stsb = tmp_path / "sts-dev.csv"
    stsb.write_text(f"main-captions\tMSRvid\t2012test\t0001\t{bad}\ta\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"sts-dev.csv:1: score .* is not a finite number"):
        sts.read_stsb_csv(stsb)
    (tmp_path / "STS.input.x.txt").write_text("a\tb\nc\td\n", encoding="utf-8")
    (tmp_path / "STS.gs.x.txt").write_text(f"1.0\n{bad}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"STS.gs.x.txt:2: score .* is not a finite number"):
        sts.read_semeval_pair(tmp_path / "STS.input.x.txt", tmp_path / "STS.gs.x.txt", "x")


def test_eval_sts_cli_refuses_a_nan_score(tiny_model_dir, tmp_path: Path, capsys) -> None:
    data = tmp_path / "dev.tsv"
    data.write_text("sentence1\tsentence2\tscore\na man\ta woman\t2.5\na dog\ta cat\tnan\n"
                    "a car\ta bus\t1.0\n", encoding="utf-8")
    code, _, err = run_cli(["eval", "sts", "-m", str(tiny_model_dir), "--data", str(data)], capsys)
    assert code == 2
    _assert_one_error_line(err, "dev.tsv:3: score 'nan' is not a finite number")


def _assert_one_error_line(err: str, message: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], err
