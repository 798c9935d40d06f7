"""What phase 2 (fine-tuning) costs a default run, on any folder.

    python benchmarks/phase2_cost.py --data DIR --weights FILE --size 48

One training run with the default settings (a fresh feature cache), timed at its log lines.
Phase 2's time runs from the line that ends phase 1 (the solved head) to the line that says
whether fine-tuning was kept or skipped: building and compiling its model, waiting for it when
it was prepared during phase 1, tracing, its epochs and their validation. Prints one line:
the whole run, phase 2, its share, what was kept and the test accuracy.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PHASE_1_ENDS = ("Head solved", "Phase 1")
PHASE_2_ENDS = ("Fine-tuning did not", "Fine-tuning kept", "Fine-tuning skipped")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--work", type=Path, default=Path("/tmp/finetune-gui-phase2"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["FINETUNE_GUI_CACHE_DIR"] = str(args.work / f"cache-{time.time_ns()}")

    from finetune_gui.core.events import LogMessage
    from finetune_gui.core.run.record import read_facts
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    said: list[tuple[float, str]] = []

    def progress(event) -> None:
        if isinstance(event, LogMessage):
            said.append((time.perf_counter(), event.text))

    settings = TrainingSettings(weights=str(args.weights), image_size=args.size)
    started = time.perf_counter()
    result = TrainingJob(args.data, settings, args.work / f"run-{time.time_ns()}",
                         progress=progress).run()
    whole = time.perf_counter() - started
    phase_1_end = max(t for t, text in said if text.startswith(PHASE_1_ENDS))
    phase_2_end = next(t for t, text in said if text.startswith(PHASE_2_ENDS))
    phase_2 = phase_2_end - phase_1_end
    accuracy = result.report.accuracy if result.report else float("nan")
    kept = read_facts(result.run_dir).kept_model
    print(f"{args.data}: whole run {whole:.1f} s, phase 2 {phase_2:.2f} s ({phase_2 / whole:.1%}), "
          f"kept {kept}, test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
