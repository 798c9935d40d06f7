"""The export formats: THE one list of them, read by the core, the command line and the window.

Adding a format is adding a row to `FORMATS` (and its converter, runtime and usage snippet).
"""

from __future__ import annotations

from dataclasses import dataclass

from finetune_gui.core.errors import ExportError

# Float formats must pick the Keras model's class on 99% of images; full-integer weights and
# activations move probabilities by several hundredths, so int8 has a lower floor of 90%.
FLOAT_MIN_AGREEMENT = 0.99
INT8_MIN_AGREEMENT = 0.90


@dataclass(frozen=True)
class ExportFormat:
    name: str
    title: str
    file_name: str  # the model's name when the destination is a folder
    suffix: str  # a destination ending in this names the model file itself ("" for folders)
    purpose: str
    min_agreement: float
    # When the Keras model's two best classes are closer than this, rounding in this format
    # alone can swap them: such a swap is reported but not held against the export.
    tie_margin: float


FORMATS = {
    f.name: f
    for f in (
        ExportFormat(
            "keras", "Keras 3 model (.keras)", "model.keras", ".keras",
            "Python with Keras 3: predict, inspect, or keep fine-tuning.",
            FLOAT_MIN_AGREEMENT, 1e-3,
        ),
        ExportFormat(
            "savedmodel", "TensorFlow SavedModel", "saved_model", "",
            "TensorFlow Serving, TensorFlow.js and TensorFlow Hub converters, or any "
            "TensorFlow program; the serving signature takes raw RGB pixels.",
            FLOAT_MIN_AGREEMENT, 1e-3,
        ),
        ExportFormat(
            "tflite", "TensorFlow Lite, float32", "model.tflite", ".tflite",
            "Phones and small devices with the TensorFlow Lite (LiteRT) runtime; same numbers "
            "as Keras.",
            FLOAT_MIN_AGREEMENT, 1e-3,
        ),
        ExportFormat(
            "tflite-fp16", "TensorFlow Lite, float16 weights", "model_fp16.tflite", ".tflite",
            "Half the size of float32 TensorFlow Lite; runs fast on mobile GPUs; computes in "
            "float32 on CPUs.",
            FLOAT_MIN_AGREEMENT, 0.05,
        ),
        ExportFormat(
            "tflite-int8", "TensorFlow Lite, full-integer int8", "model_int8.tflite", ".tflite",
            "Microcontrollers, Edge TPU and NPUs that run integers only; a quarter of the "
            "float32 size. Input and output are uint8.",
            INT8_MIN_AGREEMENT, 0.05,
        ),
        ExportFormat(
            "onnx", "ONNX (opset 17)", "model.onnx", ".onnx",
            "ONNX Runtime in Python, C#, C++, Java or JavaScript, and tools that read ONNX.",
            FLOAT_MIN_AGREEMENT, 1e-3,
        ),
        ExportFormat(
            "web", "Web page (.html, works offline)", "model.html", ".html",
            "One page anyone can open by double-click: drop pictures or use the webcam; the "
            "model runs in the browser, offline (ONNX Runtime Web inside the page).",
            FLOAT_MIN_AGREEMENT, 1e-3,
        ),
    )
}


def export_format(fmt: str) -> ExportFormat:
    """The registry's row for `fmt`, or a plain error naming the formats there are."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'; available: {', '.join(FORMATS)}.")
    return FORMATS[fmt]
