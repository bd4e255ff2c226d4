#!/usr/bin/env bash
# Create ./.venv (if needed) and install deepexpose with its test tools into it.
# torch goes first and pinned, so that pip does not pull a multi-GB CUDA build on a CPU machine;
# set DEEPEXPOSE_TORCH to another requirement (e.g. "torch" for a CUDA machine) to change that.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# (the grep only hides harmless warnings about local package mirrors some machines list)
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v -E "is ignored: it is neither" >&2); }
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    pip install "${DEEPEXPOSE_TORCH:-torch==2.13.0}"
fi
pip install -e ".[test]"
.venv/bin/python -c "import deepexpose, torch, kornia, gymnasium, stable_baselines3, numba" \
    || { echo "setup.sh: installation failed (see pip's messages above)" >&2; exit 1; }
