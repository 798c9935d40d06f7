"""What stopping the head's L2 search early changes, on real folders' cached features.

    python benchmarks/head_search.py --run RUN --cache CACHE [--run RUN --cache CACHE ...]
        [--seeds 0 1 2 3 4] [--patience 2 3]

RUN is a finished run folder (its split.json gives the labels), CACHE the feature-cache folder
that run wrote (`FINETUNE_GUI_CACHE_DIR` while it ran): its two entries hold the training and
the validation images' pooled features. For each seed the training and validation images are
pooled and split again, stratified: a fifth is held out as unseen images, and validation keeps
the run's share of the rest. The search then runs over the whole grid and with the patience
rule (each patience given), on the same split, and each prints the chosen strength, the strengths it fitted, the
validation and held-out accuracy and the time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def cached_parts(run: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The run's training and validation features stacked, and their class indices."""
    from finetune_gui.core.data.storage import DiskArray

    split = json.loads((run / "split.json").read_text())
    parts = []
    for entry in (cache / "features").iterdir():
        meta = json.loads((entry / "meta.json").read_text())["arrays"]["pooled"]
        parts.append(np.asarray(DiskArray(entry / "pooled.rows", tuple(meta["shape"]),
                                          meta["dtype"], create=False, delete=False)))
    by_rows = {len(rows): rows for rows in parts}
    if len(by_rows) < len(parts):
        raise SystemExit(f"{cache}: two entries have as many rows; give a cache of one run")
    features, labels = [], []
    for part in ("train", "val"):
        rows = by_rows[len(split[part])]  # the entries are told apart by their sizes
        features.append(rows)
        labels.append([int(label) for _, label in split[part]])
    return np.concatenate(features), np.concatenate(labels)


def searched(train, val, held_out, n_classes: int, patience: int | None) -> dict:
    from finetune_gui.core.model.softmax_head import search_softmax_head

    started = time.perf_counter()
    search = search_softmax_head(*train, *val, n_classes, patience=patience)
    seconds = time.perf_counter() - started
    row = search.chosen
    answers = search.head.probabilities(held_out[0]).argmax(axis=1)
    return {"patience": patience, "l2": row["l2"], "standardised": row["standardised"],
            "strengths": len(search.tried), "val_accuracy": round(row["val_accuracy"], 4),
            "held_out_accuracy": round(float((answers == held_out[1]).mean()), 4),
            "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, action="append", required=True)
    parser.add_argument("--cache", type=Path, action="append", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--patience", type=int, nargs="+", default=[2])
    args = parser.parse_args()
    from sklearn.model_selection import train_test_split

    for run, cache in zip(args.run, args.cache, strict=True):
        x, y = cached_parts(run, cache)
        split = json.loads((run / "split.json").read_text())
        val_share = len(split["val"]) / (len(split["train"]) + len(split["val"]))
        n_classes = int(y.max()) + 1
        for seed in args.seeds:
            rest, held_out = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y,
                                              random_state=seed)
            fit, val = train_test_split(rest, test_size=val_share, stratify=y[rest],
                                        random_state=seed)
            parts = [(x[rows], y[rows]) for rows in (fit, val, held_out)]
            for patience in (None, *args.patience):
                print(json.dumps({"run": run.name, "seed": seed,
                                  **searched(*parts, n_classes, patience)}), flush=True)


if __name__ == "__main__":
    main()
