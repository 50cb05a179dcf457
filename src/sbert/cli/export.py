"""``sbert export onnx``: write a model folder with an ONNX graph (and int8 ones)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from sbert.errors import UsageError

# the int8 targets (sbert.folder.INT8_TARGETS) and "all"; spelled out so --help needs no import
TARGETS = ("avx512_vnni", "avx512", "avx2", "arm64", "all")


@click.group()
def export() -> None:
    """Export a model for another runtime."""


@export.command("onnx")
@click.argument("model")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="Also write a dynamic int8 graph, onnx/model_<weights>_<target>.onnx "
                   "(e.g. model_qint8_avx512_vnni.onnx).")
@click.option("--target", type=click.Choice(TARGETS), default=None,
              help="The CPU the int8 graph is for (avx512_vnni also covers AMX), or all four; "
                   "default: this machine's.")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Apply onnxruntime's graph optimisations (fusions) to the saved graph.")
@click.option("--opset", default=17, show_default=True, type=click.IntRange(min=14))
def onnx(model: str, out: Path, quantize: str | None, target: str | None, optimize: bool,
         opset: int) -> None:
    """Write MODEL as a sentence-transformers folder OUT with onnx/model.onnx.

    MODEL is a folder, a bundled name or a hub id with torch weights; OUT may be MODEL's own
    folder to add the graphs in place. Encode the result with `--backend onnx [--quantized]`:
    the loader picks the int8 graph made for the CPU it runs on.
    """
    from sbert.cli.common import load_encoder

    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; give a folder for the exported model")
    _check_not_foreign(out)
    if target is not None and quantize is None:
        raise UsageError("--target chooses the int8 graph; add --quantize int8")
    encoder = load_encoder(model, "cpu", backend="torch")
    start = time.time()
    root = encoder.export_onnx(out, quantize=quantize, optimize=optimize, opset=opset,
                               target=target)
    written = sorted(p.relative_to(root).as_posix() for p in (root / "onnx").glob("*.onnx")
                     if p.stat().st_mtime >= start - 1)  # this run's, not an earlier export's
    click.echo(f"wrote {', '.join(written)} in {root}", err=True)


def _check_not_foreign(out: Path) -> None:
    """Refuse a folder that holds files and is not a model folder: the export writes a whole
    model there (config.json, tokenizer, weights) over files of the same names."""
    from sbert.errors import ModelFolderError
    from sbert.folder import read_folder

    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        read_folder(out)
    except ModelFolderError:
        shown = ", ".join(sorted(p.name for p in out.iterdir())[:4])
        raise UsageError(f"{out} holds files ({shown}...) and is not a model folder; the "
                         "export would write a model's files over them: give a new or empty "
                         "folder, or the model's own folder") from None
