#!/usr/bin/env bash
# screenshot-html.sh: look at an HTML report the way a person would (headless Chromium, no network).
#
#   bash scripts/screenshot-html.sh REPORT.html OUT.png [WIDTHxHEIGHT]   (default 1200x2400; 390x2400 for a phone)
#
# Uses Debian's chromium (apt-get install chromium); never downloads a browser.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,7p' "$0"; exit 2; }
html=$(realpath "$1")
out=$(realpath -m "$2")
size=${3:-1200x2400}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "screenshot-html: chromium not found (apt-get install chromium)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --hide-scrollbars --user-data-dir="$profile" \
  --window-size="${size/x/,}" --screenshot="$out" "file://$html" 2>/dev/null
echo "$out"
