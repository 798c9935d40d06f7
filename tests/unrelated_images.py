"""Real pictures of other kinds than the generated shapes, for the "not sure" tests: scikit-learn's
bundled hand-written digits and crops of its two bundled photos (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_digits(folder: Path, count: int, size: int = 48) -> list[Path]:
    """`count` digits (8x8, 17 grey levels) drawn dark on white and enlarged to `size`."""
    from sklearn.datasets import load_digits

    folder.mkdir(parents=True, exist_ok=True)
    digits = load_digits().images[:count]
    paths = []
    for i, digit in enumerate(digits):
        grey = (255 - digit / 16.0 * 255).astype(np.uint8)
        path = folder / f"digit_{i:03d}.png"
        Image.fromarray(grey).resize((size, size), Image.Resampling.NEAREST).convert("RGB").save(path)
        paths.append(path)
    return paths


def write_digit_classes(root: Path, digits: tuple[int, ...], per_class: int, size: int = 48) -> Path:
    """A trainable folder: one class folder per digit ("digit_3"), `per_class` images each."""
    from sklearn.datasets import load_digits

    found = load_digits()
    for digit in digits:
        folder = root / f"digit_{digit}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(found.images[found.target == digit][:per_class]):
            grey = (255 - image / 16.0 * 255).astype(np.uint8)
            picture = Image.fromarray(grey).resize((size, size), Image.Resampling.NEAREST)
            picture.convert("RGB").save(folder / f"{digit}_{i:03d}.png")
    return root


def write_photo_crops(folder: Path, count: int, size: int = 48, seed: int = 0) -> list[Path]:
    """`count` square crops, at random places and scales, of the two bundled photos."""
    from sklearn.datasets import load_sample_images

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    paths = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.integers(60, min(photo.shape[:2])))
        top = int(rng.integers(0, photo.shape[0] - side))
        left = int(rng.integers(0, photo.shape[1] - side))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        path = folder / f"photo_{i:03d}.jpg"
        crop.resize((size, size), Image.Resampling.BILINEAR).save(path, quality=92)
        paths.append(path)
    return paths
