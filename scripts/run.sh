#!/usr/bin/env bash
# One command to set up and run jetchat on the embedded defaults (SQLite + its own nats-server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The web app at http://127.0.0.1:8000/ offers "sign in as user N" (loopback binds only).
export DEV_LOGIN="${DEV_LOGIN:-true}"
exec cargo run --release --bin jetchat -- serve "$@"
