#!/bin/sh
# Start the frozen app the way a user would, without a screen: `--version`, then a screenshot of
# the data page. Fails (exit 1) when either exits with an error or the PNG is missing.
#   sh packaging/smoke-test.sh [path/to/finetune-gui] [screenshot.png]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
APP=${1:-$ROOT/dist/finetune-gui/finetune-gui}
PNG=${2:-/tmp/finetune-gui-smoke-data.png}
LIMIT=600  # seconds per start; a hung start fails instead of waiting forever
[ -x "$APP" ] || { echo "FAIL: no frozen app at $APP (build it with: sh packaging/build.sh)"; exit 1; }

# Offscreen Qt, and logs and caches in a throw-away folder, not the user's.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export QT_QPA_PLATFORM=offscreen
export FINETUNE_GUI_LOG_DIR="$scratch/logs" FINETUNE_GUI_CACHE_DIR="$scratch/cache"
export KERAS_HOME="$scratch/keras"

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
failed=0

started=$(now)
if timeout "$LIMIT" "$APP" --version >"$scratch/version.txt" 2>"$scratch/version.err"; then
    echo "--version: $(seconds_since "$started") s"
    sed 's/^/    /' "$scratch/version.txt"
    head -n 1 "$scratch/version.txt" | grep -q '^finetune-gui ' \
        || { echo "FAIL: --version did not start with 'finetune-gui '"; failed=1; }
else
    code=$?
    echo "FAIL: --version exited with $code after $(seconds_since "$started") s:"
    cat "$scratch/version.err"
    failed=1
fi

rm -f "$PNG"
started=$(now)
if timeout "$LIMIT" "$APP" --screenshot "$PNG" --page data >"$scratch/shot.out" 2>&1; then
    echo "--screenshot --page data: $(seconds_since "$started") s"
    # A PNG file starts with the bytes 89 50 4E 47 ("\x89PNG").
    if [ -s "$PNG" ] && [ "$(head -c 4 "$PNG" | od -An -tx1 | tr -d ' \n')" = "89504e47" ]; then
        echo "    wrote $PNG ($(wc -c <"$PNG") bytes)"
    else
        echo "FAIL: no PNG at $PNG"
        failed=1
    fi
else
    code=$?
    echo "FAIL: --screenshot exited with $code after $(seconds_since "$started") s:"
    tail -n 30 "$scratch/shot.out"
    failed=1
fi

if [ "$failed" -ne 0 ]; then
    echo "The app's log file ends with:"
    tail -n 40 "$scratch"/logs/*.log 2>/dev/null
    exit 1
fi
echo "OK: the frozen app starts, prints its versions and draws a page."
