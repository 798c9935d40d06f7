"""Where a default run's time and memory go, stage by stage, on any folder.

    python benchmarks/stages.py --data DIR --weights FILE --size 160

One training run with the default settings (the weights file and the image size chosen; a fresh
feature cache, so the run pays for its own frozen-layer pass), timed and measured at every
progress event: each stage's wall time and peak resident memory (benchmarks/memory_bound.py's
StagePeaks), printed as a markdown table. A stage is named by the event that starts it: a log
line names the work that follows it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

from memory_bound import StagePeaks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--work", type=Path, default=Path("/tmp/finetune-gui-stages"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["FINETUNE_GUI_CACHE_DIR"] = str(args.work / f"cache-{time.time_ns()}")

    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    settings = TrainingSettings(weights=str(args.weights), image_size=args.size)
    meter = StagePeaks()
    started = time.perf_counter()
    result = TrainingJob(args.data, settings, args.work / f"run-{time.time_ns()}",
                         progress=meter).run()
    meter.close()
    print(meter.table())
    from finetune_gui.core.run.record import read_facts

    accuracy = result.report.accuracy if result.report else float("nan")
    print(f"\n{args.data}: {time.perf_counter() - started:.1f} s in all, status {result.status}, "
          f"test accuracy {accuracy:.3f}, kept {read_facts(result.run_dir).kept_model}")


if __name__ == "__main__":
    main()
