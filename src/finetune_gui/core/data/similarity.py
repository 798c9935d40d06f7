"""Is this the same picture? Two stages on the fingerprints of `hashing.py`.

1. Candidates: each 32 x 32 grey thumbnail blurred, shrunk to 8 x 8 and brought to zero mean
   and unit contrast, so brightness changes do not matter; pairs within `CANDIDATE_DISTANCE`
   (mean absolute difference) are proposed. This stage only prunes: on low-detail images
   (strokes, icons, blank scans) different pictures land here often (docs/duplicates.md).
2. Confirmation, on the pixels: the grey thumbnails are compared at the detail both images
   have (32, 16 or 8 px), with one laid over the other only as a crop of up to 5% could move
   it. The correlation must be high (it ignores brightness and contrast) and no block may
   differ much (a copy differs a little everywhere, another picture a lot in one place); the
   colours must agree in brightness and hue. Nearly blank pairs are compared by their
   remaining difference in grey levels instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finetune_gui.core.data.hashing import (
    GREY_SIDE,
    colour_thumbnail,
    grey_thumbnail,
    smallest_side,
)

# Measured on real folders (benchmarks/duplicate_threshold.py, docs/duplicates.md).
CANDIDATE_DISTANCE = 0.2
SAME_PICTURE_CORRELATION = 0.985
FLAT_CONTRAST = 4.0  # grey-level spread below which a thumbnail counts as nearly blank
FLAT_DIFFERENCE = 2.0  # nearly blank pictures: largest rms grey-level difference of a copy
COLOUR_DIFFERENCE = 16.0  # mean colour-level difference (4 x 4 cells) after matching brightness
HUE_DIFFERENCE = 4.5  # the same, of what is left after taking out each cell's grey
CROP = 0.05  # the largest crop (share of a side) a copy may have
SCALE_STEPS = 4  # scales tried between no crop and the largest, each way
VIEWS_TRIED = 3  # per axis: the best views by profile, tried in every combination
BLOCK_DIFFERENCE = 12.0  # grey levels: the most a copy may differ in one block
# Blurs, in px of a 32 px side: for the comparison (a crop moves edges by part of a pixel),
# for candidates (a crop moves the 8 x 8 cells) and for the block differences (resampling
# changes single pixels; 2.5 let different digits through, docs/duplicates.md).
BLUR = 1.0
COARSE_BLUR = 2.0
RESIDUAL_BLUR = 1.5
PAIRS_PER_BATCH = 512


def _coarse(fingerprint: bytes) -> np.ndarray:
    """8 x 8 grey levels at zero mean and unit contrast (a floor keeps blank images blank)."""
    blur = _blurring(GREY_SIDE, COARSE_BLUR)
    levels = (blur @ grey_thumbnail(fingerprint) @ blur.T).reshape(8, 4, 8, 4).mean(axis=(1, 3)).ravel()
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


def _views(side: int) -> list[tuple[float, float]]:
    """Every (scale, offset) of one axis that a crop of at most `CROP` can cause, in units of the
    image: position u in image A shows what position (u - offset) / scale shows in image B.

    B cropped from A: B's whole view lies inside A's (scale <= 1, 0 <= offset <= 1 - scale);
    A cropped from B: the other way round. The offset may miss by half a pixel (rounding).
    """
    step, slack = 0.25 / side, 0.5 / side
    views = []
    shrink = np.linspace(1 - CROP, 1, SCALE_STEPS + 1)
    for scale in (*shrink, *(1 / shrink[:-1])):
        low, high = (0.0, 1 - scale) if scale <= 1 else (1 - scale, 0.0)
        for offset in np.arange(low - slack, high + slack + step / 2, step):
            views.append((float(scale), float(offset)))
    return views


def _resampling(side: int, views: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """For each view: the (side, side) linear-interpolation matrix taking B's pixels of one axis
    to A's, and which of A's pixels B shows at all (a crop shows less)."""
    matrices = np.zeros((len(views), side, side), np.float32)
    shown = np.zeros((len(views), side), bool)
    centres = (np.arange(side) + 0.5) / side
    for k, (scale, offset) in enumerate(views):
        source = (centres - offset) / scale * side - 0.5
        shown[k] = (source >= -0.5) & (source <= side - 0.5)
        source = np.clip(source, 0, side - 1)
        below = np.floor(source).astype(int)
        above = np.minimum(below + 1, side - 1)
        weight = (source - below).astype(np.float32)
        rows = np.arange(side)
        np.add.at(matrices[k], (rows, below), 1 - weight)
        np.add.at(matrices[k], (rows, above), weight)
    return matrices, shown


def _blurring(side: int, blur: float | None = None) -> np.ndarray:
    """The (side, side) matrix of a Gaussian blur of `BLUR` of a 32 px side along one axis (rows
    sum to 1): an edge that a crop moved by part of a pixel then still lines up."""
    sigma = max((BLUR if blur is None else blur) * side / GREY_SIDE, 1e-3)
    offsets = np.arange(side)[:, None] - np.arange(side)[None, :]
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _masked_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Correlation of a and b over mask along the last axis; a floor on the contrast keeps a
    nearly blank picture from matching anything."""
    count = mask.sum(axis=-1, keepdims=True)
    a_c = (a - (a * mask).sum(axis=-1, keepdims=True) / count) * mask
    b_c = (b - (b * mask).sum(axis=-1, keepdims=True) / count) * mask
    floor = FLAT_CONTRAST * np.sqrt(count[..., 0])
    norms = np.maximum(np.linalg.norm(a_c, axis=-1), floor) * np.maximum(np.linalg.norm(b_c, axis=-1), floor)
    return (a_c * b_c).sum(axis=-1) / norms


