"""Converting the run's Keras model into each format's file, in the export's scratch folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from finetune_gui.core.errors import ExportError
from finetune_gui.core.export import web
from finetune_gui.core.export.destination import copy_tree
from finetune_gui.core.export.formats import ExportFormat
from finetune_gui.core.export.serving import INPUT_NAME, OUTPUT_NAME, SIGNATURE
from finetune_gui.core.export.session import session_models
from finetune_gui.core.model.onnx_pass import keras_to_onnx
from finetune_gui.core.run.folder import RunFolder


def require_onnx() -> None:
    """Fail before any work when the optional ONNX packages are missing or broken."""
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as exc:
        if exc.name in ("tf2onnx", "onnxruntime"):
            raise ExportError(
                f"The onnx format needs the optional package {exc.name}, which is not installed. "
                f"Install it with: pip install 'finetune-gui[onnx]' "
                f"(that is tf2onnx and onnxruntime)."
            ) from exc
        raise ExportError(
            f"The onnx format needs tf2onnx and onnxruntime, but they cannot be imported here "
            f"({exc}). Reinstall them with: pip install --upgrade 'finetune-gui[onnx]'."
        ) from exc


def convert(
    spec: ExportFormat, run: RunFolder, model, target: Path, calibration: np.ndarray | None
) -> None:
    """Build the model file (or SavedModel folder) at `target`, in the scratch folder."""
    try:
        if spec.name == "keras":
            # The run's own file, byte for byte: what was trained is what is shipped.
            shutil.copyfile(run.model_path, target)
        elif spec.name == "savedmodel":
            copy_tree(session_models.saved_model(run), target)
        elif spec.name.startswith("tflite"):
            target.write_bytes(tflite_bytes(session_models.saved_model(run), spec.name, calibration))
        elif spec.name == "onnx":
            target.write_bytes(onnx_bytes(model, run.image_size))
        elif spec.name == "web":
            target.write_text(web_page_for(run, onnx_bytes(model, run.image_size)), "utf-8")
    except (ExportError, MemoryError):
        raise
    except Exception as exc:  # converters raise anything; the user needs one line
        raise ExportError(
            f"Converting the model to {spec.title} failed: {exc}. Nothing was saved; the "
            f"Keras format always works."
        ) from exc



def tflite_bytes(saved_model: Path, fmt: str, calibration: np.ndarray | None) -> bytes:
    """A TensorFlow Lite file of the SavedModel as `fmt` (float32, float16 weights or int8)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), [SIGNATURE])
    if fmt == "tflite-fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "tflite-int8":
        if calibration is None or not len(calibration):
            raise ExportError("The int8 export needs training images to calibrate on.")

        def representative():
            for image in calibration:
                yield [image[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # uint8 in: the calibrated input scale comes out near 1, so camera pixels go in as is.
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


def onnx_bytes(model, size: int) -> bytes:
    """An ONNX file (opset 17) of the Keras model, with the same input and output names."""
    import keras

    pixels = keras.Input((size, size, 3), name=INPUT_NAME)
    serving = keras.Model(pixels, model(pixels, training=False))
    proto = keras_to_onnx(serving, size, input_name=INPUT_NAME)
    refuse_unconverted(proto)
    # The output is named after the Keras model; every format calls it OUTPUT_NAME.
    named = proto.graph.output[0].name
    for node in proto.graph.node:
        node.input[:] = [OUTPUT_NAME if name == named else name for name in node.input]
        node.output[:] = [OUTPUT_NAME if name == named else name for name in node.output]
    proto.graph.output[0].name = OUTPUT_NAME
    # tf2onnx names the free batch dimension "unk__123"; a readable name helps in viewers.
    for value in [*proto.graph.input, *proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return proto.SerializeToString()


def refuse_unconverted(proto) -> None:
    """Raise an `ExportError` in words when tf2onnx left TensorFlow operations it has no ONNX
    form for in the graph (ConvNeXt's exact GELU and its depthwise convolution): no ONNX
    runtime can run such a file, and its own error names graph nodes, not the way out."""
    from onnx import defs

    left = sorted({node.op_type for node in proto.graph.node
                   if node.domain in ("", "ai.onnx") and not defs.has(node.op_type)})
    if left:
        raise ExportError(
            f"This model cannot be saved in the ONNX format (nor as a web page, which runs "
            f"it): the converter, tf2onnx, has no ONNX form for {len(left)} of its "
            f"{'operation' if len(left) == 1 else 'operations'} ({', '.join(left)}). "
            f"Nothing was saved; the Keras, SavedModel and "
            f"TFLite formats do not need it.")


def web_page_for(run: RunFolder, onnx_model: bytes) -> str:
    """The self-contained page: the ONNX model, the runtime and the page code in one file."""
    config = web.page_config(
        run.path.name, list(run.classes), run.image_size, run.report, run.facts,
        INPUT_NAME, OUTPUT_NAME,
    )
    return web.web_page(onnx_model, config, web.require_runtime())
