"""Training with torch DDP: real 2-process gloo runs on loopback, compared with one process.

Every objective trained by 2 processes must give the loss curve and weights of one process
with the same (global) batch size; a run killed with SIGKILL and resumed must end where an
uninterrupted run ends; rank 0 alone writes. The tiny model has dropout 0, so runs are
deterministic.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sbert.training import distributed
from tests.training.conftest import NLI_IDS, PAIRS

ROOT = Path(__file__).resolve().parents[2]
OBJECTIVES = ("mnrl", "cosine", "softmax", "cosent", "multi")
# the same tiny model every test starts from, dropout off (deterministic runs)
_DROPOUT = ("hidden_dropout_prob", "attention_probs_dropout_prob")


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "model"
    shutil.copytree(tiny_model_dir, path)
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    config.update(dict.fromkeys(_DROPOUT, 0.0))
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    return env


# -- the objectives, trained by one process or by each rank of a torchrun job ----------------
def _tasks(name: str, encoder: Any) -> list[Any]:
    """Batches of 4 with 9 or 11 rows: last batches of 1 (a rank on a stand-in row) or 3."""
    from sbert.training.data import Examples
    from sbert.training.losses import (
        CoSENTLoss,
        CosineSimilarityLoss,
        MultipleNegativesRankingLoss,
        SoftmaxLoss,
    )
    from sbert.training.trainer import TrainTask

    first, second = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    sts = Examples([first[:9], second[:9]], [p[3] / 5 for p in PAIRS][:9])
    nli = Examples([first[:11], second[:11]], [float(NLI_IDS[p[2]]) for p in PAIRS][:11])
    n = len(PAIRS)  # a negative is another row's positive: no-duplicate batches are uneven
    triplets = Examples([first, second, [PAIRS[(i + 3) % n][1] for i in range(n)]])
    net = encoder.network
    softmax = SoftmaxLoss(net, encoder.dimension, 3)
    return {
        "mnrl": [TrainTask(triplets, MultipleNegativesRankingLoss(net), no_duplicates=True)],
        "cosine": [TrainTask(sts, CosineSimilarityLoss(net))],
        "softmax": [TrainTask(nli, softmax)],
        "cosent": [TrainTask(sts, CoSENTLoss(net))],
        "multi": [TrainTask(nli, softmax), TrainTask(sts, CosineSimilarityLoss(net))],
    }[name]


def train_objective(name: str, model: Path, out: Path) -> dict[str, torch.Tensor]:
    """Train one objective (2 epochs, batch 4, every step logged); return all weights."""
    from sbert.encoder import SentenceEncoder
    from sbert.training.checkpoint import seed_everything
    from sbert.training.trainer import TrainConfig, Trainer

    seed_everything(0)
    encoder = SentenceEncoder(model, device="cpu")
    tasks = _tasks(name, encoder)
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-3, warmup=0.2, seed=7, log_steps=1,
                         show_progress=False)
    Trainer(encoder, tasks, config, out).train()
    weights = {f"net.{k}": v for k, v in encoder.network.state_dict().items()}
    for i, task in enumerate(tasks):
        weights.update({f"loss{i}.{k}": v for k, v in task.loss.state_dict().items()
                        if not k.startswith("model.")})
    return {k: v.detach().clone() for k, v in weights.items()}


def _worker(model: str, out: str) -> None:  # runs in each torchrun process
    distributed.init_from_env("cpu")
    for name in OBJECTIVES:
        weights = train_objective(name, Path(model), Path(out) / name)
        if distributed.is_main():
            torch.save(weights, Path(out) / name / "weights.pt")
    distributed.destroy()


def _log(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "training_log.jsonl").open(encoding="utf-8")]


def _worst(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_processes_train_as_one_with_the_global_batch(model_dir: Path,
                                                          tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text("import sys\nfrom tests.training.test_ddp import _worker\n"
                      "_worker(sys.argv[1], sys.argv[2])\n", encoding="utf-8")
    ddp = tmp_path / "ddp"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(script), str(model_dir), str(ddp)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in OBJECTIVES:
        one = train_objective(name, model_dir, tmp_path / "one" / name)
        two = torch.load(ddp / name / "weights.pt", weights_only=True)
        assert _worst(one, two) <= 1e-5, name
        log_one, log_two = _log(tmp_path / "one" / name), _log(ddp / name)
        # rank 0 alone writes the log: one line per step, no duplicates
        assert [e["step"] for e in log_two] == [e["step"] for e in log_one]
        assert [e["step"] for e in log_two] == list(range(1, len(log_two) + 1))
        losses = np.array([[e["loss"] for e in log] for log in (log_one, log_two)])
        assert np.abs(losses[0] - losses[1]).max() <= 1e-5, name
        assert not (ddp / name / "checkpoints").exists()
    # the runs moved the weights, so the comparisons above mean something
    from sbert.encoder import SentenceEncoder

    untrained = SentenceEncoder(model_dir, device="cpu").network.state_dict()
    trained = torch.load(ddp / "mnrl" / "weights.pt", weights_only=True)
    assert max(float((trained[f"net.{k}"] - v).abs().max()) for k, v in untrained.items()) > 1e-3


def _train_args(model: Path, sts: Path, out: Path) -> list[str]:
    # 8 copies of 12 pairs, batch 4: 24 steps an epoch, 6 epochs; a checkpoint every 12 steps
    return ["train", "-r", "sts", "-m", str(model), "--train", *[str(sts)] * 8, "-o", str(out),
            "--batch-size", "4", "--epochs", "6", "--lr", "1e-3", "--log-steps", "1",
            "--checkpoint-steps", "12", "--device", "cpu", "-q"]


def _sts_file(tmp_path: Path) -> Path:
    sts = tmp_path / "sts.tsv"
    sts.write_text("sentence1\tsentence2\tscore\n" + "".join(
        f"{p}\t{h}\t{score}\n" for p, h, _, score in PAIRS), encoding="utf-8")
    return sts


def _processes_naming(text: str) -> list[int]:
    """Ids of live processes whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (proc / "status").read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if text in cmdline and "State:\tZ" not in status:
            found.append(int(proc.name))
    return found


