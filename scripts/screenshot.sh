#!/usr/bin/env bash
# A PNG screenshot of an HTML report, taken by Debian's headless Chromium.
#   scripts/screenshot.sh REPORT.html OUT.png [WIDTH [HEIGHT]]
# Chromium is large (about 80 MB to download, 350 MB installed), so it is not a
# default dependency: install it with `INSTALL_CHROMIUM=1 scripts/install-deps.sh`
# or `apt-get install --no-install-recommends chromium`.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTH [HEIGHT]]" >&2
    exit 2
fi
in=$1 out=$2 width=${3:-1200} height=${4:-3000}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "$0: chromium is not installed (INSTALL_CHROMIUM=1 scripts/install-deps.sh)" >&2
    exit 1
fi
[ -f "$in" ] || { echo "$0: $in: no such file" >&2; exit 1; }
abs=$(cd "$(dirname "$in")" && pwd)/$(basename "$in")
case "$out" in /*) out_abs=$out ;; *) out_abs=$PWD/$out ;; esac
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# A throwaway profile and no background traffic: the page is local and needs no network.
"$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
    --window-size="$width,$height" --screenshot="$out_abs" "file://$abs" >/dev/null 2>"$profile/log" || {
    cat "$profile/log" >&2
    exit 1
}
[ -s "$out_abs" ] || { echo "$0: chromium wrote no screenshot" >&2; cat "$profile/log" >&2; exit 1; }
echo "wrote $out ($(stat -c %s "$out_abs") bytes, ${width}x${height})"
