"""Taking a saved classifier apart: preprocessing, the backbone, the head.

Every model this app saves is `pixels -> preprocessing layers -> backbone (one nested Model) ->
pool -> [hidden] -> [dropout] -> probabilities` (core/model/build.py). Insight tools need the pieces:
the backbone's activations for Grad-CAM, the pooled features for the embedding map and the
suspect-label search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finetune_gui.core.errors import RunFolderError

POOL_LAYER = "pool"
OUTPUT_LAYER = "probabilities"


@dataclass
class ClassifierParts:
    model: object  # the whole keras.Model
    preprocess: list  # layers between the input and the backbone
    base: object  # the backbone, a nested keras.Model
    head: list  # pool first, probabilities last

    @property
    def output_layer(self):
        return self.head[-1]


def split_classifier(model) -> ClassifierParts:
    """The parts of a classifier built by core/model/build.py, or `RunFolderError` for another model."""
    import keras

    layers = list(model.layers)
    nested = [i for i, layer in enumerate(layers) if isinstance(layer, keras.Model)]
    names = [layer.name for layer in layers]
    if len(nested) != 1 or POOL_LAYER not in names or names[-1] != OUTPUT_LAYER:
        raise RunFolderError(
            f"The model {model.name} is not one this app built (backbone, '{POOL_LAYER}', "
            f"'{OUTPUT_LAYER}'), so it cannot be looked inside."
        )
    at = nested[0]
    preprocess = [layer for layer in layers[:at] if not isinstance(layer, keras.layers.InputLayer)]
    return ClassifierParts(model, preprocess, layers[at], layers[at + 1 :])


def features_model(model):
    """pixels -> [pooled backbone features, class probabilities], sharing the model's weights."""
    import keras

    return keras.Model(
        model.inputs, [model.get_layer(POOL_LAYER).output, model.outputs[0]], name="insight_probe"
    )


def features_and_probabilities(
    model, images: np.ndarray, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features (N, C) and probabilities (N, K) for uint8 images, in one pass."""
    from finetune_gui.core.data.pipeline import INFERENCE_BATCH, batches

    batch_size = min(batch_size, INFERENCE_BATCH)
    probe = features_model(model)
    if len(images) == 0:
        width = model.get_layer(POOL_LAYER).output.shape[-1]
        return np.zeros((0, width), "float32"), np.zeros((0, model.output_shape[-1]), "float32")
    features, probabilities = probe.predict(batches([images], batch_size), verbose=0)
    return np.asarray(features, "float32"), np.asarray(probabilities, "float32")
