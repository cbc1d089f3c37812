#!/usr/bin/env bash
# Installs the gateway into ./.venv on Debian 12 (run as root, or with sudo available).
# Usage: scripts/install.sh [--test]   (--test adds the Debian packages and Python
# packages the test suite needs: certbot, lego, pebble, softhsm2, strongSwan pki,
# PostgreSQL 15 and asyncpg, headless Chromium for the console's browser tests, ...)
# On success it writes .venv/.installed-from, the SHA-256 of the pyproject.toml it
# installed: scripts/serve.sh reinstalls only when that stamp is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(python3 python3-venv python3-dev gcc libffi-dev libssl-dev ca-certificates)
if [ "${1:-}" = "--test" ]; then
  # libstrongswan-extra-plugins: the curl fetcher that `pki --scep` needs for HTTP
  debs+=(certbot lego pebble softhsm2 opensc strongswan-pki libstrongswan-standard-plugins
         libstrongswan-extra-plugins curl openssl postgresql chromium chromium-driver)
fi

missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extras=""
[ "${1:-}" = "--test" ] && extras="[test,postgres]"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".${extras}"
sha256sum pyproject.toml | cut -d' ' -f1 > .venv/.installed-from
