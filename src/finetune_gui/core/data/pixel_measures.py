"""What `similarity.py` measures on a pair of pictures, numpy over many pairs at once: the
views a crop of up to 5% can cause, blurs, correlation over the part both show, grey-level
differences after matching brightness, the SSIM structure term per block, and colours."""

from __future__ import annotations

import numpy as np

from finetune_gui.core.data.hashing import GREY_SIDE

# Measured on real folders (benchmarks/duplicate_threshold.py, docs/duplicates.md, 2026-12-01).
FLAT_CONTRAST = 4.0  # grey-level spread below which a thumbnail counts as nearly blank
COLOUR_DIFFERENCE = 16.0  # mean colour-level difference (2 x 2 cells) after matching brightness
HUE_DIFFERENCE = 6.0  # mean hue difference (4 x 4 cells): what is left after taking out grey
CROP = 0.05  # the largest crop (share of a side) a copy may have
SCALE_STEPS = 4  # scales tried between no crop and the largest, each way
BRIGHTNESS = 1.15  # the largest brightness factor between copies (the issue plants +-10%)
STRUCTURE_FLOOR = (0.03 * 255) ** 2  # SSIM's C2: flat blocks count as alike
BLUR = 1.0  # px of a 32 px side: a crop moves an edge by part of a pixel


def shrink(levels: np.ndarray, side: int) -> np.ndarray:
    factor = levels.shape[-1] // side
    if factor == 1:
        return levels
    return levels.reshape(*levels.shape[:-2], side, factor, side, factor).mean(axis=(-3, -1))


def crop_views(side: int) -> list[tuple[float, float]]:
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


def resampling(side: int, views: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
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


def blurring(side: int, blur: float | None = None) -> np.ndarray:
    """The (side, side) matrix of a Gaussian blur of `blur` px along one axis (rows sum to 1):
    an edge that a crop moved by part of a pixel then still lines up."""
    # In px of a 32 px side up to 32 px; beyond, in px: the closer look keeps its detail.
    sigma = max((BLUR if blur is None else blur) * min(side, GREY_SIDE) / GREY_SIDE, 1e-3)
    offsets = np.arange(side)[:, None] - np.arange(side)[None, :]
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def masked_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Correlation of a and b over mask along the last axis; a floor on the contrast keeps a
    nearly blank picture from matching anything."""
    count = mask.sum(axis=-1, keepdims=True)
    a_c = (a - (a * mask).sum(axis=-1, keepdims=True) / count) * mask
    b_c = (b - (b * mask).sum(axis=-1, keepdims=True) / count) * mask
    floor = FLAT_CONTRAST * np.sqrt(count[..., 0])
    norms = np.maximum(np.linalg.norm(a_c, axis=-1), floor) * np.maximum(np.linalg.norm(b_c, axis=-1), floor)
    return (a_c * b_c).sum(axis=-1) / norms


def differences(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
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
    return left.sum(axis=(1, 2)) / count, worst, least_alike_block(a, b, mask)


def least_alike_block(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
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


def colours_agree(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """For each pair of colour thumbnails (`first[k]`, `second[k]`, each (8, 8, 3)): in 2 x 2
    cells they match once brightness is matched (one gain for all; a 5% crop barely moves a
    half-picture cell), and in 4 x 4 cells so do their hues (what is left after taking out each cell's grey). Recoloured generated shapes
    (a dark and a light green triangle) differ in hue by about 5-14 levels, cropped colour
    icons by up to 5.6 (docs/duplicates.md)."""
    if not len(first):
        return np.zeros(0, bool)

    def leftover(colours_a: np.ndarray, colours_b: np.ndarray, cells: int) -> np.ndarray:
        def grid(colours: np.ndarray) -> np.ndarray:
            size = colours.shape[1] // cells
            return colours.reshape(-1, cells, size, cells, size, 3).mean(axis=(2, 4))

        a, b = grid(colours_a), grid(colours_b)
        gain = (a * b).sum(axis=(1, 2, 3)) / np.maximum((a**2).sum(axis=(1, 2, 3)), 1e-6)
        return b - gain[:, None, None, None] * a

    def matched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        coarse = leftover(a, b, 2)
        fine = leftover(a, b, 4)
        hue = fine - fine.mean(axis=3, keepdims=True)
        return ((np.abs(coarse).mean(axis=(1, 2, 3)) <= COLOUR_DIFFERENCE)
                & (np.abs(hue).mean(axis=(1, 2, 3)) <= HUE_DIFFERENCE))

    # Both ways: matched to a black picture (gain 0), any picture "agrees" with it.
    return matched(first, second) & matched(second, first)
