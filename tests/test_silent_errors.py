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


# -- option ranges: a value that cannot mean anything is refused, not run -----------------------
@pytest.mark.parametrize(("args", "option"), [
    (["--limit", "0"], "--limit"),
    (["--limit", "-1"], "--limit"),
    (["--checkpoint-steps", "-1"], "--checkpoint-steps"),
    (["--eval-steps", "-1"], "--eval-steps"),
    (["--max-seq-length", "0"], "--max-seq-length"),
    (["--max-seq-length", "1"], "--max-seq-length"),
])
def test_train_cli_refuses_out_of_range_options(tmp_path: Path, capsys, args, option) -> None:
    data = tmp_path / "sts.tsv"
    data.write_text("sentence1\tsentence2\tscore\na\tb\t1.0\n", encoding="utf-8")
    code, _, err = run_cli(["train", "-r", "sts", "-m", str(tmp_path / "no-model"),
                            "--train", str(data), "-o", str(tmp_path / "out"), *args], capsys)
    assert code == 2
    assert f"Invalid value for '{option}'" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_eval_cli_refuses_limit_below_range(tmp_path: Path, capsys) -> None:
    data = tmp_path / "dev.tsv"
    data.write_text("sentence1\tsentence2\tscore\na\tb\t1.0\n", encoding="utf-8")
    for limit in ("0", "-1"):
        code, _, err = run_cli(["eval", "sts", "--data", str(data), "--limit", limit], capsys)
        assert code == 2 and "Invalid value for '--limit'" in err, err


def test_max_seq_length_below_two_is_refused(tiny_model_dir) -> None:
    from sbert import SentenceEncoder
    from sbert.errors import UsageError

    encoder = SentenceEncoder(tiny_model_dir, device="cpu")
    for bad in (0, 1, -1):
        with pytest.raises(UsageError, match="max_seq_length must be an integer >= 2"):
            encoder.max_seq_length = bad
        with pytest.raises(UsageError, match="max_seq_length must be an integer >= 2"):
            SentenceEncoder(tiny_model_dir, device="cpu", max_seq_length=bad)
    assert encoder.max_seq_length == 64  # the folder's, unchanged by the refused values
    encoder.max_seq_length = 2
    assert encoder.tokenizer.encode(["a man plays a guitar"]).ids[0].__len__() == 2


def test_max_seq_length_above_positions_is_clamped_with_a_warning(tiny_model_dir,
                                                                  caplog) -> None:
    from sbert import SentenceEncoder

    encoder = SentenceEncoder(tiny_model_dir, device="cpu")  # 128 positions
    with caplog.at_level("WARNING", logger="sbert.tokenization"):
        encoder.max_seq_length = 4096
    assert encoder.max_seq_length == 128
    assert "above the model's 128 positions; using 128" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="sbert.tokenization"):
        other = SentenceEncoder(tiny_model_dir, device="cpu", max_seq_length=1000)
    assert other.max_seq_length == 128 and "positions; using 128" in caplog.text
    long_text = " ".join(["guitar"] * 500)
    with pytest.warns(UserWarning, match="truncated"):
        assert other.encode([long_text]).shape[0] == 1  # no index error past the positions
    other.max_seq_length = 64
    assert other.max_seq_length == 64


# -- mined pairs as TSV: a sentence's tabs and line breaks cannot break the table ---------------
TRICKY = ["a man\tplays the guitar", "a man plays\nthe guitar", "a man plays the guitar \\n"]


