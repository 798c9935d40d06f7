""""Not sure" calls about 5% of the run's own new images so, measured on real runs' test images.

README: "about 5% of the run's own images are allowed to be 'not sure'". Two runs state the
situations where the cut-offs go wrong when they are set on the wrong answers:

- a folder split by hand whose validation folder holds only clear pictures: cut-offs set on the
  validation images alone sit where only clear pictures pass (a fifth of the test images were
  "not sure"); set on the training images too, they hold;
- a run that kept half its images for validation: the head refit learned them, so their answers
  are as confident as taught ones, and a cut set on those calls many test images "not sure";
  the rule takes held-out answers for every image the kept head learned, each from a head
  solved as the kept one was (scikit-learn's solver, stopping early, answered more confidently
  than the kept head: 10.7% of the test images were "not sure").

Both rules are checked: the one `predict` applies (unsure.json) and the confidence-only one the
web page applies on probabilities alone (run.json "unsure_rule", `min_confidence`).

The bound: 5% asked, at most 10% allowed. The test shares are measured on 225 and 360 images
(one standard error at 5%: 1.5 and 1.2 points) with cut-offs set on some 500 images (another 1
point), so 10% is three standard errors above the goal. Measured here: 3.6-5.8% (hand-split:
4.4% by the rule, 2.8% by confidence alone; half for validation: 3.1% and 6.2%).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

ASKED, ALLOWED = 0.05, 0.10
# Three shades of one round shape: classes a head confuses now and then (80% right), so the
# confidence of its answers spreads and its cut-off matters.
SHADES = {"red": ("ellipse", (200, 50, 50)), "orange": ("ellipse", (215, 140, 40)),
          "pink": ("ellipse", (200, 70, 160))}


def train(data: Path, out: Path, pretrained_base: Path, **split) -> Path:
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    settings = TrainingSettings(
        backbone="mobilenetv2", weights=str(pretrained_base), image_size=48, epochs_head=8,
        epochs_finetune=0, batch_size=16, augment="none", patience=0, seed=0, **split,
    )  # fmt: skip
    result = TrainingJob(data, settings, out).run()
    assert result.status == "completed", result.message
    return out


@pytest.fixture(scope="module")
def hand_split_run(tmp_path_factory, pretrained_base) -> Path:
    """train/ 150 and test/ 120 generated pictures per class; val/ 15 clear ones per class (the
    class's own colour, large): validation images picked by hand."""
    from finetune_gui.demo import draw_shape, make_shapes_dataset

    root = tmp_path_factory.mktemp("hand-split")
    data = root / "data"
    make_shapes_dataset(data / "train", per_class=150, size=48, seed=11, classes=SHADES)
    make_shapes_dataset(data / "test", per_class=120, size=48, seed=12, classes=SHADES)
    rng = random.Random(13)
    for name, (shape, colour) in SHADES.items():
        (data / "val" / name).mkdir(parents=True)
        for i in range(15):
            picture = draw_shape(shape, colour, 48, rng, (0.5, 0.7), jitter=0)
            picture.save(data / "val" / name / f"clear_{i:02d}.png")
    return train(data, root / "run", pretrained_base)


@pytest.fixture(scope="module")
def half_for_validation_run(tmp_path_factory, pretrained_base) -> Path:
    """250 pictures per class, split at random: 50% validation, 30% test, 20% training."""
    from finetune_gui.demo import make_shapes_dataset

    root = tmp_path_factory.mktemp("half-val")
    data = make_shapes_dataset(root / "data", per_class=250, size=48, seed=11, classes=SHADES)
    return train(data, root / "run", pretrained_base, val_fraction=0.5, test_fraction=0.3)


def shares_on_test_images(run_dir: Path) -> tuple[float, float, int]:
    """(share "not sure" by predict, share under the confidence-only cut, test images)."""
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.run.predict import predict_images

    run = RunFolder.open(run_dir)
    split = json.loads((run_dir / "split.json").read_text("utf-8"))
    paths = [Path(split["root"]) / p for p, _ in split["test"]]
    predictions = predict_images(run, paths)
    assert not any(p.error for p in predictions)
    cut = json.loads((run_dir / "run.json").read_text("utf-8"))["unsure_rule"]["min_confidence"]
    unsure = float(np.mean([p.unsure is not None for p in predictions]))
    below = float(np.mean([p.top[0][1] < cut for p in predictions]))
    return unsure, below, len(paths)


def assert_about_the_asked_share(run_dir: Path, situation: str) -> None:
    unsure, below, images = shares_on_test_images(run_dir)
    assert images >= 200  # enough for the bound above to mean something
    assert unsure <= ALLOWED, (
        f"{situation}: {unsure:.1%} of {images} test images 'not sure' (asked {ASKED:.0%})")
    assert below <= ALLOWED, (
        f"{situation}: the confidence-only cut (web page) calls {below:.1%} of {images} test "
        f"images 'not sure' (asked {ASKED:.0%})")


def test_validation_picked_by_hand_still_gives_about_five_percent(hand_split_run):
    assert_about_the_asked_share(hand_split_run, "clear validation images")


def test_half_the_images_for_validation_still_gives_about_five_percent(half_for_validation_run):
    facts = json.loads((half_for_validation_run / "run.json").read_text("utf-8"))
    assert facts["head_refit"]["images"] > facts["counts"]["train"]  # the refit learned val too
    assert_about_the_asked_share(half_for_validation_run, "half the images for validation")
