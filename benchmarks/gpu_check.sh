#!/usr/bin/env bash
# The GPU benchmarks of issue 16 in one bounded run (at most about 8 minutes; sized for one
# H200): encode_gpu.py, then train_gpu.py, each under its own time limit, with timestamps.
#
#   bash benchmarks/gpu_check.sh                   # on a CUDA machine, from anywhere
#
# Before it, where the models and PyPI are (not on the GPU machine), once:
#   .venv/bin/python benchmarks/gpu_carry.py pack  # -> benchmarks/out/gpu_carry (~48 MiB)
# and carry benchmarks/out/gpu_carry to the GPU machine with the working tree.
#
# Python: .venv/bin/python where its torch sees a GPU, else the machine's python3 with its
# own CUDA torch, transformers and sentence-transformers; sbert runs from src/ (no install:
# a GPU machine may reach no registry, and scripts/setup.sh pins a CPU-only torch). The
# carried wheels (datasets, for sentence-transformers' trainer) go to a temporary folder.
# Results: benchmarks/results/{encode_gpu,train_gpu}.cuda-<gpu>.json, copied with the log
# to $OUT when it is set. SBERT_COMMIT=<hash> names the commit where .git did not travel
# (else the commit packed from is used, marked dirty).
#
# SBERT_GPU_CHECK_SMOKE=1 runs the same steps on the CPU at tiny sizes (the test suite does),
# writing only to $OUT (or /tmp/sbert-gpu-smoke); SBERT_GPU_CHECK_MODELS="A B" picks models.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)
log() { printf '[%s +%3ds] %s\n' "$(date -u +%H:%M:%S)" "$(( $(date +%s) - start ))" "$*"; }
out=${OUT:-}
carry=benchmarks/out/gpu_carry
smoke=${SBERT_GPU_CHECK_SMOKE:-0}
if [ "$smoke" = 1 ]; then out=${out:-/tmp/sbert-gpu-smoke}; mkdir -p "$out"; fi

main() {
  local what=""
  [ "$smoke" = 1 ] && what=" (smoke run on the CPU)"
  log "gpu_check: $root$what"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader
  local check='import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'
  [ "$smoke" = 1 ] && check='import torch'
  local py="" candidate
  for candidate in .venv/bin/python python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c "$check" 2>/dev/null; then
      py=$candidate; break
    fi
  done
  if [ -z "$py" ]; then
    log "no python here has a torch that sees a CUDA GPU (.venv/bin/python, python3): stop"
    return 1
  fi
  log "python: $(command -v "$py") ($("$py" -c 'import torch; print("torch", torch.__version__)'))"

  local site=/tmp/sbert-gpu-site
  if ls "$carry"/wheels/*.whl >/dev/null 2>&1 && ! "$py" -c 'import datasets' 2>/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
      "$carry"/wheels/*.whl && log "carried wheels installed into $site"
  fi
  export PYTHONPATH="$root/src:$site${PYTHONPATH:+:$PYTHONPATH}"
  if [ ! -f "${SBERT_DATA:-$root/../shared/data}/stsbenchmark/test.tsv" ]; then
    export SBERT_DATA="$root/$carry/data"
  fi
  export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
  if [ -z "${SBERT_COMMIT:-}" ] && ! git rev-parse HEAD >/dev/null 2>&1 \
      && [ -f "$carry/MANIFEST.json" ]; then
    SBERT_COMMIT=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["commit"] or "")' \
      "$carry/MANIFEST.json")
    export SBERT_COMMIT SBERT_DIRTY=1  # the commit packed from; the tree may have moved since
  fi
  "$py" -c 'import sbert, sentence_transformers as s, transformers as t
print("sbert", sbert.__version__, "| sentence-transformers", s.__version__,
      "| transformers", t.__version__)' || return 1
  log "data: ${SBERT_DATA:-$root/../shared/data}"

  local encode_args=() train_args=()
  if [ "$smoke" = 1 ]; then
    encode_args=(--device cpu --limit 20 --long-count 2 --rounds 1 --out "$out")
    train_args=(--device cpu --steps 2 --warmup-steps 1 --rounds 1 --out "$out")
  fi
  if [ -n "${SBERT_GPU_CHECK_MODELS:-}" ]; then
    read -r -a models <<<"$SBERT_GPU_CHECK_MODELS"
    encode_args+=(--models "${models[@]}")
    train_args+=(--model "${models[0]}")
  fi
  local status=0
  log "encode_gpu.py (limit 300 s)"
  timeout 300 "$py" benchmarks/encode_gpu.py "${encode_args[@]}" \
    || { status=$?; log "encode_gpu.py failed: $status"; }
  log "train_gpu.py (limit 120 s)"
  timeout 120 "$py" benchmarks/train_gpu.py "${train_args[@]}" \
    || { status=$?; log "train_gpu.py failed: $status"; }
  if [ -n "$out" ] && [ "$smoke" != 1 ]; then
    cp benchmarks/results/encode_gpu.cuda-*.json benchmarks/results/train_gpu.cuda-*.json \
      "$out"/ 2>/dev/null
  fi
  [ -n "$out" ] && log "in $out: $(ls "$out" | tr '\n' ' ')"
  log "done (status $status)"
  return $status
}

main 2>&1 | tee "${out:-/tmp}/gpu_check.log"
exit "${PIPESTATUS[0]}"
