"""The fingerprint the scan keeps of every image, for finding copies of one picture.

Computed from the pixels the scan has already decoded (no second read), it holds what the two
stages of `duplicates.py` compare: a digest of the exact pixels ("exact copy"), a 32 x 32 grey
thumbnail (candidates, then the aligned pixel check) and an 8 x 8 colour thumbnail (a red and a
blue copy of one drawing are different pictures). 1,228 bytes per image.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

GREY_SIDE = 32
COLOUR_SIDE = 8
DIGEST_BYTES = 8
_GREY_BYTES = GREY_SIDE * GREY_SIDE
_COLOUR_BYTES = COLOUR_SIDE * COLOUR_SIDE * 3
FINGERPRINT_BYTES = DIGEST_BYTES + 4 + _GREY_BYTES + _COLOUR_BYTES


def fingerprint_image(image: Image.Image, pixel_bytes: bytes | None = None) -> bytes:
    """The fingerprint of a Pillow image (any mode, already upright and flattened on white);
    `pixel_bytes`, when the caller has them, are an RGB image's `tobytes()`."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if pixel_bytes is None or image.mode != "RGB":
        pixel_bytes = rgb.tobytes()
    digest = hashlib.blake2b(pixel_bytes, digest_size=DIGEST_BYTES)
    digest.update(np.array(rgb.size, dtype="<u4").tobytes())
    # Shrinking, BOX averages every source pixel, so JPEG block noise and resize aliasing cancel
    # out; enlarging (a 24 px icon), BOX repeats pixels unevenly and BILINEAR does not.
    enlarging = min(rgb.size) < GREY_SIDE
    grey = rgb.convert("L").resize(
        (GREY_SIDE, GREY_SIDE), Image.Resampling.BILINEAR if enlarging else Image.Resampling.BOX
    )
    colour = rgb.resize((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX)
    smallest_side = min(min(rgb.size), 65535)
    return (digest.digest() + smallest_side.to_bytes(4, "little") + grey.tobytes()
            + colour.tobytes())


def pixel_digest(fingerprint: bytes) -> bytes:
    """Equal for two images with exactly the same pixels (and size)."""
    return fingerprint[:DIGEST_BYTES]


def smallest_side(fingerprint: bytes) -> int:
    """The image's shorter side in pixels (the detail a comparison can rely on)."""
    return int.from_bytes(fingerprint[DIGEST_BYTES : DIGEST_BYTES + 4], "little")


def grey_thumbnail(fingerprint: bytes) -> np.ndarray:
    """The 32 x 32 grey thumbnail as float32 levels 0-255."""
    start = DIGEST_BYTES + 4
    levels = np.frombuffer(fingerprint, np.uint8, _GREY_BYTES, start)
    return levels.reshape(GREY_SIDE, GREY_SIDE).astype(np.float32)


def colour_thumbnail(fingerprint: bytes) -> np.ndarray:
    """The 8 x 8 RGB thumbnail as float32 levels 0-255, shape (8, 8, 3)."""
    start = DIGEST_BYTES + 4 + _GREY_BYTES
    levels = np.frombuffer(fingerprint, np.uint8, _COLOUR_BYTES, start)
    return levels.reshape(COLOUR_SIDE, COLOUR_SIDE, 3).astype(np.float32)
