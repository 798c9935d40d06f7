"""ONNX files (and so web pages) of backbones beyond MobileNet: the file runs and gives Keras's
answers, or the export says in words why this model has no ONNX form.

Each conversion runs in a child process: converting ConvNeXt and EfficientNet took the process
to 5.9 GB, and a test worker that kept it (on top of the modules it had run before) was killed
for want of memory in a full suite on 2026-12-06."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

CONVERT = textwrap.dedent('''
    import json, sys
    import numpy as np
    from finetune_gui.core.errors import ExportError
    from finetune_gui.core.export.convert import onnx_bytes
    from finetune_gui.core.export.serving import INPUT_NAME, OUTPUT_NAME
    from finetune_gui.core.model.build import build_classifier
    from finetune_gui.core.settings import TrainingSettings

    settings = TrainingSettings(backbone=sys.argv[1], weights="none", image_size=32)
    model = build_classifier(settings, 3).model
    try:
        data = onnx_bytes(model, 32)
    except ExportError as error:
        print("RESULT " + json.dumps({"refused": str(error)}))
        raise SystemExit(0)
    import onnxruntime
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    found = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
    print("RESULT " + json.dumps({
        "inputs": [i.name for i in session.get_inputs()],
        "outputs": [o.name for o in session.get_outputs()],
        "expected_names": [INPUT_NAME, OUTPUT_NAME],
        "largest_difference": float(np.abs(found - np.asarray(model(pixels, training=False))).max()),
    }))
''')


def converted(backbone: str) -> dict:
    """What converting a classifier on `backbone` (32 px, 3 classes) gave, from a child."""
    done = subprocess.run([sys.executable, "-c", CONVERT, backbone], capture_output=True,
                          text=True, check=False, timeout=600)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, done.stderr[-3000:]
    return json.loads(line[len("RESULT "):])


def test_an_efficientnet_onnx_file_runs_and_gives_the_keras_answers():
    """Its input normalisation was made an input no one feeds: ONNX Runtime refused the file."""
    found = converted("efficientnetb0")
    input_name, output_name = found["expected_names"]
    assert found["inputs"] == [input_name] and found["outputs"] == [output_name]
    assert found["largest_difference"] <= 1e-5


def test_a_convnext_model_is_refused_in_words_before_anything_is_written():
    said = converted("convnexttiny")["refused"]
    assert "cannot be saved in the ONNX format" in said and "Erfc" in said
    assert "Nothing was saved" in said and "Keras" in said
