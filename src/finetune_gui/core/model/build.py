"""Building the classifier: raw RGB pixels (0-255) in, class probabilities out.

Preprocessing uses only built-in Keras layers, so `keras.models.load_model("model.keras")`
works in a plain Python session without this package. The base is always called with
`training=False`, so BatchNorm keeps its ImageNet statistics while the top blocks are tuned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from finetune_gui.core.model.backbones import (
    BackboneSpec,
    block_ends,
    build_base,
    cut_layer,
    get_backbone,
    max_unfreeze_blocks,
    output_of,
)

if TYPE_CHECKING:  # settings.py checks backbone names here; at run time only duck-typed
    from finetune_gui.core.settings import TrainingSettings

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
ALL_BLOCKS = -1  # unfreeze_blocks value meaning the whole base, stem included
TAP_PREFIX = "block_tap_"  # the layers with_block_taps adds to a base
WIDENED = f"{TAP_PREFIX}every_block"  # its last layer: the last map and the block averages
TAP_BUDGET = 2  # earlier blocks' channels the head reads, at most, per channel of the last


def preprocessing_layers(mode: str) -> list:
    """Layers that turn 0-255 RGB into what the backbone was trained on."""
    from keras import layers

    if mode == "tf":
        return [layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_pm1")]
    if mode == "torch":
        mean = [255 * m for m in IMAGENET_MEAN]
        var = [(255 * s) ** 2 for s in IMAGENET_STD]
        return [layers.Normalization(mean=mean, variance=var, name="imagenet_normalize")]
    if mode == "caffe":
        # RGB -> BGR and mean subtraction as a fixed 1x1 convolution: exact, and serialisable.
        swap = np.zeros((1, 1, 3, 3), dtype="float32")
        for out_channel, in_channel in enumerate((2, 1, 0)):
            swap[0, 0, in_channel, out_channel] = 1.0
        bias = -np.asarray(CAFFE_MEAN_BGR, dtype="float32")
        conv = layers.Conv2D(3, 1, name="rgb_to_bgr_minus_mean", trainable=False)
        conv.build((None, None, None, 3))
        conv.set_weights([swap, bias])
        return [conv]
    return []


@dataclass
class Classifier:
    """The full model and the parts training needs to reach into."""

    model: object  # keras.Model: pixels -> probabilities
    base: object  # keras.Model: the backbone without top
    head_layers: list  # the layers after the base, in order (pooling first)
    ends: list[str]  # block-ending layer names of the base
    spec: BackboneSpec
    image_size: int
    num_classes: int
    # Its frozen parts as a run's passes share them (`frozen_pass.frozen_part`), as long as it
    # lives: a table beside it kept every classifier of a process alive (the extractor holds it).
    frozen_parts: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def preprocess_layers(self) -> list:
        base_index = self.model.layers.index(self.base)
        return [layer for layer in self.model.layers[1:base_index]]


def build_classifier(settings: TrainingSettings, num_classes: int) -> Classifier:
    """Backbone (weights as set), preprocessing inside, new head with softmax over the classes.

    With pretrained weights the base runs with BatchNorm in inference mode (`training=False`).
    Without (weights "none") there are no statistics worth keeping: the whole network trains
    from scratch with BatchNorm learning, its moving averages made quick enough for small data.
    """
    import keras
    from keras import layers, regularizers

    spec = get_backbone(settings.backbone)
    size = settings.resolved_image_size
    base = build_base(spec, size, settings.weights)
    base.trainable = False
    ends = block_ends(base, spec)  # found on the plain base: the taps below join every block
    if settings.head_reads == "every-block":
        base = with_block_taps(base, ends)
    inputs = keras.Input((size, size, 3), name="pixels")
    x = inputs
    for layer in preprocessing_layers(spec.preprocess):
        x = layer(x)
    if from_scratch(settings):
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = min(layer.momentum, 0.9)
        x = base(x)
    else:
        x = base(x, training=False)
    regulariser = regularizers.L2(settings.l2) if settings.l2 else None
    head = [layers.GlobalAveragePooling2D(name="pool")]
    if settings.dense_units:
        head.append(
            layers.Dense(
                settings.dense_units,
                activation="relu",
                kernel_regularizer=regulariser,
                name="hidden",
            )
        )
    if settings.dropout:
        head.append(layers.Dropout(settings.dropout, seed=settings.seed, name="dropout"))
    # float32 output even under mixed precision: softmax in float16 loses accuracy.
    head.append(
        layers.Dense(
            max(2, num_classes),
            activation="softmax",
            dtype="float32",
            kernel_regularizer=regulariser,
            name="probabilities",
        )
    )
    for layer in head:
        x = layer(x)
    model = keras.Model(inputs, x, name=f"finetune_{spec.name}")
    return Classifier(model, base, head, ends, spec, size, num_classes)


def with_block_taps(base, ends: list[str]):
    """The base, its output widened by the average of every earlier block's output.

    Each earlier block end is averaged over its positions and spread back over the last map,
    so the widened map's global average is the last block's pooled features followed by every
    earlier block's (Head2Toe, Evci et al. 2022: a head reading all blocks transfers better to
    pictures unlike the base's own). On frozen letter features this took scikit-learn's
    logistic regression from 0.80 to 0.98 on face photos, 0.84 to 0.94 on digits and 0.60 to
    0.62 on icons (docs/benchmarks.md). Only built-in layers: the saved model loads anywhere.
    Deep bases get a subset (`tapped_ends`).
    """
    import keras
    from keras import layers

    last = base.output
    height, width = int(last.shape[1]), int(last.shape[2])
    parts = [last]
    for index in tapped_ends(base, ends):
        pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{TAP_PREFIX}pool_{index}")(
            output_of(base, ends[index])
        )
        parts.append(layers.UpSampling2D((height, width), name=f"{TAP_PREFIX}spread_{index}")(pooled))
    widened = layers.Concatenate(name=WIDENED)(parts)
    tapped = keras.Model(base.input, widened, name=base.name)
    tapped.trainable = False
    return tapped


def tapped_ends(base, ends: list[str]) -> list[int]:
    """Which earlier block ends the head reads (indices into `ends`, in order): all of them
    while their channels come to at most TAP_BUDGET times the last block's, else the last end
    of each resolution, earliest first, as long as they fit. Every block end of a ResNet152
    would add 45,824 features to its 2,048, and the cached features and the solved head grow
    with them; the 18 of MobileNetV2 add 1,504 to its 1,280."""
    budget = TAP_BUDGET * int(base.output.shape[-1])
    shapes = [tuple(output_of(base, end).shape[1:]) for end in ends]
    earlier = list(range(len(ends) - 1))
    if sum(shapes[i][-1] for i in earlier) <= budget:
        return earlier
    chosen, used = [], 0
    for i in earlier:
        if shapes[i][:2] == shapes[i + 1][:2]:
            continue  # the next block works at the same resolution: it is that stage's end
        if used + shapes[i][-1] <= budget:
            chosen.append(i)
            used += shapes[i][-1]
    return chosen


def has_block_taps(base) -> bool:
    """Whether `base` is widened by `with_block_taps` (the head reads every block)."""
    return base.layers[-1].name == WIDENED


def last_map(base):
    """The base's own last map: its output, or the map under the block taps."""
    if not has_block_taps(base):
        return base.output
    return base.get_layer(WIDENED).input[0]