def test_mine_tsv_escapes_tabs_newlines_and_backslashes(tiny_model_dir, tmp_path: Path,
                                                        capsys) -> None:
    import json

    data = tmp_path / "sentences.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TRICKY), encoding="utf-8")
    out = tmp_path / "pairs.tsv"
    code, _, err = run_cli(["mine", str(data), "-m", str(tiny_model_dir), "-o", str(out)], capsys)
    assert code == 0, err
    rows = out.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 3 and all(len(row.split("\t")) == 5 for row in rows), rows
    written = {cell for row in rows[1:] for cell in row.split("\t")[3:]}
    assert written == {r"a man\tplays the guitar", r"a man plays\nthe guitar",
                       r"a man plays the guitar \\n"}
    unescaped = {cell.encode().decode("unicode_escape") for cell in written}  # round trip
    assert unescaped == set(TRICKY)
    # printed pairs are escaped the same way; .jsonl keeps the sentences as they are
    code, printed, _ = run_cli(["mine", str(data), "-m", str(tiny_model_dir)], capsys)
    assert code == 0 and len(printed.splitlines()) == 3
    assert all(len(line.split("\t")) == 3 for line in printed.splitlines())
    jsonl = tmp_path / "pairs.jsonl"
    run_cli(["mine", str(data), "-m", str(tiny_model_dir), "-o", str(jsonl)], capsys)
    kept = {p[k] for p in map(json.loads, jsonl.read_text(encoding="utf-8").splitlines())
            for k in ("sentence1", "sentence2")}
    assert kept == set(TRICKY)


# -- CSV: a quote that is never closed must not swallow the rest of the file --------------------
UNCLOSED = 'sentence,label\nfirst one,a\n"second, with a quote never closed,b\nthird,c\nfourth,d\n'


def test_csv_readers_refuse_a_quote_that_runs_to_the_end(tmp_path: Path) -> None:
    from sbert.data.tables import open_table
    from sbert.data.text import read_sentences

    path = tmp_path / "s.csv"
    path.write_text(UNCLOSED, encoding="utf-8")
    message = r"s.csv:3: a quoted field opens on this line and runs to the end of the file"
    with pytest.raises(DataError, match=message):
        read_sentences(path)
    with pytest.raises(DataError, match=message), open_table(path) as table:
        list(table.select(["sentence"]))
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(UNCLOSED.replace("\n", "\r\n").encode())
    with pytest.raises(DataError, match="crlf.csv:3: a quoted field opens"):
        read_sentences(crlf)


def test_csv_readers_refuse_a_quote_that_runs_past_the_field_limit(tmp_path: Path) -> None:
    from sbert.data.tables import open_table
    from sbert.data.text import read_sentences

    path = tmp_path / "big.csv"
    path.write_text('sentence,label\nok,a\n"never closed,b\n' + "more text,c\n" * 20_000 + '"\n',
                    encoding="utf-8")
    message = r"big.csv:3: a field of this row runs past 131,072 characters"
    with pytest.raises(DataError, match=message):
        read_sentences(path)
    with pytest.raises(DataError, match=message), open_table(path) as table:
        list(table.select(["sentence"]))
    tsv = tmp_path / "big.tsv"  # TSV has no quoting: a long field is just long (as in .txt)
    tsv.write_text("sentence\n" + "x" * 200_000 + "\n", encoding="utf-8")
    assert read_sentences(tsv) == ["x" * 200_000]


def test_csv_readers_still_read_closed_quotes_and_a_missing_last_newline(tmp_path: Path) -> None:
    from sbert.data.tables import open_table
    from sbert.data.text import read_sentences

    path = tmp_path / "ok.csv"
    path.write_text('sentence,label\n"two\nlines, one field",a\n"say ""hi""",b\nlast,c',
                    encoding="utf-8")
    assert read_sentences(path) == ["two\nlines, one field", 'say "hi"', "last"]
    with open_table(path) as table:
        assert list(table.select(["sentence"])) == [
            (3, ["two\nlines, one field"]), (4, ['say "hi"']), (5, ["last"])]
    assert read_sentences(tmp_path / "ok.csv", "label") == ["a", "b", "c"]


def test_mine_cli_reports_an_unclosed_quote_in_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.csv"
    path.write_text(UNCLOSED, encoding="utf-8")
    code, _, err = run_cli(["mine", str(path), "-m", str(tmp_path / "unused")], capsys)
    assert code == 2
    _assert_one_error_line(err, "s.csv:3: a quoted field opens on this line")
