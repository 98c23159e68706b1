#!/usr/bin/env bash
# Installs what the console's browser test needs: Debian's Chromium and playwright-core from npm
# (never a downloaded browser). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  echo "browser: installing chromium" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
fi
if [ ! -d tests/console/node_modules/playwright-core ]; then
  echo "browser: installing playwright-core" >&2
  (cd tests/console && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent) >&2
fi
