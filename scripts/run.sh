#!/usr/bin/env bash
# One command to set up and run jetchat on the embedded defaults (SQLite + its own nats-server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --bin jetchat -- serve "$@"
