"""Table-driven: every bad input to every command is one ``Error:`` line and exit code 2.

Each case runs the real CLI in-process; a traceback or a second stderr line fails it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_cli

W = dict[str, Path]
Case = Callable[[W], list[str]]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> W:
    """Bad (and a few good) inputs, written once for the whole table."""
    root = tmp_path_factory.mktemp("bad_inputs")
    w: W = {"root": root, "model": tiny_model_dir}

    def put(name: str, data: str | bytes) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        w[name] = path
        return path

    put("good.txt", "a man plays guitar\na dog runs in the park\na cat sits\n")
    put("empty.txt", "")
    put("badutf8.txt", b"a man plays guitar\nbad \xff\xfe bytes\n")
    put("good.csv", "text,label\na man plays guitar,1\na dog runs,0\n")
    put("badutf8.csv", b"text,label\na man,1\nbad \xff bytes,0\n")
    put("good.jsonl", '{"text": "a man"}\n{"text": "a dog"}\n')
    put("badjson.jsonl", '{"text": "a man"}\n{not json\n')
    put("dollar.txt", "price is $5 and $x^{2\n" * 3 + "a dog runs\n" * 3)
    put("afile", "just a file")
    put("sts_bad.tsv", "foo\tbar\n1\t2\n")
    put("sts_good.tsv", "sentence1\tsentence2\tscore\n"
        + "a man plays guitar\ta man plays piano\t3.5\n" * 4
        + "a dog runs\ta cat sits\t1.0\n" * 4)
    put("sts_badutf8.tsv", b"sentence1\tsentence2\tscore\na\tb\t1.0\n\xff\xfe\tc\t2.0\n")
    put("sts_empty.tsv", "")
    put("sts_badscore.tsv", "sentence1\tsentence2\tscore\na man\ta dog\tnot-a-number\n")
    put("trip_bad.tsv", "onlyone\nx\n")
    put("trip_badutf8.tsv", b"anchor\tpositive\tnegative\na\tb\tc\n\xff\tb\tc\n")
    put("trip_empty.tsv", "")
    put("para_bad.tsv", "x\n1\n")
    put("para_badutf8.tsv", b"id1\tid2\tsentence1\tsentence2\tis_duplicate\n1\t2\t\xff\tb\t1\n")
    put("nli_badutf8.tsv", b"premise\thypothesis\tlabel\na\tb\tentailment\n\xff\tb\tneutral\n")
    put("nli_bad.tsv", "foo\tbar\n1\t2\n")
    put("nli_empty.tsv", "")
    put("corrupt.sqlite", b"this is not a sqlite database at all" * 100)
    (root / "emptydir").mkdir()
    w["emptydir"] = root / "emptydir"
    # model folders that are broken in one way each
    garbage = root / "garbage_model"
    garbage.mkdir()
    (garbage / "config.json").write_text("{not json", encoding="utf-8")
    w["garbage_model"] = garbage
    for name, broken in (("bad_config", "config.json"), ("bad_tokenizer", "tokenizer.json"),
                         ("bad_modules", "modules.json")):
        copy = root / name
        shutil.copytree(tiny_model_dir, copy)
        (copy / broken).write_text("{ garbage", encoding="utf-8")
        w[name] = copy
    no_tok = root / "no_tokenizer"
    shutil.copytree(tiny_model_dir, no_tok)
    for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        (no_tok / f).unlink(missing_ok=True)
    w["no_tokenizer"] = no_tok
    foreign = root / "foreign"  # a user's folder of their own files, not a model
    foreign.mkdir()
    (foreign / "config.json").write_text('{"mine": true}', encoding="utf-8")
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    w["foreign"] = foreign
    no_weights = root / "no_weights"  # a download that stopped before the weights
    shutil.copytree(tiny_model_dir, no_weights)
    for f in no_weights.rglob("*"):
        if f.name in ("model.safetensors", "pytorch_model.bin"):
            f.unlink()
    w["no_weights"] = no_weights
    bad_onnx = root / "bad_onnx"
    shutil.copytree(tiny_model_dir, bad_onnx)
    (bad_onnx / "onnx").mkdir()
    (bad_onnx / "onnx" / "model.onnx").write_bytes(b"not an onnx graph")
    w["bad_onnx"] = bad_onnx
    # a corrupt index: folder with a garbage SQLite file
    corrupt_index = root / "corrupt_index"
    corrupt_index.mkdir()
    for fname in ("index.sqlite", "index.db", "meta.sqlite"):
        (corrupt_index / fname).write_bytes(b"garbage" * 500)
    w["corrupt_index"] = corrupt_index
    # a run folder with a garbage training state for --resume
    run = root / "run"
    ckpt = run / "checkpoints" / "step-00000001"
    ckpt.mkdir(parents=True)
    (ckpt / "training_state.pt").write_bytes(b"garbage, not a torch file")
    (run / "sbert_run.json").write_text('{"started": "2026-01-01T00:00:00+0000"}',
                                        encoding="utf-8")
    w["run"] = run
    return w


M = "--model"


def _m(w: W) -> list[str]:
    return [M, str(w["model"])]


CASES: dict[str, Case] = {
    # encode
    "encode-missing-input": lambda w: ["encode", str(w["root"] / "nope.txt"), "-o",
                                       str(w["root"] / "o.npy"), *_m(w)],
    "encode-input-is-dir": lambda w: ["encode", str(w["emptydir"]), "-o",
                                      str(w["root"] / "o.npy"), *_m(w)],
    "encode-bad-utf8-txt": lambda w: ["encode", str(w["badutf8.txt"]), "-o",
                                      str(w["root"] / "o.npy"), *_m(w)],
    "encode-bad-utf8-csv": lambda w: ["encode", str(w["badutf8.csv"]), "-c", "text", "-o",
                                      str(w["root"] / "o.npy"), *_m(w)],
    "encode-wrong-column": lambda w: ["encode", str(w["good.csv"]), "-c", "nocol", "-o",
                                      str(w["root"] / "o.npy"), *_m(w)],
    "encode-wrong-key-jsonl": lambda w: ["encode", str(w["good.jsonl"]), "-c", "nokey", "-o",
                                         str(w["root"] / "o.npy"), *_m(w)],
    "encode-bad-jsonl": lambda w: ["encode", str(w["badjson.jsonl"]), "-o",
                                   str(w["root"] / "o.npy"), *_m(w)],
    "encode-output-parent-is-file": lambda w: ["encode", str(w["good.txt"]), "-o",
                                               str(w["afile"] / "o.npy"), *_m(w)],
    "encode-unknown-output-ext": lambda w: ["encode", str(w["good.txt"]), "-o",
                                            str(w["root"] / "o.xyz"), *_m(w)],
    "encode-output-is-dir": lambda w: ["encode", str(w["good.txt"]), "-o",
                                       str(w["emptydir"]), *_m(w)],
    "encode-cuda-no-gpu": lambda w: ["encode", str(w["good.txt"]), "-o",
                                     str(w["root"] / "o.npy"), *_m(w), "--device", "cuda"],
    "encode-bad-device": lambda w: ["encode", str(w["good.txt"]), "-o",
                                    str(w["root"] / "o.npy"), *_m(w), "--device", "tpu9"],
    "encode-missing-model": lambda w: ["encode", str(w["good.txt"]), "-o",
                                       str(w["root"] / "o.npy"), M,
                                       str(w["root"] / "no_such_model")],
    "encode-garbage-model": lambda w: ["encode", str(w["good.txt"]), "-o",
                                       str(w["root"] / "o.npy"), M, str(w["garbage_model"])],
    # an output that is the input, or a folder of the user's own files: not written over
    "encode-output-is-input": lambda w: ["encode", str(w["good.jsonl"]), "-o",
                                         str(w["good.jsonl"]), *_m(w)],
    "cluster-output-is-input": lambda w: ["cluster", str(w["good.txt"]), "-o",
                                          str(w["good.txt"]), *_m(w)],
    "mine-output-is-input": lambda w: ["mine", str(w["good.jsonl"]), "-o",
                                       str(w["good.jsonl"]), *_m(w)],
    "export-into-a-foreign-folder": lambda w: ["export", "onnx", str(w["model"]),
                                               str(w["foreign"])],
    "encode-no-weights": lambda w: ["encode", str(w["good.txt"]), "-o",
                                    str(w["root"] / "o.npy"), M, str(w["no_weights"])],
    "encode-bad-config": lambda w: ["encode", str(w["good.txt"]), "-o",
                                    str(w["root"] / "o.npy"), M, str(w["bad_config"])],
    "encode-bad-tokenizer": lambda w: ["encode", str(w["good.txt"]), "-o",
                                       str(w["root"] / "o.npy"), M, str(w["bad_tokenizer"])],
    "encode-bad-modules": lambda w: ["encode", str(w["good.txt"]), "-o",
                                     str(w["root"] / "o.npy"), M, str(w["bad_modules"])],
    "encode-no-tokenizer": lambda w: ["encode", str(w["good.txt"]), "-o",
                                      str(w["root"] / "o.npy"), M, str(w["no_tokenizer"])],
    "encode-empty-model-dir": lambda w: ["encode", str(w["good.txt"]), "-o",
                                         str(w["root"] / "o.npy"), M, str(w["emptydir"])],
    "encode-bad-onnx": lambda w: ["encode", str(w["good.txt"]), "-o",
                                  str(w["root"] / "o.npy"), M, str(w["bad_onnx"]),
                                  "--backend", "onnx"],
    "encode-batch-size-zero": lambda w: ["encode", str(w["good.txt"]), "-o",
                                         str(w["root"] / "o.npy"), *_m(w), "--batch-size", "0"],
    "encode-workers-zero": lambda w: ["encode", str(w["good.txt"]), "-o",
                                      str(w["root"] / "o.npy"), *_m(w), "--workers", "0"],
    "encode-threads-zero": lambda w: ["encode", str(w["good.txt"]), "-o",
                                      str(w["root"] / "o.npy"), *_m(w), "--threads", "0"],
    # similarity
    "similarity-missing-files": lambda w: ["similarity", "--files", str(w["root"] / "a.txt"),
                                           str(w["root"] / "b.txt"), *_m(w)],
    "similarity-dir-as-file": lambda w: ["similarity", "--files", str(w["emptydir"]),
                                         str(w["good.txt"]), *_m(w)],
    "similarity-bad-utf8": lambda w: ["similarity", "--files", str(w["badutf8.txt"]),
                                      str(w["good.txt"]), *_m(w)],
    "similarity-empty-file": lambda w: ["similarity", "--files", str(w["empty.txt"]),
                                        str(w["good.txt"]), *_m(w)],
    "similarity-wrong-column": lambda w: ["similarity", "--files", str(w["good.csv"]),
                                          str(w["good.csv"]), "-c", "nocol", *_m(w)],
    "similarity-unknown-function": lambda w: ["similarity", "a", "b", "-f", "nope", *_m(w)],
    "similarity-missing-model": lambda w: ["similarity", "a", "b", M,
                                           str(w["root"] / "no_such_model")],
    "similarity-cuda-no-gpu": lambda w: ["similarity", "a", "b", *_m(w), "--device", "cuda"],
    # info
    "info-missing-model": lambda w: ["info", M, str(w["root"] / "no_such_model")],
    "info-garbage-model": lambda w: ["info", M, str(w["garbage_model"])],
    "info-bad-modules": lambda w: ["info", M, str(w["bad_modules"])],
    "info-model-is-file": lambda w: ["info", M, str(w["afile"])],
    # export onnx
    "export-missing-model": lambda w: ["export", "onnx", str(w["root"] / "no_such_model"),
                                       str(w["root"] / "onnx_out")],
    "export-garbage-model": lambda w: ["export", "onnx", str(w["garbage_model"]),
                                       str(w["root"] / "onnx_out")],
    "export-out-parent-is-file": lambda w: ["export", "onnx", str(w["model"]),
                                            str(w["afile"] / "out")],
    "export-opset-too-low": lambda w: ["export", "onnx", str(w["model"]),
                                       str(w["root"] / "onnx_out"), "--opset", "3"],
    "export-bad-quantize": lambda w: ["export", "onnx", str(w["model"]),
                                      str(w["root"] / "onnx_out"), "--quantize", "int4"],
    # mine
    "mine-missing-input": lambda w: ["mine", str(w["root"] / "nope.txt"), *_m(w)],
    "mine-input-is-dir": lambda w: ["mine", str(w["emptydir"]), *_m(w)],
    "mine-bad-utf8": lambda w: ["mine", str(w["badutf8.txt"]), *_m(w)],
    "mine-empty-file": lambda w: ["mine", str(w["empty.txt"]), *_m(w)],
    "mine-wrong-column": lambda w: ["mine", str(w["good.csv"]), "-c", "nocol", *_m(w)],
    "mine-output-parent-is-file": lambda w: ["mine", str(w["good.txt"]), "-o",
                                             str(w["afile"] / "pairs.tsv"), *_m(w)],
    "mine-top-zero": lambda w: ["mine", str(w["good.txt"]), "--top", "0", *_m(w)],
    "mine-cuda-no-gpu": lambda w: ["mine", str(w["good.txt"]), *_m(w), "--device", "cuda"],
    # cluster
    "cluster-missing-input": lambda w: ["cluster", str(w["root"] / "nope.txt"), *_m(w)],
    "cluster-input-is-dir": lambda w: ["cluster", str(w["emptydir"]), *_m(w)],
    "cluster-bad-utf8": lambda w: ["cluster", str(w["badutf8.txt"]), *_m(w), "--no-plot"],
    "cluster-empty-file": lambda w: ["cluster", str(w["empty.txt"]), *_m(w), "--no-plot"],
    "cluster-wrong-column": lambda w: ["cluster", str(w["good.csv"]), "-c", "nocol", *_m(w),
                                       "--no-plot"],
    "cluster-unknown-method": lambda w: ["cluster", str(w["good.txt"]), "--method", "magic",
                                         *_m(w)],
    "cluster-k-zero": lambda w: ["cluster", str(w["good.txt"]), "-k", "0", *_m(w)],
    "cluster-unknown-plot-ext": lambda w: ["cluster", str(w["good.txt"]), "--plot",
                                           str(w["root"] / "map.xyz"), *_m(w)],
    "cluster-plot-parent-is-file": lambda w: ["cluster", str(w["good.txt"]), "--plot",
                                              str(w["afile"] / "map.png"), "-o",
                                              str(w["root"] / "c.jsonl"), *_m(w)],
    "cluster-output-parent-is-file": lambda w: ["cluster", str(w["good.txt"]), "-o",
                                                str(w["afile"] / "c.csv"), *_m(w), "--no-plot"],
    "cluster-too-many-clusters": lambda w: ["cluster", str(w["good.txt"]), "--method",
                                            "kmeans", "-k", "50", *_m(w), "--no-plot"],
    # index
    "index-create-missing-model": lambda w: ["index", "create", str(w["root"] / "ix1"), M,
                                             str(w["root"] / "no_such_model")],
    "index-create-parent-is-file": lambda w: ["index", "create", str(w["afile"] / "ix"),
                                              *_m(w)],
    "index-create-connectivity-1": lambda w: ["index", "create", str(w["root"] / "ix2"),
                                              *_m(w), "--connectivity", "1"],
    "index-add-missing-index": lambda w: ["index", "add", str(w["root"] / "no_index"),
                                          str(w["good.txt"])],
    "index-add-corrupt-index": lambda w: ["index", "add", str(w["corrupt_index"]),
                                          str(w["good.txt"])],
    "index-add-corrupt-sqlite-file": lambda w: ["index", "add", str(w["corrupt.sqlite"]),
                                                str(w["good.txt"])],
    "index-search-missing-index": lambda w: ["index", "search", str(w["root"] / "no_index"),
                                             "a query"],
    "index-search-corrupt-index": lambda w: ["index", "search", str(w["corrupt_index"]),
                                             "a query"],
    "index-info-missing-index": lambda w: ["index", "info", str(w["root"] / "no_index")],
    "index-info-corrupt-index": lambda w: ["index", "info", str(w["corrupt_index"])],
    "index-info-file-as-index": lambda w: ["index", "info", str(w["corrupt.sqlite"])],
    # search
    "search-missing-index": lambda w: ["search", "a query", "--index",
                                       str(w["root"] / "no_index")],
    "search-corrupt-index": lambda w: ["search", "a query", "--index", str(w["corrupt_index"])],
    "search-corrupt-sqlite-file": lambda w: ["search", "a query", "--index",
                                             str(w["corrupt.sqlite"])],
    # train
    "train-missing-train-file": lambda w: ["train", "-r", "sts", *_m(w), "--train",
                                           str(w["root"] / "nope.tsv"), "-o",
                                           str(w["root"] / "t1"), "--device", "cpu"],
    "train-unknown-recipe": lambda w: ["train", "-r", "magic", *_m(w), "--train",
                                       str(w["sts_bad.tsv"]), "-o", str(w["root"] / "t2")],
    "train-sts-wrong-columns": lambda w: ["train", "-r", "sts", *_m(w), "--train",
                                          str(w["sts_bad.tsv"]), "-o", str(w["root"] / "t3"),
                                          "--device", "cpu"],
    "train-sts-bad-utf8": lambda w: ["train", "-r", "sts", *_m(w), "--train",
                                     str(w["sts_badutf8.tsv"]), "-o", str(w["root"] / "t4"),
                                     "--device", "cpu"],
    "train-nli-bad-utf8": lambda w: ["train", "-r", "nli-softmax", *_m(w), "--train",
                                     str(w["nli_badutf8.tsv"]), "-o", str(w["root"] / "t5"),
                                     "--device", "cpu"],
    "train-nli-wrong-columns": lambda w: ["train", "-r", "nli-mnrl", *_m(w), "--train",
                                          str(w["nli_bad.tsv"]), "-o", str(w["root"] / "t6"),
                                          "--device", "cpu"],
    "train-nli-empty": lambda w: ["train", "-r", "nli-mnrl", *_m(w), "--train",
                                  str(w["nli_empty.tsv"]), "-o", str(w["root"] / "t7"),
                                  "--device", "cpu"],
    "train-output-parent-is-file": lambda w: ["train", "-r", "sts", *_m(w), "--train",
                                              str(w["sts_good.tsv"]), "-o",
                                              str(w["afile"] / "out"), "--device", "cpu"],
    "train-cuda-no-gpu": lambda w: ["train", "-r", "sts", *_m(w), "--train",
                                    str(w["sts_good.tsv"]), "-o", str(w["root"] / "t8"),
                                    "--device", "cuda"],
    "train-resume-corrupt-state": lambda w: ["train", "-r", "sts", *_m(w), "--train",
                                             str(w["sts_good.tsv"]), "-o", str(w["run"]),
                                             "--resume", "--device", "cpu"],
    "train-missing-model": lambda w: ["train", "-r", "sts", M, str(w["root"] / "no_model"),
                                      "--train", str(w["sts_good.tsv"]), "-o",
                                      str(w["root"] / "t9"), "--device", "cpu"],
    "train-bad-max-seq-length": lambda w: ["train", "-r", "sts", *_m(w), "--train",
                                           str(w["sts_bad.tsv"]), "-o", str(w["root"] / "t10"),
                                           "--max-seq-length", "1"],
    # eval sts
    "eval-sts-missing-data": lambda w: ["eval", "sts", *_m(w), "--data",
                                        str(w["root"] / "nope.tsv"), "--device", "cpu"],
    "eval-sts-empty-dir": lambda w: ["eval", "sts", *_m(w), "--data", str(w["emptydir"]),
                                     "--device", "cpu"],
    "eval-sts-wrong-columns": lambda w: ["eval", "sts", *_m(w), "--data", str(w["sts_bad.tsv"]),
                                         "--device", "cpu"],
    "eval-sts-bad-utf8": lambda w: ["eval", "sts", *_m(w), "--data",
                                    str(w["sts_badutf8.tsv"]), "--device", "cpu"],
    "eval-sts-empty-file": lambda w: ["eval", "sts", *_m(w), "--data",
                                      str(w["sts_empty.tsv"]), "--device", "cpu"],
    "eval-sts-bad-score": lambda w: ["eval", "sts", *_m(w), "--data",
                                     str(w["sts_badscore.tsv"]), "--device", "cpu"],
    "eval-sts-missing-model": lambda w: ["eval", "sts", M, str(w["root"] / "no_model"),
                                         "--data", str(w["sts_good.tsv"])],
    "eval-sts-limit-one": lambda w: ["eval", "sts", *_m(w), "--data", str(w["sts_bad.tsv"]),
                                     "--limit", "1"],
    # eval transfer
    "eval-transfer-missing-data": lambda w: ["eval", "transfer", *_m(w), "--data",
                                             str(w["root"] / "nope"), "--device", "cpu"],
    "eval-transfer-empty-dir": lambda w: ["eval", "transfer", *_m(w), "--data",
                                          str(w["emptydir"]), "--device", "cpu"],
    "eval-transfer-unknown-task": lambda w: ["eval", "transfer", *_m(w), "--data",
                                             str(w["emptydir"]), "--tasks", "NOPE",
                                             "--device", "cpu"],
    # eval triplet
    "eval-triplet-missing-data": lambda w: ["eval", "triplet", *_m(w), "--data",
                                            str(w["root"] / "nope.tsv"), "--device", "cpu"],
    "eval-triplet-empty-dir": lambda w: ["eval", "triplet", *_m(w), "--data",
                                         str(w["emptydir"]), "--device", "cpu"],
    "eval-triplet-wrong-columns": lambda w: ["eval", "triplet", *_m(w), "--data",
                                             str(w["trip_bad.tsv"]), "--device", "cpu"],
    "eval-triplet-bad-utf8": lambda w: ["eval", "triplet", *_m(w), "--data",
                                        str(w["trip_badutf8.tsv"]), "--device", "cpu"],
    "eval-triplet-empty-file": lambda w: ["eval", "triplet", *_m(w), "--data",
                                          str(w["trip_empty.tsv"]), "--device", "cpu"],
    # eval paraphrase
    "eval-paraphrase-missing-data": lambda w: ["eval", "paraphrase", *_m(w), "--data",
                                               str(w["root"] / "nope.tsv"), "--device", "cpu"],
    "eval-paraphrase-wrong-columns": lambda w: ["eval", "paraphrase", *_m(w), "--data",
                                                str(w["para_bad.tsv"]), "--device", "cpu"],
    "eval-paraphrase-bad-utf8": lambda w: ["eval", "paraphrase", *_m(w), "--data",
                                           str(w["para_badutf8.tsv"]), "--device", "cpu"],
    "eval-paraphrase-top-k-zero": lambda w: ["eval", "paraphrase", *_m(w), "--data",
                                             str(w["para_bad.tsv"]), "--top-k", "0"],
}


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_error_line(name: str, ws: W, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ws["root"])  # default outputs (cluster's JSONL) stay out of the repo
    args = CASES[name](ws)
    code, _out, err = run_cli(args, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, f"{name}: {err}"
    assert code == 2, f"{name}: exit {code}, stderr: {err}"
    assert len(lines) == 1, f"{name}: stderr has {len(lines)} lines: {err}"
    assert lines[0].startswith("Error:") and len(lines[0]) > len("Error: "), lines[0]
