"""Settings: safe defaults, plain refusals, and a lossless round trip."""

from __future__ import annotations

import pytest

from finetune_gui.core.data.augment import PRESETS, AugmentSettings, preview_augmentations
from finetune_gui.core.errors import SettingsError
from finetune_gui.core.settings import SETTINGS_INFO, TrainingSettings, setting_label


def test_defaults_follow_the_recipe():
    s = TrainingSettings()
    assert (s.backbone, s.weights, s.resolved_image_size) == ("mobilenetv2", "imagenet", 224)
    assert s.resolved_lr_finetune == pytest.approx(s.lr_head / 10)
    assert (s.val_fraction, s.test_fraction, s.cache_mode) == (0.15, 0.15, "fast")


def test_round_trip_through_a_dict():
    s = TrainingSettings(
        backbone="ResNet50", weights="none", augment="strong", lr_finetune=3e-5, image_size=64
    )
    assert s.backbone == "resnet50"
    assert TrainingSettings.from_dict(s.to_dict()) == s


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"epochs_head": -1}, "epochs_head"),
        ({"epochs_head": 0, "epochs_finetune": 0}, "at least one epoch"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr_head": 5.0}, "lr_head"),
        ({"dropout": 0.99}, "dropout"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"backbone": "alexnet"}, "Unknown backbone"),
        ({"image_size": 16}, "at least 32 pixels"),
        ({"weights": "/no/such/file.h5"}, "does not exist"),
        ({"augment": "wild"}, "Unknown augmentation preset"),
        ({"class_weights": "maybe"}, "class_weights"),
        ({"epochs_head": "5"}, "must be a number"),
        ({"views": 0}, "views"),
        ({"views": 2.5}, "whole number"),
        ({"batch_size": 2.5}, "'batch_size' must be a whole number"),
        ({"l2": 2.0}, "'l2' must be between 0.0 and 1.0"),
        ({"lr_finetune": 0.0}, "lr_finetune"),
        ({"cache_mode": "turbo"}, "'cache_mode' must be one of fast, exact"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(changes, match):
    with pytest.raises(SettingsError, match=match):
        TrainingSettings(**changes)


def test_unknown_keys_in_a_stored_dict_are_refused():
    with pytest.raises(SettingsError, match="Unknown setting"):
        TrainingSettings.from_dict({"colour": "red"})


def test_augmentation_presets_grow_in_strength_and_refuse_nonsense():
    assert PRESETS["none"].is_off and not PRESETS["light"].is_off
    assert PRESETS["strong"].rotation > PRESETS["standard"].rotation > PRESETS["light"].rotation
    with pytest.raises(SettingsError, match="rotation"):
        AugmentSettings(rotation=2.0)
    with pytest.raises(SettingsError, match="Flip"):
        AugmentSettings(flip="diagonal")


def test_augmentation_preview_draws_differ_and_stay_in_the_pixel_range():
    import numpy as np

    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16] = 255
    draws = preview_augmentations(image, PRESETS["strong"], count=6, seed=1)
    assert len(draws) == 6 and all(d.shape == (32, 32, 3) and d.dtype == np.uint8 for d in draws)
    assert len({d.tobytes() for d in draws}) > 1
    unchanged = preview_augmentations(image, PRESETS["none"], count=2)
    assert all((d == image).all() for d in unchanged)


def test_every_setting_is_described_once_with_a_name_and_help():
    assert list(SETTINGS_INFO) == list(TrainingSettings.__dataclass_fields__)
    labels = [info.label for info in SETTINGS_INFO.values()]
    assert len(set(labels)) == len(labels)
    assert all(info.label and info.help.endswith(".") for info in SETTINGS_INFO.values())
    assert setting_label("epochs_finetune") == "epochs of fine-tuning"
    assert setting_label("augment.flip") == "augmentation: flip"
    assert SETTINGS_INFO["views"].low == 1 and SETTINGS_INFO["optimizer"].choices == (
        "adam", "sgd", "rmsprop")


def test_optional_settings_accept_none_as_derived():
    s = TrainingSettings(image_size=None, lr_finetune=None, lr_head=0.002)
    assert (s.resolved_image_size, s.resolved_lr_finetune) == (224, pytest.approx(0.0002))
