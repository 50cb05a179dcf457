"""The output folder of ``sbert train``: recognised, refused when it is a user's, locked.

A run folder is one that ``sbert train`` made: it holds :data:`MARKER`, written when the run
starts. Training never writes into a non-empty folder that is not a run folder (unless asked
to overwrite), nor into or around its own start model, and one run at a time holds a folder:
an ``flock`` on :data:`LOCK` inside it, which the system releases when the process ends, even
when it is killed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sbert.errors import UsageError
from sbert.files import write_json
from sbert.training.log import LOG_FILE

MARKER = "sbert_run.json"
LOCK = ".sbert_run.lock"
BOOKKEEPING = (MARKER, LOCK)  # files that do not make a folder "non-empty"
RUN_ARTEFACTS = ("checkpoints", LOG_FILE)  # what a fresh run clears in its folder


def is_run_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder that ``sbert train`` wrote.

    It holds :data:`MARKER`, or, for runs started before the marker, both a training log and
    a ``checkpoints`` folder.
    """
    path = Path(path)
    legacy = (path / LOG_FILE).is_file() and (path / "checkpoints").is_dir()
    return (path / MARKER).is_file() or legacy


def check_output(output: str | Path, model: str | Path, *, resume: bool = False,
                 overwrite: bool = False) -> None:
    """Raise :class:`UsageError` unless a run may write into ``output``; writes nothing
    (where ``output`` does not exist yet, an empty folder is made and removed beside it).

    Args:
        output: the run's output folder.
        model: the start model (a folder, or a bundled name / hub id, which is not checked).
        resume: continue the run in ``output`` (which must be a run folder).
        overwrite: write into a non-empty folder all the same.
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file; give a folder")
    if not output.exists():
        _check_creatable(output)
    _check_not_locked(output)
    _check(output, Path(model), resume, overwrite)


def _check_creatable(output: Path) -> None:
    """Refuse an output folder that cannot be made: a file on its path, or a parent where
    nothing can be written (found by making and removing an empty folder there)."""
    parent = output.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--output {output}: {parent} is a file, so the folder cannot be "
                         "made; choose another path")
    try:
        probe = tempfile.mkdtemp(prefix=".sbert-probe-", dir=parent)
    except OSError as err:
        raise UsageError(f"--output {output}: nothing can be written in {parent} "
                         f"({err.strerror or err}); choose another path") from None
    os.rmdir(probe)


def _check(output: Path, model: Path, resume: bool, overwrite: bool) -> None:
    _check_apart_from_model(output, model)
    if resume:
        if not is_run_folder(output):
            raise UsageError(f"--resume needs a run folder that sbert train wrote; {output} is "
                             f"not one (no {MARKER}); drop --resume to start a new run")
        return
    if overwrite or not output.is_dir():
        return
    own = [p.name for p in sorted(output.iterdir()) if p.name not in BOOKKEEPING]
    if not own:
        return
    if is_run_folder(output):
        raise UsageError(f"{output} holds a run; pass --resume to continue it, --overwrite to "
                         "start it over, or pick a new --output")
    shown = ", ".join(own[:3]) + (", ..." if len(own) > 3 else "")
    raise UsageError(f"{output} is not empty ({shown}) and not an sbert run folder; pick a new "
                     "--output, or pass --overwrite to write over its files")


def _check_apart_from_model(output: Path, model: Path) -> None:
    if not model.is_dir():
        return  # a bundled model or a hub id: never a folder the user gave
    out, start = output.resolve(), model.resolve()
    if out == start or start in out.parents:
        raise UsageError(f"--output {output} is inside the start model's folder {model}; the "
                         "run would overwrite its own start model; pick another --output")
    if out in start.parents:
        raise UsageError(f"the start model {model} is inside --output {output}; pick another "
                         "--output")


def _in_use(folder: Path, fd: int) -> UsageError:
    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
    return UsageError(f"{folder} is in use by another sbert train run (process {holder}); wait "
                      "for it to end or pick another --output")


def _check_not_locked(folder: Path) -> None:
    """Raise :class:`UsageError` if a run holds ``folder``'s lock.

    The probe takes a shared lock, which only a run's exclusive one refuses: two probes at
    the same moment (the ranks of one torchrun job starting together) do not take each
    other for a run.
    """
    import fcntl

    if not (folder / LOCK).is_file():
        return
    fd = os.open(folder / LOCK, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _in_use(folder, fd) from None
    finally:
        os.close(fd)  # releases the probe's lock


@contextmanager
def lock_folder(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created) for the block; fail at once if held.

    The lock is an ``flock`` on :data:`LOCK` inside the folder, released when the block ends
    or the process dies. Raises :class:`UsageError` naming the holder's process id.
    """
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(folder, fd) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield folder
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def run_folder(output: str | Path, model: str | Path, *, resume: bool = False,
               overwrite: bool = False, info: dict[str, Any] | None = None) -> Iterator[Path]:
    """Lock ``output`` for a run, check it again under the lock, and mark it as a run folder.

    A fresh run (not ``resume``) clears the checkpoints and log a previous run left there and
    writes :data:`MARKER` with ``info``.
    """
    output = Path(output)
    with lock_folder(output):
        _check(output, Path(model), resume, overwrite)  # again: another run may have ended
        if not resume:
            if is_run_folder(output):
                for name in RUN_ARTEFACTS:
                    path = output / name
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink(missing_ok=True)
            write_json(output / MARKER, {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                         **(info or {})})
        yield output
