#!/usr/bin/env bash
# server.sh [SECONDS] [CLIENTS] [KEYS] — how fast `redduck server` serves variables on loopback: starts one on a
# fresh data dir, then CLIENTS (default 50) concurrent clients alternate a write (of one of their KEYS names,
# default 1) and a read of the whole dev environment (CLIENTS x KEYS variables) for SECONDS (default 10) through
# bench/server_bench.py; prints reads/s, writes/s, p50/p99.
set -euo pipefail
seconds="${1:-10}"
clients="${2:-50}"
keys="${3:-1}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${REDDUCK_BIN:-$here/build/redduck}"
export AWS_EC2_METADATA_DISABLED=true
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$bin" server --listen 127.0.0.1:0 --data-dir "$work/data" > "$work/out" 2> /dev/null &
pid=$!
for _ in $(seq 1 100); do grep -q "ready" "$work/out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/out")"
REDDUCK_TOKEN="$(grep -o 'rdk_[0-9a-f]*' "$work/out")" python3 "$here/bench/server_bench.py" "$url" "$seconds" "$clients" "$keys"
