"""A run without a test split (test fraction 0, or a pre-split folder without test/) finishes,
says there is no test score, and `evaluate RUN FOLDER` scores it later."""

from __future__ import annotations

import json
import shutil

import pytest

from finetune_gui.cli import main
from finetune_gui.demo import make_shapes_dataset

pytestmark = pytest.mark.slow
TINY = ["--backbone", "mobilenetv3small", "--weights", "none", "--image-size", "32",
        "--epochs-head", "1", "--epochs-finetune", "0", "--batch-size", "8", "--augment", "none"]


def _trains_without_test_score_then_evaluates(data, run, held_out, capsys, extra=()):
    assert main(["train", str(data), "--out", str(run), *TINY, *extra]) == 0
    out = capsys.readouterr().out
    assert "no test score" in out and f"finetune-gui evaluate {run} FOLDER" in out
    facts = json.loads((run / "run.json").read_text())
    assert facts["status"] == "completed"
    assert (run / "model.keras").exists() and not (run / "metrics.json").exists()

    assert main(["evaluate", str(run), str(held_out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(c["support"] for c in report["per_class"]) == 9  # 3 classes x 3 images


def test_test_fraction_0_trains_to_the_end_and_is_scored_later(tmp_path, capsys):
    data = make_shapes_dataset(tmp_path / "data", per_class=10, size=32, seed=11)
    held_out = make_shapes_dataset(tmp_path / "held-out", per_class=3, size=32, seed=12)
    _trains_without_test_score_then_evaluates(data, tmp_path / "run", held_out, capsys,
                                              ["--test-fraction", "0"])


def test_a_pre_split_folder_without_test_is_trained_the_same_way(tmp_path, capsys):
    """(With the default fraction a test part is carved out of train/; with 0, none is.)"""
    source = make_shapes_dataset(tmp_path / "source", per_class=10, size=32, seed=13)
    data = tmp_path / "split"
    for part, keep in (("train", slice(0, 7)), ("val", slice(7, 10))):
        for class_dir in source.iterdir():
            target = data / part / class_dir.name
            target.mkdir(parents=True)
            for image in sorted(class_dir.iterdir())[keep]:
                shutil.copy(image, target / image.name)
    held_out = make_shapes_dataset(tmp_path / "held-out", per_class=3, size=32, seed=14)
    _trains_without_test_score_then_evaluates(data, tmp_path / "run", held_out, capsys,
                                              ["--test-fraction", "0"])