def tap_inputs(base, cut: str | None, ends: list[str]) -> list:
    """The averaged block outputs at or below `cut`, in tap order: constants while the layers
    below the cut are frozen, so the fast path stores them with the pooled features."""
    if cut is None:
        return []
    return [output for index, output in block_taps(base) if index <= ends.index(cut)]


def taps_above_cut(base, cut: str, ends: list[str]) -> list:
    """The averaged block outputs above `cut`, in tap order: what the top blocks compute."""
    return [output for index, output in block_taps(base) if index > ends.index(cut)]


def block_taps(base) -> list[tuple[int, object]]:
    """(block end index, its averaged output) of every tap of a widened base, in order."""
    if not has_block_taps(base):
        return []
    prefix = f"{TAP_PREFIX}pool_"
    taps = sorted(int(layer.name.removeprefix(prefix)) for layer in base.layers
                  if layer.name.startswith(prefix))
    return [(i, base.get_layer(f"{prefix}{i}").output) for i in taps]


def from_scratch(settings: TrainingSettings) -> bool:
    """True when there are no pretrained weights: nothing to freeze, everything trains."""
    from finetune_gui.core.model.backbones import weights_kind

    return weights_kind(settings.weights) == "none"


def set_trainable_blocks(classifier: Classifier, unfreeze_blocks: int) -> int:
    """Freeze the base below the cut, unfreeze above it (BatchNorm stays in inference mode).

    Returns the number of trainable parameters. The caller must recompile afterwards.
    """
    base = classifier.base
    if unfreeze_blocks == ALL_BLOCKS:
        base.trainable = True
        for layer in base.layers:
            layer.trainable = True
        return count_trainable(classifier.model)
    cut = cut_layer(classifier.ends, unfreeze_blocks)
    base.trainable = cut is not None
    if cut is not None:
        names = [op.name for op in base.operations]
        after_cut = set(names[names.index(cut) + 1 :])
        for layer in base.layers:
            # Keras 3 passes the outer `training=True` through `base(x, training=False)`, so
            # only a non-trainable BatchNorm is sure to keep its pretrained statistics.
            layer.trainable = layer.name in after_cut and not _is_batchnorm(layer)
    return count_trainable(classifier.model)


