"""The serving signature every export shares: float32 `pixels` (RGB 0-255) in, `probabilities` out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
SIGNATURE = "serving_default"


def serving_function(model, size: int) -> tuple[Callable, list]:
    """The function every format serves (raw pixels to probabilities) and its input signature."""
    import tensorflow as tf

    signature = [tf.TensorSpec([None, size, size, 3], tf.float32, name=INPUT_NAME)]

    def serve(pixels):
        return {OUTPUT_NAME: model(pixels, training=False)}

    return serve, signature


def write_saved_model(model, size: int, folder: Path) -> None:
    """A SavedModel whose `serving_default` maps float32 `pixels` (0-255) to `probabilities`."""
    import keras

    serve, signature = serving_function(model, size)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=signature)
    archive.write_out(str(folder), verbose=False)

