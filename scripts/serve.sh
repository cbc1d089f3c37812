#!/usr/bin/env bash
# Quickstart, step 1: install what the gateway needs and run it on its embedded
# default (SQLite + a local CA in ./gateway-data, HTTPS on 127.0.0.1:8443).
# Extra arguments go to `acme-gateway serve` (e.g. --config config/gateway.toml).
#
# The install runs only when .venv lacks the gateway or pyproject.toml changed
# since the last install (scripts/install.sh stamps .venv/.installed-from): an
# installed checkout starts at once and never needs the network. The install is
# editable, so edits to the code need no reinstall.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.installed-from
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/acme-gateway ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  bash scripts/install.sh
fi
exec .venv/bin/acme-gateway serve "$@"
