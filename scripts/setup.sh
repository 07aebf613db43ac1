#!/usr/bin/env bash
# Installs what ARIES Studio needs on a Debian/Ubuntu machine:
#   .venv/  the trainer's Python environment, every version pinned in engine/trainer/requirements.txt
#           (PyTorch CPU, transformers, TRL, accelerate, PEFT, optimum, onnxruntime, pytest)
#   system: Chromium (browser tests) through apt, when run as root
#   npm:    everything in package-lock.json (npm ci; onnxruntime-node's CUDA download is skipped)
# Each part is skipped when it is already current, so a rerun takes seconds.
# Generation, scoring, selection and export work without Python; training needs the venv
# (or any Python with those packages: training.python in aries.json, ARIES_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
REQUIREMENTS=engine/trainer/requirements.txt
TORCH_PIN=$(grep -E '^torch==' "$REQUIREMENTS" | sed 's/[[:space:]]*#.*//')
BASE_PYTHON="${ARIES_BASE_PYTHON:-python3}"

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=()
  for p in chromium; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  "$BASE_PYTHON" -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: apt-get install ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# The venv is current when it was made from this exact requirements file.
stamp="$VENV/.aries-requirements.sha256"
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  started=$(date +%s)
  echo "setup: making $VENV from $REQUIREMENTS (a few minutes the first time)" >&2
  rm -f "$stamp"
  "$BASE_PYTHON" -m venv "$VENV"
  # torch first, on its own: a dependency's torch range is then already satisfied, so pip never
  # swaps in another build (on these machines $TORCH_PIN is the CPU wheel on disk).
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$TORCH_PIN"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  "$VENV/bin/python" -c 'import torch, transformers, trl, accelerate, peft, optimum.exporters.onnx, onnxruntime' \
    || { echo "setup: $VENV was made but does not import the training stack; see the pip output above" >&2; exit 1; }
  echo "$want" > "$stamp"
  echo "setup: $VENV ready in $(( $(date +%s) - started )) s, $(du -sh "$VENV" | cut -f1)" >&2
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
fi
