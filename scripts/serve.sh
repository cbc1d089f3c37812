#!/usr/bin/env bash
# Quickstart, step 1: install what the gateway needs and run it on its embedded
# default (SQLite + a local CA in ./gateway-data, HTTPS on 127.0.0.1:8443).
# Extra arguments go to `acme-gateway serve` (e.g. --config config/gateway.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/acme-gateway serve "$@"
