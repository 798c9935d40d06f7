"""The int8 export answers as the Keras model does, on a model whose int8 version can.

tests/core/test_export.py exports a network trained one epoch from scratch, whose BatchNorm
statistics are far from its activations: its int8 file agrees with Keras on only 65-92% of
images, so it is held to no floor there. Here the model is a head on the pretrained stand-in
(the insight tests' run, 48 px), the situation int8 is made for: the export runs with its
default floor, and the file, run image by image with the card's quantisation as a user would,
must give Keras's class on the run's held-out images and on new pictures.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.insight_runs import CLASSES, flipped_run
from tests.int8_check import int8_probabilities

from finetune_gui.core.data.images import load_rgb
from finetune_gui.core.export.formats import INT8_MIN_AGREEMENT

pytestmark = pytest.mark.slow

# Measured: the int8 file gives Keras's class on all 36 held-out images and all 90 new pictures
# (largest probability difference 0.11 and 0.15); one image in twenty may go otherwise (a near
# tie on another CPU's kernels). Calibrated on pixels scaled to 0-1, it agreed on 36%: chance.
MIN_AGREEMENT = 0.95


@pytest.fixture(scope="module")
def exported(tmp_path_factory, pretrained_base):
    """The shared run (copied: an export logs itself into the run) exported as int8."""
    from finetune_gui.core.export.job import export_model

    source = flipped_run(tmp_path_factory, pretrained_base)
    run = tmp_path_factory.mktemp("int8-run") / "run"
    shutil.copytree(source.run_dir, run)
    return run, export_model(run, "tflite-int8", tmp_path_factory.mktemp("int8") / "shipped")


def new_pictures(folder: Path, per_class: int = 30) -> list[Path]:
    from finetune_gui.demo import SHAPE_CLASSES, draw_shape

    rng = random.Random(44)
    paths = []
    for name in CLASSES:
        for i in range(per_class):
            path = folder / f"{name}_{i:02d}.png"
            draw_shape(*SHAPE_CLASSES[name], 48, rng).save(path)
            paths.append(path)
    return paths


def test_the_int8_file_gives_the_keras_class_on_held_out_and_new_pictures(exported, tmp_path):
    from finetune_gui.core.data.split import DatasetSplit
    from finetune_gui.core.run.folder import RunFolder

    run_dir, result = exported
    # Its own check ran at the format's default floor, passed, and measured what is bounded here.
    verification = result.verification
    assert verification.passed and verification.min_agreement == INT8_MIN_AGREEMENT
    assert verification.agreement >= MIN_AGREEMENT

    split = DatasetSplit.load(run_dir / "split.json")
    held_out = [p for p, _ in [*split.test, *split.val]]
    run = RunFolder.open(run_dir)
    model = run.load_model()
    for name, paths in (("held-out", held_out), ("new", new_pictures(tmp_path))):
        pixels = np.stack([load_rgb(p, run.image_size) for p in paths]).astype("float32")
        keras_answers = np.asarray(model(pixels, training=False))
        int8 = int8_probabilities(result, pixels)
        agreement = float(np.mean(int8.argmax(1) == keras_answers.argmax(1)))
        assert agreement >= MIN_AGREEMENT, (
            f"int8 gives Keras's class on {agreement:.0%} of {len(paths)} {name} images")
