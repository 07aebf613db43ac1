#!/usr/bin/env bash
# End-to-end test of the extension in a real VS Code: installs code-server (cached outside the
# repo), packages the VSIX, runs extension/test/e2e/*.e2e.ts (playwright-core + Debian chromium).
# Screenshots: test-artifacts/e2e/. Run by scripts/test.sh (CI); ARIES_SKIP_E2E=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${ARIES_SKIP_E2E:-}" = 1 ]; then
  echo "e2e: skipped (ARIES_SKIP_E2E=1)" >&2
  exit 0
fi

ARIES_CODE_SERVER="$(bash scripts/install-code-server.sh)"
export ARIES_CODE_SERVER

package_args=()
[ -f examples/arithmetic/model/onnx/model.onnx ] || package_args+=(--allow-missing-model)
node scripts/package-vsix.mjs --out out/aries-studio-e2e.vsix "${package_args[@]}" >&2
export ARIES_VSIX="$PWD/out/aries-studio-e2e.vsix"

timeout --kill-after=30 1200 node --import tsx --test --test-reporter=spec --test-timeout=1100000 extension/test/e2e/*.e2e.ts
