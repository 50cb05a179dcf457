"""The entry point: how ``sbert`` ends when the reader of its output goes away."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sbert.cli.main import EXIT_OUTPUT_CLOSED
from tests.conftest import WORDS

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONUNBUFFERED", None)  # stdout block-buffered, as in a user's shell
    return env


def _quiet(err: str) -> None:
    for noise in ("Traceback", "Exception ignored", "BrokenPipeError"):
        assert noise not in err, err


@pytest.mark.parametrize("command", [["mine", "{file}", "-n", "20000"],
                                     ["similarity", "--files", "{file}", "{file}"]])
def test_a_reader_that_stops_early_ends_sbert_quietly(tiny_model_dir: Path, tmp_path: Path,
                                                      command: list[str]) -> None:
    """`sbert mine big.txt | head -1`: far more output than a pipe holds, the reader reads one
    line and leaves; before, click's own handler ended it with status 1, an error."""
    text = tmp_path / "many.txt"
    tail = " music" * 100  # 300 lines of 600 characters: 360 kB of pairs, more than a pipe
    text.write_text("".join(f"the {a} {b} {c}{tail}\n" for a in WORDS[:10]
                            for b in WORDS[10:20] for c in WORDS[20:23]), encoding="utf-8")
    args = [arg.format(file=text) for arg in command]
    proc = subprocess.Popen([sys.executable, "-m", "sbert", *args, "-m", str(tiny_model_dir)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.readline()
        proc.stdout.close()  # as `head -1` does
        err = proc.stderr.read().decode()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_OUTPUT_CLOSED, err
    _quiet(err)


# a command whose last lines stay in stdout's buffer until the interpreter exits; it waits
# (for stdin's end) until the reader has gone
LATE_WRITER = """
import sys, click
from sbert.cli import main as entry

@click.command()
def late() -> None:
    print("first", flush=True)
    sys.stdin.read()
    sys.stdout.write("more\\n" * 100)

module = type(sys)("late_module")
module.late = late
sys.modules["late_module"] = module
entry.COMMANDS["late"] = "late_module:late"
entry.main(["late"])
"""


def test_output_left_for_the_exit_flush_ends_quietly() -> None:
    """Text still buffered when the command returns fails at the interpreter's exit flush:
    before, 'Exception ignored ... BrokenPipeError' and status 120."""
    proc = subprocess.Popen([sys.executable, "-c", LATE_WRITER], env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.readline() == b"first\n"
        proc.stdout.close()
        proc.stdin.close()  # now the command writes into the closed pipe
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_OUTPUT_CLOSED, err
    _quiet(err)
