#!/usr/bin/env bash
# fuzz.sh BUILD_DIR SECONDS — runs every libFuzzer target built in BUILD_DIR for SECONDS each, seeded from
# tests/fuzz/corpus/<target>/ when present. Fails if any target finds a crash, leak or sanitizer report, or
# goes over FUZZ_MEMORY_MB (default 512) of RSS or in one allocation: a parser of a few-KB file that needs more
# is a bug (a YAML alias bomb is exactly that).
set -euo pipefail
build="${1:-build-fuzz}"
seconds="${2:-60}"
memory_mb="${FUZZ_MEMORY_MB:-512}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AWS_EC2_METADATA_DISABLED=true
status=0
shopt -s nullglob
targets=("$build"/fuzz_*)
if ((${#targets[@]} == 0)); then
  echo "fuzz: no targets in $build" >&2
  exit 1
fi
for bin in "${targets[@]}"; do
  [ -x "$bin" ] || continue
  name="$(basename "$bin")"
  work="$build/corpus-$name"
  mkdir -p "$work" "$build/artifacts"
  seeds=()
  [ -d "$here/tests/fuzz/corpus/$name" ] && seeds+=("$here/tests/fuzz/corpus/$name")
  echo "fuzz: $name for ${seconds}s"
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb="$memory_mb" -malloc_limit_mb="$memory_mb" -print_final_stats=1 \
       -artifact_prefix="$build/artifacts/$name-" "$work" "${seeds[@]}" > "$build/$name.log" 2>&1; then
    echo "fuzz: $name clean ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$build/$name.log" | grep -o '[0-9]*$') runs)"
  else
    echo "fuzz: $name FAILED — see $build/$name.log and $build/artifacts/" >&2
    tail -n 30 "$build/$name.log" >&2
    status=1
  fi
done
exit $status
