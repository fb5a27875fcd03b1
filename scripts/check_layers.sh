#!/bin/sh
# check_layers.sh — checks the #include lines of src/ against the layering in docs/STYLE.md:
#   core ← aws ← services ← auth ← ingest ← project ← server ← cli
# a file in one of these layers includes only headers of its own layer and of the layers to its left;
# src/httpd includes only core and httpd; src/emulator only core, aws, httpd and emulator (and no product
# layer includes the emulator); the CLI includes the public headers plus core, httpd and its own.
# A public header include/redduck/X.h belongs to the layer that implements it (table below), so
# "redduck/session.h" counts as auth. An include without a folder ("plan.h") is the file's own layer.
# Usage: scripts/check_layers.sh [SOURCE_DIR]. Exit status 1 and one line per offending include if any.
set -u
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2

for d in src/*/; do
    [ -d "$d" ] && grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$d" --include='*.c' --include='*.h'
done | awk '
BEGIN {
    # the public headers, by the layer that implements them
    pub["error"] = "core"; pub["buf"] = "core"; pub["headers"] = "core"
    pub["sigv4"] = "aws"; pub["creds"] = "aws"
    pub["session"] = "auth"
    pub["ingest"] = "ingest"; pub["target"] = "ingest"; pub["gc"] = "ingest"; pub["value"] = "ingest"
    pub["project"] = "project"; pub["runner"] = "project"; pub["doctor"] = "project"; pub["dotenv"] = "project"
    pub["schedule"] = "project"
    pub["emulator"] = "emulator"
    pub["cloud"] = "server"; pub["pull"] = "server"
    pub["server"] = "server"
    # what each layer may include (private headers and public ones alike)
    may["core"] = " core "
    may["aws"] = " core aws "
    may["services"] = " core aws services "
    may["auth"] = " core aws services auth "
    may["ingest"] = " core aws services auth ingest "
    may["project"] = " core aws services auth ingest project "
    may["server"] = " core aws services auth ingest project httpd server "
    may["httpd"] = " core httpd "
    may["emulator"] = " core aws httpd emulator "
    # the CLI: every public header, and of src/ only core, httpd (the emulator signal wait) and its own
    may["cli"] = " core aws auth ingest project server emulator httpd cli "
    clipriv = " core httpd cli "
    bad = 0
}
{
    file = $0; sub(/:.*/, "", file)
    split(file, parts, "/"); layer = parts[2]
    inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
    public = 0
    if (inc ~ /^redduck\//) {
        name = inc; sub(/^redduck\//, "", name); sub(/\.h$/, "", name)
        if (!(name in pub)) {
            print "layer violation (include/redduck/" name ".h has no layer in scripts/check_layers.sh): " $0
            bad = 1; next
        }
        target = pub[name]; public = 1
    } else if (inc ~ /\//) {
        target = inc; sub(/\/.*/, "", target)
    } else {
        target = layer
    }
    if (!(layer in may)) {
        print "layer violation (src/" layer " is not a known layer): " $0; bad = 1; next
    }
    allowed = may[layer]
    if (layer == "cli" && !public) allowed = clipriv
    if (index(allowed, " " target " ") == 0) {
        kind = public ? "the public header of " : ""
        print "layer violation (" layer " includes " kind target "; it may use" allowed "only): " $0
        bad = 1
    }
}
END {
    if (!bad) print "layers ok"
    exit bad
}'
