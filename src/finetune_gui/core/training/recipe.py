"""The recipe's choices that need no run state: class weights, optimizer and loss, augmentation,
and the augmented pixel batches the exact mode trains on."""

from __future__ import annotations

import numpy as np

from finetune_gui.core.data.augment import build_augmentation
from finetune_gui.core.data.pipeline import batches
from finetune_gui.core.events import LogMessage, ProgressCallback
from finetune_gui.core.settings import TrainingSettings

# "auto" turns class weights on when the largest class has more than 3x the smallest one's images.
AUTO_CLASS_WEIGHT_RATIO = 3.0


def sample_weights(
    labels: np.ndarray, classes: list[str], mode: str, progress: ProgressCallback
) -> np.ndarray:
    """One weight per training image so each class counts the same (`mode`: on, off or auto)."""
    n_classes = len(classes)
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    present = counts[counts > 0]
    ratio = present.max() / present.min() if len(present) else 1.0
    use = mode == "on" or (mode == "auto" and ratio > AUTO_CLASS_WEIGHT_RATIO)
    if not use:
        return np.ones(len(labels), dtype="float32")
    per_class = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    # Named, so "8.12" can be read as "the rare class counts eight times".
    progress(LogMessage("Class weights on (a rarer class counts more): " + ", ".join(
        f"{name} {weight:.2f}" for name, weight in zip(classes, per_class, strict=True))))
    return per_class[labels].astype("float32")


def make_optimizer(name: str, lr: float):
    """A fresh Keras optimizer by its settings name ("adam", "sgd" with momentum, "rmsprop")."""
    import keras

    return {
        "adam": keras.optimizers.Adam,
        "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9),
        "rmsprop": keras.optimizers.RMSprop,
    }[name](learning_rate=lr)


def compile_for_training(model, optimizer: str, lr: float) -> None:
    """Compile `model` afresh (needed after every change of which layers train) and create the
    optimizer's and the metric's variables now."""
    model.compile(
        optimizer=make_optimizer(optimizer, lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    build_training_state(model)


def build_training_state(model) -> None:
    """Create the optimizer's slots and the accuracy metric's counters before the first step.

    Without a distribution strategy Keras creates them while TensorFlow traces the first
    training step, and TensorFlow then traces that step a second time (a traced function that
    creates variables is traced again without them). Measured on this 2-core CPU, MobileNetV3Small
    from scratch at 32 px, one epoch of 3 steps: 21.3 s with two traces, 10.4 s with one.
    """
    import keras

    build = getattr(model, "_symbolic_build", None)  # what Keras itself runs under a strategy
    if build is None:
        return  # another Keras version: the first step creates them, only slower
    inputs = [keras.KerasTensor((None, *t.shape[1:]), t.dtype) for t in model.inputs]
    labels = keras.KerasTensor((None,), "int32")
    weights = keras.KerasTensor((None,), "float32")
    data = (inputs[0] if len(inputs) == 1 else inputs, labels, weights)
    if not _build_from_output_spec(model, data):
        build(data_batch=data)


def _build_from_output_spec(model, data) -> bool:
    """`_symbolic_build` for a model whose layers are built, from its known output instead of
    a symbolic run of it: that run traced the whole forward pass (0.34-0.38 s of fine-tuning's
    2.1 s on 150 faces at 48 px) only to learn the output's shape. False where this Keras does
    not have the pieces (the caller then runs `_symbolic_build`)."""
    import keras
    from keras.src import backend

    parts = ("_compile_metrics", "_compile_loss", "compute_metrics", "_compute_loss", "_post_build")
    if (len(model.outputs) != 1 or not all(hasattr(model, name) for name in parts)
            or not all(layer.built for layer in model._flatten_layers())):
        return False
    x, y, sample_weight = data
    out = model.outputs[0]
    y_pred = keras.KerasTensor(tuple(out.shape), out.dtype)
    if model._compile_metrics is not None and not model._compile_metrics.built:
        backend.compute_output_spec(model.compute_metrics, x, y, y_pred,
                                    sample_weight=sample_weight)
    if model._compile_loss is not None and not model._compile_loss.built:
        backend.compute_output_spec(model._compute_loss, x, y, y_pred,
                                    sample_weight=sample_weight, training=False)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model._post_build()
    return True


def training_augmentation(settings: TrainingSettings):
    """The run's random changes as a Keras layer stack, or None when they change nothing."""
    if settings.augment.is_off:
        return None
    aug = build_augmentation(settings.augment, seed=settings.seed)
    return aug if aug.layers else None


def augmented_pixel_batches(pixels, labels, weights, augment, batch_size: int, seed: int):
    """Shuffled, repeated (pixels, label, weight) batches, augmented afresh in every epoch."""
    import tensorflow as tf

    ds = batches([pixels, labels, weights], batch_size, shuffle=True, seed=seed, repeat=True)

    def prepare(x, y, w):
        x = tf.cast(x, tf.float32)
        return (augment(x, training=True) if augment is not None else x), y, w

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
