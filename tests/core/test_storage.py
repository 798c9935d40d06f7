"""Arrays beyond the memory budget live on disk and behave like arrays."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.data import storage
from finetune_gui.core.data.pipeline import decode_images
from finetune_gui.core.data.storage import DiskArray, allocate


def test_disk_array_reads_and_writes_rows_slices_and_index_lists(tmp_path):
    array = DiskArray(tmp_path / "a.rows", (10, 2, 3), np.float32, create=True, delete=False)
    reference = np.arange(60, dtype=np.float32).reshape(10, 2, 3)
    for i in range(0, 10, 4):
        array[i : i + 4] = reference[i : i + 4]
    array[9] = reference[9] * 2
    reference[9] *= 2
    np.testing.assert_array_equal(array[2:5], reference[2:5])
    np.testing.assert_array_equal(array[7], reference[7])
    index = np.array([9, 0, 1, 2, 5, 4])
    np.testing.assert_array_equal(array[index], reference[index])
    np.testing.assert_array_equal(np.asarray(array), reference)
    assert (tmp_path / "a.rows").stat().st_size == 60 * 4


def test_allocation_spills_to_disk_beyond_the_budget(monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "1")
    small = allocate((10, 10), np.uint8)
    large = allocate((2000, 32, 32, 3), np.uint8)  # 6 MB
    assert isinstance(small, np.ndarray) and isinstance(large, DiskArray)
    assert not list(storage.spill_dir().glob("*.rows"))  # unlinked: gone with the process


def test_decoded_images_on_disk_equal_those_in_memory(monkeypatch, small_shapes):
    paths = sorted(small_shapes.glob("*/*.png"))
    in_memory = decode_images(paths, 32)
    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "0.01")
    on_disk = decode_images(paths, 32)
    assert isinstance(on_disk, DiskArray)
    np.testing.assert_array_equal(np.asarray(on_disk), in_memory)


@pytest.mark.parametrize("budget", [None, "0.05"])
def test_batches_cover_every_row_once_per_epoch(monkeypatch, budget):
    import tensorflow as tf  # noqa: F401 - the pipeline is tf.data

    from finetune_gui.core.data.pipeline import batches

    if budget:
        monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", budget)
    x = allocate((100, 8, 8, 3), np.float32)
    x[0:100] = np.arange(100, dtype=np.float32)[:, None, None, None]
    y = np.arange(100)
    seen = [int(v) for _, yb in batches([x, y], 16, shuffle=True, seed=1) for v in yb.numpy()]
    assert sorted(seen) == list(range(100)) and seen != list(range(100))
    for xb, yb in batches([x, y], 32):
        np.testing.assert_array_equal(xb.numpy()[:, 0, 0, 0], yb.numpy())


@pytest.mark.parametrize(("told", "expected"), [(None, "False"), ("1", "True")])
def test_large_arrays_get_small_pages_unless_numpy_is_told_otherwise(told, expected):
    """Huge pages made a default run 6 s slower in 49 on a 2-core VM (docs/benchmarks.md)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if told:
        env["NUMPY_MADVISE_HUGEPAGE"] = told
    code = ("import finetune_gui.core.data.storage\n"
            "from numpy._core.multiarray import _get_madvise_hugepage\n"
            "print(_get_madvise_hugepage())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == expected
