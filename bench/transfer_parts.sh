#!/usr/bin/env bash
# transfer_parts.sh [SIZE_MB] [FILES] [CONCURRENCY] [PARTS_MB] — the downloader by part size: FILES objects
# (default 1) of SIZE_MB MiB (default 400) in the in-process emulator, fetched through rd_transfer_run with
# CONCURRENCY requests at once (default 16), for each part size in PARTS_MB (default 0,8,16,32,64; 0 = one
# stream per file), REPEAT times (default 3; the median is printed); FAULTS is passed to the emulator (e.g.
# FAULTS=latency.ms=30 for S3's first-byte latency). Loopback only: it measures the
# downloader's and the emulator's CPU cost, not S3's per-connection limit, which is what ranges are for.
# Builds the bench_transfer_parts target of the build BUILD (default build/, a release build).
set -euo pipefail
size_mb="${1:-400}"; files="${2:-1}"; conc="${3:-16}"; parts="${4:-0,8,16,32,64}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${BUILD:-$here/build}" && pwd)"
export AWS_EC2_METADATA_DISABLED=true
cmake --build "$build" --target bench_transfer_parts >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$build/bench_transfer_parts" "$work" "$size_mb" "$files" "$conc" "$parts" "${REPEAT:-3}"
