#!/usr/bin/env bash
# The test command: starts PostgreSQL (scripts/services.sh), installs headless Chromium for the
# console test (scripts/browser.sh) and runs every test of the workspace, the PostgreSQL runs of
# the conformance suite included, and the doctests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TAILOR_TEST_POSTGRES_URL:-}" ]; then
  eval "$(scripts/services.sh)"
fi
export TAILOR_TEST_POSTGRES_URL
if ! psql "$TAILOR_TEST_POSTGRES_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  echo "test: PostgreSQL is not reachable at ${TAILOR_TEST_POSTGRES_URL%%@*}@…: start it with scripts/services.sh" >&2
  exit 1
fi
scripts/browser.sh
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
cargo nextest run --workspace --no-fail-fast "$@"
# nextest skips doctests; some prove by failing to compile (e.g. no demographic reaches an offer).
cargo test --workspace --doc "$@"
