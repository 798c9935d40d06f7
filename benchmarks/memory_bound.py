"""Peak resident memory of a training run on a folder larger than the memory budget.

    python benchmarks/memory_bound.py --images 50000 --size 224

Decoded images and extracted features beyond the budget (2 GiB by default,
$FINETUNE_GUI_MEMORY_BUDGET_MB) go to a disk store read one batch at a time, so peak memory
should stay near the budget plus TensorFlow's own footprint, whatever the number of images.
Each stage's own peak is printed too (the stage: the last progress event before it), so a
step that grows with the number of images shows where it is.
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
    meter = StagePeaks()
    started = time.perf_counter()
    result = TrainingJob(
        data, settings, args.work / f"run-{time.time_ns()}", views=args.views, progress=meter
    ).run()
    meter.close()
    seconds = time.perf_counter() - started
    print(meter.table())
    print(f"{args.images} images at {args.size} px: {seconds:.0f} s "
          f"({1000 * seconds / args.images:.1f} ms per image), test accuracy "
          f"{result.report.accuracy:.3f}, peak RSS {max(meter.peaks.values()):.0f} MB")  # fmt: skip


class StagePeaks:
    """The peak resident memory (VmHWM) and the wall time of each stage of a run. At every stage
    change the kernel's high-water mark is read, then reset (clear_refs 5), so each peak is that
    stage's; a stage named twice adds up its time. The process's CPU time (every thread's) per
    stage says how many cores it kept busy: about 1.0 s a second is one core, and the others
    idle."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.stage = "start: Python, TensorFlow, the scan"
        self.since = time.perf_counter()
        self.cpu_since = time.process_time()

    def __call__(self, event) -> None:
        from finetune_gui.core.events import LogMessage, PhaseStarted, StageStarted

        if isinstance(event, StageStarted):
            self._enter(f"stage {event.stage}")
        elif isinstance(event, PhaseStarted):
            self._enter(f"phase {event.phase}")
        elif isinstance(event, LogMessage):
            self._enter(event.text[:70])

    def _enter(self, stage: str) -> None:
        peak, now, cpu = peak_rss_mb(), time.perf_counter(), time.process_time()
        self.peaks[self.stage] = max(self.peaks.get(self.stage, 0.0), peak)
        self.seconds[self.stage] = self.seconds.get(self.stage, 0.0) + now - self.since
        self.cpu[self.stage] = self.cpu.get(self.stage, 0.0) + cpu - self.cpu_since
        self.stage, self.since, self.cpu_since = stage, now, cpu
        with open("/proc/self/clear_refs", "w") as handle:  # Linux: VmHWM starts again at VmRSS
            handle.write("5")

    def close(self) -> None:
        self._enter("end")

    def table(self) -> str:
        """The stages as the markdown table of docs/benchmarks.md."""
        rows = ["| stage (named by the event that starts it) | seconds | CPU seconds | peak RSS "
                "(MB) |", "|---|---|---|---|"]
        rows += [f"| {stage.replace('|', '/')} | {self.seconds.get(stage, 0.0):.1f} | "
                 f"{self.cpu.get(stage, 0.0):.1f} | {peak:,.0f} |"
                 for stage, peak in self.peaks.items()]
        return "\n".join(rows)


if __name__ == "__main__":
    main()
