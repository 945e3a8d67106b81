#!/usr/bin/env bash
# Property-based checks of the REST API against its own OpenAPI document (schemathesis, pinned
# in requirements-dev.txt): a real jetchat in the embedded mode on a free port, as user 1, and
# every operation of /openapi.json called with generated valid and invalid input. Fails on a
# server error (5xx) or a status the document does not list for the operation.
#
# Bounded: SCHEMATHESIS_EXAMPLES test cases per operation (default 30): about 15 s here, 45 s with 100.
# Run by scripts/test.sh after `cargo build` (JETCHAT_BIN: the binary to start).
set -euo pipefail
cd "$(dirname "$0")/.."

JETCHAT_BIN="${JETCHAT_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/jetchat}"
SCHEMATHESIS="$PWD/.tools/venv/bin/schemathesis"
DIR=$(mktemp -d /tmp/jetchat-schemathesis.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export JWT_SECRET=schemathesis-secret DATA_DIR="$DIR/data" MEDIA_DIR="$DIR/media" \
  BIND_ADDR="127.0.0.1:$PORT" RUST_LOG=warn
unset NATS_URL DATABASE_URL

"$JETCHAT_BIN" serve >"$DIR/jetchat.log" 2>&1 &
JETCHAT_PID=$!
cleanup() {
  kill "$JETCHAT_PID" 2>/dev/null && wait "$JETCHAT_PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 "$JETCHAT_PID" 2>/dev/null || { cat "$DIR/jetchat.log" >&2; exit 1; }
  sleep 0.1
done
TOKEN=$("$JETCHAT_BIN" token 1 --minutes 30)

# status_code_conformance: every answer's status is documented for its operation;
# not_a_server_error: no 5xx. --seed: the same cases each run, so a failure reproduces. Run
# from the temporary directory, where schemathesis keeps its .schemathesis/ cache.
cd "$DIR"
"$SCHEMATHESIS" run "http://127.0.0.1:$PORT/openapi.json" \
  --checks not_a_server_error,status_code_conformance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-30}" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --header "Authorization: Bearer $TOKEN" \
  --warnings off \
  --report-dir "$DIR/report"
