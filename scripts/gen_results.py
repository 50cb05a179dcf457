"""Write docs/RESULTS.md and the results blocks of other docs from benchmarks/results/*.json.

    .venv/bin/python scripts/gen_results.py          # rewrite the docs
    .venv/bin/python scripts/gen_results.py --check  # exit 1 if a doc differs from its JSON

docs/RESULTS.md is docs/results_template.md with every results block filled. README.md,
docs/onnx.md, docs/search.md, docs/training.md, docs/serve.md, docs/hardware.md and
docs/distributed.md keep their own text; only their blocks are refilled. A block is an HTML
comment naming a benchmark, its content, and a closing comment:

    <!-- results encode -->                              every table, per machine class
    <!-- results encode table=speed rows="sentence-transformers|sbert onnx int8"
         cols="contender|rate|ratio" -->                 part of one table
    <!-- results encode table=speed row="sbert onnx int8" col=ratio -->7.21x<!-- /results -->
                                                         one value, inline
    ...
    <!-- /results -->

Attributes: ``table`` (a table id), ``rows``/``cols`` (first-column values / column keys,
separated by ``|``), ``row`` + ``col`` (one value), ``machine`` (one machine class; default:
every class that has a result), ``level`` (heading level of the per-machine headings of a
whole-benchmark block, default 3). A benchmark without a JSON file yet reads "No results
yet" with the command that measures it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path("docs/results_template.md")
GENERATED = Path("docs/RESULTS.md")
DOCS = (Path("README.md"), Path("docs/onnx.md"), Path("docs/search.md"),
        Path("docs/training.md"), Path("docs/serve.md"), Path("docs/hardware.md"),
        Path("docs/distributed.md"))
RESULTS = Path("benchmarks/results")
REGENERATE = ".venv/bin/python scripts/gen_results.py"

# benchmark -> the command of its documented run (what "No results yet" asks for)
COMMANDS = {
    "encode": ".venv/bin/python benchmarks/encode.py",
    "parity": ".venv/bin/python benchmarks/parity.py",
    "encode_onnx": ".venv/bin/python benchmarks/encode_onnx.py",
    "onnx_variants": ".venv/bin/python benchmarks/onnx_variants.py",
    "int8_sensitivity": ".venv/bin/python benchmarks/int8_sensitivity.py",
    "int8_isa": ".venv/bin/python benchmarks/int8_isa.py",
    "mining": ".venv/bin/python benchmarks/mining.py",
    "index": ".venv/bin/python benchmarks/index.py",
    "packed": ".venv/bin/python benchmarks/packed.py",
    "serve": ".venv/bin/python benchmarks/serve.py",
    "serve_profile": ".venv/bin/python benchmarks/serve_profile.py",
    "distributed": ".venv/bin/python benchmarks/distributed.py",
    "ray_overhead": ".venv/bin/python benchmarks/ray_overhead.py",
    "serve_latency": ".venv/bin/python benchmarks/serve_latency.py",
    "torch_threads": ".venv/bin/python benchmarks/torch_threads.py",
    "split_cost": ".venv/bin/python benchmarks/split_cost.py",
    "evaluation": ".venv/bin/python benchmarks/evaluation.py",
    "train-sts": ".venv/bin/python benchmarks/train.py --recipe sts",
    "train-nli-softmax": ".venv/bin/python benchmarks/train.py --recipe nli-softmax",
    "train-nli-mnrl": ".venv/bin/python benchmarks/train.py --recipe nli-mnrl",
    "ablation": ".venv/bin/python benchmarks/ablation.py",
    "encode_gpu": "bash benchmarks/gpu_check.sh",
    "train_gpu": "bash benchmarks/gpu_check.sh",
}
MACHINE_FIELDS = ("class", "cpu", "isa", "cores", "arch", "gpu")
RECORD_FIELDS = ("schema", "benchmark", "full", "command", "args", "date", "commit", "dirty",
                 "machine", "versions", "limits_gflops", "notes", "tables")


class ResultsError(Exception):
    """A results file or block that does not fit: the message names the file and what is wrong."""


BLOCK = re.compile(r"<!-- results (?P<attrs>.*?)-->(?P<body>.*?)<!-- /results -->", re.S)


def _common() -> Any:
    """benchmarks/_common.py: the one table formatter the scripts print with."""
    spec = importlib.util.spec_from_file_location("sbert_benchmarks_common",
                                                  ROOT / "benchmarks" / "_common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMMON = _common()


def validate(record: dict[str, Any], path: Path) -> None:
    """Raise ValueError unless ``record`` has every field a results file must have."""
    missing = [f for f in RECORD_FIELDS if f not in record]
    missing += [f"machine.{f}" for f in MACHINE_FIELDS if f not in record.get("machine", {})]
    missing += [f"versions.{f}" for f in COMMON.LIBRARIES if f not in record.get("versions", {})]
    if missing:
        raise ResultsError(f"{path}: missing {missing}")
    if record["schema"] != COMMON.SCHEMA:
        raise ResultsError(f"{path}: schema {record['schema']}, expected {COMMON.SCHEMA}")
    expected = f"{record['benchmark']}.{record['machine']['class']}.json"
    if path.name != expected:
        raise ResultsError(f"{path}: a {record['benchmark']} result of machine class "
                         f"{record['machine']['class']} belongs in {expected}")
    if record["benchmark"] not in COMMANDS:
        raise ResultsError(f"{path}: unknown benchmark {record['benchmark']!r}; "
                         f"expected one of {list(COMMANDS)}")
    for tab in record["tables"]:
        for key in ("id", "title", "columns", "rows"):
            if key not in tab:
                raise ResultsError(f"{path}: a table without {key!r}")


def load_results(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """benchmark -> its records (one per machine class, sorted by class)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ResultsError(f"{path}: not JSON ({err})") from None
        validate(record, path)
        out.setdefault(record["benchmark"], []).append(record)
    for records in out.values():
        records.sort(key=lambda r: r["machine"]["class"])
    return out


