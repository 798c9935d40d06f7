"""What solving the head within a smaller memory budget costs, on a run's cached features.

    python benchmarks/head_sample.py --run RUN --train ENTRY --val ENTRY --budgets 2048 256 64

RUN is a run folder (its split.json gives the labels), ENTRY a feature-cache entry folder of
the run (`pooled.rows` and `meta.json`: the training and the validation images' pooled
features, in the split's order). For each memory budget (MB) the head search runs on the
features in the disk store, as a run does, and prints the chosen strength, how many training
rows the solver started on and finished on, the validation accuracy and the time. With the
budget large enough no sample is taken: that row is the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def stored(entry: Path):
    from finetune_gui.core.data.storage import DiskArray

    meta = json.loads((entry / "meta.json").read_text())["arrays"]["pooled"]
    return DiskArray(entry / "pooled.rows", tuple(meta["shape"]), meta["dtype"], create=False,
                     delete=False)


def labels_of(run: Path, part: str) -> np.ndarray:
    split = json.loads((run / "split.json").read_text())
    return np.array([int(label) for _, label in split[part]])  # class indices


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--budgets", type=float, nargs="+", default=[2048, 256, 64])
    args = parser.parse_args()

    from finetune_gui.core.model.softmax_head import search_softmax_head

    train, val = stored(args.train), stored(args.val)
    train_y, val_y = labels_of(args.run, "train"), labels_of(args.run, "val")
    assert len(train_y) == len(train) and len(val_y) == len(val)
    n_classes = int(max(train_y.max(), val_y.max())) + 1
    print(f"{len(train_y):,} training and {len(val_y):,} validation images, "
          f"{train.shape[1]:,} features")
    for budget in args.budgets:
        os.environ["FINETUNE_GUI_MEMORY_BUDGET_MB"] = str(budget)
        started = time.perf_counter()
        search = search_softmax_head(train, train_y, val, val_y, n_classes)
        seconds = time.perf_counter() - started
        row = search.chosen
        wrong = round((1 - row["val_accuracy"]) * len(val_y))
        print(json.dumps({
            "budget_mb": budget, "l2": row["l2"], "standardised": row["standardised"],
            "started_on": row.get("images", len(train_y)),
            "finished_on": row.get("finished_on", len(train_y)),
            "val_accuracy": round(row["val_accuracy"], 4), "val_wrong": wrong,
            "seconds": round(seconds, 1),
        }))


if __name__ == "__main__":
    main()
