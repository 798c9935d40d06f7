#!/bin/sh
# Installs what the web export needs: ONNX Runtime Web (npm, pinned in web/package-lock.json)
# and Chromium (Debian/Ubuntu package, as root only). Run by `make run` and `make test`. Never
# fails: without the runtime the app shows the web page format as unavailable, without Chromium
# it writes the page marked "not checked in a browser"; the web tests are skipped either way.
cd "$(dirname "$0")/.." || exit 0
if [ ! -f web/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm ] \
   || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    if command -v npm >/dev/null 2>&1; then
        npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error \
            || echo "web export: npm ci failed; the Web page format stays unavailable (try again: make web-runtime)."
    else
        echo "web export: npm is not installed; the Web page format stays unavailable (install npm, then: make web-runtime)."
    fi
fi
if ! command -v chromium >/dev/null 2>&1 && [ -z "$FINETUNE_GUI_CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
         || { apt-get update >/dev/null 2>&1 \
              && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }) \
            || echo "web export: could not install chromium; web pages are written but not checked in a browser."
    else
        echo "web export: no Chromium, so web pages are not checked in a browser; to check them: sudo apt-get install chromium"
    fi
fi
exit 0
