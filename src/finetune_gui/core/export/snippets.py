"""The few lines of Python, one set per format, that classify a photo with the exported file."""

from __future__ import annotations

from finetune_gui.core.export.formats import ExportFormat

# The loader ships beside the model (templates/load_image.py): the pixels training saw, with
# EXIF orientation and transparency on white; `Image.open(f).convert("RGB")` exposes whatever
# colour lies under transparent pixels (0.57 against 0.65 on transparent icons, issue 12).
_OPEN_IMAGE = 'image = load_image("photo.jpg", {size})  # as training loaded it'
_IMPORT_LOADER = "from load_image import load_image  # load_image.py, beside the model"
_LABELS = 'labels = open("labels.txt", encoding="utf-8").read().splitlines()'
_PRINT = "print(labels[probabilities.argmax()], round(float(probabilities.max()), 3))"
_SNIPPETS = {
    "keras": [
        "import keras",
        "import numpy as np",
        _IMPORT_LOADER,
        "",
        'model = keras.models.load_model("{file}")',
        _LABELS,
        _OPEN_IMAGE,
        'pixels = np.asarray(image, dtype="float32")[None]  # 1 x {size} x {size} x 3, RGB 0-255',
        "probabilities = model.predict(pixels, verbose=0)[0]",
        _PRINT,
    ],
    "savedmodel": [
        "import numpy as np",
        "import tensorflow as tf",
        _IMPORT_LOADER,
        "",
        'serve = tf.saved_model.load("{file}").signatures["serving_default"]',
        _LABELS,
        _OPEN_IMAGE,
        'pixels = tf.constant(np.asarray(image, dtype="float32")[None])  # RGB 0-255',
        'probabilities = serve(pixels=pixels)["probabilities"].numpy()[0]',
        _PRINT,
    ],
    "tflite": [
        "import numpy as np",
        "import tensorflow as tf  # or: from ai_edge_litert.interpreter import Interpreter",
        _IMPORT_LOADER,
        "",
        'classify = tf.lite.Interpreter(model_path="{file}").get_signature_runner()',
        _LABELS,
        _OPEN_IMAGE,
        'pixels = np.asarray(image, dtype="float32")[None]  # RGB 0-255',
        'probabilities = classify(pixels=pixels)["probabilities"][0]',
        _PRINT,
    ],
    "tflite-int8": [
        "import numpy as np",
        "import tensorflow as tf  # or: from ai_edge_litert.interpreter import Interpreter",
        _IMPORT_LOADER,
        'classify = tf.lite.Interpreter(model_path="{file}").get_signature_runner()',
        "(scale, zero), (out_scale, out_zero) = {input_q}, {output_q}  # from the model card",
        _LABELS,
        _OPEN_IMAGE,
        "pixels = np.clip(np.round(np.asarray(image) / scale + zero), 0, 255).astype(np.uint8)",
        'probabilities = (classify(pixels=pixels[None])["probabilities"][0] - out_zero) * out_scale',
        _PRINT,
    ],
    "onnx": [
        "import numpy as np",
        "import onnxruntime as ort",
        _IMPORT_LOADER,
        "",
        'session = ort.InferenceSession("{file}", providers=["CPUExecutionProvider"])',
        _LABELS,
        _OPEN_IMAGE,
        'pixels = np.asarray(image, dtype="float32")[None]  # 1 x {size} x {size} x 3, RGB 0-255',
        'probabilities = session.run(["probabilities"], {{"pixels": pixels}})[0][0]',
        _PRINT,
    ],
}
_SNIPPETS["tflite-fp16"] = _SNIPPETS["tflite"]
_SNIPPETS["web"] = [
    "import webbrowser",
    "from pathlib import Path",
    "",
    "# The page needs no server: open it from the disk (or double-click it).",
    'webbrowser.open(Path("{file}").resolve().as_uri())',
]


def usage_snippet(spec: ExportFormat, file_name: str, size: int, quantisation=None) -> str:
    """Ten lines of Python that classify photo.jpg with the exported file (run beside it)."""
    values = {"file": file_name, "size": size, "input_q": "", "output_q": ""}
    if quantisation is not None:
        source, result = quantisation
        values["input_q"] = f"({source['scale']!r}, {source['zero_point']})"
        values["output_q"] = f"({result['scale']!r}, {result['zero_point']})"
    return "\n".join(line.format(**values) for line in _SNIPPETS[spec.name]) + "\n"

