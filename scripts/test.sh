#!/usr/bin/env bash
# Every test: typecheck, the trainer (pytest), the engine and the extension (node:test), then the
# extension end to end in a real VS Code (scripts/test-e2e.sh). Run by `npm test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
# The trainer's Python: the venv `npm run setup` makes (engine/trainer/requirements.txt). Every test
# that starts Python reads ARIES_PYTHON; nothing may reach the Hugging Face hub.
export ARIES_PYTHON="${ARIES_PYTHON:-$PWD/.venv/bin/python}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
PYTHON="$ARIES_PYTHON"
# Each step has a ceiling, so a process that fails to exit (a test's child left running) ends the
# step with an error instead of holding CI until its overall limit; the whole process group goes.
step() { local limit="$1"; shift; timeout --kill-after=30 "$limit" "$@"; }

echo "== typecheck" >&2
for project in engine extension webview webview/test scripts; do
  if [ -f "$project/tsconfig.json" ]; then npx --no-install tsc -p "$project/tsconfig.json"; fi
done

echo "== trainer (pytest, $PYTHON)" >&2
step 900 "$PYTHON" -m pytest engine/trainer/tests -q -p no:cacheprovider

echo "== engine (node:test)" >&2
step 1200 node --import tsx --test --test-reporter=spec engine/test/*.test.ts

echo "== extension (node:test)" >&2
step 300 node --import tsx --test --test-reporter=spec extension/test/*.test.ts

echo "== webviews in Chromium (real bundles, real engine)" >&2
node esbuild.mjs >/dev/null
step 600 node --import tsx --test --test-reporter=spec webview/test/*.test.ts

echo "== extension end to end (code-server + chromium)" >&2
bash scripts/test-e2e.sh
