"""Each image is decoded once per run: the pixels the run's own scan decoded are the ones it
trains on, exactly those a second read would give, within a share of the memory budget."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tests.core.test_load_image import (
    cmyk_jpeg,
    exif_rotated_jpeg,
    gradient,
    grey_with_alpha,
    palette_with_transparency,
    rgba,
    sixteen_bit,
)

from finetune_gui.core.data import pipeline
from finetune_gui.core.data.images import load_rgb
from finetune_gui.core.data.kept_pixels import KeptPixels
from finetune_gui.core.data.pipeline import decode_images
from finetune_gui.core.data.scan import scan_folder
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.job import TrainingJob

SIZE = 40


def awkward_folder(root):
    """Two classes of files in every mode the reader converts, one already at the run's size,
    one larger, and a damaged file."""
    a, b = root / "a", root / "b"
    a.mkdir(parents=True)
    b.mkdir()
    rgba(a / "rgba.png")
    palette_with_transparency(a / "palette.png")
    grey_with_alpha(a / "grey.png")
    cmyk_jpeg(b / "cmyk.jpg")
    sixteen_bit(b / "sixteen.png")
    exif_rotated_jpeg(b / "rotated.jpg")
    Image.fromarray(gradient((SIZE, SIZE))).save(a / "at-size.png")
    Image.fromarray(gradient((300, 200))).save(b / "large.jpg", quality=90)
    (b / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return root


def test_the_scan_keeps_exactly_the_pixels_a_second_read_gives(tmp_path):
    folder = awkward_folder(tmp_path / "data")
    kept = KeptPixels(SIZE)
    scan = scan_folder(folder, keep=kept)
    assert [p.path.name for p in scan.problems] == ["broken.png"]
    assert len(kept) == len(scan.records) == 8
    for record in scan.records:
        pixels = kept.take(record.path, SIZE)
        assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.uint8
        np.testing.assert_array_equal(pixels, load_rgb(record.path, SIZE), err_msg=record.path.name)
        assert kept.take(record.path, SIZE) is None  # handed out once
    assert len(kept) == 0


def test_beyond_its_share_of_the_budget_an_image_is_read_again_with_the_same_pixels(tmp_path):
    folder = awkward_folder(tmp_path / "data")
    kept = KeptPixels(SIZE, limit_bytes=3 * SIZE * SIZE * 3)
    scan = scan_folder(folder, keep=kept)
    assert len(kept) == 3
    paths = [r.path for r in scan.records]
    np.testing.assert_array_equal(decode_images(paths, SIZE, kept=kept), decode_images(paths, SIZE))
    assert len(kept) == 0
    # Another size than the one kept: every image is read at that size.
    kept = KeptPixels(SIZE)
    scan_folder(folder, keep=kept)
    np.testing.assert_array_equal(decode_images(paths, 24, kept=kept), decode_images(paths, 24))


def test_the_share_of_the_budget_follows_the_budget(monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "8")
    assert KeptPixels(SIZE).limit_bytes == 2 * 2**20  # a quarter: half the stored arrays' half


@pytest.mark.slow
def test_a_run_on_a_folder_decodes_no_image_after_its_scan(tmp_path, small_shapes, monkeypatch):
    reads = []

    def counted(path, size=None):
        reads.append(path)
        return load_rgb(path, size)

    monkeypatch.setattr(pipeline, "load_rgb", counted)
    settings = TrainingSettings(backbone="mobilenetv3small", weights="none", image_size=32,
                                epochs_head=1, epochs_finetune=0, batch_size=16, augment="none")
    result = TrainingJob(small_shapes, settings, tmp_path / "run").run()
    assert result.status == "completed" and result.report is not None
    assert result.report.count == 6  # the test split was scored
    assert reads == []
    # Without the kept pixels (a scan made beforehand, as the window's), the run reads them all.
    scan = scan_folder(small_shapes)
    TrainingJob(scan, settings, tmp_path / "again").run()
    assert len(reads) == len(scan.records)
