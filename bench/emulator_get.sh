#!/usr/bin/env bash
# emulator_get.sh [SIZE_MB] — how fast the emulator serves S3 GetObject on loopback:
#   (a) one GET of a SIZE_MB object (default 1024), (b) 64 concurrent ranged GETs covering it.
# Uses presigned URLs made by `redduck sign --presign` and plain curl. Prints GB/s for each.
set -euo pipefail
size_mb="${1:-1024}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${REDDUCK_BIN:-$here/build/redduck}"
export AWS_EC2_METADATA_DISABLED=true
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export HOME="$work" AWS_CONFIG_FILE="$work/none" AWS_SHARED_CREDENTIALS_FILE="$work/none"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

"$bin" emulator --port 0 --data-dir "$work/data" --lifetime 900 --threads 16 > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
endpoint="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/out")"
presign() { "$bin" sign --method "$1" --url "$endpoint/redduck-staging/$2" --service s3 --region us-east-1 --presign 3600 \
              | sed -n '/# presigned url/{n;p}'; }
head -c $((size_mb * 1024 * 1024)) /dev/urandom > "$work/big"
curl -sf -X PUT -T "$work/big" "$(presign PUT big)" -o /dev/null
rm -f "$work/big"
url="$(presign GET big)"
bytes=$((size_mb * 1024 * 1024))

t0=$(date +%s.%N)
curl -sf "$url" -o /dev/null
t1=$(date +%s.%N)
single=$(python3 -c "print(f'{$bytes/($t1-$t0)/1e9:.2f}')")
echo "emulator_get single: ${size_mb} MiB in $(python3 -c "print(f'{$t1-$t0:.2f}')") s = ${single} GB/s"

parts=64
chunk=$(( (bytes + parts - 1) / parts ))
seq 0 $((parts - 1)) | awk -v c="$chunk" -v b="$bytes" '{s=$1*c; e=s+c-1; if (e>=b) e=b-1; print s "-" e}' > "$work/ranges"
t0=$(date +%s.%N)
xargs -P "$parts" -I{} curl -sf -r {} "$url" -o /dev/null < "$work/ranges"
t1=$(date +%s.%N)
multi=$(python3 -c "print(f'{$bytes/($t1-$t0)/1e9:.2f}')")
echo "emulator_get concurrent: ${parts} ranged GETs over ${size_mb} MiB in $(python3 -c "print(f'{$t1-$t0:.2f}')") s = ${multi} GB/s"
