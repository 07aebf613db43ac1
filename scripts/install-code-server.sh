#!/usr/bin/env bash
# Installs code-server 4.100.3 (VS Code 1.100.3 on Node 20) for the end-to-end tests, offline-safe:
# a plain `npm install code-server` fails without internet (a ripgrep download, an npx prompt,
# missing -dev headers), so this follows the sequence in shared/ENVIRONMENT.md step by step.
# It installs into a cache folder outside the repository and prints that folder's code-server path.
#   ARIES_CODE_SERVER_DIR  where to install (default: ~/.cache/aries-studio/code-server-4.100.3)
# Idempotent: a finished install (marked by .installed) is reused; a half-finished one is redone.
set -euo pipefail

VERSION=4.100.3
DIR="${ARIES_CODE_SERVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aries-studio/code-server-$VERSION}"
BIN="$DIR/node_modules/.bin/code-server"

if [ -f "$DIR/.installed" ] && [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

APT_PACKAGES=(libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config ripgrep chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-code-server: missing Debian packages ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "install-code-server: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "install-code-server: installing code-server@$VERSION into $DIR (3-5 min)" >&2
rm -rf "$DIR"
mkdir -p "$DIR"
cd "$DIR"
echo '{"name":"aries-code-server","private":true}' > package.json
export npm_config_audit=false npm_config_fund=false
{
  npm install "code-server@$VERSION" --ignore-scripts --no-audit --no-fund
  npm rebuild argon2
  cd node_modules/code-server/lib/vscode
  npm install --omit=dev --ignore-scripts --no-audit --no-fund
  mkdir -p node_modules/@vscode/ripgrep/bin && cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
  npm_config_yes=true npm rebuild
  ln -sfn node_modules node_modules.asar
  (cd bin/remote-cli && ln -sfn code-linux.sh code-server)
  (cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
  (cd extensions && npm install --omit=dev --no-audit --no-fund)
} >"$DIR/install.log" 2>&1 || { echo "install-code-server: failed; see $DIR/install.log" >&2; tail -30 "$DIR/install.log" >&2; exit 1; }

touch "$DIR/.installed"
echo "$BIN"
