"""Checks on what a run saved, shared by the core and command-line tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest


def saved_model_val_loss(run_dir) -> float:
    """The validation loss of the model the run saved, computed here from its images: what the
    user gets, not what the run says it kept."""
    import keras

    from finetune_gui.core.data.images import load_rgb
    from finetune_gui.core.run.folder import RunFolder

    run_dir = Path(run_dir)
    split = json.loads((run_dir / "split.json").read_text())
    size = RunFolder.open(run_dir).image_size
    pixels = np.stack([load_rgb(Path(split["root"]) / p, size) for p, _ in split["val"]])
    labels = np.array([label for _, label in split["val"]])
    model = keras.models.load_model(run_dir / "model.keras")
    # Evaluated as training measured it: Keras takes the loss from the softmax's logits, so a
    # confidently wrong answer costs its full loss; a loss on predict()'s probabilities clips
    # them at 1e-7 (measured: 0.90 against the epoch's 2.84 with two such answers).
    model.compile(loss="sparse_categorical_crossentropy")
    measured = model.evaluate(pixels, labels, verbose=0)
    return float(measured[0] if isinstance(measured, list) else measured)


def history_rows(run_dir) -> list[dict]:
    with open(Path(run_dir) / "history.csv") as handle:
        return [{**row, "epoch": int(row["epoch"]), "val_loss": float(row["val_loss"])}
                for row in csv.DictReader(handle)]


def assert_the_saved_model_is_the_best_epochs(run_dir, *, ended_on_a_worse_epoch=True) -> None:
    """The model.keras of the run has its kept epoch's validation loss (recomputed here). When
    the run ended on a worse epoch, keeping the best one took a restore."""
    history = history_rows(run_dir)
    # The epoch the run says it kept (chosen by validation accuracy, loss breaking ties).
    best_epoch = json.loads((Path(run_dir) / "run.json").read_text())["best_epoch"]
    best = next(row["val_loss"] for row in history if row["epoch"] == best_epoch)
    if ended_on_a_worse_epoch:
        assert history[-1]["val_loss"] > best + 1e-3, (
            f"the run must end on a worse epoch (last {history[-1]['val_loss']}, best {best})")
    saved = saved_model_val_loss(run_dir)
    assert saved == pytest.approx(best, rel=2e-3, abs=2e-4), (
        f"the saved model's validation loss is {saved:.6f}, the best epoch's {best:.6f}")


def make_pretrained_base(shapes_dir: Path, folder: Path) -> Path:
    """Train MobileNetV2 from scratch on the shapes (48 px, 10 epochs) and save its base's
    weights: the conftest's `pretrained_base`."""
    from finetune_gui.core.model.parts import split_classifier
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    settings = TrainingSettings(
        backbone="mobilenetv2",
        weights="none",
        image_size=48,
        epochs_head=10,
        epochs_finetune=0,
        batch_size=16,
        augment="none",
        patience=0,
        seed=3,
    )
    TrainingJob(shapes_dir, settings, folder / "run").run()
    model = RunFolder.open(folder / "run").load_model()
    base = split_classifier(model).base
    path = folder / "mobilenetv2_shapes_48.weights.h5"
    base.save_weights(path)
    return path
