"""``sbert eval``: tables, --json, --report and one-line user errors (tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import has_module
from tests.conftest import run_cli as run


@pytest.fixture()
def sts_tsv(tmp_path: Path) -> Path:
    path = tmp_path / "toy.tsv"
    rows = ["a man is eating food\ta man eats food\t4.8", "the dog runs\ta cat sits\t1.2",
            'a red car "fast"\tthe blue car\t2.5', "music today\tguitar and piano\t2.0"]
    path.write_text("sentence1\tsentence2\tscore\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_sts_table_json_and_report(tiny_model_dir: Path, sts_tsv: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out, rep = tmp_path / "r.json", tmp_path / "rep"
    code, stdout, err = run(["eval", "sts", "--data", str(sts_tsv), "-m", str(tiny_model_dir),
                             "-m", f"cls:{tiny_model_dir}", "--device", "cpu", "--json",
                             str(out), "--report", str(rep)], capsys)
    assert code == 0, err
    assert "spearman_cosine" in stdout.splitlines()[0]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["models"] == [str(tiny_model_dir), f"cls:{tiny_model_dir}"]
    row = doc["results"][0]
    assert row["dataset"] == "toy" and row["pairs"] == 4
    assert {"spearman_cosine", "pearson_cosine", "spearman_manhattan"} <= set(row)
    assert (rep / "report.md").exists() and (rep / "comparison.png").exists()
    assert len(list(rep.glob("scatter_*.png"))) == 2


def test_triplet_and_paraphrase_commands(tiny_model_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    trip = tmp_path / "trip.tsv"
    trip.write_text("anchor\tpositive\tnegative\na man eats\ta man eats food\tthe blue car\n",
                    encoding="utf-8")
    code, stdout, err = run(["eval", "triplet", "--data", str(trip), "-m", str(tiny_model_dir),
                             "--device", "cpu"], capsys)
    assert code == 0, err
    assert "accuracy_euclidean" in stdout
    pairs = tmp_path / "quora.tsv"
    pairs.write_text("sentence1\tsentence2\tlabel\nhow to cook rice ?\thow do i cook rice ?\t1\n"
                     "what is music ?\twhy is the sky blue ?\t0\n", encoding="utf-8")
    code, stdout, err = run(["eval", "paraphrase", "--data", str(pairs), "-m",
                             str(tiny_model_dir), "--device", "cpu", "--json",
                             str(tmp_path / "p.json")], capsys)
    assert code == 0, err
    result = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))["results"][0]
    assert result["gold_pairs"] == 1 and result["sentences"] == 4


def test_paraphrase_limit_counts_pairs_and_report_has_a_pr_curve(
        tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = tmp_path / "quora.tsv"
    pairs.write_text("sentence1\tsentence2\tlabel\n"
                     "what is music ?\twhy is the sky blue ?\t0\n"
                     "a dog runs\tthe red car\t0\n"
                     "how to cook rice ?\thow do i cook rice ?\t1\n"
                     "a man plays guitar\tthe man plays the guitar\t1\n", encoding="utf-8")
    args = ["eval", "paraphrase", "--data", str(pairs), "-m", str(tiny_model_dir), "--device",
            "cpu", "--json", str(tmp_path / "p.json")]
    code, _, err = run([*args, "--limit", "3", "--report", str(tmp_path / "rep")], capsys)
    assert code == 0, err
    result = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))["results"][0]
    assert result["sentences"] == 6 and result["gold_pairs"] == 1  # 3 pairs, not 3 sentences
    assert "precision_curve" not in result
    [plot] = (tmp_path / "rep").glob("precision_recall_*_quora.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({plot.name})" in (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    code, _, err = run([*args, "--limit", "2"], capsys)
    assert code == 2 and "no duplicate pairs (label 1) to score against in its first 2 pairs" \
        in err and len(err.strip().splitlines()) == 1
    code, stdout, _ = run(["eval", "paraphrase", "--help"], capsys)
    assert "the first N pairs (rows) of the file" in " ".join(stdout.split())


@pytest.fixture()
def senteval_dir(tmp_path: Path) -> Path:
    """TREC with its 6 classes and an MR with 4 negatives in 40."""
    words = "a the man dog car music food park".split()
    classes = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    for split, n in (("train", 60), ("test", 30)):
        rows = [f"{words[i % 8]} {words[i % 5]} ?\t{classes[i % 6]}\tfine" for i in range(n)]
        (tmp_path / "TREC").mkdir(exist_ok=True)
        (tmp_path / "TREC" / f"trec.{split}.tsv").write_text(
            "sentence\tlabel\tfine_label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    rows = [f"{words[i % 8]} {words[i % 3]}\t{'negative' if i % 10 == 0 else 'positive'}"
            for i in range(40)]
    (tmp_path / "MR").mkdir()
    (tmp_path / "MR" / "mr.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n",
                                            encoding="utf-8")
    return tmp_path


@pytest.mark.skipif(not has_module("sklearn"), reason="needs sbert[eval]")
def test_transfer_with_a_small_limit(tiny_model_dir: Path, senteval_dir: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "transfer", "--data", str(senteval_dir), "-m", str(tiny_model_dir),
            "--device", "cpu", "--json", str(senteval_dir / "r.json")]
    # 12 TREC examples: a 10 % validation split would hold 2 for 6 classes
    code, stdout, err = run([*args, "--tasks", "TREC", "--limit", "12"], capsys)
    assert code == 0, err
    row = json.loads((senteval_dir / "r.json").read_text(encoding="utf-8"))["results"][0]
    assert row["dataset"] == "TREC" and row["n"] == 24
    # too few negatives for cross-validation: one line naming the limit that is enough
    code, _, err = run([*args, "--tasks", "TREC,MR", "--limit", "3"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--limit 3 is too small: MR: cross-validation needs" in err
    enough = int(err.split("use --limit ")[1].split()[0])
    assert run([*args, "--tasks", "MR", "--limit", str(enough - 1)], capsys)[0] == 2
    code, _, err = run([*args, "--tasks", "MR", "--limit", str(enough)], capsys)
    assert code == 0, err
    row = json.loads((senteval_dir / "r.json").read_text(encoding="utf-8"))["results"][0]
    assert row["protocol"] == f"{row['folds']}-fold CV" and 2 <= row["folds"] < 10


@pytest.mark.parametrize(("args", "message"), [
    (["eval", "sts", "--data", "missing.tsv"], "does not exist"),
    (["eval", "transfer", "--data", ".", "--tasks", "IMDB"], "unknown transfer task"),
])
def test_user_errors_are_one_line(args: list[str], message: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(args, capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_malformed_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence1\tsentence2\tscore\na\tb\n", encoding="utf-8")
    code, _, err = run(["eval", "sts", "--data", str(bad), "-m", "glove"], capsys)
    assert code == 2 and "bad.tsv:2: 2 fields, expected 3" in err
    assert len(err.strip().splitlines()) == 1


def test_sts_with_the_onnx_backend(tiny_model_dir: Path, sts_tsv: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from sbert import SentenceEncoder

    folder = SentenceEncoder(tiny_model_dir, device="cpu").export_onnx(tmp_path / "onnx")
    results = []
    for flags in ([], ["--backend", "onnx"]):
        out = tmp_path / f"r{len(flags)}.json"
        code, _, err = run(["eval", "sts", "--data", str(sts_tsv), "-m", str(folder),
                            "--json", str(out), *flags], capsys)
        assert code == 0, err
        results.append(json.loads(out.read_text(encoding="utf-8"))["results"][0])
    assert results[1]["pearson_cosine"] == pytest.approx(results[0]["pearson_cosine"], abs=1e-3)
    code, _, err = run(["eval", "sts", "--data", str(sts_tsv), "-m", str(folder),
                        "--quantized"], capsys)  # an ONNX folder without an int8 graph
    assert code == 2 and "export onnx" in err
