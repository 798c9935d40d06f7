"""How often a run says "not sure" on pictures of an unrelated kind, and on its own test images.

    python benchmarks/unsure.py --size 64 --seeds 0 1
    python benchmarks/unsure.py --size 64 --remeasure RUN [RUN ...]
    python benchmarks/unsure.py --size 64 --train DIGITS --extra faces=FOLDER icons=FOLDER

`--remeasure` takes runs this benchmark trained before, copies each, drops its rule and stored
features, and calibrates and measures the rule again: for a change to the rule alone.

Trains on GNOME Adwaita icons (or on `--train FOLDER`) (one class per icon context, 48x48 PNGs from the
adwaita-icon-theme package) and asks the run about scikit-learn's bundled hand-written digits
and crops of its two bundled photos (the only photos on this offline machine). The base is a
MobileNetV2 trained from scratch on generated shapes (ImageNet weights cannot be downloaded
here), as in the other benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from compare_tutorial import make_weights

ICONS = Path("/usr/share/icons/Adwaita/48x48")
CONTEXTS = ("actions", "devices", "mimetypes", "places", "status", "legacy")


def icon_folder(work: Path) -> Path:
    """The icon contexts as class folders (copies; the theme itself is never touched)."""
    root = work / "icons"
    if not root.exists():
        for context in CONTEXTS:
            shutil.copytree(ICONS / context, root / context)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--unrelated", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path("/tmp/finetune-gui-unsure"))
    parser.add_argument("--remeasure", type=Path, nargs="+", default=[])
    parser.add_argument("--extra", nargs="+", default=[], metavar="NAME=FOLDER",
                        help="more unrelated sets: every file in FOLDER and its subfolders")
    parser.add_argument("--train", type=Path, default=None, metavar="FOLDER",
                        help="train on this folder (one subfolder per class), not the icons")
    args = parser.parse_args()

    from tests.unrelated_images import write_digits, write_photo_crops

    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    args.work.mkdir(parents=True, exist_ok=True)
    weights = make_weights(args.work, args.size)
    icons = args.train or icon_folder(args.work)
    unrelated = {"photos": write_photo_crops(args.work / "photos", args.unrelated, args.size)}
    if args.train is None:  # a run trained on digits is asked about them with --extra
        unrelated["digits"] = write_digits(args.work / "digits", args.unrelated, args.size)
    for extra in args.extra:
        name, folder = extra.split("=", 1)
        unrelated[name] = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    for earlier in args.remeasure:
        folder = args.work / f"remeasured-{earlier.name}-{time.time_ns()}"
        shutil.copytree(earlier, folder)
        for stale in ("unsure.json", "features.npz"):
            (folder / stale).unlink(missing_ok=True)
        started = time.perf_counter()
        report(RunFolder.open(folder), None, unrelated, started)
    for seed in args.seeds if not args.remeasure else []:
        settings = TrainingSettings(
            backbone="mobilenetv2", weights=str(weights), image_size=args.size, epochs_head=5,
            epochs_finetune=5, unfreeze_blocks=2, batch_size=32, augment="standard", patience=0,
            seed=seed,
        )  # fmt: skip
        started = time.perf_counter()
        folder = args.work / f"run-{seed}-{time.time_ns()}"
        result = TrainingJob(icons, settings, folder).run()
        report(RunFolder.open(folder), result.report.accuracy, unrelated, started)


def report(run, accuracy, unrelated: dict, started: float) -> None:
    """One JSON line: the rule chosen and how often it says "not sure" on each set."""
    from finetune_gui.core.run.predict import predict_paths
    from finetune_gui.core.run.unsure import unsure_rule

    unsure_rule(run)
    rule = json.loads((run.path / "unsure.json").read_text("utf-8"))
    sets = {"own test images": [p for p, _ in run.split().test], **unrelated}
    shares = {}
    for name, paths in sets.items():
        found = list(predict_paths(run, paths))
        shares[name] = round(sum(p.unsure is not None for p in found) / len(found), 4)
        shares[name + " (count)"] = len(found)
    accuracy = run.report.accuracy if accuracy is None else accuracy
    print(json.dumps({
        "run": run.path.name, "test_accuracy": round(accuracy, 4),
        "signals": rule["signals"], "chosen_because": rule["measured"]["chosen_because"],
        "not_sure": shares, "seconds": round(time.perf_counter() - started, 1),
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
