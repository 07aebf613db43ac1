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
# What each part costs, printed as it ends (CI's budget is kept per part).
part_started=$SECONDS
part() { [ -n "${part_name:-}" ] && echo "== $part_name: $((SECONDS - part_started)) s" >&2; part_name="$1"; part_started=$SECONDS; [ -n "$1" ] && echo "== $1" >&2; return 0; }
trap 'part ""' EXIT

part "typecheck"
for project in engine extension webview webview/test scripts; do
  if [ -f "$project/tsconfig.json" ]; then npx --no-install tsc -p "$project/tsconfig.json"; fi
done

part "trainer (pytest, $PYTHON)"
step 900 "$PYTHON" -m pytest engine/trainer/tests -q -p no:cacheprovider

part "engine (node:test)"
step 1200 node --import tsx --test --test-reporter=spec engine/test/*.test.ts

part "extension (node:test)"
step 300 node --import tsx --test --test-reporter=spec extension/test/*.test.ts

part "webviews in Chromium (real bundles, real engine)"
node esbuild.mjs >/dev/null
step 600 node --import tsx --test --test-reporter=spec webview/test/*.test.ts

part "extension end to end (code-server + chromium)"
bash scripts/test-e2e.sh
