"""How far apart copies and different pictures are, for choosing the near-duplicate threshold.

Run: python benchmarks/duplicate_threshold.py
Copies: each image resized by 0.5-2x (bilinear, Lanczos and nearest) and re-saved as JPEG at
quality 50-95. Different pictures: generated shapes (as in the demo data) at several sizes and
crops of the two photos bundled with scikit-learn. For the 8x8 thumbnail fingerprint the
distance is the mean absolute grey-level difference; for 64-bit pHash and dHash it is in bits.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from finetune_gui.core.data.duplicates import NEAR_THRESHOLD, fingerprint_distance, hash_image
from finetune_gui.demo import SHAPE_CLASSES, draw_shape

FACTORS = (0.5, 0.67, 0.8, 1.25, 1.5, 2.0)
QUALITIES = (50, 60, 75, 90, 95)
RESAMPLERS = (Image.Resampling.BILINEAR, Image.Resampling.LANCZOS, Image.Resampling.NEAREST)
COPIED_PER_SET = 40


def copies_of(image: Image.Image) -> list[Image.Image]:
    out = []
    for factor in FACTORS:
        for quality in QUALITIES:
            for resample in RESAMPLERS:
                w, h = image.size
                small = image.resize(
                    (max(8, round(w * factor)), max(8, round(h * factor))), resample
                )
                buffer = io.BytesIO()
                small.save(buffer, "JPEG", quality=quality)
                out.append(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return out


def shapes(per_class: int, size: int, seed: int) -> list[Image.Image]:
    rng = random.Random(seed)
    return [
        draw_shape(shape, colour, size, rng)
        for shape, colour in SHAPE_CLASSES.values()
        for _ in range(per_class)
    ]


def photo_crops(count: int, seed: int) -> list[Image.Image]:
    rng = random.Random(seed)
    photos = [Image.fromarray(a) for a in load_sample_images().images]
    crops = []
    for _ in range(count):
        photo = rng.choice(photos)
        side = rng.randint(80, 300)
        x, y = rng.randint(0, photo.width - side), rng.randint(0, photo.height - side)
        crops.append(photo.crop((x, y, x + side, y + side)).resize((128, 128)))
    return crops


def _bits(values: np.ndarray) -> int:
    return int(np.packbits(values).view(">u8")[0])


def phash64(image: Image.Image) -> int:
    pixels = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BOX), float)
    k, i = np.arange(32)[:, None], np.arange(32)[None, :]
    basis = np.cos(np.pi * (2 * i + 1) * k / 64)
    low = (basis @ pixels @ basis.T)[:8, :8].ravel()
    return _bits(low > np.median(low))


def dhash64(image: Image.Image) -> int:
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BOX), float)
    return _bits((grey[:, 1:] > grey[:, :-1]).ravel())


def bit_distance(a: int, b: int) -> float:
    return float((a ^ b).bit_count())


METHODS = {
    "thumbnail 8x8 (grey levels)": (hash_image, fingerprint_distance, NEAR_THRESHOLD),
    "pHash 64 bits": (phash64, bit_distance, 10),
    "dHash 64 bits": (dhash64, bit_distance, 10),
}


def measure(name: str, images: list[Image.Image]) -> None:
    for method, (fingerprint, distance, threshold) in METHODS.items():
        prints = [fingerprint(image) for image in images]
        copy_distances = np.array(
            [
                distance(fingerprint(copy), prints[k])
                for k, image in enumerate(images[:COPIED_PER_SET])
                for copy in copies_of(image)
            ]
        )
        nearest = np.array(
            [
                min(distance(a, b) for j, b in enumerate(prints) if j != i)
                for i, a in enumerate(prints)
            ]
        )
        print(
            f"{name:<11} {method:<28} copies p99 {np.percentile(copy_distances, 99):5.2f} "
            f"max {copy_distances.max():5.2f} found@{threshold:g} {np.mean(copy_distances <= threshold):6.1%} | "
            f"nearest different min {nearest.min():5.2f} p1 {np.percentile(nearest, 1):5.2f} "
            f"flagged@{threshold:g} {np.mean(nearest <= threshold):5.1%}"
        )


def main() -> None:
    for size in (32, 48, 64, 128, 256):
        measure(f"shapes {size}", shapes(60, size, seed=size))
    measure("photo crops", photo_crops(180, seed=3))


if __name__ == "__main__":
    main()
