"""The frozen part (`frozen_pass.build_extractor`) in TensorFlow, ONNX Runtime and LiteRT
(TFLite's XNNPACK): time per image, the one-off conversion, and the largest difference from
TensorFlow's features. Rounds alternate between the runtimes, so a busy machine slows each alike.

    python benchmarks/frozen_runtime.py --sizes 48 96 160 224 --images 512
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def tensorflow_runner(extractor):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(batch):
        return [tf.cast(o, tf.float32) for o in extractor(tf.cast(batch, tf.float32),
                                                           training=False)]

    return lambda batch: [o.numpy() for o in step(batch)]


def onnx_runner(extractor, size: int):
    from finetune_gui.core.model.onnx_pass import OnnxFrozenPart

    return OnnxFrozenPart(extractor, size)


def litert_runner(extractor, size: int):
    import tensorflow as tf

    signature = [tf.TensorSpec((16, size, size, 3), tf.float32)]
    function = tf.function(lambda x: extractor(x, training=False), input_signature=signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], extractor)
    interpreter = tf.lite.Interpreter(model_content=converter.convert(),
                                      num_threads=os.cpu_count())
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    outputs = interpreter.get_output_details()

    def run(batch):
        interpreter.set_tensor(source, np.asarray(batch, np.float32))
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"]) for d in outputs]

    return run


def same_shape(found: list[np.ndarray], want: np.ndarray) -> np.ndarray:
    """The output of another runtime that matches `want` (their order may differ)."""
    return next(a for a in found if a.shape == want.shape)


def main() -> None:
    from finetune_gui.core.model.build import build_classifier
    from finetune_gui.core.model.frozen_pass import build_extractor
    from finetune_gui.core.settings import TrainingSettings

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[48, 96, 160, 224])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--backbone", default="mobilenetv2")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| size | runtime | conversion | ms per image (best of rounds) | vs TensorFlow "
          "| largest difference from TensorFlow |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        settings = TrainingSettings(backbone=args.backbone, weights="none", image_size=size)
        extractor = build_extractor(build_classifier(settings, 3), None)
        images = np.random.default_rng(0).integers(0, 256, (args.images, size, size, 3),
                                                   dtype=np.uint8)
        runners, conversion = {"TensorFlow": tensorflow_runner(extractor)}, {"TensorFlow": 0.0}
        for name, make in (("ONNX Runtime", onnx_runner), ("LiteRT (XNNPACK)", litert_runner)):
            began = time.perf_counter()
            try:
                runners[name] = make(extractor, size)
            except Exception as error:  # a runtime that cannot take the model is reported
                print(f"| {size} | {name} | failed: {type(error).__name__}: {error} | | | |")
                continue
            conversion[name] = time.perf_counter() - began
        batches = [images[i : i + 16] for i in range(0, len(images) - 15, 16)]
        reference = [np.concatenate(x) for x in zip(*[runners["TensorFlow"](b) for b in batches], strict=True)]
        best = {name: float("inf") for name in runners}
        differences = {}
        for _ in range(args.rounds):
            for name, run in runners.items():
                began = time.perf_counter()
                found = [run(b) for b in batches]
                best[name] = min(best[name], time.perf_counter() - began)
                stacked = [np.concatenate(x) for x in zip(*found, strict=True)]
                differences[name] = max(float(np.abs(same_shape(stacked, want) - want).max())
                                        for want in reference)
        count = len(batches) * 16
        for name in runners:
            print(f"| {size} | {name} | {conversion[name]:.1f} s | {1000 * best[name] / count:.2f} "
                  f"| {best['TensorFlow'] / best[name]:.2f}x | {differences[name]:.1e} |",
                  flush=True)


if __name__ == "__main__":
    main()