def provenance(r: dict[str, Any], compact: bool = False) -> str:
    """Where a table came from: machine, date, commit, versions, command."""
    m = r["machine"]
    commit = f"`{(r['commit'] or 'unknown')[:10]}`" + (" (with uncommitted changes)"
                                                       if r["dirty"] else "")
    versions = ", ".join(f"{k} {v}" for k, v in r["versions"].items() if v)
    machine = (f"{m['gpu']} on " if m["gpu"] else "") + f"{m['cpu']}, {m['cores']} cores"
    date = r["date"][:16].replace("T", " ") + " UTC"
    if compact:
        smoke = "" if r["full"] else " **Not the documented run: a smoke test.**"
        return (f"_`{m['class']}` ({machine}), {date}, commit {commit}; {versions}; "
                f"`{r['command']}`_{smoke}")
    lines = [f"- machine: {machine}; ISA: {', '.join(m['isa']) or 'none of the listed'}",
             f"- run: {date}, commit {commit}",
             *([f"- **emulated lower ISA**: run under {', '.join(m['caps'])}: torch's oneDNN "
                "and ATen kernels held below the CPU's ISA; onnxruntime (MLAS) and MKL still "
                "read CPUID and use the whole CPU, so their rows are the real CPU's"]
               if m.get("caps") else []),
             f"- versions: {versions}",
             f"- command: `{r['command']}`"]
    lines.append(limits_line(r))
    if not r["full"]:
        lines.append("- **not the documented run** (smaller or other options): a smoke test, "
                     "not a measurement")
    lines += [f"- {note}" for note in r["notes"]]
    return "\n".join(lines)


def limits_line(r: dict[str, Any]) -> str:
    """The machine's measured matrix-multiply limits the record's figures are set against."""
    limits = r["limits_gflops"]
    if not limits:
        return ("- measured matrix-multiply limits: not recorded (this run predates them; its "
                "next run records them)")
    kind = ("matrix-multiply limits (8192^3 on the GPU)" if r["machine"]["gpu"]
            else "fp32 matrix-multiply limits (2048^3)")
    return f"- measured {kind}: {COMMON.limits_text(limits)}"


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split("|")]


def _table(r: dict[str, Any], table_id: str) -> dict[str, Any]:
    for tab in r["tables"]:
        if tab["id"] == table_id:
            return tab
    raise ResultsError(f"{r['benchmark']}.{r['machine']['class']}.json has no table "
                   f"{table_id!r}; it has {[t['id'] for t in r['tables']]}")


def _cell(tab: dict[str, Any], row: str, col: str) -> str:
    """One formatted value of a table: the row named ``row`` (first column), column ``col``."""
    first = tab["columns"][0]["key"]
    fmt = {c["key"]: c["fmt"] for c in tab["columns"]}
    if col not in fmt:
        raise ResultsError(f"table {tab['id']!r} has no column {col!r}; it has {list(fmt)}")
    for r in tab["rows"]:
        if str(r[first]) == row:
            return str(COMMON.format_cell(r[col], fmt[col]))
    raise ResultsError(f"table {tab['id']!r} has no row {row!r}")


