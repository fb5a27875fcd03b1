#!/usr/bin/env bash
# ingest.sh [ROWS] [SLICES] — times, in one run on the emulator (release build):
#   (a) `redduck ingest` of `select * from sales` (ROWS rows, default 1000000; SLICES files, default 8),
#   (b) the path a user takes by hand: `aws s3 cp --recursive` of the same unloaded files, then a DuckDB
#       load of the local files,
#   (c) the floor: the larger of a bare parallel curl download of the files and the DuckDB load alone,
# and prints the ratios and redduck's peak RSS. The UNLOAD itself is the same for every path (it runs on
# Redshift); ratios compare what follows it, and redduck's total including the UNLOAD is shown too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REDDUCK_BIN="${REDDUCK_BIN:-$here/build/redduck}"
export RD_DUCKDB_LIB="${RD_DUCKDB_LIB:-$here/third_party/duckdb/libduckdb.so}"
export AWS_EC2_METADATA_DISABLED=true
exec python3 "$here/bench/ingest_bench.py" "${1:-1000000}" "${2:-8}"
