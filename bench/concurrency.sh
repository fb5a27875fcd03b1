#!/usr/bin/env bash
# concurrency.sh [ROWS] [SLICES] [LATENCY_MS] — how the download part of `redduck ingest --format parquet`
# scales with --concurrency when every S3 request has LATENCY_MS of added first-byte latency (default 30,
# about what S3 shows in-region), over SLICES files (default 64) of ROWS rows (default 1000000). Prints the
# download seconds and MB/s per concurrency; the default (16) was chosen from these figures.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${REDDUCK_BIN:-$here/build/redduck}"
rows="${1:-1000000}"; slices="${2:-64}"; lat="${3:-30}"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export AWS_EC2_METADATA_DISABLED=true HOME="$work" AWS_CONFIG_FILE="$work/none" AWS_SHARED_CREDENTIALS_FILE="$work/none"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
"$bin" emulator --port 0 --data-dir "$work/data" --lifetime 3600 --threads 64 --slices "$slices" \
  --sample "sales:rows=$rows" --faults "latency.ms=$lat" > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 1 3000); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
endpoint="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/out")"
echo "concurrency  download_s  MB/s   (rows=$rows files=$slices latency=${lat}ms)"
for c in 1 2 4 8 16 32 64; do
  rm -rf "$work/pq"
  out="$("$bin" ingest --endpoint-url "$endpoint" --workgroup demo --staging s3://redduck-staging/c \
          --sql 'select * from sales' --format parquet --into "$work/pq" --concurrency "$c" --json)"
  python3 -c "import json,sys; r=json.loads(sys.argv[1]); s=r['seconds']['download']; print(f\"{$c:11d}  {s:10.2f}  {r['bytes']/1e6/s:6.0f}\")" "$out"
done
