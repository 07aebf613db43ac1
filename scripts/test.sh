#!/usr/bin/env bash
# Every test: typecheck, the trainer (pytest), the engine (node:test). Run by `npm test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${ARIES_PYTHON:-/usr/bin/python3}"

echo "== typecheck" >&2
npx --no-install tsc -p engine/tsconfig.json

echo "== trainer (pytest, $PYTHON)" >&2
"$PYTHON" -m pytest engine/trainer/tests -q -p no:cacheprovider

echo "== engine (node:test)" >&2
node --import tsx --test --test-reporter=spec engine/test/*.test.ts
