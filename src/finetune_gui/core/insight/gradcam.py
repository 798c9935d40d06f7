"""Grad-CAM: which part of an image made the model choose a class.

The heatmap weights each channel of a backbone block's activations by the mean gradient of the
class score over that channel, keeps the positive sum and scales it to 0..1 (Selvaraju et al.,
2017). The class score is the logit before the softmax: the probability saturates near 1, and
its gradient then says little. The backbone is one nested model in every saved classifier, so
the forward pass is run piece by piece (core/model/parts.py) under one GradientTape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from finetune_gui.core.data.images import at_size
from finetune_gui.core.model.backbones import output_of
from finetune_gui.core.model.build import TAP_PREFIX, last_map
from finetune_gui.core.model.parts import ClassifierParts, split_classifier

# Colour ramp for the heatmap: dark blue (nothing) through cyan, yellow to red (most).
_RAMP_STOPS = np.array([0.0, 0.35, 0.65, 1.0])
AUTO = "auto"
MIN_CAM_SIDE = 7
_RAMP_COLOURS = np.array([[0, 0, 140], [0, 200, 255], [255, 230, 0], [220, 0, 0]], dtype=float)


@dataclass
class Explanation:
    """One image explained: the heatmap at the image's size, and the class it explains."""

    path: Path
    heatmap: np.ndarray  # (H, W) float 0..1, at the image's size (at most MAX_OVERLAY_SIDE)
    overlay: np.ndarray  # uint8 RGB, enlarged to MIN_OVERLAY_SIDE if the image is smaller
    class_index: int
    label: str
    probability: float


