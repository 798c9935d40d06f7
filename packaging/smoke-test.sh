#!/bin/sh
# Drive the frozen app through a user's whole job, without a screen, on a small folder of real
# (generated) pictures this script makes: --version; scan; train (tiny images, a few seconds);
# evaluate on new pictures; predict with "not sure"; sort; every export format the program
# offers (the web page only where Chromium is installed); the report; then the window,
# offscreen on the same folder: train, Results, Export (one PNG each). Each step's failure
# names the step; the script exits 1 if any step failed. See docs/packaging.md.
#   sh packaging/smoke-test.sh [path/to/finetune-gui]
# The pictures and a weights file for the network come from the checkout's Python (.venv, or
# $PYTHON); everything else is the frozen program.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
APP=${1:-$ROOT/dist/finetune-gui/finetune-gui}
PY=${PYTHON:-$ROOT/.venv/bin/python}
LIMIT=600  # seconds per step; a hung step fails instead of waiting forever
[ -x "$APP" ] || { echo "FAIL: no frozen app at $APP (build it with: sh packaging/build.sh)"; exit 1; }
[ -x "$PY" ] || { echo "FAIL: no Python at $PY to make the test pictures (make run, or set PYTHON)"; exit 1; }

# Offscreen Qt, and logs and caches in a throw-away folder, not the user's.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export QT_QPA_PLATFORM=offscreen
export FINETUNE_GUI_LOG_DIR="$scratch/logs" FINETUNE_GUI_CACHE_DIR="$scratch/cache"
export KERAS_HOME="$scratch/keras"

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
failed=""
all_started=$(now)

# step NAME CHECK COMMAND...: run COMMAND (output to $scratch/NAME.out), then the shell test
# CHECK; say how long it took, or FAIL with the step's name and the end of its output.
step() {
    name=$1 check=$2
    shift 2
    started=$(now)
    if timeout "$LIMIT" "$@" >"$scratch/$name.out" 2>&1; then
        if sh -c "$check" >>"$scratch/$name.out" 2>&1; then
            echo "ok   $name ($(seconds_since "$started") s)"
            return 0
        fi
        echo "FAIL $name: the program exited 0 but the check failed: $check"
    else
        echo "FAIL $name: exited with $? after $(seconds_since "$started") s"
    fi
    tail -n 25 "$scratch/$name.out" | sed 's/^/    /'
    failed="$failed $name"
    return 1
}

# -- the test pictures and a weights file (the checkout's Python) -----------------------------
# The weights file stands in for ImageNet weights (no download here): MobileNetV3Small trained
# from scratch on other pictures of the same kind, then its base saved as a user's own weights
# file would be. A base with random weights made a degenerate model whose float16 and int8
# exports rightly failed their check.
echo "making the test pictures and a weights file (about 20 s)"
TF_CPP_MIN_LOG_LEVEL=3 "$PY" - "$scratch" >"$scratch/fixtures.out" 2>&1 <<'EOF' || { echo "FAIL: could not make the test pictures"; tail "$scratch/fixtures.out"; exit 1; }
import sys
from pathlib import Path

from finetune_gui.core.model.parts import split_classifier
from finetune_gui.core.run.folder import RunFolder
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.job import TrainingJob
from finetune_gui.demo import make_shapes_dataset

scratch = Path(sys.argv[1])
make_shapes_dataset(scratch / "data", per_class=20, size=32, seed=1)
make_shapes_dataset(scratch / "new", per_class=6, size=32, seed=2)
make_shapes_dataset(scratch / "base-data", per_class=20, size=32, seed=7)
settings = TrainingSettings(
    backbone="mobilenetv3small", weights="none", image_size=32, epochs_head=6,
    epochs_finetune=0, batch_size=16, augment="none", patience=0, seed=3,
)
TrainingJob(scratch / "base-data", settings, scratch / "base-run").run()
base = split_classifier(RunFolder.open(scratch / "base-run").load_model()).base
base.save_weights(str(scratch / "mobilenetv3small-32.weights.h5"))
EOF
echo "made $scratch/data (3 classes x 20 pictures, 32 px) and new pictures to predict"

run="$scratch/run"
step version "head -n 1 '$scratch/version.out' | grep -q '^finetune-gui '" \
    "$APP" --version && sed 's/^/    /' "$scratch/version.out"
step scan "grep -q '\"total_images\": 60' '$scratch/scan.out' && grep -q '\"can_train\": true' '$scratch/scan.out'" \
    "$APP" scan --json "$scratch/data"
step train "test -s '$run/model.keras' && test -s '$run/load_image.py' && grep -q 'Test accuracy' '$scratch/train.out'" \
    "$APP" train "$scratch/data" --out "$run" --backbone mobilenetv3small \
    --weights "$scratch/mobilenetv3small-32.weights.h5" --image-size 32 --epochs-head 2 \
    --epochs-finetune 1 --batch-size 16
step evaluate "grep -qi 'accuracy' '$scratch/evaluate.out'" \
    "$APP" evaluate "$run" "$scratch/new"
step predict "test \$(grep -c '\"unsure\"' '$scratch/predict.json') -eq 18" \
    sh -c "'$APP' predict '$run' '$scratch/new' --json > '$scratch/predict.json'"
step sort "test -s '$scratch/sorted/predictions.csv' && test \$(find '$scratch/sorted' -name '*.png' | wc -l) -eq 18" \
    "$APP" sort "$run" "$scratch/new" --into "$scratch/sorted"
# Every format the program offers, read from its own help.
formats=$("$APP" export -h | tr -d '\n ' | sed -n 's/.*--format{\([^}]*\)}.*/\1/p' | tr ',' ' ')
[ -n "$formats" ] || { echo "FAIL export: no formats listed by 'export -h'"; failed="$failed export"; }
for format in $formats; do
    if [ "$format" = web ] && ! command -v chromium >/dev/null 2>&1; then
        echo "skip export-web: no Chromium to check the page in (apt-get install chromium)"
        continue
    fi
    step "export-$format" "test -n \"\$(ls -A '$scratch/export-$format')\"" \
        "$APP" export "$run" --format "$format" --to "$scratch/export-$format"
done
step report "test -s '$scratch/report.html' && grep -q '<html' '$scratch/report.html'" \
    "$APP" report "$run" --out "$scratch/report.html"

# -- the window, offscreen on the same folder: train, Results, Export -------------------------
shots=""
for page in train results export; do shots="$shots && test -s '$scratch/window-$page.png'"; done
step window "true $shots" \
    "$APP" --screenshot "$scratch/window.png" --page train results export --data "$scratch/data"

echo "smoke test: $(seconds_since "$all_started") s in all"
if [ -n "$failed" ]; then
    echo "FAILED steps:$failed"
    echo "The app's log file ends with:"
    tail -n 40 "$scratch"/logs/*.log 2>/dev/null
    exit 1
fi
echo "OK: the frozen app scans, trains, evaluates, predicts, sorts, exports every format, writes the report and trains in its window through Results and Export."
