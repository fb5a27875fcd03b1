#!/usr/bin/env bash
# demo.sh — `make demo`: starts the embedded emulator with the sample sales table, shows who redduck is
# talking to, runs the demo project examples/demo (UNLOAD → S3 → local DuckDB, a Data API source and an
# incremental one) with `redduck run`, shows results with `redduck query`, and stops the emulator. The
# DuckDB file stays in examples/demo/data/ for a look afterwards.
set -euo pipefail
export AWS_EC2_METADATA_DISABLED=true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/build/redduck"
work="$(mktemp -d)"
emu_pid=""
cleanup() {
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then kill "$emu_pid"; wait "$emu_pid" 2>/dev/null || true; fi
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
echo "== done: $project/data/demo.duckdb (try: $bin query $project/data/demo.duckdb 'describe sales')"
