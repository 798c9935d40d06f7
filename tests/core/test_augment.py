"""Augmentation: flip, rotation, zoom and shift in one resampling that does what each promises."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.data.augment import AugmentSettings, build_augmentation

SIZE = 33  # odd: the centre is a pixel


def _dot_image(x: int, y: int) -> np.ndarray:
    image = np.zeros((SIZE, SIZE, 3), np.float32)
    image[y, x] = 255.0
    return image


def _draws(settings: AugmentSettings, image: np.ndarray, count: int = 64, seed: int = 3):
    augment = build_augmentation(settings, seed=seed)
    return np.asarray(augment(np.repeat(image[None], count, axis=0), training=True))


def _brightest(images: np.ndarray) -> np.ndarray:
    """(x, y) of each image's brightest pixel."""
    flat = images.sum(axis=-1).reshape(len(images), -1).argmax(axis=1)
    return np.stack([flat % SIZE, flat // SIZE], axis=1)


def test_geometry_is_one_layer_not_four():
    augment = build_augmentation(AugmentSettings(flip="horizontal", rotation=0.1, zoom=0.1,
                                                 shift=0.1))
    names = [layer.name for layer in augment.layers]
    assert names[0] == "random_geometry"
    assert not any(n.startswith(("random_rotation", "random_zoom", "random_translation",
                                 "random_flip")) for n in names)


def test_a_flip_mirrors_exactly_about_half_the_time():
    from finetune_gui.core.data.augment import _random_geometry_class

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.float32)
    layer = _random_geometry_class()(AugmentSettings(flip="horizontal"), seed=1)
    out = np.asarray(layer(np.repeat(image[None], 200, axis=0), training=True))
    same = np.all(np.abs(out - image) < 1e-3, axis=(1, 2, 3))
    mirrored = np.all(np.abs(out - image[:, ::-1]) < 1e-3, axis=(1, 2, 3))
    assert np.all(same | mirrored)  # nothing else: no blur, no offset by half a pixel
    assert 60 <= mirrored.sum() <= 140


def test_shift_moves_a_dot_by_at_most_the_fraction_asked_in_both_directions():
    centre = SIZE // 2
    moved = _brightest(_draws(AugmentSettings(shift=0.2), _dot_image(centre, centre))) - centre
    limit = 0.2 * SIZE + 1
    assert np.abs(moved).max() <= limit
    for axis in (0, 1):
        assert moved[:, axis].min() < -2 and moved[:, axis].max() > 2


def test_rotation_turns_about_the_centre_within_the_angle_asked():
    centre, radius = SIZE // 2, 12
    dot = _dot_image(centre + radius, centre)
    found = _brightest(_draws(AugmentSettings(rotation=0.05), dot)) - centre
    angles = np.degrees(np.arctan2(found[:, 1], found[:, 0]))
    assert np.abs(angles).max() <= 0.05 * 360 + 5  # +-18 degrees, a pixel of slack
    assert angles.min() < -6 and angles.max() > 6
    distances = np.hypot(found[:, 0], found[:, 1])
    assert np.all(np.abs(distances - radius) <= 1.5)  # a turn, not a zoom


def test_zoom_goes_both_ways_and_keeps_the_centre_still():
    centre, offset = SIZE // 2, 10
    found = _brightest(_draws(AugmentSettings(zoom=0.2), _dot_image(centre + offset, centre)))
    distances = found[:, 0] - centre
    assert distances.min() < offset and distances.max() > offset  # in and out
    assert np.all(found[:, 1] == centre)
    assert np.all((distances >= offset / 1.2 - 1) & (distances <= offset / 0.8 + 1))


def test_same_seed_same_draws_and_inference_leaves_images_alone():
    image = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3)).astype(np.float32)
    settings = AugmentSettings(flip="horizontal", rotation=0.05, zoom=0.1, shift=0.1)
    first, second = _draws(settings, image, 4, seed=9), _draws(settings, image, 4, seed=9)
    np.testing.assert_allclose(first, second)
    augment = build_augmentation(settings, seed=9)
    np.testing.assert_array_equal(np.asarray(augment(image[None], training=False))[0], image)


@pytest.mark.parametrize("preset", ["light", "standard", "strong"])
def test_presets_run_inside_tf_data_as_training_uses_them(preset):
    import tensorflow as tf

    from finetune_gui.core.data.augment import PRESETS

    augment = build_augmentation(PRESETS[preset], seed=0)
    images = np.random.default_rng(2).integers(0, 256, (8, SIZE, SIZE, 3)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(images).batch(4)
    out = np.concatenate([b.numpy() for b in ds.map(lambda x: augment(x, training=True))])
    assert out.shape == images.shape
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert not np.allclose(out, images)


@pytest.mark.parametrize("preset", ["light", "standard", "strong"])
def test_no_preset_turns_an_image_upside_down(preset):
    """The Augmentation page says not to flip text upside down; the presets must agree."""
    from finetune_gui.core.data.augment import PRESETS

    image = np.zeros((SIZE, SIZE, 3), np.float32)
    image[: SIZE // 3] = 255.0  # a bright band along the top
    draws = _draws(PRESETS[preset], image, count=64, seed=5)
    brightness = draws.sum(axis=-1)
    top, bottom = brightness[:, : SIZE // 2].sum(axis=(1, 2)), brightness[:, SIZE // 2 + 1:].sum(
        axis=(1, 2))
    assert (top > bottom).all(), f"{(top <= bottom).sum()} of 64 draws put the top at the bottom"