def _worst_block(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """After matching b's brightness and contrast to a's: the mean grey-level difference in the
    block (an eighth of a side) where they differ most. A copy differs a little everywhere; a
    different picture (a smiling face beside a sad one) differs a lot in one place."""
    count = mask.sum(axis=(1, 2))
    mean_a = (a * mask).sum(axis=(1, 2)) / count
    mean_b = (b * mask).sum(axis=(1, 2)) / count
    a_c, b_c = (a - mean_a[:, None, None]) * mask, (b - mean_b[:, None, None]) * mask
    gain = (a_c * b_c).sum(axis=(1, 2)) / np.maximum((b_c * b_c).sum(axis=(1, 2)), 1e-6)
    left = np.abs(a_c - gain[:, None, None] * b_c)
    side = a.shape[-1]
    block = max(1, side // 8)
    cells = side // block
    shape = (len(a), cells, block, cells, block)
    sums = left.reshape(shape).sum(axis=(2, 4))
    counts = mask.reshape(shape).sum(axis=(2, 4))
    return (sums / np.maximum(counts, 1)).max(axis=(1, 2))


class PixelCheck:
    """Stage 2 for many pairs at once (numpy over pairs).

    Image j is laid over image i as a crop of up to `CROP` would move it: for each axis the
    views whose one-dimensional profiles (row and column means) match best are tried together,
    and the best correlation over the part both images show decides. A drawing that is merely
    shifted or scaled further than a crop allows is another picture.
    """

    def __init__(self, fingerprints: Sequence[bytes]) -> None:
        self.fingerprints = fingerprints
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _table(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        if side not in self._tables:
            self._tables[side] = _resampling(side, _views(side))
        return self._tables[side]

    def scores(self, pairs: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """For each (i, j), with j laid over i as a crop would: the best correlation, and at that
        view the largest difference left in any block of the picture (grey levels)."""
        best = np.full(len(pairs), -1.0)
        worst_block = np.full(len(pairs), 255.0)
        by_side: dict[int, list[int]] = {}
        for k, (i, j) in enumerate(pairs):
            side = comparison_side(self.fingerprints[i], self.fingerprints[j])
            by_side.setdefault(side, []).append(k)
        for side, chosen in by_side.items():
            for start in range(0, len(chosen), PAIRS_PER_BATCH):
                batch = chosen[start : start + PAIRS_PER_BATCH]
                best[batch], worst_block[batch] = self._best_alignment([pairs[k] for k in batch], side)
        return best, worst_block

    def _levels(self, indices: list[int], side: int) -> np.ndarray:
        levels = np.stack([_shrink(grey_thumbnail(self.fingerprints[i]), side) for i in indices])
        blur = _blurring(side)
        return (blur @ levels.astype(np.float32) @ blur.T).astype(np.float32)

    def _best_alignment(self, pairs: list[tuple[int, int]], side: int) -> np.ndarray:
        matrices, shown = self._table(side)
        a = self._levels([i for i, _ in pairs], side)
        b = self._levels([j for _, j in pairs], side)
        chosen = []
        for axis in (1, 2):  # rows (y), then columns (x)
            profile_a = a.mean(axis=3 - axis)  # (pairs, side)
            profile_b = b.mean(axis=3 - axis)
            laid = np.einsum("vab,pb->pva", matrices, profile_b)
            scores = _masked_correlation(profile_a[:, None, :], laid, shown[None].astype(np.float32))
            chosen.append(np.argsort(-scores, axis=1)[:, :VIEWS_TRIED])
        best = np.full(len(pairs), -1.0)
        best_laid = np.zeros_like(a)
        best_mask = np.ones_like(a)
        for y_rank in range(VIEWS_TRIED):
            rows_view = chosen[0][:, y_rank]
            for x_rank in range(VIEWS_TRIED):
                cols_view = chosen[1][:, x_rank]
                laid = matrices[rows_view] @ b @ matrices[cols_view].transpose(0, 2, 1)
                mask = shown[rows_view][:, :, None] & shown[cols_view][:, None, :]
                score = _masked_correlation(
                    a.reshape(len(pairs), -1), laid.reshape(len(pairs), -1),
                    mask.reshape(len(pairs), -1).astype(np.float32),
                )
                better = score > best
                best = np.where(better, score, best)
                best_laid[better] = laid[better]
                best_mask[better] = mask[better]
        smooth = _blurring(side, RESIDUAL_BLUR)
        return best, _worst_block(smooth @ a @ smooth.T, smooth @ best_laid @ smooth.T, best_mask)

    def same_picture(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        """Stage 2 for each pair: do images i and j show the same picture?"""
        verdicts = [None] * len(pairs)
        contrasty = []
        agree = _colours_agree([self.fingerprints[i] for i, _ in pairs],
                               [self.fingerprints[j] for _, j in pairs])
        for k, (i, j) in enumerate(pairs):
            a, b = self.fingerprints[i], self.fingerprints[j]
            if not agree[k]:
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
        correlation, worst_block = self.scores([pairs[k] for k in contrasty])
        for n, k in enumerate(contrasty):
            verdicts[k] = bool(correlation[n] >= SAME_PICTURE_CORRELATION
                               and worst_block[n] <= BLOCK_DIFFERENCE)
        return verdicts


def _colours_agree(first: Sequence[bytes], second: Sequence[bytes]) -> np.ndarray:
    """For each pair: the 4 x 4 colour thumbnails match once brightness is matched (one gain for
    all), and so do their hues (what is left after taking out each cell's grey, which a crop
    barely moves). A dark and a light green triangle differ in hue by 5.6 levels or more, copies
    by at most 3.5 (docs/duplicates.md)."""
    if not first:
        return np.zeros(0, bool)

    def cells(prints: Sequence[bytes]) -> np.ndarray:
        colours = np.stack([colour_thumbnail(f) for f in prints])
        return colours.reshape(-1, 4, 2, 4, 2, 3).mean(axis=(2, 4))

    colour_a, colour_b = cells(first), cells(second)
    gain = (colour_a * colour_b).sum(axis=(1, 2, 3)) / np.maximum((colour_a**2).sum(axis=(1, 2, 3)), 1e-6)
    left = colour_b - gain[:, None, None, None] * colour_a
    hue_left = left - left.mean(axis=3, keepdims=True)
    return ((np.abs(left).mean(axis=(1, 2, 3)) <= COLOUR_DIFFERENCE)
            & (np.abs(hue_left).mean(axis=(1, 2, 3)) <= HUE_DIFFERENCE))


def confirmed_pairs(fingerprints: Sequence[bytes]) -> list[tuple[int, int]]:
    """(i, j), i < j, that both stages call the same picture."""
    candidates = candidate_pairs(fingerprints)
    verdicts = PixelCheck(fingerprints).same_picture(candidates)
    return [pair for pair, same in zip(candidates, verdicts, strict=True) if same]
