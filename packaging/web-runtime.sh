#!/bin/sh
# Installs what the web export needs: ONNX Runtime Web (npm, pinned in web/package-lock.json)
# and Chromium (Debian/Ubuntu package, as root only). Never fails: without them the web tests
# are skipped with the reason printed.
cd "$(dirname "$0")/.." || exit 0
if [ ! -f web/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm ] \
   || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    if command -v npm >/dev/null 2>&1; then
        npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error \
            || echo "web export: npm ci failed; the web tests will be skipped."
    else
        echo "web export: npm is not installed; the web tests will be skipped."
    fi
fi
if ! command -v chromium >/dev/null 2>&1 && [ -z "$FINETUNE_GUI_CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
         || { apt-get update >/dev/null 2>&1 \
              && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }) \
            || echo "web export: could not install chromium; the web tests will be skipped."
    else
        echo "web export: no Chromium; run: sudo apt-get install chromium (web tests are skipped)."
    fi
fi
exit 0
