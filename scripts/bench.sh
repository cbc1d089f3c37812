#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md, one command each, every server in its own
# network namespace (run as root) so that fixed ports never collide with anything.
#
#   scripts/bench.sh callgrind TREE [limits]     instructions per certificate (200 orders, -c 4)
#   scripts/bench.sh run KIND TREE N C [ARGS]    one load run; KIND: gateway | workers2 | pebble
#   scripts/bench.sh polls KIND TREE             server CPU per POST-as-GET of an unchanged resource
#
# TREE is a source tree of the gateway (a checkout, or `git archive REV gateway
# connectors loadtest | tar -x -C DIR`); the load generator always comes from this
# checkout, so that every tree is driven by the same client. Results go to
# $BENCH_OUT (default /tmp/bench-out). Needs valgrind (callgrind) and pebble (run
# pebble), both Debian packages.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
out=${BENCH_OUT:-/tmp/bench-out}
mkdir -p "$out"
pebble_dir=$out/pebble
[ -f "$pebble_dir/cert.pem" ] || \
    (cd "$here" && "$py" -m loadtest pebble-setup "$pebble_dir" --port 14100 --http01-port 5302 >/dev/null)

# The gateway's benchmark config: durable SQLite, local P-256 CA, real HTTP-01
# validation against the load generator's responders; rate limits off unless asked
# (one load generator is one client address placing hundreds of orders a second).
gateway_config() {  # DIR LIMITS(on|off)
    cat > "$1/gw.toml" <<TOML
[server]
data_dir = "$1/data"
listen = "127.0.0.1"
https_port = 18543
http_port = 0
tls_cert_file = "$pebble_dir/cert.pem"
tls_key_file = "$pebble_dir/key.pem"
log_level = "warning"
access_log = false
max_connections_per_address = 4096

[acme]
retry_after_seconds = 1
challenge_wait_seconds = 2.0

[validation]
allow_loopback = true
http01_port = 5302
resolvers = ["127.0.0.1:8353"]
TOML
    if [ "$2" = off ]; then printf '\n[rate_limits]\nenabled = false\n' >> "$1/gw.toml"; fi
}

loadgen() {  # DIRECTORY_URL ARGS...
    local url=$1; shift
    (cd "$here" && "$py" -m loadtest acme --directory "$url" --cafile "$pebble_dir/cert.pem" \
        --http01-port 5302 --dns-port 8353 --timeout 120 "$@")
}

wait_for() {  # URL
    for _ in $(seq 1 240); do curl -sk -o /dev/null "$1" && return 0; sleep 0.5; done
    echo "bench: $1 did not answer" >&2; return 1
}

stop() {  # PID: SIGINT (the gateway drains), SIGKILL after 20 s (a stuck Pebble ignores it)
    kill -INT "$1" 2>/dev/null || return 0
    for _ in $(seq 1 40); do kill -0 "$1" 2>/dev/null || { wait "$1" || true; return 0; }; sleep 0.5; done
    kill -KILL "$1" 2>/dev/null; wait "$1" || true
}

in_namespace() {  # re-run this script's subcommand inside a fresh network namespace
    if [ -z "${BENCH_IN_NS:-}" ]; then
        exec env BENCH_IN_NS=1 unshare -n bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
    fi
}

callgrind() {  # TREE [limits]
    local tree=$1 limits=off; [ "${2:-}" = limits ] && limits=on
    local dir; dir=$(mktemp -d "$out/callgrind.XXXX")
    gateway_config "$dir" "$limits"
    (cd "$dir" && PYTHONPATH=$tree exec valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$dir/cg.out.%p" "$py" -m gateway --config "$dir/gw.toml" serve \
        > "$dir/server.log" 2>&1) &
    local pid=$!
    wait_for https://127.0.0.1:18543/acme/directory
    loadgen https://127.0.0.1:18543/acme/directory -n 20 -c 4 > "$dir/warm.txt"
    callgrind_control -i on "$pid" > /dev/null
    loadgen https://127.0.0.1:18543/acme/directory -n 200 -c 4 > "$dir/run.txt"
    callgrind_control -i off "$pid" > /dev/null
    callgrind_control -d "$pid" > /dev/null
    sleep 2; stop "$pid"
    grep -h '^totals:' "$dir"/cg.out.* | awk -v d="$dir" -v l="$limits" \
        '{s += $2} END {printf "%.2f M instructions per certificate (rate limits %s; %s)\n", s / 200 / 1e6, l, d}'
}

run() {  # KIND TREE N C [ARGS...]
    local kind=$1 tree=$2 n=$3 c=$4; shift 4
    local dir; dir=$(mktemp -d "$out/$kind.XXXX")
    local url pid
    if [ "$kind" = pebble ]; then
        PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 pebble \
            -config "$pebble_dir/pebble-config.json" -strict=false -dnsserver 127.0.0.1:8353 \
            > "$dir/server.log" 2>&1 &
        pid=$!; url=https://127.0.0.1:14100/dir
    else
        local workers=(); [ "$kind" = workers2 ] && workers=(--workers 2)
        gateway_config "$dir" off
        (cd "$dir" && PYTHONPATH=$tree exec "$py" -m gateway --config "$dir/gw.toml" serve \
            "${workers[@]}" > "$dir/server.log" 2>&1) &
        pid=$!; url=https://127.0.0.1:18543/acme/directory
    fi
    wait_for "$url"
    loadgen "$url" -n 64 -c 16 > "$dir/warm.txt"
    loadgen "$url" -n "$n" -c "$c" --server-pid "$pid" --json "$dir/result.json" "$@" | tee "$dir/run.txt"
    stop "$pid"
}

polls() {  # KIND TREE  (KIND: gateway | pebble)
    local kind=$1 tree=$2 dir url pid; dir=$(mktemp -d "$out/polls-$kind.XXXX")
    if [ "$kind" = pebble ]; then
        PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 pebble \
            -config "$pebble_dir/pebble-config.json" -strict=false > "$dir/server.log" 2>&1 &
        pid=$!; url=https://127.0.0.1:14100/dir
    else
        gateway_config "$dir" off
        (cd "$dir" && PYTHONPATH=$tree exec "$py" -m gateway --config "$dir/gw.toml" serve \
            > "$dir/server.log" 2>&1) &
        pid=$!; url=https://127.0.0.1:18543/acme/directory
    fi
    wait_for "$url"
    (cd "$here" && "$py" -m loadtest polls --directory "$url" --cafile "$pebble_dir/cert.pem" \
        -n 3000 -c 16 --server-pid "$pid") | tee "$dir/run.txt"
    stop "$pid"
}

cmd=${1:-}; shift || true
case "$cmd" in
    callgrind|run|polls) in_namespace "$cmd" "$@"; "$cmd" "$@" ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
esac
