"""The frozen part of the network run once per image, and the models that train on what it
produced (speed mode, `training/fast_path.py`, drives them).

Phase 1 trains the head on pooled base features; phase 2 trains the unfrozen top blocks and the
head on the activations at the cut. Everything below the cut is frozen with BatchNorm in
inference mode, so its output for a given input never changes: computing it every epoch, as the
tutorials do, repeats the same work. Each image is stored as it is, and with augmentation on,
`views - 1` augmented copies beside it instead of a new one per epoch. The plain copy is always
there: with one fixed augmented copy in its place, the head learned from distorted images only
(on handwritten digits, flipped ones) and scored 68% on validation against 83% (issue 12).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from finetune_gui.core.data.pipeline import INFERENCE_BATCH
from finetune_gui.core.data.storage import allocate, rows_in_budget
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.model.backbones import output_of
from finetune_gui.core.model.build import (
    Classifier,
    block_taps,
    has_block_taps,
    last_map,
    tap_inputs,
    taps_above_cut,
)
from finetune_gui.core.model.onnx_pass import checked_runner, frozen_part_runner

# First-block statistics (core/run/dataset_features.py, EARLY_POOLING): log(spread + this).
EARLY_EPSILON = 1e-3


@dataclass
class CachedFeatures:
    """Per image and view: pooled features (for phase 1) and cut activations (for phase 2);
    `early`: the first block's statistics of each image as it is (the plain copies), which the
    "not sure" rule measures, computed in the same pass (None in an older cache entry)."""

    pooled: np.ndarray  # (views * N, C)
    at_cut: np.ndarray | None  # (views * N, h, w, c), None when phase 2 does not run
    views: int
    early: np.ndarray | None = None  # (N, 2E)


def first_block_statistics(maps):
    """Per image and channel of the first block's output `maps`: the mean over positions, then
    the log of the spread over positions (how a picture looks: colours, edges, texture)."""
    import keras

    return keras.layers.Concatenate(name="first_block_statistics")([
        keras.layers.GlobalAveragePooling2D(name="first_block_mean")(maps),
        keras.ops.log(keras.ops.std(maps, axis=(1, 2)) + EARLY_EPSILON),
    ])


def build_extractor(classifier: Classifier, cut: str | None):
    """pixels -> [activations at `cut`], first-block statistics, pooled base features."""
    import keras

    base = classifier.base
    widened = has_block_taps(base)
    # With block taps, the widened map's average is put together from its parts (`_pooled`).
    parts = [last_map(base), *(t for _, t in block_taps(base))] if widened else [base.output]
    outputs = [output_of(base, classifier.ends[0]), *parts]
    if cut is not None:
        outputs.insert(0, output_of(base, cut))
    inner = keras.Model(base.input, outputs, name="frozen_part")
    x = classifier.model.input
    for layer in classifier.preprocess_layers:
        x = layer(x)
    found = inner(x, training=False)
    *stored, first = found[: len(found) - len(parts)]  # [at the cut,] the first block
    last, *taps = found[len(found) - len(parts) :]
    pooled = (_pooled(last, taps, "extract_pool") if widened
              else keras.layers.GlobalAveragePooling2D(name="extract_pool")(last))
    early = first_block_statistics(first)
    return keras.Model(classifier.model.input, [*stored, early, pooled], name="extractor")


def _pooled(last, taps: list, name: str, below=None):
    """The widened map's global average from its parts: the last map's average, then each
    tap's (`below`: the taps at or below a cut, as stored columns, before `taps`). The same
    values as averaging the map with every tap spread over it, without building the spreads:
    on MobileNetV2's 18 taps they were 0.67 s of tracing phase 2's 1.2 s step at 48 px."""
    import keras

    pieces = [keras.layers.GlobalAveragePooling2D(name=f"{name}_last")(last)]
    if below is not None:
        pieces.append(below)
    pieces += [keras.ops.reshape(tap, (-1, int(tap.shape[-1]))) for tap in taps]
    return keras.layers.Concatenate(name=name)(pieces) if len(pieces) > 1 else pieces[0]


@dataclass
class FrozenPart:
    """The extractor of one frozen part (a base below one cut, at one image size) and its
    TensorFlow step, traced once for every pass of a run: the validation, test and
    pseudo-outlier passes each traced their own before, 1.3-2.8 s apiece on 150 faces at
    48 px, more than running their images. `seconds_per_image`: what the step took an image
    on a batch after the first (None until a pass has timed one)."""

    extractor: object
    step: object
    seconds_per_image: float | None = None


def frozen_part(classifier: Classifier, cut: str | None, pixel_shape: tuple) -> FrozenPart:
    """`classifier`'s frozen part below `cut` for pixels of `pixel_shape`, built and traced
    the first time it is asked for and kept as long as the classifier."""
    import tensorflow as tf

    parts = classifier.frozen_parts
    key = (cut, pixel_shape)
    if key not in parts:
        extractor = build_extractor(classifier, cut)

        # Any number of images in one trace: the last, shorter batch traced it again before.
        @tf.function(input_signature=[tf.TensorSpec((None, *pixel_shape), tf.float32)])
        def step(pixels):
            out = extractor(pixels, training=False)
            outs = out if isinstance(out, list | tuple) else [out]
            return [tf.cast(o, tf.float32) for o in outs]

        parts[key] = FrozenPart(extractor, step)
    return parts[key]


def traced_part(classifier: Classifier, pixel_shape: tuple) -> FrozenPart | None:
    """A frozen part of `classifier` for pixels of `pixel_shape` that a pass of this run has
    built, its step traced on the pass's first batch unless ONNX Runtime took every batch (any
    cut: the first block's statistics and the pooled features are its last two outputs), or
    None."""
    return next((part for (_, shape), part in classifier.frozen_parts.items()
                 if shape == pixel_shape), None)


def frozen_seconds_per_image(classifier: Classifier, cut: str | None) -> float | None:
    """What `classifier`'s frozen part below `cut` took an image in TensorFlow in the passes
    so far, or None when none was timed."""
    timed = [part.seconds_per_image for (at, _), part in classifier.frozen_parts.items()
             if at == cut and part.seconds_per_image is not None]
    return min(timed) if timed else None


def head_model(classifier: Classifier):
    """pooled features -> probabilities, sharing the classifier's head layers."""
    import keras

    inputs = keras.Input((classifier.base.output_shape[-1],), name="pooled")
    x = inputs
    for layer in classifier.head_layers[1:]:
        x = layer(x)
    return keras.Model(inputs, x, name="head_on_features")


