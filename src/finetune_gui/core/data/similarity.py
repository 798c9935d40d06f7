"""Is this the same picture? Two stages on the fingerprints of `hashing.py`.

1. Candidates: each 32 x 32 grey thumbnail shrunk to 8 x 8 and brought to zero mean and unit
   contrast, so brightness changes do not matter; pairs within `CANDIDATE_DISTANCE` (mean
   absolute difference) are proposed. This stage only prunes: on low-detail images (strokes,
   icons, blank scans) different pictures land here often (docs/duplicates.md).
2. Confirmation, on the pixels: the grey thumbnails are compared at the detail both images
   have (32, 16 or 8 px) after aligning one on the other (magnified 0.96-1.04x, shifted by up
   to 2 of 32 px: crops and resizes move the picture), by correlation, which
   ignores brightness and contrast. Low-contrast pairs (blank scans) are compared by their
   remaining difference in grey levels instead, and the colour thumbnails must agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from finetune_gui.core.data.hashing import (
    GREY_SIDE,
    colour_thumbnail,
    grey_thumbnail,
    smallest_side,
)

CANDIDATE_DISTANCE = 0.2
SAME_PICTURE_CORRELATION = 0.985
FLAT_CONTRAST = 4.0  # grey-level spread below which a thumbnail counts as nearly blank
FLAT_DIFFERENCE = 2.0  # nearly blank pictures: largest rms grey-level difference of a copy
COLOUR_DIFFERENCE = 16.0  # mean colour-level difference (4 x 4 cells) after matching brightness
SCALES = (1 / 1.04, 1.0, 1.04)
SHIFT = 2  # at 32 px
PAIRS_PER_BATCH = 2048


def _coarse(fingerprint: bytes) -> np.ndarray:
    """8 x 8 grey levels at zero mean and unit contrast (a floor keeps blank images blank)."""
    levels = grey_thumbnail(fingerprint).reshape(8, 4, 8, 4).mean(axis=(1, 3)).ravel()
    centred = levels - levels.mean()
    return centred / max(float(centred.std()), FLAT_CONTRAST)


def candidate_pairs(
    fingerprints: Sequence[bytes], distance: float = CANDIDATE_DISTANCE
) -> list[tuple[int, int]]:
    """(i, j), i < j, whose coarse thumbnails are within `distance` (stage 1).

    A weighted sum with weights of at most 1/64 differs between two thumbnails by no more than
    their mean absolute difference, so after sorting by one such sum (top half minus bottom
    half) each image is compared only with its neighbours in that order.
    """
    if len(fingerprints) < 2:
        return []
    coarse = np.stack([_coarse(f) for f in fingerprints]).astype(np.float32)
    top_minus_bottom = (coarse[:, :32].sum(axis=1) - coarse[:, 32:].sum(axis=1)) / 64
    left_minus_right = (coarse.reshape(-1, 8, 8)[:, :, :4].sum(axis=(1, 2))
                        - coarse.reshape(-1, 8, 8)[:, :, 4:].sum(axis=(1, 2))) / 64
    order = np.argsort(top_minus_bottom, kind="stable")
    ranked = top_minus_bottom[order]
    found = []
    for position, i in enumerate(order):
        stop = int(np.searchsorted(ranked, ranked[position] + distance, side="right"))
        others = order[position + 1 : stop]
        others = others[np.abs(left_minus_right[others] - left_minus_right[i]) <= distance]
        if not len(others):
            continue
        close = others[np.abs(coarse[others] - coarse[i]).mean(axis=1) <= distance]
        found.extend((min(int(i), int(j)), max(int(i), int(j))) for j in close)
    return sorted(found)


def comparison_side(a: bytes, b: bytes) -> int:
    """Compare at no more detail than the smaller image has: a copy halved to 16 px cannot
    match the 32 px original's strokes, only its 16 px view."""
    side = min(smallest_side(a), smallest_side(b))
    return 32 if side >= 32 else 16 if side >= 16 else 8


def _shrink(levels: np.ndarray, side: int) -> np.ndarray:
    factor = levels.shape[-1] // side
    if factor == 1:
        return levels
    return levels.reshape(*levels.shape[:-2], side, factor, side, factor).mean(axis=(-3, -1))


def _moved(levels: np.ndarray, scale: float) -> np.ndarray:
    """`levels` magnified by `scale` about the centre."""
    if scale == 1.0:
        return levels
    image = Image.fromarray(levels, "F")
    centre = GREY_SIDE / 2
    inverse = 1 / scale
    matrix = (inverse, 0, centre - centre * inverse, 0, inverse, centre - centre * inverse)
    moved = image.transform(image.size, Image.Transform.AFFINE, matrix, Image.Resampling.BILINEAR)
    return np.asarray(moved, dtype=np.float32)


