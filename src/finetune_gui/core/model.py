"""Building the classifier: raw RGB pixels (0-255) in, class probabilities out.

Preprocessing uses only built-in Keras layers, so `keras.models.load_model("model.keras")`
works in a plain Python session without this package. The base is always called with
`training=False`, so BatchNorm keeps its ImageNet statistics while the top blocks are tuned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finetune_gui.core.backbones import (
    BackboneSpec,
    block_ends,
    build_base,
    cut_layer,
    get_backbone,
    max_unfreeze_blocks,
)
from finetune_gui.core.settings import TrainingSettings

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


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

    @property
    def preprocess_layers(self) -> list:
        base_index = self.model.layers.index(self.base)
        return [layer for layer in self.model.layers[1:base_index]]


def build_classifier(settings: TrainingSettings, num_classes: int) -> Classifier:
    """Backbone (weights as set), preprocessing inside, new head with softmax over the classes."""
    import keras
    from keras import layers, regularizers

    spec = get_backbone(settings.backbone)
    size = settings.resolved_image_size
    base = build_base(spec, size, settings.weights)
    base.trainable = False
    inputs = keras.Input((size, size, 3), name="pixels")
    x = inputs
    for layer in preprocessing_layers(spec.preprocess):
        x = layer(x)
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
    return Classifier(model, base, head, block_ends(base, spec), spec, size, num_classes)


def set_trainable_blocks(classifier: Classifier, unfreeze_blocks: int) -> int:
    """Freeze the base below the cut, unfreeze above it (BatchNorm stays in inference mode).

    Returns the number of trainable parameters. The caller must recompile afterwards.
    """
    base = classifier.base
    cut = cut_layer(classifier.ends, unfreeze_blocks)
    base.trainable = cut is not None
    if cut is not None:
        names = [op.name for op in base.operations]
        after_cut = set(names[names.index(cut) + 1 :])
        for layer in base.layers:
            layer.trainable = layer.name in after_cut
    return count_trainable(classifier.model)


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
    """The base split into blocks (stem first), which are trainable at this unfreeze depth."""
    spec = get_backbone(settings.backbone)
    base = build_base(spec, settings.resolved_image_size, None)
    ends = block_ends(base, spec)
    n = min(settings.unfreeze_blocks, max_unfreeze_blocks(ends))
    cut = cut_layer(ends, n)
    ops = [op.name for op in base.operations]
    layer_params = {layer.name: layer.count_params() for layer in base.layers}
    # BatchNorm moving statistics never train: count only weights an optimiser can change.
    layer_trainable = {layer.name: count_trainable(layer) for layer in base.layers}
    cut_index = ops.index(cut) if cut is not None else len(ops)
    blocks, start = [], 0
    for end in ends:
        stop = ops.index(end)
        members = ops[start : stop + 1]
        params = sum(layer_params.get(name, 0) for name in members)
        learnable = sum(layer_trainable.get(name, 0) for name in members)
        name = "stem" if not blocks else f"block {len(blocks)}"
        blocks.append(BlockInfo(name, int(params), start > cut_index, int(learnable)))
        start = stop + 1
    features = base.output_shape[-1]
    head = features * max(2, num_classes) + max(2, num_classes)
    if settings.dense_units:
        head = features * settings.dense_units + settings.dense_units
        head += settings.dense_units * max(2, num_classes) + max(2, num_classes)
    trainable = sum(b.trainable_params for b in blocks if b.trainable) + head
    total = sum(b.params for b in blocks) + head
    return NetworkDescription(blocks, head, trainable, total, max_unfreeze_blocks(ends))
