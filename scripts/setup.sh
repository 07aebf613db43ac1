#!/usr/bin/env bash
# Installs what ARIES Studio needs on a Debian/Ubuntu machine, then the npm packages.
#   system: PyTorch (training only), jinja2, OpenBLAS (fast CPU matmuls for torch), pytest, Chromium (browser tests)
#   npm:    everything in package-lock.json (npm ci; onnxruntime-node's CUDA download is skipped)
# Without root or apt it only runs npm ci and says what is missing: generation, scoring,
# selection and export work without Python; training needs PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-torch python3-jinja2 python3-numpy python3-pytest libopenblas0-pthread chromium)
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: apt-get install ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
elif ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 && ! python3 -c 'import torch' >/dev/null 2>&1; then
  echo "setup: no Python with PyTorch found. Training needs it: apt-get install ${APT_PACKAGES[*]} (as root), or pip install torch jinja2 pytest" >&2
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
fi
