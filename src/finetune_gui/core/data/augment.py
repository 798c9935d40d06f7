"""Augmentation as Keras preprocessing layers: random in training, a no-op at inference."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import cache

import numpy as np

from finetune_gui.core.errors import SettingsError

FLIP_MODES = ("none", "horizontal", "vertical", "horizontal_and_vertical")
FLIP_TEXTS = ("none", "left-right", "up-down", "both")  # plain words for FLIP_MODES
FLIP_HELP = ("Mirror images at random. Left-right suits most photos; up-down only when images "
             "have no natural 'up' (microscopy, satellite images).")


@dataclass(frozen=True)
class ChangeInfo:
    """One random change, as every face of the app names, bounds and shows it (the
    Augmentation page's sliders are made from these)."""

    label: str
    help: str
    high: float  # the strongest accepted value, in the setting's own unit (0 switches it off)
    scale: float  # display units per setting unit: 360 degrees a turn, 100 percent
    unit: str  # the display unit


CHANGES = {
    "rotation": ChangeInfo("Rotation", "Turn each image by a random angle up to this many "
                           "degrees, either way.", 0.25, 360, "°"),
    "zoom": ChangeInfo("Zoom", "Zoom in or out at random by up to this share of the image.",
                       0.5, 100, "%"),
    "shift": ChangeInfo("Shift", "Move the image sideways and up or down by up to this share "
                        "of its size.", 0.5, 100, "%"),
    "brightness": ChangeInfo("Brightness", "Make each image lighter or darker at random by up "
                             "to this share.", 0.5, 100, "%"),
    "contrast": ChangeInfo("Contrast", "Raise or lower the contrast at random by up to this "
                           "share.", 0.5, 100, "%"),
    "noise": ChangeInfo("Noise", "Add grain: random pixel noise with this strength (in pixel "
                        "values of 0-255).", 30.0, 1, ""),
}  # fmt: skip


@dataclass(frozen=True)
class AugmentSettings:
    """Strengths of each random change; 0 (or "none") switches one off.

    rotation: fraction of a full turn (0.05 = up to +-18 degrees); zoom and shift: fraction of the
    image size; brightness and contrast: fraction of the range; noise: std-dev in pixel values.
    """

    flip: str = "none"
    rotation: float = 0.0
    zoom: float = 0.0
    shift: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.flip not in FLIP_MODES:
            raise SettingsError(f"Flip must be one of {', '.join(FLIP_MODES)}; got '{self.flip}'.")
        for name, change in CHANGES.items():
            if not 0.0 <= getattr(self, name) <= change.high:
                raise SettingsError(
                    f"Augmentation '{name}' is out of range: {getattr(self, name)} (0 to "
                    f"{change.high:g})."
                )

    @property
    def is_off(self) -> bool:
        return self == AugmentSettings()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AugmentSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


PRESETS: dict[str, AugmentSettings] = {
    "none": AugmentSettings(),
    "light": AugmentSettings(flip="horizontal", rotation=0.03, zoom=0.1, shift=0.05),
    "standard": AugmentSettings(
        flip="horizontal", rotation=0.08, zoom=0.15, shift=0.1, brightness=0.1, contrast=0.1
    ),
    # No preset flips upside down: the Augmentation page tells users not to flip text that way,
    # and most photos (faces, scenes, objects on a table) are never seen upside down either.
    "strong": AugmentSettings(
        flip="horizontal",
        rotation=0.15,
        zoom=0.25,
        shift=0.15,
        brightness=0.2,
        contrast=0.2,
        noise=8.0,
    ),
}


def preset(name: str) -> AugmentSettings:
    if name not in PRESETS:
        raise SettingsError(f"Unknown augmentation preset '{name}'; use {', '.join(PRESETS)}.")
    return PRESETS[name]


def build_augmentation(settings: AugmentSettings, seed: int | None = None, name: str = "augment"):
    """A `keras.Sequential` of random layers working on raw 0-255 pixels (empty when all off)."""
    import keras
    from keras import layers

    steps = []
    geometric = settings.rotation or settings.zoom or settings.shift
    if geometric:
        steps.append(_random_geometry_class()(settings, seed=seed))
    elif settings.flip != "none":
        steps.append(layers.RandomFlip(settings.flip, seed=seed))
    if settings.brightness:
        steps.append(layers.RandomBrightness(settings.brightness, value_range=(0, 255), seed=seed))
    if settings.contrast:
        steps.append(layers.RandomContrast(settings.contrast, value_range=(0, 255), seed=seed))
    if settings.noise:
        # GaussianNoise takes a std-dev in 0..1, so add it on the 0..1 scale.
        steps.append(layers.Rescaling(1 / 255.0))
        steps.append(layers.GaussianNoise(settings.noise / 255.0, seed=seed))
        steps.append(layers.Rescaling(255.0))
    if steps:
        # Brightness, contrast and noise can leave 0..255; the model's input range is fixed.
        steps.append(layers.Lambda(lambda x: keras.ops.clip(x, 0.0, 255.0), name="clip_0_255"))
    return keras.Sequential(steps, name=name)


@cache
def _random_geometry_class():
    import keras
    from keras import ops

    class RandomGeometry(keras.layers.Layer):
        """Flip, rotation, zoom and shift drawn per image and applied as ONE resampling.

        Keras' RandomFlip, RandomRotation, RandomZoom and RandomTranslation each resample the
        whole batch; chained, they cost 7.5 ms per 160 px image on a CPU core, about a third of
        a MobileNetV2 forward pass (measured). Composing the four into one affine matrix per
        image resamples once. Parameters mean what they mean for the Keras layers: rotation in
        fractions of a full turn, zoom and shift in fractions of the image size, reflected
        borders, bilinear interpolation. Never saved inside a model: training-time only.
        """

        def __init__(self, settings: AugmentSettings, seed: int | None = None, **kwargs):
            super().__init__(name="random_geometry", **kwargs)
            self.settings = settings
            self.seed_generator = keras.random.SeedGenerator(seed)

        def _uniform(self, batch, limit: float):
            return keras.random.uniform((batch,), -limit, limit, seed=self.seed_generator)

        def _flip_sign(self, batch, on: bool):
            if not on:
                return ops.ones((batch,))
            coin = keras.random.uniform((batch,), 0.0, 1.0, seed=self.seed_generator)
            return ops.where(coin < 0.5, -1.0, 1.0)

        def call(self, images, training=True):
            if not training:
                return images
            s = self.settings
            shape = ops.shape(images)
            batch = shape[0]
            height = ops.cast(shape[1], "float32")
            width = ops.cast(shape[2], "float32")
            angle = self._uniform(batch, s.rotation * 2.0 * math.pi)
            scale = 1.0 + self._uniform(batch, s.zoom)  # > 1 shows more of the image: zoom out
            shift_x = self._uniform(batch, s.shift) * width
            shift_y = self._uniform(batch, s.shift) * height
            flip_x = self._flip_sign(batch, s.flip in ("horizontal", "horizontal_and_vertical"))
            flip_y = self._flip_sign(batch, s.flip in ("vertical", "horizontal_and_vertical"))
            # Output pixel p maps to input pixel M (p - c) + c - shift, with M = scale R F and
            # c the image centre; a flip alone lands exactly on pixel centres.
            cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
            a0, a1 = cos * flip_x, -sin * flip_y
            b0, b1 = sin * flip_x, cos * flip_y
            cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
            a2 = cx - a0 * cx - a1 * cy - shift_x
            b2 = cy - b0 * cx - b1 * cy - shift_y
            zeros = ops.zeros_like(angle)
            transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
            return ops.image.affine_transform(
                images, transform, interpolation="bilinear", fill_mode="reflect"
            )

        def compute_output_shape(self, input_shape):
            return input_shape

    return RandomGeometry


def preview_augmentations(
    image: np.ndarray, settings: AugmentSettings, count: int = 8, seed: int = 0
) -> list[np.ndarray]:
    """`count` random draws of the augmentation applied to one uint8 image, as uint8 images."""
    augment = build_augmentation(settings, seed=seed)
    batch = np.repeat(image[None].astype("float32"), count, axis=0)
    if not augment.layers:
        return [image.copy() for _ in range(count)]
    out = np.asarray(augment(batch, training=True))
    return [np.clip(x, 0, 255).round().astype(np.uint8) for x in out]
