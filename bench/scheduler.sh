#!/usr/bin/env bash
# scheduler.sh [SOURCES] [EVERY_S] [SECONDS] [CLIENTS] — how `redduck server` keeps up with many schedules:
# starts the emulator and a server on loopback, deploys one project with SOURCES (default 200) small sources
# on `refresh: {every: EVERY_S}` (default 10 s) with explicit prod keys, lets the schedule run for SECONDS
# (default 60), then measures the query API with CLIENTS (default 50) concurrent clients; prints schedule
# lateness p50/p99 (queued and started, against each slot), runs per state, the server's CPU and RSS, and
# query p50/p99 (bench/scheduler_bench.py does the work).
set -euo pipefail
sources="${1:-200}"
every="${2:-10}"
seconds="${3:-60}"
clients="${4:-50}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${REDDUCK_BIN:-$here/build/redduck}"
export AWS_EC2_METADATA_DISABLED=true
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$bin" emulator --port 0 --data-dir "$work/emu" --sample sales:rows=100 --lifetime 900 > "$work/emu.out" 2> /dev/null &
pids+=($!)
for _ in $(seq 1 300); do grep -q "listening on" "$work/emu.out" 2>/dev/null && break; sleep 0.1; done
endpoint="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/emu.out" | head -1)"

env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL \
  "$bin" server --listen 127.0.0.1:0 --data-dir "$work/data" --max-concurrent-runs "${RUNS:-8}" \
  > "$work/srv.out" 2> "$work/srv.err" &
srv=$!
pids+=($srv)
for _ in $(seq 1 300); do grep -q "ready" "$work/srv.out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/srv.out" | head -1)"
REDDUCK_TOKEN="$(grep -o 'rdk_[0-9a-f]*' "$work/srv.out" | head -1)" \
  python3 "$here/bench/scheduler_bench.py" "$url" "$endpoint" "$work/data" "$srv" "$sources" "$every" "$seconds" "$clients"
