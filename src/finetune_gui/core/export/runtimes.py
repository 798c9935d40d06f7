"""Running an exported file with the runtime that will use it, to get its probabilities."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from finetune_gui.core.errors import ExportError
from finetune_gui.core.export.formats import ExportFormat
from finetune_gui.core.export.serving import INPUT_NAME, OUTPUT_NAME, SIGNATURE

PREDICT_CHUNK = 32


def predict_keras_model(model, images: np.ndarray) -> np.ndarray:
    """The Keras model's probabilities on `images`, in chunks."""
    # Direct calls, not model.predict: predict traces a new tf.function for every model loaded,
    # which costs seconds and warns about retracing when several exports run in one session.
    return np.concatenate(
        [np.asarray(model(chunk, training=False)) for chunk in _chunks(images)]
    ).astype(np.float32)


def _chunks(images: np.ndarray):
    for start in range(0, len(images), PREDICT_CHUNK):
        yield images[start : start + PREDICT_CHUNK].astype(np.float32)


def predict_keras_file(path: Path, images: np.ndarray) -> np.ndarray:
    import keras

    return predict_keras_model(keras.models.load_model(path), images)


def predict_saved_model(path: Path, images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures[SIGNATURE]
    return np.concatenate(
        [serve(**{INPUT_NAME: tf.constant(chunk)})[OUTPUT_NAME].numpy() for chunk in _chunks(images)]
    )


def predict_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    """Run a .tflite file; quantised inputs and outputs are converted with their scale/zero."""
    import tensorflow as tf

    with warnings.catch_warnings():
        # TF 2.21 warns that tf.lite.Interpreter moves to ai_edge_litert; it still works.
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    source = interpreter.get_input_details()[0]
    result = interpreter.get_output_details()[0]
    outputs = []
    for chunk in _chunks(images):
        interpreter.resize_tensor_input(source["index"], list(chunk.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], quantise(chunk, source))
        interpreter.invoke()
        outputs.append(dequantise(interpreter.get_tensor(result["index"]), result))
    return np.concatenate(outputs)


def quantise(values: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return values.astype(dtype)
    scale, zero_point = detail["quantization"]
    limits = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), limits.min, limits.max).astype(dtype)


def dequantise(values: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def predict_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate(
        [session.run([OUTPUT_NAME], {INPUT_NAME: chunk})[0] for chunk in _chunks(images)]
    )


def predict_web(path: Path, inputs: tuple[list[Path], list[str]]) -> np.ndarray:
    """The page's probabilities for each image file, in the order of the given class names."""
    from finetune_gui.core.export.browser_check import classify_in_browser

    image_paths, classes = inputs
    return classify_in_browser(path, image_paths, classes)


PREDICTORS: dict[str, Callable[[Path, np.ndarray], np.ndarray]] = {
    "keras": predict_keras_file,
    "savedmodel": predict_saved_model,
    "tflite": predict_tflite,
    "tflite-fp16": predict_tflite,
    "tflite-int8": predict_tflite,
    "onnx": predict_onnx,
    "web": predict_web,
}


def run_export(spec: ExportFormat, path: Path, images: np.ndarray) -> np.ndarray:
    """The exported file's probabilities from its own runtime; a file it cannot run fails."""
    try:
        return np.asarray(PREDICTORS[spec.name](path, images), dtype=np.float32)
    except MemoryError:
        raise
    except Exception as exc:  # a file its own runtime cannot run is a failed export
        raise ExportError(
            f"The {spec.title} file was written but cannot be run by its own runtime: {exc}. "
            f"Nothing was saved."
        ) from exc

