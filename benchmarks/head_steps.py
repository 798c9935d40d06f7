"""How many L-BFGS iterations the head's search takes, with and without its two shortcuts, on
runs' own features.

    python benchmarks/head_steps.py RUN/features.npz [RUN/features.npz ...]

Each run's training and validation features (features.npz, float16, taken as float32) are
searched four ways: along the principal axes with each strength started on the line through
the last two optima (as the app does), with only one of the two, and with neither. Each run
prints one JSON line: per way, the iterations of the standardised strengths (the plain head's
are the same in every way), the time, and whether every strength's validation accuracy and the
chosen strength match the way with neither, and the largest excess of its training loss over
that way's (negative: it ended nearer the optimum).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

WAYS = ("both", "principal axes", "path start", "neither")


def searched(x, y, xv, yv, n_classes: int, way: str) -> dict:
    from finetune_gui.core.model import row_space, softmax_head
    from finetune_gui.core.model.softmax_head import search_softmax_head

    on_path, evaluations = softmax_head._next_on_path, row_space.PRINCIPAL_EVALUATIONS
    if way in ("path start", "neither"):
        row_space.PRINCIPAL_EVALUATIONS = 0
    if way in ("principal axes", "neither"):
        softmax_head._next_on_path = lambda path, l2: path[-1][1] if path else None
    try:
        started = time.perf_counter()
        search = search_softmax_head(x, y, xv, yv, n_classes)
        seconds = time.perf_counter() - started
    finally:
        softmax_head._next_on_path, row_space.PRINCIPAL_EVALUATIONS = on_path, evaluations
    grid = [row for row in search.tried if row["standardised"]]
    return {"iterations": sum(row["iterations"] for row in grid), "seconds": round(seconds, 1),
            "val": [row["val_accuracy"] for row in grid],
            "loss": [row["train_loss"] for row in grid], "chosen": search.chosen["l2"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features", nargs="+", type=Path, help="a run's features.npz")
    args = parser.parse_args()
    for path in args.features:
        stored = np.load(path)
        x, y, parts = stored["features"].astype(np.float32), stored["labels"], stored["parts"]
        train, val = parts == "train", parts == "val"
        n_classes = int(y.max()) + 1
        ways = {way: searched(x[train], y[train], x[val], y[val], n_classes, way)
                for way in WAYS}
        plain = ways["neither"]
        print(json.dumps({
            "run": path.parent.name, "images": int(train.sum()), "features": x.shape[1],
            "classes": n_classes, "strengths": len(plain["val"]),
            **{way: {"iterations": found["iterations"], "seconds": found["seconds"],
                     "same validation": found["val"] == plain["val"],
                     "same choice": found["chosen"] == plain["chosen"],
                     "loss excess": max([ours - theirs for ours, theirs
                                         in zip(found["loss"], plain["loss"], strict=False)]
                                        or [0.0])}
               for way, found in ways.items()}}), flush=True)


if __name__ == "__main__":
    main()
