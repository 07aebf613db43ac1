#!/usr/bin/env bash
# Times ARIES DPO steps on a CUDA GPU with a ~0.5B Hugging Face model through the trainer
# (transformers, the pinned venv's). Run from the repository root on a machine with an NVIDIA GPU, Python with CUDA PyTorch and
# transformers (no network needed: without MODEL_DIR it writes a random-weight ~0.47B Llama).
#   bash engine/bench/gpu/run.sh [MODEL_DIR]       results in ${OUT:-engine/bench/gpu/results}/gpu-dpo.json
# Extra arguments after MODEL_DIR go to dpo_step.py (--batch-sizes 8,64 --steps 12).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PYTHON="${ARIES_PYTHON:-.venv/bin/python}"
OUT="${OUT:-engine/bench/gpu/results}"
MODEL="${1:-}"
shift || true

if ! command -v nvidia-smi >/dev/null; then echo "error: no nvidia-smi: this script needs an NVIDIA GPU machine" >&2; exit 2; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
if ! "$PYTHON" -c 'import torch, transformers, jinja2; assert torch.cuda.is_available(), "torch.cuda.is_available() is False"' 2>/dev/null; then
  echo "error: $PYTHON needs CUDA PyTorch, transformers and jinja2 (pip install torch transformers jinja2), and must see the GPU" >&2
  "$PYTHON" -c 'import torch, transformers, jinja2; print(torch.__version__, torch.cuda.is_available())' >&2 || true
  exit 2
fi
PYTHONPATH="$PWD/engine/trainer${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" engine/bench/gpu/dpo_step.py --out "$OUT" ${MODEL:+--model "$MODEL"} "$@"