class PixelCheck:
    """Stage 2 for many pairs at once (numpy over pairs); caches each image's variants."""

    def __init__(self, fingerprints: Sequence[bytes]) -> None:
        self.fingerprints = fingerprints
        self._variants: dict[tuple[int, int], np.ndarray] = {}

    def variants(self, index: int, side: int) -> np.ndarray:
        """Image `index` magnified by each of `SCALES`, at `side` px: (scales, side, side)."""
        key = (index, side)
        if key not in self._variants:
            levels = grey_thumbnail(self.fingerprints[index])
            self._variants[key] = _shrink(np.stack([_moved(levels, s) for s in SCALES]), side)
        return self._variants[key]

    def correlations(self, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
        """For each (i, j): the best correlation of i's inner part with j aligned on it."""
        best = np.full(len(pairs), -1.0)
        by_side: dict[int, list[int]] = {}
        for k, (i, j) in enumerate(pairs):
            side = comparison_side(self.fingerprints[i], self.fingerprints[j])
            by_side.setdefault(side, []).append(k)
        for side, chosen in by_side.items():
            for start in range(0, len(chosen), PAIRS_PER_BATCH):
                batch = chosen[start : start + PAIRS_PER_BATCH]
                best[batch] = self._best_alignment([pairs[k] for k in batch], side)
        return best

    def _best_alignment(self, pairs: list[tuple[int, int]], side: int) -> np.ndarray:
        shift = max(1, SHIFT * side // GREY_SIDE)
        inner = side - 2 * shift
        floor = FLAT_CONTRAST * inner
        reference = np.stack([self.variants(i, side)[SCALES.index(1.0)] for i, _ in pairs])
        u = reference[:, shift : shift + inner, shift : shift + inner].reshape(len(pairs), -1)
        u = u - u.mean(axis=1, keepdims=True)
        u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), floor)
        others = np.stack([self.variants(j, side) for _, j in pairs])
        best = np.full(len(pairs), -1.0)
        for dy in range(2 * shift + 1):
            for dx in range(2 * shift + 1):
                v = others[:, :, dy : dy + inner, dx : dx + inner].reshape(len(pairs), len(SCALES), -1)
                v = v - v.mean(axis=2, keepdims=True)
                v /= np.maximum(np.linalg.norm(v, axis=2, keepdims=True), floor)
                best = np.maximum(best, np.einsum("pk,psk->ps", u, v).max(axis=1))
        return best

    def same_picture(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        """Stage 2 for each pair: do images i and j show the same picture?"""
        verdicts = [None] * len(pairs)
        contrasty = []
        for k, (i, j) in enumerate(pairs):
            a, b = self.fingerprints[i], self.fingerprints[j]
            if not _colours_agree(a, b):
                verdicts[k] = False
                continue
            grey_a, grey_b = grey_thumbnail(a), grey_thumbnail(b)
            flat_a, flat_b = grey_a.std() < FLAT_CONTRAST, grey_b.std() < FLAT_CONTRAST
            if flat_a or flat_b:
                difference = (grey_a - grey_a.mean()) - (grey_b - grey_b.mean())
                rms = float(np.sqrt((difference**2).mean()))
                verdicts[k] = flat_a and flat_b and rms <= FLAT_DIFFERENCE
            else:
                contrasty.append(k)
        scores = self.correlations([pairs[k] for k in contrasty])
        for k, score in zip(contrasty, scores, strict=True):
            verdicts[k] = bool(score >= SAME_PICTURE_CORRELATION)
        return verdicts


def _colours_agree(a: bytes, b: bytes) -> bool:
    """The 4 x 4 colour thumbnails match once brightness is matched (one gain for all)."""
    colour_a = colour_thumbnail(a).reshape(4, 2, 4, 2, 3).mean(axis=(1, 3))
    colour_b = colour_thumbnail(b).reshape(4, 2, 4, 2, 3).mean(axis=(1, 3))
    gain = float((colour_a * colour_b).sum() / max(float((colour_a**2).sum()), 1e-6))
    return float(np.abs(colour_b - gain * colour_a).mean()) <= COLOUR_DIFFERENCE


def confirmed_pairs(fingerprints: Sequence[bytes]) -> list[tuple[int, int]]:
    """(i, j), i < j, that both stages call the same picture."""
    candidates = candidate_pairs(fingerprints)
    verdicts = PixelCheck(fingerprints).same_picture(candidates)
    return [pair for pair, same in zip(candidates, verdicts, strict=True) if same]
