#!/usr/bin/env bash
# Retention soak: one gateway on the embedded default (SQLite + local CA), the ACME
# load generator against it, and the database's size sampled every SAMPLE seconds.
#
#   scripts/retention-soak.sh on|off OUTDIR [ORDERS] [MAX_SECONDS]
#
# "on": short windows (orders and authorizations expire after 60 s and are pruned at
# once, the pruner runs every 10 s); "off": [retention] enabled = false. Everything
# listens on 127.0.0.1, on ports the kernel picks; rate limits are off (one client
# address places every order). Writes OUTDIR/sizes.csv (seconds, bytes of the
# database file and its WAL), OUTDIR/load.json (the load generator's result),
# OUTDIR/stats.txt (`acme-gateway db stats` at the end) and OUTDIR/gateway.log.
set -euo pipefail
mode=$1 out=$2 orders=${3:-100000} max_seconds=${4:-1200} sample=${SAMPLE:-15}
py=${PYTHON:-python}
mkdir -p "$out"
out=$(cd "$out" && pwd)
port() { "$py" -c "import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"; }
http=$(port SOCK_STREAM) http01=$(port SOCK_STREAM) dns=$(port SOCK_DGRAM)
retention="enabled = false"
if [ "$mode" = on ]; then
  retention="enabled = true
interval_seconds = 10
orders_days = 0
authorizations_days = 0
valid_authorizations_days = 0
jobs_days = 0"
fi
cat > "$out/gateway.toml" <<EOF
[server]
data_dir = "$out/data"
listen = "127.0.0.1"
https_port = 0
http_port = $http
log_level = "warning"
access_log = false

[acme]
retry_after_seconds = 1
challenge_wait_seconds = 2.0
order_lifetime_seconds = 60
authz_lifetime_seconds = 60

[validation]
allow_loopback = true
http01_port = $http01
resolvers = ["127.0.0.1:$dns"]

[rate_limits]
enabled = false

[retention]
$retention
EOF
"$py" -m gateway --config "$out/gateway.toml" serve > "$out/gateway.log" 2>&1 &
gw=$!
trap 'kill $sampler 2>/dev/null || true; kill $gw 2>/dev/null || true; wait $gw 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$http/acme/directory" > /dev/null && break
  sleep 0.2
done
start=$(date +%s)
(
  echo "seconds,db_bytes,wal_bytes"
  while true; do
    db=$(stat -c %s "$out/data/gateway.db" 2>/dev/null || echo 0)
    wal=$(stat -c %s "$out/data/gateway.db-wal" 2>/dev/null || echo 0)
    echo "$(( $(date +%s) - start )),$db,$wal"
    sleep "$sample"
  done
) > "$out/sizes.csv" &
sampler=$!
"$py" -m loadtest acme --directory "http://127.0.0.1:$http/acme/directory" \
  --http01-port "$http01" --dns-port "$dns" -c 16 -n "$orders" --duration "$max_seconds" \
  --server-pid "$gw" --json "$out/load.json" --quiet || true
kill $sampler
"$py" -m gateway --config "$out/gateway.toml" db stats > "$out/stats.txt"
