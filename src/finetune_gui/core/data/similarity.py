"""Is this the same picture? Two stages on the fingerprints of `hashing.py`.

1. Candidates: each 32 x 32 grey thumbnail blurred, shrunk to 8 x 8 and brought to zero mean
   and unit contrast, so brightness changes do not matter; pairs within `CLOSE_DISTANCE` (rms),
   and each image's `NEIGHBOURS` nearest within `NEIGHBOUR_DISTANCE`, are proposed (a cropped
   copy moves far on 8 x 8 but stays its original's nearest). This stage only prunes.
2. Confirmation, on the pixels, at the detail both images have (64, 48, 32, 24, 16 or 8 px):
   up to 32 px from the fingerprint, otherwise from the two files, read again for candidate
   pairs only (`look`). One image is laid over the other only as a crop of up to 5% could move
   it; the correlation must be high, and after matching brightness (one factor) the grey
   levels must differ little on average and in every block (a copy differs a little
   everywhere, another picture a lot in one place); the colours must agree in brightness and
   hue. Nearly blank pairs are compared by their remaining difference in grey levels instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from finetune_gui.core.data.hashing import (
    GREY_SIDE,
    colour_thumbnail,
    grey_thumbnail,
    smallest_side,
)

# Measured on real folders (benchmarks/duplicate_threshold.py, docs/duplicates.md, 2026-12-01).
CLOSE_DISTANCE = 0.2  # stage 1, rms of the coarse thumbnails: always a candidate
NEIGHBOUR_DISTANCE = 0.65  # stage 1: a candidate when among the nearest `NEIGHBOURS`
NEIGHBOURS = 4
CANDIDATE_BLOCK = 512
SAME_PICTURE_CORRELATION = 0.95
MEAN_DIFFERENCE = 5.0  # grey levels: the most a copy may differ on average, brightness matched
FLAT_CONTRAST = 4.0  # grey-level spread below which a thumbnail counts as nearly blank
FLAT_DIFFERENCE = 2.0  # nearly blank pictures: largest rms grey-level difference of a copy
COLOUR_DIFFERENCE = 16.0  # mean colour-level difference (2 x 2 cells) after matching brightness
HUE_DIFFERENCE = 6.0  # mean hue difference (4 x 4 cells): what is left after taking out grey
CROP = 0.05  # the largest crop (share of a side) a copy may have
SCALE_STEPS = 4  # scales tried between no crop and the largest, each way
VIEWS_TRIED = 3  # per axis: the best views by profile, tried in every combination
BRIGHTNESS = 1.15  # the largest brightness factor between copies (the issue plants +-10%)
BLOCK_DIFFERENCE = 16.0  # grey levels: the most a copy may differ in one block
STRUCTURE_FLOOR = (0.03 * 255) ** 2  # SSIM's C2: flat blocks count as alike
LEAST_ALIKE = 0.7  # the lowest SSIM structure term a copy may have in any block
# Blurs, in px of a 32 px side (in px above 32): for the comparison (a crop moves edges by part of a pixel),
# for candidates (a crop moves the 8 x 8 cells) and for the block differences (resampling
# changes single pixels; 2.5 let different digits through, docs/duplicates.md).
BLUR = 1.0
COARSE_BLUR = 2.0
RESIDUAL_BLUR = 1.5
PAIRS_PER_BATCH = 512
LOOK_SIDES = (64, 56, 48, 40, 32, 24, 16, 8)  # comparison sides, px; 24 and above 32: the files again

Look = Callable[[int, int], "np.ndarray | None"]  # (image, side) -> grey levels, or None


def _coarse(fingerprints: Sequence[bytes]) -> np.ndarray:
    """(n, 64): 8 x 8 grey levels at zero mean and unit contrast (a floor keeps blank images
    blank), one row per fingerprint."""
    blur = _blurring(GREY_SIDE, COARSE_BLUR)
    thumbs = np.stack([grey_thumbnail(f) for f in fingerprints])
    levels = (blur @ thumbs @ blur.T).reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(-1, 64)
    centred = levels - levels.mean(axis=1, keepdims=True)
    return (centred / np.maximum(centred.std(axis=1, keepdims=True), FLAT_CONTRAST)).astype(np.float64)


def candidate_pairs(
    fingerprints: Sequence[bytes],
    close: float = CLOSE_DISTANCE,
    far: float = NEIGHBOUR_DISTANCE,
    nearest: int = NEIGHBOURS,
) -> list[tuple[int, int]]:
    """(i, j), i < j, proposed for stage 2: coarse thumbnails within `close` (rms), or within
    `far` when one is among the other's `nearest` neighbours.

    A copy is nearly always its original's nearest neighbour, even a crop whose coarse thumbnail
    moved far (docs/duplicates.md); a folder of look-alikes (handwritten digits) has many
    pairs within `far`, and only the neighbours go on. The key (top half minus bottom half,
    weights 1/64) differs by no more than the rms distance, so after sorting by it each block of
    images is compared only with the images whose key is within `far`.
    """
    count = len(fingerprints)
    if count < 2:
        return []
    coarse = _coarse(fingerprints)
    key = (coarse[:, :32].sum(axis=1) - coarse[:, 32:].sum(axis=1)) / 64
    order = np.argsort(key, kind="stable")
    ranked, sorted_coarse = key[order], coarse[order]
    squares = (sorted_coarse**2).sum(axis=1)
    found: set[tuple[int, int]] = set()
    for start in range(0, count, CANDIDATE_BLOCK):
        stop = min(start + CANDIDATE_BLOCK, count)
        # Every image within `far` of a row, before or after it: its nearest are among them.
        low = int(np.searchsorted(ranked, ranked[start] - far, side="left"))
        high = int(np.searchsorted(ranked, ranked[stop - 1] + far, side="right"))
        products = sorted_coarse[start:stop] @ sorted_coarse[low:high].T
        squared = squares[start:stop, None] + squares[None, low:high] - 2 * products
        rms = np.sqrt(np.maximum(squared, 0) / 64)
        rms[np.arange(stop - start), np.arange(start, stop) - low] = np.inf  # not itself
        wanted = rms <= close
        if nearest > 0:
            k = min(nearest, high - low - 1)
            if k > 0:
                closest = np.argpartition(rms, k - 1, axis=1)[:, :k]
                rows = np.arange(stop - start)[:, None]
                wanted[rows, closest] |= rms[rows, closest] <= far
        rows, cols = np.nonzero(wanted)
        first, second = order[start + rows], order[low + cols]
        found.update(zip(np.minimum(first, second).tolist(), np.maximum(first, second).tolist(), strict=True))
    return sorted(found)


def comparison_side(a: bytes, b: bytes, looks: bool = False) -> int:
    """Compare at no more detail than the smaller image has: a copy halved to 16 px cannot
    match the 32 px original's strokes, only its 16 px view. Above 32 px (the fingerprint's
    thumbnail) only when the files can be looked at again."""
    side = min(smallest_side(a), smallest_side(b))
    sides = LOOK_SIDES if looks else tuple(s for s in LOOK_SIDES if GREY_SIDE % s == 0)
    return next((s for s in sides if s <= side), sides[-1])


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
    """The (side, side) matrix of a Gaussian blur of `blur` px along one axis (rows sum to 1):
    an edge that a crop moved by part of a pixel then still lines up."""
    # In px of a 32 px side up to 32 px; beyond, in px: the closer look keeps its detail.
    sigma = max((BLUR if blur is None else blur) * min(side, GREY_SIDE) / GREY_SIDE, 1e-3)
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


def _differences(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """After scaling b's levels by the one factor that matches a best (a brightness change of
    up to `BRIGHTNESS` multiplies every level; white stays white): the mean grey-level
    difference left, and that in the block (an eighth of a side) where they differ most. A
    copy differs a little everywhere; a different picture (a smiling face beside a sad one, a
    folder with another badge) a lot in one place."""
    count = np.maximum(mask.sum(axis=(1, 2)), 1)
    gain = (a * b * mask).sum(axis=(1, 2)) / np.maximum((b * b * mask).sum(axis=(1, 2)), 1e-6)
    gain = np.clip(gain, 1 / BRIGHTNESS, BRIGHTNESS)
    left = np.abs(a - np.clip(gain[:, None, None] * b, 0, 255)) * mask
    side = a.shape[-1]
    block = max(1, side // 8)
    cells = side // block
    shape = (len(a), cells, block, cells, block)
    sums = left.reshape(shape).sum(axis=(2, 4))
    counts = mask.reshape(shape).sum(axis=(2, 4))
    worst = (sums / np.maximum(counts, np.maximum(block * block / 4, 1))).max(axis=(1, 2))
    return left.sum(axis=(1, 2)) / count, worst, _least_alike_block(a, b, mask)


def _least_alike_block(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The lowest contrast-and-structure term of SSIM over half-overlapping blocks of about an
    eighth of a side: where both show the same edges it is near 1 even if they are a fraction
    of a pixel apart; where one shows a mark the other lacks (a badge, a mouth) it drops."""
    sub = max(1, a.shape[-1] // 16)
    cells = a.shape[-1] // sub
    a, b, mask = (x[:, : cells * sub, : cells * sub] for x in (a, b, mask))

    def windows(x: np.ndarray) -> np.ndarray:  # sums over 2 x 2 sub-blocks, one sub-block apart
        x = x.reshape(len(x), cells, sub, cells, sub).sum(axis=(2, 4))
        return x[:, :-1, :-1] + x[:, 1:, :-1] + x[:, :-1, 1:] + x[:, 1:, 1:]

    count = windows(mask)
    full = count >= 2 * sub * sub  # at least half the block shown by both
    n = np.maximum(count, 1)
    mean_a, mean_b = windows(a * mask) / n, windows(b * mask) / n
    var_a = windows(a * a * mask) / n - mean_a**2
    var_b = windows(b * b * mask) / n - mean_b**2
    cov = windows(a * b * mask) / n - mean_a * mean_b
    term = (2 * cov + STRUCTURE_FLOOR) / (np.maximum(var_a + var_b, 0) + STRUCTURE_FLOOR)
    return np.where(full, term, 1.0).min(axis=(1, 2))


class PixelCheck:
    """Stage 2 for many pairs at once (numpy over pairs).

    Image j is laid over image i as a crop of up to `CROP` would move it: for each axis the
    views whose one-dimensional profiles (row and column means) match best are tried together,
    and the best correlation over the part both images show decides. A drawing that is merely
    shifted or scaled further than a crop allows is another picture.
    """

    def __init__(self, fingerprints: Sequence[bytes], look: Look | None = None) -> None:
        self.fingerprints = fingerprints
        self.look = look
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._looked: dict[tuple[int, int], np.ndarray] = {}

    def _table(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        if side not in self._tables:
            self._tables[side] = _resampling(side, _views(side))
        return self._tables[side]

    def scores(self, pairs: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each (i, j), with j laid over i as a crop would: the best correlation, and at that
        view the largest difference left in any block of the picture (grey levels)."""
        best = np.full(len(pairs), -1.0)
        mean = np.full(len(pairs), 255.0)
        alike = np.zeros(len(pairs))
        worst_block = np.full(len(pairs), 255.0)
        by_side: dict[int, list[int]] = {}
        for k, (i, j) in enumerate(pairs):
            side = comparison_side(self.fingerprints[i], self.fingerprints[j], self.look is not None)
            if GREY_SIDE % side and (self._grey(i, side) is None or self._grey(j, side) is None):
                side = GREY_SIDE if side > GREY_SIDE else 16  # a file not read again: its fingerprint
            by_side.setdefault(side, []).append(k)
        for side, chosen in by_side.items():
            for start in range(0, len(chosen), PAIRS_PER_BATCH):
                batch = chosen[start : start + PAIRS_PER_BATCH]
                best[batch], mean[batch], worst_block[batch], alike[batch] = self._best_alignment(
                    [pairs[k] for k in batch], side)
        return best, mean, worst_block, alike

    def _grey(self, index: int, side: int) -> np.ndarray | None:
        """Image `index` as grey levels at `side` x `side`: from the fingerprint up to 32 px,
        above that from the file, looked at again (once per image and side)."""
        if GREY_SIDE % side == 0:
            return _shrink(grey_thumbnail(self.fingerprints[index]), side)
        if (index, side) not in self._looked:
            self._looked[index, side] = self.look(index, side) if self.look else None
        return self._looked[index, side]

    def _levels(self, indices: list[int], side: int) -> np.ndarray:
        levels = np.stack([self._grey(i, side) for i in indices])
        blur = _blurring(side)
        return (blur @ levels.astype(np.float32) @ blur.T).astype(np.float32)

    def _best_alignment(self, pairs: list[tuple[int, int]], side: int) -> tuple[np.ndarray, ...]:
        matrices, shown = self._table(side)
        a = self._levels([i for i, _ in pairs], side)
        b = self._levels([j for _, j in pairs], side)
        chosen = []
        for axis in (1, 2):  # rows (y), then columns (x)
            profile_a = a.mean(axis=3 - axis)  # (pairs, side)
            profile_b = b.mean(axis=3 - axis)
            laid = np.tensordot(profile_b, matrices, axes=([1], [2]))  # (pairs, views, side)
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
        mean, worst, alike = _differences(smooth @ a @ smooth.T, smooth @ best_laid @ smooth.T, best_mask)
        return best, mean, worst, alike

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
        correlation, mean, worst_block, alike = self.scores([pairs[k] for k in contrasty])
        for n, k in enumerate(contrasty):
            verdicts[k] = bool(correlation[n] >= SAME_PICTURE_CORRELATION
                               and alike[n] >= LEAST_ALIKE
                               and mean[n] <= MEAN_DIFFERENCE
                               and worst_block[n] <= BLOCK_DIFFERENCE)
        return verdicts


def _colours_agree(first: Sequence[bytes], second: Sequence[bytes]) -> np.ndarray:
    """For each pair: the colour thumbnails in 2 x 2 cells match once brightness is matched
    (one gain for all; a 5% crop barely moves a half-picture cell), and in 4 x 4 cells so do
    their hues (what is left after taking out each cell's grey). Recoloured generated shapes
    (a dark and a light green triangle) differ in hue by about 5-14 levels, cropped colour
    icons by up to 5.6 (docs/duplicates.md)."""
    if not first:
        return np.zeros(0, bool)

    def leftover(prints_a: Sequence[bytes], prints_b: Sequence[bytes], cells: int) -> np.ndarray:
        def grid(prints: Sequence[bytes]) -> np.ndarray:
            colours = np.stack([colour_thumbnail(f) for f in prints])
            size = colours.shape[1] // cells
            return colours.reshape(-1, cells, size, cells, size, 3).mean(axis=(2, 4))

        a, b = grid(prints_a), grid(prints_b)
        gain = (a * b).sum(axis=(1, 2, 3)) / np.maximum((a**2).sum(axis=(1, 2, 3)), 1e-6)
        return b - gain[:, None, None, None] * a

    coarse = leftover(first, second, 2)
    fine = leftover(first, second, 4)
    hue = fine - fine.mean(axis=3, keepdims=True)
    return ((np.abs(coarse).mean(axis=(1, 2, 3)) <= COLOUR_DIFFERENCE)
            & (np.abs(hue).mean(axis=(1, 2, 3)) <= HUE_DIFFERENCE))


def confirmed_pairs(fingerprints: Sequence[bytes], look: Look | None = None) -> list[tuple[int, int]]:
    """(i, j), i < j, that both stages call the same picture; `look(i, side)` gives image i's
    grey levels at up to 64 px from its file, for a closer look than the fingerprint's."""
    candidates = candidate_pairs(fingerprints)
    verdicts = PixelCheck(fingerprints, look).same_picture(candidates)
    return [pair for pair, same in zip(candidates, verdicts, strict=True) if same]