def gradcam_batch(
    model,
    images: np.ndarray,
    class_indices: list[int] | np.ndarray | None = None,
    block: str | None = AUTO,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (N, S, S) for uint8 images (N, S, S, 3) already at the model's input size, and
    the probabilities (N, K). Each image's heatmap explains `class_indices[i]`, or its top
    class. `block` names a backbone layer; AUTO picks one (`cam_layer`), None takes the
    backbone's output.
    """
    import tensorflow as tf

    parts = split_classifier(model)
    images = np.asarray(images)
    x = tf.cast(images, tf.float32)
    with tf.GradientTape() as tape:
        activations, probabilities, logits = _forward(parts, x, block)
        if class_indices is None:
            class_indices = np.argmax(probabilities.numpy(), axis=1)
        chosen = tf.gather(logits, np.asarray(class_indices, dtype="int32"), axis=1, batch_dims=1)
        # Images do not interact (BatchNorm runs in inference mode), so the gradient of the sum
        # gives each image the gradient of its own score.
        total = tf.reduce_sum(chosen)
    gradients = tape.gradient(total, activations)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))[..., None]
    cams = tf.image.resize(cams, images.shape[1:3], method="bilinear")[..., 0].numpy()
    peaks = cams.reshape(len(cams), -1).max(axis=1)
    cams = np.where(peaks[:, None, None] > 0, cams / np.maximum(peaks, 1e-12)[:, None, None], 0.0)
    return np.clip(cams, 0.0, 1.0).astype("float32"), probabilities.numpy()


def cam_layer(base) -> str | None:
    """The backbone layer Grad-CAM reads: the last one whose map is MIN_CAM_SIDE or more across.

    At a backbone's usual input size that is its output, its last block (7 x 7 at 224 px, as in
    the Grad-CAM paper). On small inputs the last block shrinks to 2 x 2, where every cell sees
    the whole image and the heatmap comes out flat (measured on 48 px shapes: the quadrant
    holding the shape won 3-8 times in 24, chance being 6), so the last block that is still fine
    enough is used (at 48 px a 12 x 12 one: 20-24 in 24). None means the backbone's output.
    """
    import keras

    chosen = None
    for layer in base.layers:
        if isinstance(layer, keras.layers.ZeroPadding2D | keras.layers.InputLayer):
            continue  # padding adds a border of zeros that no pixel caused
        if layer.name.startswith(TAP_PREFIX):
            continue  # block averages spread flat over the map: no place caused them
        shape = tuple(getattr(getattr(layer, "output", None), "shape", ()) or ())
        if len(shape) == 4 and min(shape[1] or 0, shape[2] or 0) >= MIN_CAM_SIDE:
            chosen = layer.name
    if chosen is None or output_of(base, chosen) is last_map(base):
        return None
    return chosen


def _forward(parts: ClassifierParts, x, block):
    """(block activations, probabilities, logits) for float pixels `x`.

    A two-output model (block activations and the backbone's output) runs the backbone once;
    the activations it returns are the very tensor the rest of the backbone consumed, so the
    tape can take gradients with respect to them.
    """
    import keras
    import tensorflow as tf

    for layer in parts.preprocess:
        x = layer(x)
    base = parts.base
    block = cam_layer(base) if block == AUTO else block
    if block is None and last_map(base) is base.outputs[0]:
        activations = base(x, training=False)
        features = activations
    else:
        # The base's own last map, not its output widened by the block taps (with_block_taps).
        inner = last_map(base) if block is None else output_of(base, block)
        probe = keras.Model(base.inputs, [inner, base.outputs[0]])
        activations, features = probe(x, training=False)
    for layer in parts.head[:-1]:
        features = layer(features, training=False)
    output = parts.output_layer
    logits = tf.matmul(tf.cast(features, tf.float32), tf.cast(output.kernel, tf.float32))
    logits = logits + tf.cast(output.bias, tf.float32)
    return activations, tf.nn.softmax(logits), logits


def gradcam(
    model, pixels_uint8: np.ndarray, class_index: int | None = None, block: str | None = AUTO
) -> np.ndarray:
    """The Grad-CAM heatmap (H, W), 0..1, of one RGB image of any size for `class_index` (default:
    the class the model predicts)."""
    pixels = np.asarray(pixels_uint8, dtype=np.uint8)
    size = tuple(model.input_shape[1:3])
    resized = _resize(pixels, size)
    classes = None if class_index is None else [class_index]
    heatmaps, _ = gradcam_batch(model, resized[None], classes, block)
    return _resize_map(heatmaps[0], pixels.shape[:2])


def explain_image(run, path: Path | str, class_name: str | None = None, model=None) -> Explanation:
    """Grad-CAM of one image file for a run (`RunFolder`): the predicted class unless named."""
    from finetune_gui.core.data.images import load_rgb
    from finetune_gui.core.errors import UserError

    model = model or run.load_model()
    path = Path(path)
    if class_name is not None and class_name not in run.classes:
        raise UserError(f"Unknown class '{class_name}'; the model knows: {', '.join(run.classes)}.")
    original = load_rgb(path)
    # The model sees the image as every prediction does (`at_size` from the file's own pixels),
    # not the smaller copy the overlay is drawn on: else the heatmap's probability (68%) was
    # not the answer beside it (62%).
    resized = _resize(original, tuple(model.input_shape[1:3]))
    pixels = _fit(original, 1, MAX_OVERLAY_SIDE)
    wanted = None if class_name is None else [run.classes.index(class_name)]
    heatmaps, probabilities = gradcam_batch(model, resized[None], wanted)
    index = int(np.argmax(probabilities[0])) if wanted is None else wanted[0]
    heatmap = _resize_map(heatmaps[0], pixels.shape[:2])
    shown = _fit(pixels, MIN_OVERLAY_SIDE, MAX_OVERLAY_SIDE)
    return Explanation(
        path, heatmap, overlay(shown, heatmap), index, run.classes[index],
        float(probabilities[0][index]),
    )


def write_png(pixels: np.ndarray, target: Path | str) -> Path:
    """Save uint8 RGB pixels as a PNG file, all at once or not at all."""
    import io

    from finetune_gui.core.files import atomic_write_bytes

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, "PNG")
    target = Path(target).expanduser()
    atomic_write_bytes(target, buffer.getvalue())
    return target


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The image with the heatmap laid over it in colour (uint8 RGB at the image's size)."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    heat = _resize_map(np.asarray(heatmap, dtype=np.float32), image.shape[:2])
    colours = heat_colours(heat)
    # Cold regions keep their own colours, so the eye goes to the hot ones.
    weight = (alpha * heat)[..., None]
    mixed = image.astype(np.float32) * (1 - weight) + colours * weight
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def heat_colours(heatmap: np.ndarray) -> np.ndarray:
    """A 0..1 map as RGB floats along the colour ramp."""
    values = np.clip(heatmap, 0.0, 1.0)
    return np.stack(
        [np.interp(values, _RAMP_STOPS, _RAMP_COLOURS[:, c]) for c in range(3)], axis=-1
    )


MAX_OVERLAY_SIDE = 1024  # a camera photo explained at full size would be a 30 MB PNG
MIN_OVERLAY_SIDE = 256  # a 48 px image's heatmap is too small to see


def _fit(pixels: np.ndarray, smallest: int, largest: int) -> np.ndarray:
    """Scaled so the long side lies within smallest..largest (unchanged when it already does)."""
    height, width = pixels.shape[:2]
    long_side = max(height, width)
    target = min(max(long_side, smallest), largest)
    if target == long_side:
        return pixels
    scale = target / long_side
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    resample = Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(pixels).resize((size[1], size[0]), resample), dtype=np.uint8)


def _resize(pixels: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """The model's (square) input size, through `at_size`: the one resize every image the
    model is trained on and asked about goes through."""
    height, width = size_hw
    if height != width:
        raise ValueError(f"the model's input is {height} x {width}; models here are square")
    return at_size(Image.fromarray(pixels), height)


def _resize_map(heatmap: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    if heatmap.shape == tuple(size_hw):
        return heatmap
    image = Image.fromarray(heatmap.astype(np.float32))
    resized = np.clip(np.asarray(
        image.resize((size_hw[1], size_hw[0]), Image.Resampling.BILINEAR), dtype=np.float32), 0, 1)
    # Resampling off the grid lowers a sharp peak (measured 0.97): scale back so the hottest
    # place reads 1 at every size, as it does at the model's size.
    peak, source_peak = float(resized.max()), float(heatmap.max())
    return resized * (source_peak / peak) if peak > 0 else resized
