"""Peak resident memory of a training run on a folder larger than the memory budget.

    python benchmarks/memory_bound.py --images 50000 --size 224

Decoded images and extracted features beyond the budget (2 GiB by default,
$FINETUNE_GUI_MEMORY_BUDGET_MB) go to a disk store read one batch at a time, so peak memory
should stay near the budget plus TensorFlow's own footprint, whatever the number of images.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

from compare_tutorial import make_weights, peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=50000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--views", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/finetune-gui-memory"))
    parser.add_argument("--only-weights", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only_weights:
        make_weights(args.work, args.size)
        return

    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob
    from finetune_gui.demo import make_shapes_dataset

    data = args.work / f"data-{args.images}-{args.size}"
    if not data.exists():
        make_shapes_dataset(data, args.images // 3, args.size, seed=5, fmt="jpg")
    # The weights file comes from a training run of its own; made in this process, that run's
    # memory would count in the peak measured here.
    subprocess.run([sys.executable, __file__, "--only-weights", "--size", str(args.size),
                    "--work", str(args.work)], check=True)  # fmt: skip
    weights = make_weights(args.work, args.size)  # now only finds the file
    settings = TrainingSettings(
        backbone="mobilenetv2", weights=str(weights), image_size=args.size, epochs_head=1,
        epochs_finetune=1, unfreeze_blocks=1, batch_size=64, augment="light",
    )  # fmt: skip
    os.environ["FINETUNE_GUI_CACHE_DIR"] = str(args.work / f"cache-{time.time_ns()}")
    started = time.perf_counter()
    result = TrainingJob(
        data, settings, args.work / f"run-{time.time_ns()}", views=args.views
    ).run()
    print(f"{args.images} images at {args.size} px: {time.perf_counter() - started:.0f} s, "
          f"test accuracy {result.report.accuracy:.3f}, peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
