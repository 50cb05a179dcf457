#!/usr/bin/env bash
# Create benchmarks/.venv-infinity with infinity-emb (torch + optimum/ONNX Runtime engines) on CPU.
#
# infinity-emb is a third-party embedding server used as a baseline by benchmarks/serve.py. It
# lives in its own virtualenv because it pins older libraries (sentence-transformers<4,
# transformers<=4.x, numpy<2, ...) than our main .venv.
#
# torch is pinned FIRST to the CPU wheel that lies on this machine's disk: left unpinned, the
# resolver could pull a multi-GB CUDA build. It is also repeated in the infinity-emb install so
# the resolver can never replace it.
#
# Idempotent: rerunning skips the install when the pinned versions are already present.
# Usage: bash benchmarks/setup_infinity.sh   (env: PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${HERE}/.venv-infinity"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
INFINITY_VERSION="0.0.78"
INFINITY_EXTRAS="server,torch,optimum"

die() {
    echo "setup_infinity.sh: ERROR: $*" >&2
    exit 1
}

# infinity-emb 0.0.78 declares Requires-Python >=3.9,<3.14.
"${PYTHON}" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] < (3, 14) else 1)' \
    || die "${PYTHON} must be Python 3.9-3.13 for infinity-emb ${INFINITY_VERSION}"

if [[ ! -x "${VENV}/bin/python" ]]; then
    echo "creating ${VENV}"
    "${PYTHON}" -m venv "${VENV}" || die "could not create the virtualenv ${VENV}"
fi
PY="${VENV}/bin/python"
PIP=("${PY}" -m pip --disable-pip-version-check)

installed() {  # installed DIST VERSION -> 0 when DIST==VERSION (local tag like +cpu ignored)
    "${PY}" - "$1" "$2" <<'PYEOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    v = version(sys.argv[1])
except PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if v.split("+")[0] == sys.argv[2] else 1)
PYEOF
}

if installed torch "${TORCH_VERSION}"; then
    echo "torch ${TORCH_VERSION} already installed"
else
    echo "installing torch==${TORCH_VERSION} (CPU wheel)"
    "${PIP[@]}" install "torch==${TORCH_VERSION}" \
        || die "could not install torch==${TORCH_VERSION}; it must be the local CPU wheel"
fi
"${PY}" -c 'import torch, sys; sys.exit(0 if torch.version.cuda is None else 1)' \
    || die "torch in ${VENV} is a CUDA build; remove ${VENV} and rerun"

if installed infinity-emb "${INFINITY_VERSION}" && installed optimum-onnx 0.1.0 \
    && "${PY}" -c 'import infinity_emb, optimum.onnxruntime, sentence_transformers' 2>/dev/null; then
    echo "infinity-emb ${INFINITY_VERSION} already installed"
else
    echo "installing infinity-emb[${INFINITY_EXTRAS}]==${INFINITY_VERSION}"
    # optimum[onnxruntime]>=1.24 resolves to optimum 2.x + optimum-onnx, which holds
    # optimum.onnxruntime (ORTModelForFeatureExtraction) that infinity's optimum engine imports.
    "${PIP[@]}" install "torch==${TORCH_VERSION}" \
        "infinity-emb[${INFINITY_EXTRAS}]==${INFINITY_VERSION}" \
        || die "could not install infinity-emb[${INFINITY_EXTRAS}]==${INFINITY_VERSION}"
fi

installed torch "${TORCH_VERSION}" || die "the infinity-emb install replaced torch ${TORCH_VERSION}"
"${PY}" -c 'import infinity_emb, optimum.onnxruntime, sentence_transformers, onnxruntime' \
    || die "infinity-emb is installed but its engines do not import (see the traceback above)"
[[ -x "${VENV}/bin/infinity_emb" ]] || die "${VENV}/bin/infinity_emb is missing"

"${PY}" - <<'PYEOF'
from importlib.metadata import version
names = ["infinity-emb", "torch", "optimum", "optimum-onnx", "onnxruntime",
         "sentence-transformers", "transformers", "fastapi"]
print("ok: " + ", ".join(f"{n}=={version(n)}" for n in names))
PYEOF