def no_results(name: str) -> str:
    return (f"_No results yet: run `{COMMANDS[name]}` on an idle machine, then "
            f"`{REGENERATE}`._")


def render_block(attrs: dict[str, str], results: dict[str, list[dict[str, Any]]]) -> str:
    """The content of one block (without its markers)."""
    name = attrs["benchmark"]
    if name not in COMMANDS:
        raise ResultsError(f"unknown benchmark {name!r} in a results block; expected one of "
                       f"{list(COMMANDS)}")
    records = results.get(name, [])
    if "machine" in attrs:
        records = [r for r in records if r["machine"]["class"] == attrs["machine"]]
    if "col" in attrs:  # one value, inline
        if not records:
            return "(not measured yet)"
        values = []
        for r in records:
            values.append(_cell(_table(r, attrs["table"]), attrs["row"], attrs["col"])
                          + (f" ({r['machine']['class']})" if len(records) > 1 else ""))
        return ", ".join(values)
    if not records:
        return "\n" + no_results(name) + "\n"
    parts: list[str] = []
    for r in records:
        if "table" in attrs:
            tab = _table(r, attrs["table"])
            parts.append(provenance(r, compact=True) + "\n\n" + COMMON.markdown_table(
                tab, rows=_split(attrs.get("rows")), columns=_split(attrs.get("cols"))))
            continue
        level = "#" * int(attrs.get("level", "3"))
        parts.append(f"{level} Machine class `{r['machine']['class']}`\n\n{provenance(r)}")
        for tab in r["tables"]:
            parts.append(f"**{tab['title']}**\n\n{COMMON.markdown_table(tab)}")
    return "\n" + "\n\n".join(parts) + "\n"


def parse_attrs(text: str) -> dict[str, str]:
    words = shlex.split(text)
    if not words:
        raise ResultsError("a results block names no benchmark")
    attrs = {"benchmark": words[0]}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise ResultsError(f"results block {text!r}: {word!r} is not key=value")
        attrs[key] = value
    return attrs


def fill(text: str, results: dict[str, list[dict[str, Any]]]) -> str:
    """``text`` with every results block's content generated anew."""
    def one(match: re.Match[str]) -> str:
        try:
            body = render_block(parse_attrs(match["attrs"]), results)
        except (ResultsError, KeyError, ValueError) as err:
            message = err.args[0] if err.args else repr(err)
            raise ResultsError(f"block <!-- results {match['attrs'].strip()} -->: "
                               f"{message}") from err
        return f"<!-- results {match['attrs']}-->{body}<!-- /results -->"

    return BLOCK.sub(one, text)


def render(root: Path = ROOT, results_dir: Path | None = None) -> dict[Path, str]:
    """Every generated doc (path relative to ``root``) and the text it should have."""
    results = load_results(results_dir if results_dir is not None else root / RESULTS)
    head = (f"<!-- Generated by scripts/gen_results.py from {TEMPLATE.as_posix()} and "
            f"{RESULTS.as_posix()}/*.json; do not edit by hand: edit the template, run the "
            "benchmarks, then the script. -->\n")
    sources = {GENERATED: TEMPLATE, **{doc: doc for doc in DOCS if (root / doc).exists()}}
    out = {}
    for target, source in sources.items():
        try:
            text = fill((root / source).read_text(encoding="utf-8"), results)
        except ResultsError as err:
            raise ResultsError(f"{source.as_posix()}: {err}") from None
        out[target] = head + text if target == GENERATED else text
    return out


def stale(root: Path = ROOT, results_dir: Path | None = None) -> list[Path]:
    """The docs whose text differs from what their JSON and template give."""
    return [path for path, text in render(root, results_dir).items()
            if not (root / path).exists() or (root / path).read_text(encoding="utf-8") != text]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale docs (exit 1)")
    args = parser.parse_args()
    try:
        run(args.check)
    except ResultsError as err:
        sys.exit(f"error: {err}")


def run(check: bool) -> None:
    if check:
        paths = stale()
        if paths:
            sys.exit(f"out of date with {RESULTS}/*.json: "
                     f"{', '.join(p.as_posix() for p in paths)}; run: {REGENERATE}")
        return
    for path, text in render().items():
        target = ROOT / path
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
