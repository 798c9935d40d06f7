"""Is this the same picture? Two stages on the fingerprints of `hashing.py`.

1. Candidates (`candidates.py`): pairs whose coarse thumbnails are close, or nearest
   neighbours; this stage only prunes.
2. Confirmation, on the pixels, at the detail both images have (64, 48, 32, 24, 16 or 8 px):
   up to 32 px from the fingerprint, otherwise from the two files, read again for candidate
   pairs only (`look`). A quick look at 16 px first drops the pairs far from any copy. One
   image is laid over the other only as a crop of up to 5% could move it; the correlation must
   be high, and after matching brightness (one factor) the grey levels must differ little on
   average and in every block (a copy differs a little everywhere, another picture a lot in
   one place); the fine detail (grain, texture) must sit in the same places, which tells a
   copy from a neighbouring tile of one hazy sky; the colours must agree in brightness and
   hue. Nearly blank pairs are compared by their remaining difference in grey levels instead,
   brightness matched as for every pair (one factor of at most `BRIGHTNESS`).
   The measures themselves are in `pixel_measures.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from finetune_gui.core.block_workers import block_workers
from finetune_gui.core.data.candidates import candidate_pairs
from finetune_gui.core.data.hashing import (
    GREY_SIDE,
    colour_thumbnail,
    grey_thumbnail,
    smallest_side,
)
from finetune_gui.core.data.pixel_measures import (
    FLAT_CONTRAST,
    blurring,
    colours_agree,
    crop_views,
    differences,
    masked_correlation,
    resampling,
    shrink,
)
from finetune_gui.core.data.storage import memory_budget, row_chunks

# Measured on real folders (benchmarks/duplicate_threshold.py, docs/duplicates.md, 2026-12-01).
SAME_PICTURE_CORRELATION = 0.95
MEAN_DIFFERENCE = 5.0  # grey levels: the most a copy may differ on average, brightness matched
FLAT_DIFFERENCE = 2.0  # nearly blank pictures: largest rms grey-level difference of a copy
VIEWS_TRIED = 3  # per axis: the best views by profile, tried in every combination
BLOCK_DIFFERENCE = 16.0  # grey levels: the most a copy may differ in one block
LEAST_ALIKE = 0.7  # the lowest SSIM structure term a copy may have in any block
# Blurs, in px of a 32 px side (in px above 32; the comparison blur is pixel_measures.BLUR):
# for the block differences (resampling changes single pixels; 2.5 let different digits
# through, docs/duplicates.md).
RESIDUAL_BLUR = 1.5
TEXTURE_BLUR = 1.0
# Fine detail (grain, texture) at the best view, rows and columns taken out: copies 0.59-1,
# neighbouring tiles of one hazy sky -0.25 to 0.32 (benchmark, docs/duplicates.md).
TEXTURE_CORRELATION = 0.45
PAIRS_PER_BATCH = 512
PER_IMAGE_BYTES = 64 * 2**20  # the most one table over all images may take (else per batch)
# The quick first look (`PixelCheck.near_enough`): far outside what any copy showed at 16 px.
ROUGH_SIDE = 16
ROUGH_CORRELATION = 0.8
ROUGH_MEAN = 12.0
ROUGH_BLOCK = 40.0
UNEVEN_SHRINK = 1.25  # a thumbnail shrunk by less than this from its image is uneven (see comparison_side)
LOOK_SIDES = (64, 56, 48, 40, 32, 24, 16, 8)  # comparison sides, px; 24 and above 32: the files again

Look = Callable[[int, int], "np.ndarray | None"]  # (image, side) -> grey levels, or None


def comparison_side(a: bytes, b: bytes, looks: bool = False) -> int:
    """Compare at no more detail than the smaller image has: a copy halved to 16 px cannot
    match the 32 px original's strokes, only its 16 px view. Above 32 px (the fingerprint's
    thumbnail) only when the files can be looked at again, and then also below 32 px for an
    image of 33-39 px: its thumbnail took one pixel here and two there (BOX shrinking by less
    than a quarter), so the thin strokes of a line icon resized to 35 px come out uneven
    (19-29 grey levels off in one block); both read again at 24 px match within 3."""
    sides_px = (smallest_side(a), smallest_side(b))
    side = min(sides_px)
    sides = LOOK_SIDES if looks else tuple(s for s in LOOK_SIDES if GREY_SIDE % s == 0)
    chosen = next((s for s in sides if s <= side), sides[-1])
    if looks and chosen == GREY_SIDE and any(GREY_SIDE < s < GREY_SIDE * UNEVEN_SHRINK for s in sides_px):
        chosen = next(s for s in sides if s < GREY_SIDE)
    return chosen


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
        self._looked_bytes = 0
        self._thumbnails: dict[int, np.ndarray] = {}
        self._profiles: dict[tuple[int, int], np.ndarray] = {}
        self._spread: np.ndarray | None = None  # each fingerprint's grey-level spread
        self._uneven: np.ndarray | None = None  # each fingerprint: a 33-39 px image
        # Batches of pairs are checked a core each (`_each_batch`); the tables above are
        # filled by whichever batch needs them first, one at a time.
        self._filling = threading.RLock()

    def _table(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        with self._filling:
            if side not in self._tables:
                self._tables[side] = resampling(side, crop_views(side))
            return self._tables[side]

    def _each_batch(self, batches: list, check: Callable) -> list:
        """`check(batch)` for every batch, a core each (numpy's products and ufuncs release
        the GIL: on 5,000 handwritten digits the check took 9.7 s on one core, 4.4 s on two)."""
        with block_workers(len(batches), "duplicates") as each:
            return list(each(check, batches))

    def scores(self, pairs: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each (i, j), with j laid over i as a crop would: the best correlation, and at that
        view the largest difference left in any block of the picture (grey levels)."""
        best = np.full(len(pairs), -1.0)
        mean = np.full(len(pairs), 255.0)
        alike = np.zeros(len(pairs))
        texture = np.zeros(len(pairs))
        worst_block = np.full(len(pairs), 255.0)
        by_side: dict[int, list[int]] = {}
        for k, (i, j) in enumerate(pairs):
            side = comparison_side(self.fingerprints[i], self.fingerprints[j], self.look is not None)
            if GREY_SIDE % side and (self._grey(i, side) is None or self._grey(j, side) is None):
                side = GREY_SIDE if side > GREY_SIDE else 16  # a file not read again: its fingerprint
            by_side.setdefault(side, []).append(k)
        batches = [(side, chosen[start : start + PAIRS_PER_BATCH])
                   for side, chosen in by_side.items()
                   for start in range(0, len(chosen), PAIRS_PER_BATCH)]
        found = self._each_batch(
            batches, lambda job: self._best_alignment([pairs[k] for k in job[1]], job[0]))
        for (_, batch), measures in zip(batches, found, strict=True):
            best[batch], mean[batch], worst_block[batch], alike[batch], texture[batch] = measures
        return best, mean, worst_block, alike, texture

    def _grey(self, index: int, side: int) -> np.ndarray | None:
        """Image `index` as grey levels at `side` x `side`: from the fingerprint up to 32 px,
        above that from the file, looked at again (once per image and side)."""
        if GREY_SIDE % side == 0:
            return shrink(grey_thumbnail(self.fingerprints[index]), side)
        key = (index, side)
        with self._filling:
            if key in self._looked:
                return self._looked[key]
        found = self.look(index, side) if self.look else None  # read outside the lock
        with self._filling:
            if key in self._looked:  # another batch read it meanwhile
                return self._looked[key]
            self._looked[key] = found
            self._looked_bytes += 0 if found is None else found.nbytes
            # The files looked at again, oldest first out beyond a share of the memory budget:
            # kept all, they were 340 MB among 30,000 generated shapes and grew with the folder.
            while self._looked_bytes > memory_budget() // 16 and len(self._looked) > 1:
                old = self._looked.pop(next(iter(self._looked)))
                self._looked_bytes -= 0 if old is None else old.nbytes
        return found

    def _levels(self, indices: list[int], side: int) -> np.ndarray:
        """Blurred grey levels of `indices` at `side`: from all fingerprints at once (kept per
        side) up to 32 px, from the files looked at again above."""
        blur = blurring(side)
        if GREY_SIDE % side == 0 and not self._fits(side * side):
            levels = np.stack([shrink(grey_thumbnail(self.fingerprints[i]), side) for i in indices])
            return (blur @ levels @ blur.T).astype(np.float32)
        if GREY_SIDE % side == 0:
            with self._filling:
                if side not in self._thumbnails:
                    thumbs = np.stack([grey_thumbnail(f) for f in self.fingerprints])
                    self._thumbnails[side] = (blur @ shrink(thumbs, side) @ blur.T).astype(
                        np.float32)
            return self._thumbnails[side][np.asarray(indices, int)]
        levels = np.stack([self._grey(i, side) for i in indices])
        return (blur @ levels.astype(np.float32) @ blur.T).astype(np.float32)

    def _fits(self, floats_per_image: int) -> bool:
        """May a table of `floats_per_image` for every image be kept (`PER_IMAGE_BYTES`)?"""
        return len(self.fingerprints) * floats_per_image * 4 <= PER_IMAGE_BYTES

    def _laid_profiles(self, indices: list[int], side: int, axis: int, levels: np.ndarray) -> np.ndarray:
        """The row (axis 1) or column (axis 2) means of `levels`, images `indices`, moved by every
        view. From the fingerprints once per image (a folder of look-alikes has a few candidates
        per image), from `levels` for the files looked at again."""
        matrices, _ = self._table(side)
        if GREY_SIDE % side or not self._fits(matrices.shape[0] * side):
            return np.einsum("ps,vts->pvt", levels.mean(axis=3 - axis), matrices)
        with self._filling:
            if (side, axis) not in self._profiles:
                every = self._levels(list(range(len(self.fingerprints))), side).mean(
                    axis=3 - axis)
                self._profiles[side, axis] = np.einsum("ps,vts->pvt", every, matrices)  # no BLAS threads
        return self._profiles[side, axis][np.asarray(indices, int)]

    def _best_alignment(
        self, pairs: list[tuple[int, int]], side: int, tried: int = VIEWS_TRIED
    ) -> tuple[np.ndarray, ...]:
        matrices, shown = self._table(side)
        a = self._levels([i for i, _ in pairs], side)
        b = self._levels([j for _, j in pairs], side)
        chosen = []
        for axis in (1, 2):  # rows (y), then columns (x)
            profile_a = a.mean(axis=3 - axis)  # (pairs, side)
            laid = self._laid_profiles([j for _, j in pairs], side, axis, b)  # (pairs, views, side)
            scores = masked_correlation(profile_a[:, None, :], laid, shown[None].astype(np.float32))
            chosen.append(np.argsort(-scores, axis=1)[:, :tried])
        best = np.full(len(pairs), -1.0)
        best_laid = np.zeros_like(a)
        best_mask = np.ones_like(a)
        best_views = np.zeros((len(pairs), 2), int)
        for y_rank in range(tried):
            rows_view = chosen[0][:, y_rank]
            for x_rank in range(tried):
                cols_view = chosen[1][:, x_rank]
                laid = matrices[rows_view] @ b @ matrices[cols_view].transpose(0, 2, 1)
                mask = shown[rows_view][:, :, None] & shown[cols_view][:, None, :]
                score = masked_correlation(
                    a.reshape(len(pairs), -1), laid.reshape(len(pairs), -1),
                    mask.reshape(len(pairs), -1).astype(np.float32),
                )
                better = score > best
                best = np.where(better, score, best)
                best_laid[better] = laid[better]
                best_mask[better] = mask[better]
                best_views[better] = np.stack([rows_view, cols_view], axis=1)[better]
        smooth = blurring(side, RESIDUAL_BLUR)
        mean, worst, alike = differences(smooth @ a @ smooth.T, smooth @ best_laid @ smooth.T, best_mask)
        texture = self._texture(pairs, side, best_views, best_mask) if tried > 1 else np.ones(len(pairs))
        return best, mean, worst, alike, texture

    def _texture(self, pairs: list[tuple[int, int]], side: int, views: np.ndarray,
                 mask: np.ndarray) -> np.ndarray:
        """For each pair, at its best view: the correlation of the fine detail (each image minus
        its blur: grain, noise, texture), which a copy keeps where it is and a neighbouring
        tile of one hazy sky does not."""
        matrices, _ = self._table(side)
        raw_a = np.stack([self._grey(i, side) for i, _ in pairs]).astype(np.float32)
        raw_b = np.stack([self._grey(j, side) for _, j in pairs]).astype(np.float32)
        laid = matrices[views[:, 0]] @ raw_b @ matrices[views[:, 1]].transpose(0, 2, 1)
        blur = blurring(side, TEXTURE_BLUR)
        fine_a, fine_b = raw_a - blur @ raw_a @ blur.T, laid - blur @ laid @ blur.T
        # Edges next to the part not shown are blurred with what is missing: leave a pixel out.
        mask = mask > 0
        inner = mask & np.roll(mask, 1, 1) & np.roll(mask, -1, 1) & np.roll(mask, 1, 2) & np.roll(mask, -1, 2)
        weights = inner.astype(np.float32)

        def without_lines(fine: np.ndarray) -> np.ndarray:  # a band or stripe goes on past a tile's edge
            fine = fine * weights
            rows = fine.sum(axis=2, keepdims=True) / np.maximum(weights.sum(axis=2, keepdims=True), 1)
            fine = (fine - rows) * weights
            cols = fine.sum(axis=1, keepdims=True) / np.maximum(weights.sum(axis=1, keepdims=True), 1)
            return (fine - cols) * weights

        fine_a, fine_b = without_lines(fine_a), without_lines(fine_b)
        flat = inner.reshape(len(pairs), -1).astype(np.float32)
        count = np.maximum(flat.sum(axis=1), 1)
        a_c = fine_a.reshape(len(pairs), -1) * flat
        b_c = fine_b.reshape(len(pairs), -1) * flat
        a_c -= (a_c.sum(axis=1) / count)[:, None] * flat
        b_c -= (b_c.sum(axis=1) / count)[:, None] * flat
        norms = np.maximum(np.linalg.norm(a_c, axis=1) * np.linalg.norm(b_c, axis=1), 1e-6)
        return (a_c * b_c).sum(axis=1) / norms

    def near_enough(self, pairs) -> np.ndarray:
        """A quick first look, for each pair ((p, 2) indices): at 16 px from the fingerprints, at
        the one view whose profiles match best, are they close enough to be worth the full
        check? Most candidates of a folder of look-alikes (handwritten digits) are far off even
        there; every copy in the benchmark is well inside these bounds (docs/duplicates.md). A
        33-39 px image's thumbnail is uneven (`comparison_side`): such pairs always get the
        full check."""
        ends = np.asarray(pairs, np.int64).reshape(-1, 2)
        if self._uneven is None:
            sides = np.array([smallest_side(f) for f in self.fingerprints])
            self._uneven = (sides > GREY_SIDE) & (sides < GREY_SIDE * UNEVEN_SHRINK)
        near = self._uneven[ends[:, 0]] | self._uneven[ends[:, 1]]
        rest = np.flatnonzero(~near)
        batches = [rest[start : start + PAIRS_PER_BATCH]
                   for start in range(0, len(rest), PAIRS_PER_BATCH)]
        found = self._each_batch(batches, lambda batch: self._best_alignment(
            ends[batch].tolist(), ROUGH_SIDE, tried=1))
        for batch, (correlation, mean, worst, _, _) in zip(batches, found, strict=True):
            near[batch] = (correlation >= ROUGH_CORRELATION) & (mean <= ROUGH_MEAN) & (worst <= ROUGH_BLOCK)
        return near

    def same_picture(self, pairs) -> np.ndarray:
        """Stage 2 for each pair ((p, 2) indices, or (i, j) tuples): do images i and j show the
        same picture? Pairs are handled as arrays, never one Python object each: a folder of
        look-alikes has millions of candidates (3.6 GB at 200,000 generated shapes)."""
        ends = np.asarray(pairs, np.int64).reshape(-1, 2)
        verdicts = np.zeros(len(ends), bool)
        if not len(ends):
            return verdicts
        images = np.unique(ends)  # each image's colour thumbnail once
        colours = np.stack([colour_thumbnail(self.fingerprints[i]) for i in images])
        first, second = np.searchsorted(images, ends[:, 0]), np.searchsorted(images, ends[:, 1])
        # A chunk of pairs at a time: two thumbnails and the measures' copies per pair were
        # 870 MB for the 377,628 candidates of 20,000 generated shapes (6.5 GB at 50,000).
        agree = np.zeros(len(ends), bool)
        for part in row_chunks(len(ends), 8 * colours[0].nbytes):
            agree[part] = colours_agree(colours[first[part]], colours[second[part]])
        del colours, first, second
        if self._spread is None:
            self._spread = np.array([grey_thumbnail(f).std() for f in self.fingerprints])
        flat_a, flat_b = self._spread[ends[:, 0]] < FLAT_CONTRAST, self._spread[ends[:, 1]] < FLAT_CONTRAST
        for k in np.flatnonzero(agree & (flat_a | flat_b)).tolist():  # nearly blank: a few
            grey_a, grey_b = grey_thumbnail(self.fingerprints[ends[k, 0]]), grey_thumbnail(self.fingerprints[ends[k, 1]])
            difference = (grey_a - grey_a.mean()) - (grey_b - grey_b.mean())
            rms = float(np.sqrt((difference**2).mean()))
            # The levels themselves too, within the brightness change a copy may have: a
            # white page and a grey one have the same (lack of) structure.
            shift = differences(grey_a[None], grey_b[None], np.ones((1, *grey_a.shape), np.float32))[0]
            verdicts[k] = flat_a[k] and flat_b[k] and rms <= FLAT_DIFFERENCE and shift[0] <= MEAN_DIFFERENCE
        contrasty = np.flatnonzero(agree & ~flat_a & ~flat_b)
        contrasty = contrasty[self.near_enough(ends[contrasty])]
        correlation, mean, worst_block, alike, texture = self.scores(ends[contrasty].tolist())
        verdicts[contrasty] = ((correlation >= SAME_PICTURE_CORRELATION) & (alike >= LEAST_ALIKE)
                               & (mean <= MEAN_DIFFERENCE) & (worst_block <= BLOCK_DIFFERENCE)
                               & (texture >= TEXTURE_CORRELATION))
        return verdicts


def confirmed_pairs(fingerprints: Sequence[bytes], look: Look | None = None) -> list[tuple[int, int]]:
    """(i, j), i < j, that both stages call the same picture; `look(i, side)` gives image i's
    grey levels at up to 64 px from its file, for a closer look than the fingerprint's."""
    candidates = candidate_pairs(fingerprints)
    verdicts = PixelCheck(fingerprints, look).same_picture(candidates)
    return [(int(i), int(j)) for i, j in candidates[verdicts]]
