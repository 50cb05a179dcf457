"""``sbert mine``, ``index ...``, ``search`` and ``cluster`` with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import has_module
from tests.conftest import run_cli as run

SENTENCES = [
    "a man is eating food", "a man eats food", "the dog runs in the park",
    "a dog is running in the park", "a red car", "the big red car", "a cat plays",
    "a happy child plays music",
]




@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    return path


def test_mine_prints_and_writes(tiny_model_dir: Path, tiny_encoder, corpus: Path,
                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sbert.search.mining import paraphrase_mining

    model = ["--model", str(tiny_model_dir), "--device", "cpu"]
    code, out, err = run(["mine", str(corpus), "--top", "3", *model], capsys)
    assert code == 0, err
    want = paraphrase_mining(tiny_encoder.encode(SENTENCES), max_pairs=3)
    lines = out.splitlines()
    assert len(lines) == 3
    score, a, b = lines[0].split("\t")
    assert (a, b) == (SENTENCES[want[0][1]], SENTENCES[want[0][2]])
    assert float(score) == pytest.approx(want[0][0], abs=1e-4)

    out_file = tmp_path / "pairs.jsonl"
    code, _, err = run(["mine", str(corpus), "-o", str(out_file), "-t", "-1", *model], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(rows) == 20 and all(r["i"] < r["j"] for r in rows)  # --top default 20
    tsv = tmp_path / "pairs.tsv"
    assert run(["mine", str(corpus), "-o", str(tsv), *model], capsys)[0] == 0
    assert tsv.read_text().splitlines()[0] == "score\ti\tj\tsentence1\tsentence2"


def test_mine_user_errors(tiny_model_dir: Path, corpus: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    model = ["--model", str(tiny_model_dir)]
    code, _, err = run(["mine", str(corpus), "-o", str(tmp_path / "x.csv"), *model], capsys)
    assert code == 2 and err.count("\n") == 1 and ".tsv" in err
    one = tmp_path / "one.txt"
    one.write_text("alone\n", encoding="utf-8")
    code, _, err = run(["mine", str(one), *model], capsys)
    assert code == 2 and "needs two" in err


@pytest.mark.skipif(not has_module("usearch"), reason="needs usearch (sbert[search])")
def test_index_commands(tiny_model_dir: Path, corpus: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    ix = str(tmp_path / "ix")
    code, _, err = run(["index", "create", ix, "--model", str(tiny_model_dir)], capsys)
    assert code == 0, err
    assert run(["index", "add", ix, str(corpus)], capsys)[0] == 0
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"id": "d1", "text": "a blue car", "metadata": {"src": "x"}})
                    + "\n", encoding="utf-8")
    assert run(["index", "add", ix, str(docs)], capsys)[0] == 0
    code, out, err = run(["search", "--index", ix, "the dog runs in the park", "-k", "2"], capsys)
    assert code == 0, err
    assert out.splitlines()[0].split("\t")[2] == "the dog runs in the park"
    code, out, _ = run(["index", "search", ix, "a blue car", "--exact", "--json", "-k", "1"],
                       capsys)
    hit = json.loads(out)
    assert (hit["id"], hit["metadata"]) == ("d1", {"src": "x"})
    code, _, err = run(["index", "delete", ix, "d1", "1"], capsys)
    assert code == 0 and "deleted 2 of 2" in err
    code, out, _ = run(["index", "info", ix], capsys)
    info = dict(line.split(None, 1) for line in out.splitlines())
    assert (info["count"], info["model"], info["dimension"]) == ("7", "model", "32")
    assert len(info["model_digest"]) == 64 and info["format"] == "2"
    code, _, err = run(["index", "create", ix], capsys)
    assert code == 2 and "not empty" in err
    code, _, err = run(["search", "--index", str(tmp_path / "none"), "q"], capsys)
    assert code == 2 and "no index" in err


@pytest.mark.skipif(not has_module("usearch"), reason="needs usearch (sbert[search])")
def test_index_search_and_info_change_no_file(tiny_model_dir: Path, corpus: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tests.search.test_index_readonly import assert_unchanged, snapshot

    ix = tmp_path / "ix"
    assert run(["index", "create", str(ix), "--model", str(tiny_model_dir)], capsys)[0] == 0
    assert run(["index", "add", str(ix), str(corpus)], capsys)[0] == 0
    states = []
    for missing_vectors in (False, True):
        if missing_vectors:
            for path in ix.glob("vectors-*"):
                path.unlink()
        before = snapshot(ix)
        code, out, err = run(["search", "--index", str(ix), "a dog is running in the park"],
                             capsys)
        assert code == 0 and out.splitlines()[0].endswith("\ta dog is running in the park"), err
        assert run(["index", "search", str(ix), "a red car", "--exact", "-k", "1"], capsys)[0] == 0
        code, out, _ = run(["index", "info", str(ix)], capsys)
        assert code == 0
        assert_unchanged(before, ix)
        states.append(dict(line.split(None, 1) for line in out.splitlines()).get("vectors", ""))
    assert [state.startswith("missing") for state in states] == [False, True]


@pytest.mark.skipif(not has_module("usearch"), reason="needs usearch (sbert[search])")
def test_index_refuses_a_model_folder_changed_in_place(tiny_model_dir: Path, corpus: Path,
                                                       tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    model = shutil.copytree(tiny_model_dir, tmp_path / "m" / "model")
    ix = str(tmp_path / "ix")
    assert run(["index", "create", ix, "--model", str(model)], capsys)[0] == 0
    assert run(["index", "add", ix, str(corpus)], capsys)[0] == 0
    pooling = model / "1_Pooling" / "config.json"  # same folder, same name, other embeddings
    pooling.write_text(pooling.read_text().replace('"pooling_mode_cls_token": false',
                                                   '"pooling_mode_cls_token": true').replace(
        '"pooling_mode_mean_tokens": true', '"pooling_mode_mean_tokens": false'))
    for args in (["index", "add", ix, str(corpus)], ["search", "--index", ix, "a red car"]):
        code, _, err = run(args, capsys)
        assert code == 2 and err.count("\n") == 1 and "different model of the same name" in err


@pytest.mark.skipif(not (has_module("sklearn") and has_module("matplotlib")),
                    reason="needs scikit-learn and matplotlib (sbert[search])")
@pytest.mark.parametrize("method", [["--method", "community", "--min-size", "2", "-t", "0.5"],
                                    ["--method", "kmeans", "-k", "3"]])
def test_cluster_writes_jsonl_and_png(tiny_model_dir: Path, corpus: Path, tmp_path: Path,
                                      method: list[str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clusters.jsonl"
    code, _, err = run(["cluster", str(corpus), "-o", str(out), *method,
                        "--model", str(tiny_model_dir)], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(r["size"] for r in rows) == len(SENTENCES)
    assert sorted(i for r in rows for i in r["ids"]) == list(range(len(SENTENCES)))
    assert all(SENTENCES[r["ids"][0]] == r["sentences"][0] for r in rows)
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if "kmeans" in method:
        assert len([r for r in rows if r["cluster"] >= 0]) == 3


def test_cluster_user_error(tiny_model_dir: Path, corpus: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["cluster", str(corpus), "--method", "kmeans"], capsys)
    assert code == 2 and "--clusters" in err


def test_blank_lines_are_left_out_and_ids_stay_rows(tiny_model_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Blank texts are all alike: kept, they top a mining (score 1.0), form a cluster and
    answer an empty query. They are left out, said so, and the ids stay the input's rows."""
    path = tmp_path / "gaps.txt"
    lines = ["a man is eating food", "", "a man eats food", "   ", "a red car", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = ["--model", str(tiny_model_dir), "--device", "cpu"]

    code, _, err = run(["mine", str(path), "-o", str(tmp_path / "pairs.jsonl"), *model], capsys)
    assert code == 0 and "left out 3 blank texts" in err, err
    pairs = [json.loads(x) for x in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(lines[p["i"]] == p["sentence1"] and lines[p["j"]] == p["sentence2"]
                         and p["sentence1"].strip() and p["sentence2"].strip() for p in pairs)

    code, _, err = run(["cluster", str(path), "-o", str(tmp_path / "c.jsonl"), "--no-plot",
                        "--min-size", "1", *model], capsys)
    assert code == 0, err
    clusters = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    ids = sorted(i for c in clusters for i in c["ids"])
    assert ids == [0, 2, 4]
    assert all(lines[i] == s for c in clusters for i, s in zip(c["ids"], c["sentences"],
                                                                strict=True))

    index = tmp_path / "ix"
    assert run(["index", "create", str(index), *model[:2]], capsys)[0] == 0
    code, _, err = run(["index", "add", str(index), str(path)], capsys)
    assert code == 0 and "left out 3 blank texts" in err and "index holds 3" in err, err


def test_index_add_reads_ids_from_a_gzipped_jsonl_with_a_bom(
        tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ids and metadata come from the same read as the texts: a BOM or .gz used to
    break (a traceback) or drop (no ids) them."""
    import gzip

    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + b'{"text": "a red car", "id": "car", "metadata": {"n": 1}}\n'
                + b'{"text": "a dog runs", "id": "dog"}\n')
    index = tmp_path / "ix"
    assert run(["index", "create", str(index), "--model", str(tiny_model_dir)], capsys)[0] == 0
    code, _, err = run(["index", "add", str(index), str(path)], capsys)
    assert code == 0, err
    from sbert.search.index import Index

    with Index.open(index) as opened:
        car, dog = opened.get(["car", "dog"])
    assert car is not None and car.text == "a red car" and car.metadata == {"n": 1}
    assert dog is not None and dog.text == "a dog runs"