def top_model(classifier: Classifier, cut: str, *, dropout: bool = True):
    """What the fast path stored at `cut` -> probabilities, sharing the top blocks and head
    layers (without the dropout layer when `dropout` is False)."""
    import keras

    inputs, x = _pooled_above_cut(classifier, cut)
    for layer in classifier.head_layers[1:]:
        if not dropout and isinstance(layer, keras.layers.Dropout):
            continue
        x = layer(x)
    return keras.Model(inputs, x, name="top_and_head")


def above_stored_model(classifier: Classifier, cut: str | None):
    """What the fast path stored -> [pooled base features, probabilities]: the layers above
    the cut (the top blocks, pooling and head; the head alone without a cut), sharing the
    classifier's weights. With them a trained run's features come without running the frozen
    layers again."""
    import keras

    if cut is None:
        inputs = keras.Input((classifier.base.output_shape[-1],), name="pooled")
        pooled = inputs
    else:
        inputs, pooled = _pooled_above_cut(classifier, cut)
    x = pooled
    for layer in classifier.head_layers[1:]:
        x = layer(x)
    return keras.Model(inputs, [pooled, x], name="above_stored")


def _pooled_above_cut(classifier: Classifier, cut: str):
    """(inputs, the pooled base features) for the layers above `cut`. With block taps the
    averaged block outputs at or below the cut come in as a second input, one row of their
    pooled values side by side (`stored_below_cut`), since the cut's activations no longer
    hold them.

    The pooled features are put together as the base's widened map averages them (the last
    map's average, then each tap's in order) without spreading each tap over the map first:
    the same values (`_pooled`)."""
    import keras

    base = classifier.base
    at_cut = keras.Input(tuple(output_of(base, cut).shape[1:]), name="at_cut")
    if not has_block_taps(base):
        top = keras.Model(output_of(base, cut), base.output, name="top_blocks")
        return at_cut, classifier.head_layers[0](top(at_cut, training=False))
    constants = tap_inputs(base, cut, classifier.ends)
    above = taps_above_cut(base, cut, classifier.ends)
    top = keras.Model(output_of(base, cut), [last_map(base), *above], name="top_blocks")
    last, *pooled_above = top(at_cut, training=False)
    if not constants:
        return at_cut, _pooled(last, pooled_above, "top_pool")
    below = keras.Input((sum(int(t.shape[-1]) for t in constants),), name="pooled_below_cut")
    return [at_cut, below], _pooled(last, pooled_above, "top_pool", below)


