"""The few lines of Python, one set per format, that classify a photo with the exported file."""

from __future__ import annotations

from finetune_gui.core.export.formats import ExportFormat

_OPEN_IMAGE = (
    'image = Image.open("photo.jpg").convert("RGB").resize(({size}, {size}), '
    "Image.Resampling.BILINEAR)"
)
_LABELS = 'labels = open("labels.txt", encoding="utf-8").read().splitlines()'
_PRINT = "print(labels[probabilities.argmax()], round(float(probabilities.max()), 3))"
_SNIPPETS = {
    "keras": [
        "import keras",
        "import numpy as np",
        "from PIL import Image",
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
        "from PIL import Image",
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
        "from PIL import Image",
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
        "from PIL import Image",
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
        "from PIL import Image",
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

