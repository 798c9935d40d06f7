"""The load_image.py shipped in every export folder gives exactly the app's pixels."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from finetune_gui.core.data.images import load_rgb
from finetune_gui.core.export.templates import LOADER_TEMPLATE

SIZE = 40


def shipped_loader():
    spec = importlib.util.spec_from_file_location("shipped_load_image", LOADER_TEMPLATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_image


def gradient(size=(64, 48)) -> np.ndarray:
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 4 % 256, y * 5 % 256, (x + y) * 3 % 256], axis=-1).astype(np.uint8)


def rgba(path):
    pixels = np.dstack([gradient(), np.tile(np.linspace(0, 255, 64), (48, 1)).astype(np.uint8)])
    pixels[:10, :, 3] = 0  # fully transparent rows over bright colour
    Image.fromarray(pixels, "RGBA").save(path)


def palette_with_transparency(path):
    image = Image.fromarray(gradient()).quantize(16)
    image.info["transparency"] = 3
    image.save(path, transparency=3)


def grey_with_alpha(path):
    grey = gradient()[..., 0]
    alpha = np.tile(np.linspace(0, 255, 64), (48, 1)).astype(np.uint8)
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(path)


def cmyk_jpeg(path):
    Image.fromarray(gradient()).convert("CMYK").save(path, "JPEG", quality=95)


def sixteen_bit(path):
    values = (gradient()[..., 1].astype(np.uint16) * 257)[:, ::-1]
    Image.fromarray(values.astype("<u2")).save(path)  # a 16-bit greyscale PNG (I;16)


def exif_rotated_jpeg(path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(gradient()).save(path, "JPEG", quality=95, exif=exif.tobytes())


def big_jpeg(path):
    Image.fromarray(gradient((640, 480))).save(path, "JPEG", quality=90)  # full decode, no draft


MAKERS = {
    "rgba.png": rgba,
    "palette.png": palette_with_transparency,
    "la.png": grey_with_alpha,
    "cmyk.jpg": cmyk_jpeg,
    "sixteen.png": sixteen_bit,
    "rotated.jpg": exif_rotated_jpeg,
    "big.jpg": big_jpeg,
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_shipped_loader_gives_the_apps_pixels(tmp_path, name):
    path = tmp_path / name
    MAKERS[name](path)
    ours = shipped_loader()(path, SIZE)
    assert ours.dtype == np.uint8 and ours.shape == (SIZE, SIZE, 3)
    assert np.array_equal(ours, load_rgb(path, SIZE))


def test_the_files_are_what_they_claim_to_be(tmp_path):
    modes = {}
    for name, make in MAKERS.items():
        make(tmp_path / name)
        with Image.open(tmp_path / name) as image:
            modes[name] = (image.mode, "transparency" in image.info)
    assert modes["palette.png"] == ("P", True)
    assert modes["la.png"][0] == "LA" and modes["cmyk.jpg"][0] == "CMYK"
    assert modes["sixteen.png"][0].startswith("I")
    with Image.open(tmp_path / "rotated.jpg") as image:
        assert image.getexif()[0x0112] == 6


def test_the_naive_snippet_differs_where_transparency_hides_colour(tmp_path):
    path = tmp_path / "rgba.png"
    rgba(path)
    naive = np.asarray(Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
    shipped = shipped_loader()(path, SIZE)
    assert not np.array_equal(naive, shipped)
    assert shipped[:5].min() == 255  # transparent rows are white, as in training


def test_the_loader_runs_as_a_script(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "rgba.png"
    rgba(path)
    out = subprocess.run(
        [sys.executable, str(LOADER_TEMPLATE), str(path), "32"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("(32, 32, 3)")