def stored_below_cut(classifier: Classifier, cut: str | None, pooled: np.ndarray):
    """The columns of stored pooled features that `top_model` takes beside the activations at
    the cut (the averaged outputs of the blocks at or below it), or None without block taps."""
    constants = tap_inputs(classifier.base, cut, classifier.ends)
    if not constants:
        return None
    first = int(last_map(classifier.base).shape[-1])
    width = sum(int(t.shape[-1]) for t in constants)
    # Inside the budget like the activations beside it: in RAM these columns were 0.7 GB for
    # 140,000 training images at 96 px, and took fine-tuning's peak to 3.3 GB (issue 30).
    below = allocate((len(pooled), width), np.float32)
    chunk = rows_in_budget(4 * int(pooled.shape[1]))  # by rows: stored features may be on disk
    for start in range(0, len(pooled), chunk):
        below[start : start + chunk] = pooled[start : start + chunk][:, first : first + width]
    return below


def stored_inputs(classifier: Classifier, cut: str, found: CachedFeatures, rows=None):
    """`top_model`'s inputs for stored activations `found` (the first `rows` rows)."""
    at_cut = found.at_cut if rows is None else found.at_cut[:rows]
    below = stored_below_cut(classifier, cut, found.pooled if rows is None else found.pooled[:rows])
    return at_cut if below is None else (at_cut, below)


def extract_features(
    classifier: Classifier,
    images: np.ndarray,
    *,
    cut: str | None,
    augment=None,
    views: int = 1,
    batch_size: int = 32,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    stage: str = "extract",
    keep_cut: bool = True,
    later_images: int = 0,
) -> CachedFeatures:
    """Run the frozen part over `images` `views` times: first as they are, then augmented
    (when `augment` is given; without it, once). With `keep_cut` False the activations at
    `cut` are not kept (the pass still runs the part up to `cut` that was converted for it).
    `later_images`: how many more images the run's later passes will put through this frozen
    part (its validation and test images), which a faster runtime chosen now would take too."""
    import tensorflow as tf

    part = frozen_part(classifier, cut, tuple(images.shape[1:]))
    extractor = part.extractor
    batch_size = min(batch_size, INFERENCE_BATCH)
    views = views if augment is not None else 1
    n = len(images)
    *stored, early_shape, pooled_shape = [tuple(s[1:]) for s in _output_shapes(extractor)]
    stores = [allocate((views * n, *shape), np.float32) if keep_cut else None
              for shape in stored] + [allocate((views * n, *pooled_shape), np.float32)]
    early = np.zeros((n, *early_shape), np.float32)  # of the plain copies only

    @tf.function(reduce_retracing=True)
    def augmented_pixels(batch):
        return augment(tf.cast(batch, tf.float32), training=True)

    total = views * ((n + batch_size - 1) // batch_size)
    if n:  # no images (no validation split, say): nothing to announce
        progress(
            StageStarted(stage, total, f"Computing frozen layers once ({_copies(n, views)})")
        )
    # faster: ONNX Runtime, chosen on the second batch of the run's first pass
    done, faster = 0, checked_runner(classifier.base, cut)
    for view in range(views):
        for start in range(0, n, batch_size):
            check_cancel(cancel)
            batch = images[start : start + batch_size]
            if faster is not None:
                found = faster(batch if view == 0 else augmented_pixels(batch).numpy())
            else:
                began = time.perf_counter()
                pixels = tf.cast(batch, tf.float32) if view == 0 else augmented_pixels(batch)
                found = [o.numpy() for o in part.step(pixels)]
                if view == 0 and start == batch_size:  # traced at the first: a fair time
                    seconds = time.perf_counter() - began
                    part.seconds_per_image = seconds / len(batch)
                    faster = frozen_part_runner(
                        classifier.base, cut, extractor, images.shape[1], pixels=batch,
                        tensorflow_outputs=found, progress=progress,
                        remaining_seconds=seconds * (total - done - 1)
                        + seconds / len(batch) * later_images)
            *outs, first, pooled = found
            for store, out in zip(stores, [*outs, pooled], strict=True):
                if store is not None:
                    store[view * n + start : view * n + start + len(out)] = out
            if view == 0:
                early[start : start + len(first)] = first
            done += 1
            progress(StageProgress(stage, done, total))
    if cut is None or not keep_cut:
        return CachedFeatures(stores[-1], None, views, early)
    return CachedFeatures(stores[1], stores[0], views, early)


def _copies(n: int, views: int) -> str:
    if views == 1:
        return f"{n} images"
    extra = views - 1
    return f"{n} images, each as it is and {extra} augmented cop{'y' if extra == 1 else 'ies'}"


def _output_shapes(model) -> list[tuple]:
    return [tuple(t.shape) for t in model.outputs]
