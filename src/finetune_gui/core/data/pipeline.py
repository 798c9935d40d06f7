"""Images into arrays once, arrays into batches: the input side of training and evaluation.

Each image is decoded and resized once per run (in parallel threads, Pillow releases the GIL
while decoding; or taken from the run's own scan, which decoded it already: `kept_pixels.py`);
epochs then read uint8 arrays, never files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from finetune_gui.core.data.images import ImageReadError, load_rgb
from finetune_gui.core.data.kept_pixels import KeptPixels
from finetune_gui.core.data.storage import allocate, is_on_disk
from finetune_gui.core.errors import DatasetError
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)

# Images per forward pass when nothing is trained (frozen-layer pass, predictions). A batch's
# activations dominate memory beside the stored arrays: MobileNetV2 at 224 px held 1.2 GB more
# at 64 images than at 16, with the same images per second on a 2-core CPU (measured).
INFERENCE_BATCH = 16
SLICES_LIMIT = 64 * 2**20


def decode_images(
    paths: Sequence[Path],
    size: int,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    stage: str = "decode",
    workers: int | None = None,
    kept: KeptPixels | None = None,
) -> np.ndarray:
    """All `paths` as one uint8 array (N, size, size, 3); spills to disk beyond the memory budget.
    An image whose pixels the run's scan kept (`kept`) is taken from there, not read again."""
    out = allocate((len(paths), size, size, 3), np.uint8)
    if not paths:  # nothing to read (no validation images, say): nothing to announce
        return out
    progress(StageStarted(stage, len(paths), f"Reading {len(paths)} images at {size} px"))

    def load(i: int) -> None:
        if cancel is not None and cancel.cancelled:
            return
        pixels = kept.take(paths[i], size) if kept is not None else None
        try:
            out[i] = pixels if pixels is not None else load_rgb(paths[i], size)
        except ImageReadError as exc:
            raise DatasetError(
                f"{paths[i]} could not be read any more ({exc.reason}); it may have changed "
                f"since the folder was checked. Check the folder again."
            ) from exc

    step = max(1, len(paths) // 50)
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        for done, _ in enumerate(pool.map(load, range(len(paths))), start=1):
            if done % step == 0 or done == len(paths):
                progress(StageProgress(stage, done, len(paths)))
    check_cancel(cancel)
    return out


def batches(
    arrays: Sequence[np.ndarray],
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
):
    """A tf.data pipeline over aligned arrays (in memory or on disk) in batches. An item of
    `arrays` may be a tuple of aligned arrays (a model with several inputs): its batches come
    as a tuple too.

    Arrays on disk are gathered by index, so only one batch at a time is in memory. Under
    MultiWorkerMirroredStrategy each worker runs the whole pipeline and keeps its share of each
    batch (the DATA shard policy): there are no files to divide between workers, and with the
    same seed every worker shuffles into the same order, so the shares do not overlap.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

    groups = [len(a) if isinstance(a, tuple) else 0 for a in arrays]
    arrays = [part for a in arrays for part in (a if isinstance(a, tuple) else (a,))]
    n = len(arrays[0])
    in_memory = not any(is_on_disk(a) for a in arrays)
    # from_tensor_slices copies the arrays into TensorFlow: cheap for small ones, a second copy
    # of everything for large ones (the generator below reads one batch at a time).
    if in_memory and sum(a.nbytes for a in arrays) < SLICES_LIMIT:
        ds = tf.data.Dataset.from_tensor_slices(tuple(arrays))
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size)
        return _regrouped(ds, groups).prefetch(tf.data.AUTOTUNE).with_options(options)

    signature = tuple(tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in arrays)

    def generate():
        rng = np.random.default_rng(seed)
        while True:
            order = rng.permutation(n) if shuffle else np.arange(n)
            for start in range(0, n, batch_size):
                chosen = np.sort(order[start : start + batch_size])  # sorted: sequential reads
                yield tuple(a[chosen] for a in arrays)
            if not repeat:
                return

    ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return _regrouped(ds, groups).prefetch(tf.data.AUTOTUNE).with_options(options)


def _regrouped(ds, groups: list[int]):
    """Batches of flat arrays put back into the tuples `batches` was given (0: a lone array)."""
    if not any(groups):
        return ds

    def regroup(*flat):
        out, at = [], 0
        for size in groups:
            out.append(tuple(flat[at : at + size]) if size else flat[at])
            at += size or 1
        return tuple(out)

    return ds.map(regroup)
