"""``sbert train -o``: a user's folder is never overwritten, one run at a time holds a folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sbert.errors import UsageError
from sbert.training.run_folder import LOCK, MARKER, check_output, lock_folder
from tests.conftest import run_cli
from tests.training.test_train_cli import _files


def _train(model: Path, out: Path, data: Path, *extra: str) -> list[str]:
    return ["train", "-r", "sts", "-m", str(model), "--train", str(data), "-o", str(out),
            "--batch-size", "4", "--epochs", "1", "-q", "--checkpoint-steps", "0", *extra]


def test_a_users_folder_is_refused_and_left_as_it_was(tiny_model_dir, tmp_path, capsys) -> None:
    _, sts = _files(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes", encoding="utf-8")
    (out / "config.json").write_text("{}", encoding="utf-8")
    code, _, err = run_cli(_train(tiny_model_dir, out, sts), capsys)
    assert code == 2 and "not an sbert run folder" in err and "--overwrite" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json"]
    assert (out / "README.md").read_text(encoding="utf-8") == "my notes"
    # --overwrite writes there all the same, and the folder becomes a run folder
    code, _, err = run_cli(_train(tiny_model_dir, out, sts, "--overwrite"), capsys)
    assert code == 0, err
    assert (out / MARKER).is_file() and (out / "model.safetensors").is_file()


def test_output_in_the_start_model_is_refused(tiny_model_dir, tmp_path, capsys) -> None:
    import shutil

    _, sts = _files(tmp_path)
    start = tmp_path / "start"
    shutil.copytree(tiny_model_dir, start)
    before = {p: p.read_bytes() for p in start.rglob("*") if p.is_file()}
    for out, flags in ((start, ["--overwrite"]), (start / "sub", []), (start, ["--resume"])):
        code, _, err = run_cli(_train(start, out, sts, *flags), capsys)
        assert code == 2 and "start model" in err, (out, flags, err)
    assert {p: p.read_bytes() for p in start.rglob("*") if p.is_file()} == before
    with pytest.raises(UsageError, match="inside --output"):
        check_output(tmp_path, start)


def test_resume_needs_a_run_folder(tiny_model_dir, tmp_path, capsys) -> None:
    _, sts = _files(tmp_path)
    for out in (tmp_path / "missing", tmp_path):
        code, _, err = run_cli(_train(tiny_model_dir, out, sts, "--resume"), capsys)
        assert code == 2 and "--resume needs a run folder" in err
    assert not (tmp_path / "missing").exists()


def test_a_finished_run_needs_resume_or_overwrite(tiny_model_dir, tmp_path, capsys) -> None:
    _, sts = _files(tmp_path)
    out = tmp_path / "run"
    assert run_cli(_train(tiny_model_dir, out, sts, "--checkpoint-steps", "2"), capsys)[0] == 0
    code, _, err = run_cli(_train(tiny_model_dir, out, sts), capsys)
    assert code == 2 and "holds a run" in err
    # --overwrite starts over: the old run's checkpoints and log go, the new run's come
    (out / "checkpoints" / "checkpoint-999").mkdir()
    code, _, err = run_cli(_train(tiny_model_dir, out, sts, "--overwrite"), capsys)
    assert code == 0, err
    assert not (out / "checkpoints").exists()
    assert len((out / "training_log.jsonl").read_text(encoding="utf-8").splitlines()) >= 1


def test_lock_is_exclusive_and_released(tmp_path) -> None:
    with lock_folder(tmp_path / "run"):
        with pytest.raises(UsageError, match="in use by another sbert train run"):
            with lock_folder(tmp_path / "run"):
                pass
    with lock_folder(tmp_path / "run"):  # released at the end of the block
        pass
    assert (tmp_path / "run" / LOCK).exists()


def test_a_second_run_into_a_locked_folder_fails_at_once(tiny_model_dir, tmp_path,
                                                          capsys) -> None:
    _, sts = _files(tmp_path)
    out = tmp_path / "run"
    with lock_folder(out):
        code, _, err = run_cli(_train(tiny_model_dir, out, sts), capsys)
    assert code == 2 and "in use by another sbert train run" in err
    assert err.count("\n") == 1
    assert not (out / MARKER).exists()


def test_a_later_ddp_rank_leaves_the_folder_check_to_rank_0(tiny_model_dir, tmp_path, capsys,
                                                            monkeypatch) -> None:
    """Under torchrun every rank runs the CLI; rank 0 alone checks and locks the folder. A
    later rank whose check came after rank 0 had taken the lock failed the run, saying the
    folder was in use by another run (its own rank 0)."""
    import sbert.training.recipes as recipes

    _, sts = _files(tmp_path)
    out = tmp_path / "run"

    def reached(*args: object, **kwargs: object) -> None:
        raise UsageError("reached the recipe")

    monkeypatch.setattr(recipes, "run_recipe", reached)
    with lock_folder(out):  # as rank 0 holds it while it trains
        monkeypatch.setenv("RANK", "1")
        code, _, err = run_cli(_train(tiny_model_dir, out, sts), capsys)
        assert code == 2 and "reached the recipe" in err, err
        monkeypatch.setenv("RANK", "0")  # rank 0 (and a run without torchrun) still checks
        code, _, err = run_cli(_train(tiny_model_dir, out, sts), capsys)
        assert code == 2 and "in use by another sbert train run" in err, err


def test_two_checks_at_once_do_not_take_each_other_for_a_run(tmp_path) -> None:
    """The check probes the lock; a probe held at that moment (another rank's, or another
    command's) is not a run. A 2-process resume test failed 1 time in 25 this way: its two
    ranks probed together, and one was told the folder was in use by the killed run."""
    import fcntl
    import os

    out = tmp_path / "run"
    with lock_folder(out):
        pass  # a run that ended: the lock file stays
    fd = os.open(out / LOCK, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what a probe holds for a moment
        check_output(out, tmp_path / "model", resume=False, overwrite=True)
    finally:
        os.close(fd)
    with lock_folder(out), pytest.raises(UsageError, match="in use by another sbert train"):
        check_output(out, tmp_path / "model", resume=False, overwrite=True)  # a run: refused


def test_lock_held_by_another_process_is_released_when_it_is_killed(tmp_path) -> None:
    out = tmp_path / "run"
    code = ("import sys, time\nfrom sbert.training.run_folder import lock_folder\n"
            f"with lock_folder({str(out)!r}):\n    print('locked', flush=True)\n"
            "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(UsageError, match=rf"process {proc.pid}\)"):
            with lock_folder(out):
                pass
    finally:
        proc.kill()
        proc.wait()
    with lock_folder(out):  # SIGKILL released it
        pass


def test_a_locked_run_folder_is_refused_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER).write_text("{}", encoding="utf-8")
    missing = tmp_path / "missing.tsv"  # reading it would fail: the lock is checked first
    with lock_folder(out):
        for flags in ([], ["--resume"], ["--overwrite"]):
            code, _, err = run_cli(_train(tmp_path, out, missing, *flags), capsys)
            assert code == 2 and "in use by another sbert train run" in err, (flags, err)


def test_run_recipe_checks_the_output_before_reading_anything(tiny_model_dir, tmp_path) -> None:
    from sbert.training.recipes import run_recipe

    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match="not an sbert run folder"):
        run_recipe("sts", tiny_model_dir, [tmp_path / "missing.tsv"], tmp_path)
    with pytest.raises(UsageError, match="start model"):
        run_recipe("sts", tiny_model_dir, [tmp_path / "missing.tsv"], tiny_model_dir,
                   overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_run_from_before_the_marker_is_a_run_folder(tmp_path) -> None:
    from sbert.training.run_folder import is_run_folder

    (tmp_path / "checkpoints").mkdir()
    assert not is_run_folder(tmp_path)
    (tmp_path / "training_log.jsonl").write_text("", encoding="utf-8")
    assert is_run_folder(tmp_path)
    check_output(tmp_path, "all-MiniLM-L6-v2", resume=True)
    with pytest.raises(UsageError, match="holds a run"):
        check_output(tmp_path, "all-MiniLM-L6-v2")
