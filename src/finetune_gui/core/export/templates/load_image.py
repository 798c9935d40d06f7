"""Load an image exactly as finetune-gui loaded it to train and test this model.

Plain numpy + Pillow, no finetune-gui needed: EXIF orientation applied, transparent pixels laid
on white, 16-bit values scaled (not clipped), every other mode turned into 8-bit RGB, then a
bilinear resize to the model's input size. `Image.open(f).convert("RGB")` alone shows whatever
colour lies under transparent pixels and measured 8 points lower on icons (issue 12).

    python load_image.py photo.jpg 160     # prints the pixel array's shape and mean
"""

import sys

import numpy as np
from PIL import Image, ImageOps

BACKGROUND = (255, 255, 255)


def load_image(path, size):
    """uint8 RGB pixels of shape (size, size, 3), ready for the model (it scales them itself)."""
    image = Image.open(path)
    image.load()  # at full size: a reduced-scale JPEG decode gives slightly different pixels
    image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode in ("P", "L", "RGB") and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"  # a colour-keyed transparency
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        if mode == "F":
            top = max(float(values.max()), 1e-12)
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(grey).convert("RGB")
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    elif mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image, dtype=np.uint8)


if __name__ == "__main__":
    pixels = load_image(sys.argv[1], int(sys.argv[2]))
    print(pixels.shape, round(float(pixels.mean()), 2))
