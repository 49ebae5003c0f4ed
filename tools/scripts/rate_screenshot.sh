#!/usr/bin/env bash
# Makes docs/rate_page.png, the README's screenshot of the `iris rate` page: a study of Fashion-MNIST test
# images (the camera side) against their bicubic upsampling from 7x7 (the method), served by `iris rate
# serve` and shot by headless Chromium during the first trial (the viewing time is set long so that the
# pair is still on screen).
# Usage: tools/scripts/rate_screenshot.sh [IRIS_BINARY [OUT_PNG]]   (defaults: build/bin/iris, docs/rate_page.png)
set -euo pipefail
cd "$(dirname "$0")/../.."
iris=$(realpath "${1:-build/bin/iris}")
out=$(realpath -m "${2:-docs/rate_page.png}")
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "rate_screenshot: no chromium (tools/setup.sh installs it)" >&2; exit 1; }
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$iris" shard fashion-mnist --out "$work/fm" --lowres 7 --limit 64 >/dev/null
"$iris" eval --pred "$work/fm/test" --truth "$work/fm/test" --lowres "$work/fm/test:lowres_7" \
  --save-bicubic "$work/bicubic.h5" >/dev/null
"$iris" rate serve --study "$work/study" --method "bicubic=$work/bicubic.h5" --truth "$work/fm/test" \
  --seed 3 --view-seconds 600 --port 0 >"$work/serve.log" 2>&1 &
pid=$!
url=
for _ in $(seq 1 200); do
  url=$(grep -o 'serving at http://[^ ]*' "$work/serve.log" | head -1 | cut -d' ' -f3 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/serve.log" >&2; exit 1; }
# --virtual-time-budget lets the page's requests and image loads finish before the shot.
"$chromium" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=900,600 \
  --virtual-time-budget=5000 --screenshot="$out" "${url}?rater=reader" 2>/dev/null
echo "wrote $out"
