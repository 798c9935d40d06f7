"""An int8 TFLite file run image by image with the quantisation its model card gives, as a user
who reads the card would run it (tests/core/test_export.py, tests/core/test_export_int8.py)."""

from __future__ import annotations

import json
import warnings

import numpy as np


def int8_probabilities(result, pixels: np.ndarray) -> np.ndarray:
    """Probabilities of `result` (an int8 ExportResult) for `pixels`, checking that the file's
    input quantisation is the one its card states."""
    import tensorflow as tf

    card = json.loads(result.card_json.read_text())
    q = card["input"]["quantization"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(result.model_path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert source["quantization"] == (q["input"]["scale"], q["input"]["zero_point"])
    rows = []
    for image in pixels:
        quantised = np.round(image / q["input"]["scale"] + q["input"]["zero_point"])
        interpreter.set_tensor(source["index"], np.clip(quantised, 0, 255).astype(np.uint8)[None])
        interpreter.invoke()
        raw = interpreter.get_tensor(target["index"])[0].astype(np.float64)
        rows.append((raw - q["output"]["zero_point"]) * q["output"]["scale"])
    return np.array(rows)
