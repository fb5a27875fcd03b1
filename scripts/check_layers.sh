#!/bin/sh
# check_layers.sh — checks the #include lines against the layering in docs/STYLE.md:
#   src/emulator includes only core, aws, httpd and emulator headers (never services/auth/ingest/project/server/cli);
#   src/httpd includes only core and httpd headers;
#   the product (core, aws, services, auth, ingest, project, server) never includes an emulator header.
# Usage: scripts/check_layers.sh [SOURCE_DIR]. Exit status 1 and one line per offending include if any.
set -u
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2
bad=0

# report REASON HITS: prints each FILE:LINE:TEXT hit with the reason; marks the run failed if any
report() {
    [ -n "$2" ] || return 0
    printf '%s\n' "$2" | sed "s|^|layer violation ($1): |"
    bad=1
}

includes() { # DIR... → every quoted #include line under the given dirs
    for d in "$@"; do
        [ -d "$d" ] && grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$d" --include='*.c' --include='*.h'
    done
}

product_public='redduck/(ingest|project|runner|doctor|dotenv|gc|session)\.h'
hits=$(includes src/emulator | grep -E "\"((services|auth|ingest|project|server|cli)/|$product_public)")
report "emulator uses core/aws only" "$hits"

hits=$(includes src/httpd | grep -vE '"(core/|httpd/|redduck/(buf|error|headers)\.h)')
report "httpd uses core only" "$hits"

hits=$(includes src/core src/aws src/services src/auth src/ingest src/project src/server src/httpd |
       grep -E '"(emulator/|redduck/emulator\.h)')
report "the product never includes the emulator" "$hits"

if [ "$bad" -eq 0 ]; then echo "layers ok"; fi
exit "$bad"
