"""Run folders with only what comparing reads (no model, no training), for fast tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from finetune_gui.core.run.evaluation import build_report
from finetune_gui.core.settings import TrainingSettings

CLASSES = ["cats", "dogs"]


def fake_run(path: Path, data_root: str, files: list[str], accuracy_hits: int,
             updated: str = "2026-12-01T16:20:00") -> Path:
    """A run folder with what comparing reads (no model is loaded)."""
    path.mkdir(parents=True)
    (path / "model.keras").write_bytes(b"")
    (path / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    (path / "settings.json").write_text(json.dumps(
        TrainingSettings(backbone="mobilenetv3small", weights="none").to_dict()))
    (path / "run.json").write_text(json.dumps({"status": "completed", "updated": updated,
                                               "data": data_root}))
    items = [[name, CLASSES.index(name.split("/")[0])] for name in files]
    (path / "split.json").write_text(json.dumps({
        "root": data_root, "classes": CLASSES, "seed": 0,
        "train": items[:-4], "val": items[-4:-2], "test": items[-2:]}))
    y_true = np.array([0, 1, 0, 1])
    predicted = np.array([0, 1, 1, 0])
    predicted[:accuracy_hits] = y_true[:accuracy_hits]
    probabilities = np.eye(2)[predicted] * 0.8 + 0.1
    report = build_report(CLASSES, y_true, probabilities, [f"t{i}.png" for i in range(4)])
    (path / "metrics.json").write_text(json.dumps(report.to_dict()))
    return path


FILES = [f"{CLASSES[i % 2]}/img{i:02d}.png" for i in range(12)]
