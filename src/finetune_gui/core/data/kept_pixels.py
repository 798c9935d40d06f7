"""The pixels a run's own scan decoded, kept at the run's image size so that each image is
decoded once per run: the scan must decode every file whole to know it is sound, and the run
would otherwise read and decode every file again (2.7 s of a 43 s run on 4,854 training and
validation images at 160 px, 1.2 s taken from here; docs/benchmarks.md).

Kept only within a share of the memory budget (a `KEPT_SHARE`-th of the stored arrays' half of
it): an image beyond that is decoded again as before, so a folder of any size still fits. Each
row is handed out once (`take`) and freed then; the pixels are the ones `images.load_rgb` gives.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from finetune_gui.core.data.images import at_size
from finetune_gui.core.data.storage import store_budget

# The kept rows and the split's arrays being filled from them are both in RAM for a moment:
# half the stored arrays' budget for the first leaves the other half for the second.
KEPT_SHARE = 2


class KeptPixels:
    """Path -> uint8 pixels (size, size, 3), filled by the scan's threads, emptied by `take`."""

    def __init__(self, size: int, limit_bytes: int | None = None) -> None:
        self.size = int(size)
        self.limit_bytes = store_budget() // KEPT_SHARE if limit_bytes is None else limit_bytes
        self._rows: dict[Path, np.ndarray] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def row_bytes(self) -> int:
        return self.size * self.size * 3

    def offer(self, path: Path, rgb: Image.Image, pixel_bytes: bytes) -> None:
        """Keep `rgb` (an upright RGB image, as the scan decoded it, and its `tobytes()`) at
        the run's size, if the share of the budget has room for it."""
        with self._lock:
            if self._bytes + self.row_bytes > self.limit_bytes:
                return
            self._bytes += self.row_bytes
        if rgb.size == (self.size, self.size):  # no resize: the bytes are the pixels, uncopied
            pixels = np.frombuffer(pixel_bytes, np.uint8).reshape(self.size, self.size, 3)
        else:
            pixels = at_size(rgb, self.size)
        with self._lock:
            self._rows[Path(path)] = pixels

    def take(self, path: Path, size: int) -> np.ndarray | None:
        """The kept pixels of `path` at `size`, handed out once; None when not kept."""
        if size != self.size:
            return None
        with self._lock:
            pixels = self._rows.pop(Path(path), None)
            if pixels is not None:
                self._bytes -= pixels.nbytes
        return pixels

    def keep_only(self, paths: Iterable[Path]) -> None:
        """Free every kept row but those of `paths` (still to be taken)."""
        wanted = {Path(p) for p in paths}
        with self._lock:
            for path in [p for p in self._rows if p not in wanted]:
                self._bytes -= self._rows.pop(path).nbytes

    def __len__(self) -> int:
        return len(self._rows)
