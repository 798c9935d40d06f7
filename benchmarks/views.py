"""Test accuracy and time for K augmented views per image, over several seeds.

    python benchmarks/views.py FOLDER --size 64 --views 1 2 4 --seeds 0 1 2

FOLDER is a real image folder (one subfolder per class). The weights file is a MobileNetV2 base
trained from scratch on generated shapes (ImageNet weights cannot be downloaded here), so the
downstream task differs from what the base learned, as it does for a user. Each run gets a fresh
feature cache, so no run reuses another's frozen-layer pass.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

from compare_tutorial import make_weights

from finetune_gui.core.words import counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--views", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--augment", default="standard")
    parser.add_argument("--work", type=Path, default=Path("/tmp/finetune-gui-views"))
    args = parser.parse_args()

    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    args.work.mkdir(parents=True, exist_ok=True)
    weights = make_weights(args.work, args.size)
    results: dict[int, list[float]] = {k: [] for k in args.views}
    for seed in args.seeds:
        for views in args.views:
            os.environ["FINETUNE_GUI_CACHE_DIR"] = str(args.work / f"cache-{time.time_ns()}")
            settings = TrainingSettings(
                backbone="mobilenetv2", weights=str(weights), image_size=args.size,
                epochs_head=5, epochs_finetune=5, unfreeze_blocks=2, batch_size=32,
                augment=args.augment, patience=0, seed=seed, views=views,
            )  # fmt: skip
            started = time.perf_counter()
            result = TrainingJob(args.folder, settings, args.work / f"run-{time.time_ns()}").run()
            results[views].append(result.report.accuracy)
            print(json.dumps({"seed": seed, "views": views, "test_images": result.report.count,
                              "accuracy": round(result.report.accuracy, 4),
                              "seconds": round(time.perf_counter() - started, 1)}), flush=True)  # fmt: skip
    for views, accuracies in results.items():
        mean = sum(accuracies) / len(accuracies)
        print(f"{counted(views, 'view')}: mean test accuracy {mean:.3f} over seeds {args.seeds}")


if __name__ == "__main__":
    main()
