"""ONNX files (and so web pages) of backbones beyond MobileNet: the file runs and gives Keras's
answers, or the export says in words why this model has no ONNX form."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.errors import ExportError
from finetune_gui.core.export.convert import onnx_bytes
from finetune_gui.core.export.serving import INPUT_NAME, OUTPUT_NAME
from finetune_gui.core.model.build import build_classifier
from finetune_gui.core.settings import TrainingSettings


def classifier_model(backbone: str):
    settings = TrainingSettings(backbone=backbone, weights="none", image_size=32)
    return build_classifier(settings, 3).model


def test_an_efficientnet_onnx_file_runs_and_gives_the_keras_answers():
    """Its input normalisation was made an input no one feeds: ONNX Runtime refused the file."""
    import onnxruntime

    model = classifier_model("efficientnetb0")
    session = onnxruntime.InferenceSession(onnx_bytes(model, 32),
                                           providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert [o.name for o in session.get_outputs()] == [OUTPUT_NAME]
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    found = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
    np.testing.assert_allclose(found, np.asarray(model(pixels, training=False)), atol=1e-5)


def test_a_convnext_model_is_refused_in_words_before_anything_is_written():
    with pytest.raises(ExportError) as refused:
        onnx_bytes(classifier_model("convnexttiny"), 32)
    said = str(refused.value)
    assert "cannot be saved in the ONNX format" in said and "Erfc" in said
    assert "Nothing was saved" in said and "Keras" in said