def _is_batchnorm(layer) -> bool:
    import keras

    return isinstance(layer, keras.layers.BatchNormalization)


def count_trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@dataclass(frozen=True)
class BlockInfo:
    """One block of the base, for the network picture in the GUI."""

    name: str
    params: int
    trainable: bool
    trainable_params: int = 0  # what an optimiser may change when the block is unfrozen


@dataclass(frozen=True)
class NetworkDescription:
    blocks: list[BlockInfo]
    head_params: int
    trainable_params: int
    total_params: int
    max_unfreeze_blocks: int


def describe_blocks(settings: TrainingSettings, num_classes: int = 2) -> NetworkDescription:
    """The base split into blocks (stem first), which are trainable at this unfreeze depth.

    From scratch (weights "none") every block trains, whatever the unfreeze depth.
    """
    spec = get_backbone(settings.backbone)
    base = build_base(spec, settings.resolved_image_size, None)
    ends = block_ends(base, spec)
    n = min(settings.unfreeze_blocks, max_unfreeze_blocks(ends))
    cut = cut_layer(ends, n)
    ops = [op.name for op in base.operations]
    layer_params = {layer.name: layer.count_params() for layer in base.layers}
    # BatchNorm moving statistics never train: count only weights an optimiser can change.
    scratch = from_scratch(settings)
    layer_trainable = {
        layer.name: 0 if _is_batchnorm(layer) and not scratch else count_trainable(layer)
        for layer in base.layers
    }
    cut_index = ops.index(cut) if cut is not None else len(ops)
    blocks, start = [], 0
    for end in ends:
        stop = ops.index(end)
        members = ops[start : stop + 1]
        params = sum(layer_params.get(name, 0) for name in members)
        learnable = sum(layer_trainable.get(name, 0) for name in members)
        name = "stem" if not blocks else f"block {len(blocks)}"
        blocks.append(BlockInfo(name, int(params), scratch or start > cut_index, int(learnable)))
        start = stop + 1
    features = base.output_shape[-1]
    if settings.head_reads == "every-block":
        features += sum(int(output_of(base, ends[i]).shape[-1]) for i in tapped_ends(base, ends))
    head = features * max(2, num_classes) + max(2, num_classes)
    if settings.dense_units:
        head = features * settings.dense_units + settings.dense_units
        head += settings.dense_units * max(2, num_classes) + max(2, num_classes)
    trainable = sum(b.trainable_params for b in blocks if b.trainable) + head
    total = sum(b.params for b in blocks) + head
    return NetworkDescription(blocks, head, trainable, total, max_unfreeze_blocks(ends))


def recalibrate_batchnorm(
    model, images: np.ndarray, batch_size: int = 32, max_batches: int = 16
) -> None:
    """Recompute BatchNorm moving statistics for the current weights ("precise BN").

    From scratch on a small dataset the moving averages lag far behind weights that change fast,
    so inference-mode outputs collapse to one class. Averaging the batch statistics of a pass over
    training images with frozen weights makes inference match training.
    """
    import keras

    norms = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not norms or len(images) == 0:
        return
    saved = [layer.momentum for layer in norms]
    try:
        starts = list(range(0, len(images), batch_size))[:max_batches]
        for k, start in enumerate(starts, start=1):
            for layer in norms:
                layer.momentum = (k - 1) / k  # a running mean over the batches seen so far
            model(images[start : start + batch_size].astype("float32"), training=True)
    finally:
        for layer, momentum in zip(norms, saved, strict=True):
            layer.momentum = momentum
