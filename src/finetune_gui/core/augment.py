"""Augmentation as Keras preprocessing layers: random in training, a no-op at inference."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from finetune_gui.core.errors import SettingsError

FLIP_MODES = ("none", "horizontal", "vertical", "horizontal_and_vertical")


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
        for f in fields(self):
            if f.name != "flip" and not 0.0 <= getattr(self, f.name) <= (
                50.0 if f.name == "noise" else 1.0
            ):
                raise SettingsError(
                    f"Augmentation '{f.name}' is out of range: {getattr(self, f.name)}."
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
    "strong": AugmentSettings(
        flip="horizontal_and_vertical",
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
    if settings.flip != "none":
        steps.append(layers.RandomFlip(settings.flip, seed=seed))
    if settings.rotation:
        steps.append(layers.RandomRotation(settings.rotation, fill_mode="reflect", seed=seed))
    if settings.zoom:
        steps.append(layers.RandomZoom(settings.zoom, fill_mode="reflect", seed=seed))
    if settings.shift:
        steps.append(
            layers.RandomTranslation(settings.shift, settings.shift, fill_mode="reflect", seed=seed)
        )
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
