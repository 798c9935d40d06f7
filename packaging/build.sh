#!/bin/sh
# Freeze finetune-gui into one folder, dist/finetune-gui/, with PyInstaller (docs/packaging.md).
# Uses .venv (made by `make run` or `make test`), or the Python in $PYTHON; installs PyInstaller
# into it when missing. Build intermediates go to build/, the result to dist/ (both git-ignored).
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ]; then
    echo "No $PY yet: creating .venv and installing finetune-gui into it."
    python3 -m venv .venv
    PY=.venv/bin/python
fi
# The app with its ONNX export, so that every export format works in the frozen app too.
"$PY" -m pip install --quiet -e ".[onnx]"
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    echo "Installing PyInstaller into $("$PY" -c 'import sys; print(sys.prefix)')."
    "$PY" -m pip install --quiet "pyinstaller>=6.10,<7"
fi
# The web export's runtime, pinned in web/package-lock.json (see finetune-gui.spec).
if [ ! -f web/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm ]; then
    npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error \
        || echo "npm ci failed: the app's web export will say how to install the runtime."
fi
started=$(date +%s)
"$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath dist --workpath build packaging/finetune-gui.spec
echo "Built dist/finetune-gui in $(( $(date +%s) - started )) s: $(du -sh dist/finetune-gui | cut -f1)."
echo "Check it with: sh packaging/smoke-test.sh"
