"""Reading one image file into RGB pixels, or saying in plain words why it cannot be read.

Pillow does the decoding because TensorFlow's decoders ignore EXIF orientation, return 4-D
tensors for animations and uint16 for 16-bit PNGs (see shared/notes/failures.md).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from finetune_gui.core.data.hashing import fingerprint_image

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)
# Pillow formats we accept even if the extension says otherwise (a .jpg that is really a PNG).
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF", "MPO"})
# Transparent pixels are laid on white: on black by accident, a dark class gets an easy cue.
BACKGROUND = (255, 255, 255)

EMPTY_FILE = "empty file"
NOT_AN_IMAGE = "not an image"
CORRUPT = "truncated or corrupt"
UNSUPPORTED = "unsupported format"
UNREADABLE = "cannot be read (permission denied)"


class ImageReadError(Exception):
    """A file that cannot be used as an image; `reason` is one of the plain reasons above."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PixelKeeper(Protocol):
    """Takes the pixels of an image the scan has decoded (`kept_pixels.KeptPixels`)."""

    def offer(self, path: Path, rgb: Image.Image, pixel_bytes: bytes) -> None: ...


@dataclass(frozen=True)
class ImageInfo:
    """What the scan learns about one readable image."""

    width: int
    height: int
    sha1: str
    format: str
    phash: bytes | None = None  # fingerprint for finding copies of one picture (hashing.py)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or `ImageReadError` with a plain reason."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # A named pipe or a device would block the scan forever (or never end).
            raise ImageReadError(NOT_AN_IMAGE)
        data = Path(path).read_bytes()
    except PermissionError as exc:
        raise ImageReadError(UNREADABLE) from exc
    except IsADirectoryError as exc:
        raise ImageReadError(NOT_AN_IMAGE) from exc
    except OSError as exc:
        raise ImageReadError(f"cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise ImageReadError(EMPTY_FILE)
    return data


# How the formats we accept begin: a file that starts like one but will not open is damaged,
# not "not an image".
_IMAGE_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
)


def _looks_like_image(data: bytes) -> bool:
    return data.startswith(_IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _open_verified(data: bytes) -> Image.Image:
    """Open and fully decode `data` (Pillow's open is lazy: truncation shows only on load)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            reason = CORRUPT if _looks_like_image(data) else NOT_AN_IMAGE
            raise ImageReadError(reason) from exc
        except Image.DecompressionBombError as exc:
            raise ImageReadError("too large to open safely (over 179 megapixels)") from exc
        except Exception as exc:
            # Pillow's format plugins raise OSError ("Truncated File Read", "could not create
            # decoder object"), ValueError (oversized text chunks) and more on damaged headers.
            raise ImageReadError(CORRUPT) from exc
        if image.format not in SUPPORTED_FORMATS:
            raise ImageReadError(f"{UNSUPPORTED} ({image.format})")
        # No JPEG draft (DCT-domain decode at 1/2-1/8 scale), though it is 5-10x faster on
        # 12-24 MP photos: its pixels differ from a full decode (mean 0.1-0.3 of 255), and a
        # browser can only decode at full size, where Chromium matches Pillow byte for byte
        # (measured), so the web export sees exactly what training saw. Each image is decoded
        # once per run (pipeline.py), as the scan already does at full size.
        try:
            image.load()
        except Image.DecompressionBombError as exc:
            raise ImageReadError("too large to open safely (over 179 megapixels)") from exc
        except Exception as exc:  # any decoder failure means the pixels are not all there
            raise ImageReadError(CORRUPT) from exc
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB, scaling 16/32-bit values instead of clipping them."""
    image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode in ("P", "L", "RGB") and "transparency" in image.info:
        # A tRNS colour key (palette, grey or RGB PNG, GIF): keyed pixels go on the background.
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        if mode == "F":
            top = max(float(values.max()), 1e-12)
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def inspect_image(path: Path, keep: PixelKeeper | None = None) -> ImageInfo:
    """Decode the whole file; return its size, content hash and perceptual fingerprint, or raise
    `ImageReadError`. The fingerprint comes from the pixels already decoded here: no second read.
    `keep` is offered those pixels (a run's scan keeps them at its size, `kept_pixels.py`).
    """
    data = read_bytes(path)
    image = _open_verified(data)
    try:
        rgb = _to_rgb(image)
        pixel_bytes = rgb.tobytes()  # one copy for the fingerprint and the kept pixels
        fingerprint = fingerprint_image(rgb, pixel_bytes)
        if keep is not None:
            keep.offer(path, rgb, pixel_bytes)
    except (OSError, ValueError) as exc:
        raise ImageReadError(CORRUPT) from exc
    sha1 = hashlib.sha1(data).hexdigest()
    return ImageInfo(rgb.width, rgb.height, sha1, image.format or "", fingerprint)


def load_rgb(path: Path, size: int | None = None) -> np.ndarray:
    """The image as uint8 RGB pixels (H, W, 3), resized to `size` x `size` when given."""
    image = _open_verified(read_bytes(path))
    try:
        return at_size(_to_rgb(image), size)
    except (OSError, ValueError) as exc:
        raise ImageReadError(CORRUPT) from exc


RESIZE_REDUCING_GAP = 2.0  # Pillow's two-step shrink of large images (JPEG draft, then filter)


def at_size(rgb: Image.Image, size: int | None) -> np.ndarray:
    """An upright RGB image as uint8 pixels, resized to `size` x `size` when given: the one
    resize every run's pixels go through."""
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR,
                         reducing_gap=RESIZE_REDUCING_GAP)
    return np.asarray(rgb, dtype=np.uint8)
