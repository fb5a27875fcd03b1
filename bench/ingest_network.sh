#!/usr/bin/env bash
# ingest_network.sh [ROWS] — an ingest over an emulated network, in one run on the emulator (release build):
# the emulator paces each S3 connection (s3.get.bandwidth, default 50MB per second), holds back each
# GetObject's first byte (s3.get.latency.ms, default 30) and writes the UNLOAD at a pace (unload.mbps, default
# 100), so what decides speed for a real user shows: parallel ranged downloads and overlapping them with the
# UNLOAD. It times
#   (a) `redduck ingest --concurrency 16 --max-file-size 400` (plus RD_BENCH_FLAGS) with its own phase times
#       and peak RSS, sampling the download directory's disk use;
#   (a') the download alone: the same with --format parquet --no-overlap (files into a directory, no DuckDB,
#       after the UNLOAD), whose download phase gives the throughput against 16 x bandwidth;
#   (b) by hand: the same UNLOAD through `aws redshift-data execute-statement` and a describe-statement
#       loop, `aws s3 cp --recursive` (AWS CLI v1, default settings), then a DuckDB load of the local files;
#   (c) the floor: max(the UNLOAD alone, bytes / (16 x bandwidth), the DuckDB load of the local files with
#       redduck's settings: threads, memory_limit 128MB, no insertion order).
# It prints redduck / floor, and redduck / by hand both end to end and after the UNLOAD (redduck's work left
# once the statement ended, against `aws s3 cp` plus the DuckDB load).
# Each step starts after os.sync(), so no step is timed against the writeback of an earlier one; before
# them the bench touches most of the free memory once (a VM's host may back memory only when first touched),
# and as root it drops the page cache before each step, so that none inherits an earlier one's cached files.
# The data: a table of ROWS rows (default 22000000) made by CREATE TABLE AS through the Data API, a BIGINT
# id and eight random DOUBLEs (incompressible: about 68 bytes a row in Parquet, fast to generate), unloaded
# on 4 slices with MAXFILESIZE 400 MB: 4 part files of about 375 MB (1.5 GB) by default.
# Environment: RD_BENCH_BANDWIDTH (50MB), RD_BENCH_LATENCY_MS (30), RD_BENCH_UNLOAD_MBPS (100),
# RD_BENCH_FLAGS (extra `redduck ingest` flags, e.g. "--part-size 16MB"), RD_BENCH_WARM_MB (memory touched
# first; default 60% of MemAvailable, at most 16 GiB), REDDUCK_BIN, RD_DUCKDB_LIB.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REDDUCK_BIN="${REDDUCK_BIN:-$here/build/redduck}"
export RD_DUCKDB_LIB="${RD_DUCKDB_LIB:-$here/third_party/duckdb/libduckdb.so}"
export AWS_EC2_METADATA_DISABLED=true
exec python3 "$here/bench/ingest_network.py" "${1:-22000000}"
