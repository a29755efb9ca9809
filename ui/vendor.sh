#!/usr/bin/env bash
# Vendors the dashboard's third-party browser code from the npm registry into
# crates/server/assets/vendor/, and records what was taken in VERSIONS there.
#
# The files are committed: building Patchbay needs no network and no npm.
# Run this only to change a version (edit the pins below), then review the
# diff of VERSIONS and commit the result.
#
# Usage: ui/vendor.sh
set -euo pipefail

# Pinned versions. uPlot draws the overview's time series charts.
UPLOT_VERSION=1.6.32

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/crates/server/assets/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v npm >/dev/null || { echo "error: npm is required" >&2; exit 1; }

# `npm pack` downloads the published tarball and checks it against the
# registry's integrity hash; `--json` reports that hash so it can be recorded.
fetch() { # name version -> unpacked package folder
    local name="$1" version="$2"
    (cd "$work" && npm pack --silent --json "$name@$version" >"$work/$name.json")
    local tarball
    tarball="$(node -e 'console.log(require(process.argv[1])[0].filename)' "$work/$name.json")"
    mkdir -p "$work/$name"
    tar -xzf "$work/$tarball" -C "$work/$name" --strip-components=1
    echo "$work/$name"
}

integrity() { # name -> the registry's integrity string of the packed tarball
    node -e 'console.log(require(process.argv[1])[0].integrity)' "$work/$1.json"
}

mkdir -p "$dest"
uplot="$(fetch uplot "$UPLOT_VERSION")"
cp "$uplot/dist/uPlot.iife.min.js" "$dest/uPlot.iife.min.js"
cp "$uplot/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$uplot/LICENSE" "$dest/uPlot.LICENSE"

{
    echo "# Third-party files served by the dashboard, vendored by ui/vendor.sh."
    echo "# package@version  npm tarball integrity"
    echo "uplot@$UPLOT_VERSION  $(integrity uplot)"
    echo "# sha256  file"
    (cd "$dest" && sha256sum uPlot.iife.min.js uPlot.min.css uPlot.LICENSE)
} >"$dest/VERSIONS"

echo "vendored into $dest:"
cat "$dest/VERSIONS"
