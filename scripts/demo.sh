#!/usr/bin/env bash
# demo.sh — `make demo`. The end-to-end demo (emulator + ingest + project) arrives with the ingest and
# project issues; until then it shows what works today.
set -euo pipefail
export AWS_EC2_METADATA_DISABLED=true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/build/redduck"
"$bin" --version
echo "redduck demo: the emulator + ingest demo is coming (see README)."
