"""Stage 1 of "is this the same picture?" (`similarity.py`): which pairs are worth a look.

Each 32 x 32 grey thumbnail is blurred, shrunk to 8 x 8 and brought to zero mean and unit
contrast, so brightness changes do not matter; pairs within `CLOSE_DISTANCE` (rms), and each
image's `NEIGHBOURS` nearest within `NEIGHBOUR_DISTANCE`, are proposed (a cropped copy moves far
on 8 x 8 but stays its original's nearest). This stage only prunes.

Its cost stays linear in the number of images. In a folder of look-alikes (generated shapes,
handwritten digits) the pairs within `CLOSE_DISTANCE` grow with the square of the folder:
23,976 among 5,000 generated shapes at 96 px, 1,491,141 among 40,000 (34 s, and as Python
tuples 0.2 GB), so 200,000 would have been 37 million. So each image is compared with at most
`WINDOW` images either side of it in the order of a key, and keeps at most `CLOSE_LIMIT` of its
nearest within `CLOSE_DISTANCE`. Below those counts nothing changes (every real folder
measured); what they cost on crowds of near copies is in docs/duplicates.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finetune_gui.core.data.hashing import GREY_SIDE, grey_thumbnail
from finetune_gui.core.data.pixel_measures import FLAT_CONTRAST, blurring
from finetune_gui.core.data.storage import row_chunks, rows_in_budget

# Measured on real folders (benchmarks/duplicate_threshold.py, docs/duplicates.md, 2026-12-01).
CLOSE_DISTANCE = 0.2  # rms of the coarse thumbnails: always a candidate
NEIGHBOUR_DISTANCE = 0.65  # a candidate when among the nearest `NEIGHBOURS`
NEIGHBOURS = 4
CANDIDATE_BLOCK = 512
# Blur in px of a 32 px side: a crop moves the 8 x 8 cells.
COARSE_BLUR = 2.0
# The caps that keep the cost linear (docs/duplicates.md, "A folder of look-alikes").
WINDOW = 4096  # images compared either side of a block, in the key's order
CLOSE_LIMIT = 64  # the most candidates within CLOSE_DISTANCE one image proposes


def coarse_levels(fingerprints: Sequence[bytes]) -> np.ndarray:
    """(n, 64): 8 x 8 grey levels at zero mean and unit contrast (a floor keeps blank images
    blank), one row per fingerprint."""
    blur = blurring(GREY_SIDE, COARSE_BLUR)
    out = np.empty((len(fingerprints), 64))
    # A chunk of thumbnails at a time: all of them (32 x 32, and two blurred copies) were
    # 400 MB and more for 50,000 images, where the result is 64 numbers each.
    for part in row_chunks(len(fingerprints), 3 * 8 * GREY_SIDE * GREY_SIDE):
        thumbs = np.stack([grey_thumbnail(f) for f in fingerprints[part]])
        levels = (blur @ thumbs @ blur.T).reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(-1, 64)
        centred = levels - levels.mean(axis=1, keepdims=True)
        out[part] = centred / np.maximum(centred.std(axis=1, keepdims=True), FLAT_CONTRAST)
    return out


def candidate_pairs(
    fingerprints: Sequence[bytes],
    close: float = CLOSE_DISTANCE,
    far: float = NEIGHBOUR_DISTANCE,
    nearest: int = NEIGHBOURS,
    window: int = WINDOW,
    close_limit: int = CLOSE_LIMIT,
) -> np.ndarray:
    """(p, 2) image indices (i, j), i < j, in order, proposed for stage 2: coarse thumbnails
    within `close` (rms; an image's `close_limit` nearest of them), or within `far` when one is
    among the other's `nearest` neighbours.

    A copy is nearly always its original's nearest neighbour, even a crop whose coarse thumbnail
    moved far (docs/duplicates.md); a folder of look-alikes (handwritten digits) has many
    pairs within `far`, and only the neighbours go on. The key (top half minus bottom half,
    weights 1/64) differs by no more than the rms distance, so after sorting by it each block of
    images is compared only with the images whose key is within `far`, and at most `window`
    places away.
    """
    count = len(fingerprints)
    if count < 2:
        return np.zeros((0, 2), np.int64)
    coarse = coarse_levels(fingerprints)
    key = (coarse[:, :32].sum(axis=1) - coarse[:, 32:].sum(axis=1)) / 64
    order = np.argsort(key, kind="stable")
    ranked, sorted_coarse = key[order], coarse[order]
    squares = (sorted_coarse**2).sum(axis=1)
    found = []
    # A block's window may hold every image (a folder of look-alikes), and its matrices (the
    # distances, the masks, argpartition's indices: about five 8-byte numbers per pair) then
    # grow with the folder: 512 rows of 50,000 images were 1 GB. Fewer rows per block keep
    # them inside the memory budget; the pairs found are the same.
    widest = min(count, 2 * window + CANDIDATE_BLOCK)
    block = min(CANDIDATE_BLOCK, rows_in_budget(5 * 8 * widest, share=16, least=16))
    for start in range(0, count, block):
        stop = min(start + block, count)
        # Every image within `far` of a row, before or after it: its nearest are among them.
        low = max(int(np.searchsorted(ranked, ranked[start] - far, side="left")), start - window)
        high = min(int(np.searchsorted(ranked, ranked[stop - 1] + far, side="right")),
                   stop + window)
        products = sorted_coarse[start:stop] @ sorted_coarse[low:high].T
        squared = squares[start:stop, None] + squares[None, low:high] - 2 * products
        rms = np.sqrt(np.maximum(squared, 0) / 64)
        rms[np.arange(stop - start), np.arange(start, stop) - low] = np.inf  # not itself
        wanted = _within_close(rms, close, close_limit)
        if nearest > 0:
            k = min(nearest, high - low - 1)
            if k > 0:
                closest = np.argpartition(rms, k - 1, axis=1)[:, :k]
                rows = np.arange(stop - start)[:, None]
                wanted[rows, closest] |= rms[rows, closest] <= far
        rows, cols = np.nonzero(wanted)
        first, second = order[start + rows], order[low + cols]
        found.append(np.stack([np.minimum(first, second), np.maximum(first, second)], axis=1))
    # Each pair once (a pair is found from both ends), as one number per pair: 8 bytes each.
    codes = np.unique(np.concatenate(found).astype(np.int64) @ np.array([count, 1], np.int64))
    return np.stack([codes // count, codes % count], axis=1)


def _within_close(rms: np.ndarray, close: float, limit: int) -> np.ndarray:
    """Each row's columns within `close`, or its `limit` nearest of them when it has more."""
    wanted = rms <= close
    crowded = np.flatnonzero(wanted.sum(axis=1) > limit)
    if len(crowded):
        # More than `limit` within `close`: its `limit` nearest are all within `close`.
        nearest = np.argpartition(rms[crowded], limit - 1, axis=1)[:, :limit]
        wanted[crowded] = False
        wanted[crowded[:, None], nearest] = True
    return wanted
