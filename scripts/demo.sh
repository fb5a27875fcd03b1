#!/usr/bin/env bash
# demo.sh — `make demo`: starts the embedded emulator with the sample sales table, shows who redduck is
# talking to, runs a query through the Redshift Data API, and stops the emulator. The ingest step
# (UNLOAD → S3 → local DuckDB) joins this demo when `redduck ingest` lands.
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

echo "== a query through the Redshift Data API (workgroup demo, database dev)"
if command -v aws >/dev/null 2>&1; then
  id="$(aws --endpoint-url "$endpoint" redshift-data execute-statement --workgroup-name demo --database dev \
        --sql "select currency, count(*) as sales, sum(unit_price * quantity) as revenue from sales group by currency order by revenue desc" \
        --query Id --output text)"
  for _ in $(seq 1 100); do
    status="$(aws --endpoint-url "$endpoint" redshift-data describe-statement --id "$id" --query Status --output text)"
    case "$status" in FINISHED|FAILED|ABORTED) break ;; esac
    sleep 0.2
  done
  echo "   statement $id: $status"
  aws --endpoint-url "$endpoint" redshift-data get-statement-result --id "$id" --output json \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); cols=[c["name"] for c in r["ColumnMetadata"]]; print("   " + " | ".join(cols)); [print("   " + " | ".join(str(list(f.values())[0]) for f in row)) for row in r["Records"]]'
else
  echo "   (the AWS CLI is not installed; skipping)"
fi
echo "== done: redduck ingest (UNLOAD → S3 → local DuckDB) is the next step of this demo (see README)"
