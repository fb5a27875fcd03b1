#!/usr/bin/env bash
# bootstrap.sh — installs what redduck needs to build and test, idempotently:
#   Debian packages (compilers, libraries, test peers) and the pinned DuckDB from the npm registry,
#   checked against the registry's integrity hash and unpacked into third_party/duckdb (git-ignored).
# Fast when already done: each step checks first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'bootstrap: %s\n' "$*" >&2; }

# --- Debian packages --------------------------------------------------------------------------------
packages=(
  build-essential cmake pkg-config clang
  libcurl4-openssl-dev libssl-dev libjansson-dev libxml2-dev libfyaml-dev libmicrohttpd-dev libcmocka-dev
  libsqlite3-dev libarchive-dev
  ca-certificates
  # the status page's browser test (tests/integration/test_status_page.py) drives a real headless Chromium
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# botocore and the AWS CLI are the test suite's independent peers: use the ones on PATH when present,
# otherwise Debian's. Debian's AWS CLI v2 (/usr/bin/aws) is a second witness the tests always use.
if ! python3 -c 'import botocore' >/dev/null 2>&1; then
  dpkg-query -W -f='${Status}' python3-botocore 2>/dev/null | grep -q "install ok installed" || missing+=(python3-botocore)
fi
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v npm >/dev/null 2>&1 || missing+=(npm)
dpkg-query -W -f='${Status}' awscli 2>/dev/null | grep -q "install ok installed" || missing+=(awscli)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${missing[*]} — run as root, or: sudo apt-get install ${missing[*]}"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- DuckDB (pinned, from the npm registry) -----------------------------------------------------------
# libduckdb.so from @duckdb/node-bindings-linux-x64, duckdb.h from the duckdb package; both verified
# against the registry's published integrity (sha512).
DUCKDB_LIB_PKG="@duckdb/node-bindings-linux-x64@1.4.4-r.4"
DUCKDB_LIB_SHA512="jBTL/WvfwxLToFa/pVHfT6elMtltJGnc3wSuxZD9OfMltit9YUdVFS37vBFQzXMT1Z8OWjtSjMh+zPKxOwHLHA=="
DUCKDB_HDR_PKG="duckdb@1.4.4"
DUCKDB_HDR_SHA512="hEJJ5hyVF0VLj3dmOLpsWrQR0b3d4Ykqtygm6iUXjHJDDnSqg/USKxcb5qvNrOhFYPgktayU6dXCtgPqcmmpog=="
dest="$here/third_party/duckdb"
stamp="$dest/.stamp"
want_stamp="$DUCKDB_LIB_PKG $DUCKDB_HDR_PKG"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want_stamp" ] || [ ! -f "$dest/libduckdb.so" ] || [ ! -f "$dest/duckdb.h" ]; then
  cache="$here/.cache/npm-packs"
  mkdir -p "$cache"
  fetch() { # fetch PKG SHA512 → prints path of the verified tarball
    local pkg="$1" sum="$2" tgz
    for tgz in "$cache"/*.tgz; do
      [ -f "$tgz" ] || continue
      if [ "$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)" = "$sum" ]; then echo "$tgz"; return 0; fi
    done
    say "downloading $pkg"
    tgz="$(cd "$cache" && npm pack --silent "$pkg" 2>/dev/null | tail -n 1)"
    tgz="$cache/$tgz"
    if [ ! -f "$tgz" ]; then say "npm pack $pkg failed"; return 1; fi
    local got
    got="$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    if [ "$got" != "$sum" ]; then
      say "integrity check failed for $pkg (got sha512-$got); refusing to use it"
      rm -f "$tgz"
      return 1
    fi
    echo "$tgz"
  }
  lib_tgz="$(fetch "$DUCKDB_LIB_PKG" "$DUCKDB_LIB_SHA512")"
  hdr_tgz="$(fetch "$DUCKDB_HDR_PKG" "$DUCKDB_HDR_SHA512")"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  tar -xzf "$lib_tgz" -C "$tmp" package/libduckdb.so
  tar -xzf "$hdr_tgz" -C "$tmp" package/src/duckdb/src/include/duckdb.h
  mkdir -p "$dest"
  install -m 0644 "$tmp/package/libduckdb.so" "$dest/libduckdb.so"
  install -m 0644 "$tmp/package/src/duckdb/src/include/duckdb.h" "$dest/duckdb.h"
  printf '%s' "$want_stamp" > "$stamp"
  say "DuckDB installed in third_party/duckdb"
fi