def _lock_is_free(folder: Path) -> bool:
    """Whether no process holds ``sbert train``'s lock on ``folder`` (the run's own probe)."""
    from sbert.errors import UsageError
    from sbert.training.run_folder import _check_not_locked

    try:
        _check_not_locked(folder)
    except UsageError:
        return False
    return True


def test_a_killed_ddp_run_resumes_exactly(model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from sbert.cli.main import main
    from sbert.training.checkpoint import list_checkpoints

    sts = _sts_file(tmp_path)
    out = tmp_path / "killed-run"
    cmd = [sys.executable, "-m", "sbert", *_train_args(model_dir, sts, out), "--nproc", "2"]
    launcher = subprocess.Popen(cmd, cwd=ROOT, env=_env(), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not list_checkpoints(out / "checkpoints") and launcher.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.02)
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)  # the launcher's process group: torchrun
        _, err = launcher.communicate()
    assert launcher.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert not (out / "model.safetensors").exists()  # killed before the end
    # the workers (in sessions of their own) die with their launcher
    deadline = time.monotonic() + 20
    while _processes_naming(str(out)):
        assert time.monotonic() < deadline, f"orphaned workers {_processes_naming(str(out))}"
        time.sleep(0.1)
    # a killed worker's command line reads empty once its main thread is gone, while another
    # of its threads (one in the middle of a checkpoint's fsync) still holds the run's lock:
    # CI once resumed in that window and was told, rightly, that the folder was in use
    while not _lock_is_free(out):
        assert time.monotonic() < deadline, "the killed run's lock was never released"
        time.sleep(0.1)
    resumed = subprocess.run(cmd + ["--resume"], cwd=ROOT, env=_env(), capture_output=True,
                             text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "trained 96 examples x 6 epochs (144 steps" in resumed.stdout
    assert resumed.stdout.count("trained 96") == 1  # rank 0 alone reports

    whole = tmp_path / "whole-run"
    main(_train_args(model_dir, sts, whole))  # one process, never interrupted
    one, two = load_file(whole / "model.safetensors"), load_file(out / "model.safetensors")
    assert _worst(one, two) <= 1e-5
    steps = [e["step"] for e in _log(out)]
    assert steps == list(range(1, 145))  # the lost steps were redone, no line twice
    losses = np.array([[e["loss"] for e in _log(folder)] for folder in (whole, out)])
    assert np.abs(losses[0] - losses[1]).max() <= 1e-5
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == [
        "step-00000132", "step-00000144"]


def test_shards_split_every_global_batch() -> None:
    assert distributed.shard_sizes(4, 2) == [2, 2]
    assert distributed.shard_sizes(3, 2) == [2, 1]
    assert distributed.shard_sizes(1, 2) == [1, 0]
    for sizes in ([2, 2], [2, 1], [1, 0], [3, 3, 2]):
        shards = [distributed.BatchShard(tuple(sizes), r) for r in range(len(sizes))]
        assert sum(s.weight for s in shards) == pytest.approx(len(sizes))
        assert [s.offset for s in shards] == [sum(sizes[:r]) for r in range(len(sizes))]
    # one process: everything is its own, and gathering is the identity
    shard, rows = distributed.split_batch(np.arange(5))
    assert shard.weight == 1 and rows.tolist() == [0, 1, 2, 3, 4]
    t = torch.ones(3, 2)
    assert distributed.gather_with_grad(t) is t and distributed.row_offset() == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--nproc", "3"], "--batch-size 4 is the global batch, split among 3 processes"),
    (["--nproc", "2", "--device", "cuda"], "needs 2 CUDA devices"),
    (["--nproc", "2", "--device", "cuda:1"], "pass --device cuda"),
])
def test_nproc_user_errors(model_dir: Path, tmp_path: Path, capsys, args: list[str],
                           message: str) -> None:
    from sbert.cli.main import main

    if "cuda" in args and torch.cuda.device_count() >= 2:
        pytest.skip("this machine has 2 GPUs")
    sts = _sts_file(tmp_path)
    base = [a for a in _train_args(model_dir, sts, tmp_path / "o") if a not in ("--device", "cpu")]
    with pytest.raises(SystemExit) as exit_info:
        main([*base, *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before anything started
