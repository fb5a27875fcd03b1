#!/usr/bin/env bash
# project_load.sh [KEYS...] — seconds `redduck run --check` takes on a redduck.yaml of KEYS unknown keys
# (default 10000 100000; 100000 is about the 1 MiB file limit), and on a .env of KEYS lines (each key twice).
# Loading must stay linear: the error names the first unknown key, whatever follows it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${REDDUCK_BIN:-$here/build/redduck}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export AWS_EC2_METADATA_DISABLED=true
keys=("$@")
((${#keys[@]})) || keys=(10000 100000)
echo "keys     yaml_s   env_s"
for n in "${keys[@]}"; do
  rm -rf "$work/p" && mkdir -p "$work/p"
  python3 -c "import sys; n=int(sys.argv[1]); sys.stdout.write(''.join('k%d: 1\n' % i for i in range(n)))" \
    "$n" > "$work/p/redduck.yaml"
  t0=$(date +%s.%N)
  "$bin" run --check "$work/p" > /dev/null 2>&1 || true
  t1=$(date +%s.%N)
  printf 'name: t\n' > "$work/p/redduck.yaml"
  python3 -c "import sys; h=int(sys.argv[1]) // 2; sys.stdout.write(''.join('K%d=%d\n' % (i % h, i // h) for i in range(2 * h)))" \
    "$n" > "$work/p/.env"
  t2=$(date +%s.%N)
  "$bin" run --check "$work/p" > /dev/null 2>&1 || true
  t3=$(date +%s.%N)
  python3 -c "import sys; a=[float(x) for x in sys.argv[2:]]; print('%-8s %7.3f %7.3f' % (sys.argv[1], a[1]-a[0], a[3]-a[2]))" \
    "$n" "$t0" "$t1" "$t2" "$t3"
done
