#!/usr/bin/env bash
# Quickstart, step 2: install everything the tests need (Debian and Python
# packages) and run the whole suite. With CI=true, tests that need a missing
# external tool fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
