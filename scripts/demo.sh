#!/usr/bin/env bash
# demo.sh — `make demo`: starts the embedded emulator with the sample sales table, shows who redduck is
# talking to, runs the demo project examples/demo (UNLOAD → S3 → local DuckDB, a Data API source and an
# incremental one) with `redduck run`, shows results with `redduck query`; then the team side: a
# `redduck server` on loopback, the project deployed to it with explicit keys, a refresh on the server,
# `redduck status --cloud`, `redduck pull` into a second file and a query on it, the status page's URL;
# and stops everything. The DuckDB file stays in examples/demo/data/ for a look afterwards.
set -euo pipefail
export AWS_EC2_METADATA_DISABLED=true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/build/redduck"
work="$(mktemp -d)"
emu_pid=""
srv_pid=""
stop() {
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then kill "$1"; wait "$1" 2>/dev/null || true; fi
}
cleanup() {
  stop "$srv_pid"
  stop "$emu_pid"
  rm -rf "$work"
}
trap cleanup EXIT

# A clean AWS environment pointed at the emulator (never the user's real credentials).
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
export HOME="$work/home" AWS_CONFIG_FILE="$work/home/.aws/config" AWS_SHARED_CREDENTIALS_FILE="$work/home/.aws/credentials"
mkdir -p "$HOME/.aws"

echo "== starting the emulator with sample data (sales, 100000 rows)"
"$bin" emulator --port 0 --data-dir "$work/data" --sample sales:rows=100000 --lifetime 600 > "$work/emu.out" 2> "$work/emu.err" &
emu_pid=$!
for _ in $(seq 1 300); do
  grep -q "listening on" "$work/emu.out" 2>/dev/null && break
  kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emu.err" >&2; exit 1; }
  sleep 0.1
done
endpoint="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/emu.out" | head -1)"
echo "   $endpoint"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL="$endpoint"

echo "== redduck whoami"
"$bin" whoami

project="$here/examples/demo"
echo "== redduck run examples/demo --check (validates the project; no AWS calls)"
"$bin" run "$project" --check

echo "== redduck run examples/demo: three sources → $project/data/demo.duckdb"
"$bin" run "$project" --endpoint-url "$endpoint"

echo "== redduck query: revenue by currency, on the local file"
"$bin" query "$project/data/demo.duckdb" "select * from revenue_by_currency order by revenue desc" \
  $( [ -t 1 ] || echo --csv )
echo "== redduck query: the last runs (table _redduck_runs)"
"$bin" query "$project/data/demo.duckdb" \
  "select source, status, rows, round(seconds, 2) as seconds from _redduck_runs order by finished_at desc limit 3" \
  $( [ -t 1 ] || echo --csv )

echo
echo "== the team side: a redduck server on loopback (data dir in a temporary folder)"
# The server never uses this machine's AWS credentials: a deployment runs with the keys stored for it.
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL \
  "$bin" server --data-dir "$work/server" --listen 127.0.0.1:0 > "$work/srv.out" 2> "$work/srv.err" &
srv_pid=$!
for _ in $(seq 1 300); do
  grep -q "ready" "$work/srv.out" 2>/dev/null && break
  kill -0 "$srv_pid" 2>/dev/null || { cat "$work/srv.err" >&2; exit 1; }
  sleep 0.1
done
server="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/srv.out" | head -1)"
echo "   $server"
# the first start prints the server admin's token once: log in with it (kept 0600 in $HOME, never shown)
grep -o 'rdk_[0-9a-f]*' "$work/srv.out" | head -1 | "$bin" login --server "$server" --token-stdin
sed -i 's/rdk_[0-9a-f]*/rdk_…/' "$work/srv.out"

echo "== redduck deploy examples/demo (explicit keys for connector warehouse, answered on stdin)"
printf 'test\ntest\n' | "$bin" deploy "$project"
printf '%s' "$endpoint" | "$bin" env set --cloud "$project" --environment prod connector.warehouse.endpoint_url -

echo "== redduck refresh --cloud --wait (the server runs the three sources with the stored keys)"
(cd "$project" && "$bin" refresh --cloud --wait)

echo "== redduck status --cloud"
(cd "$project" && "$bin" status --cloud)

echo "== redduck pull → a second file (no AWS credentials needed)"
(cd "$work" && env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$bin" pull --project demo --into "$work/team.duckdb")
"$bin" query "$work/team.duckdb" "select currency, sales from revenue_by_currency order by sales desc limit 3" \
  $( [ -t 1 ] || echo --csv )

echo "== the status page: $server/ (log in with a token; it stops with this demo)"
echo "== done: $project/data/demo.duckdb (try: $bin query $project/data/demo.duckdb 'describe sales')"
