"""The frozen part run through ONNX Runtime instead of TensorFlow, where that is faster.

On a CPU ONNX Runtime runs MobileNetV2's frozen part 2.3-3.7 times as fast as TensorFlow with
the same features (largest difference 5e-7; `benchmarks/frozen_runtime.py`, docs/benchmarks.md),
and the frozen pass is the largest part of a run on a CPU. Converting the frozen part (tf2onnx)
takes 1.2-1.7 s for MobileNetV2 whatever the image size (3-5 s for larger bases), so it is
chosen only when the TensorFlow time it would save is clearly larger, measured on the pass's own
second batch. On a GPU TensorFlow stays.

Only the frozen pass changes runtime: what is computed from it, trained and exported is the
same Keras model as before. Each pass checks one batch of ONNX Runtime's output against
TensorFlow's and keeps TensorFlow on any difference beyond `TOLERANCE` (`same_output`).
"""

from __future__ import annotations

import os
import weakref

import numpy as np

from finetune_gui.core.block_workers import block_workers, usable_cores
from finetune_gui.core.data.pipeline import INFERENCE_BATCH
from finetune_gui.core.data.storage import give_back_memory
from finetune_gui.core.events import LogMessage, ProgressCallback

# tf2onnx on a frozen part (96 px, two blocks above the cut): MobileNetV2 1.2-1.7 s at 48-224
# px, EfficientNetB0 3.0 s, DenseNet121 4.0 s, ResNet50 5.4 s; one value for them all.
CONVERT_SECONDS = 3.5
SAVED_SHARE = 0.5  # the least share of TensorFlow's time ONNX Runtime saved (measured 0.57-0.73)
# Of each output's largest value (at least 1). Measured: 5e-7 with random weights at 32-224 px;
# MobileNetV2 pretrained at 224 px, 1.6e-4 of 11.6 and, in its first-block statistics (logs of
# small spreads), 1.6e-4 of 1.44, which a bound of 1e-4 + 1e-4 of each value refused on a
# 50,000-image run. A conversion gone wrong differs by the values themselves.
TOLERANCE = 1e-3
ONNX_PACKAGES = ("tf2onnx", "onnxruntime")
ONNX_OPSET = 17
# Images per session run, as pixels: ONNX Runtime runs MobileNetV2's frozen part faster on a few
# images at a time than on the pass's batch of 16 once they are large (their activations then
# stay in the CPU's caches). Measured, ms an image at 1 / 2 / 4 / 8 / 16 images a run: 160 px
# -, 2.0, 1.84, 1.95, 2.07; 224 px 3.5, 3.5, 3.6, 3.9, 4.0; at 48 and 96 px 16 was fastest.
PIXELS_PER_RUN = 100_000
RUNTIME_ENV = "FINETUNE_GUI_FROZEN_RUNTIME"  # "tensorflow" or "onnxruntime": no choosing
_converted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # base -> {cut: session}


def use_onnx_runtime(
    *, gpus: int, importable: bool, converted: bool, remaining_seconds: float,
    forced: str | None = None,
) -> bool:
    """Whether the rest of a frozen pass runs through ONNX Runtime. `remaining_seconds`: what
    TensorFlow would take for it, `converted`: the frozen part is converted already (the
    training images' pass converted it, the validation images' pass reuses it)."""
    if forced == "tensorflow" or not importable:
        return False
    if forced == "onnxruntime":
        return True
    if gpus > 0:
        return False  # TensorFlow on the GPU, in mixed precision where it has it
    cost = 0.0 if converted else CONVERT_SECONDS
    return remaining_seconds * SAVED_SHARE > cost


def missing_onnx_packages() -> list[str]:
    """The converter packages this pass, the onnx and the web export need, not installed."""
    import importlib.util

    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


class OnnxFrozenPart:
    """The extractor (`frozen_pass.build_extractor`) as an ONNX Runtime session: float32
    pixels in, its outputs in the same order out, as float32."""

    def __init__(self, extractor, size: int) -> None:
        import logging

        import onnxruntime

        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        # No tf2onnx graph optimizers: ONNX Runtime makes the same rewrites when it loads the
        # model (same speed, measured), and they took 3 of the conversion's 5.6 s.
        proto = keras_to_onnx(extractor, size, optimize=False)
        model = proto.SerializeToString()
        del proto
        # The conversion's working memory (660 MB for MobileNetV2 at 224 px) is freed but kept
        # by the allocator: given back, 110 MB of it stays.
        give_back_memory()
        self.per_run = runs_of(size)
        # Large images: the runs of a batch side by side, a thread each, rather than each run's
        # layers shared among the cores by ONNX Runtime's spinning threads, which lose time to
        # any other work on the machine (the window's own drawing, say). In the frozen pass
        # (MobileNetV2, its cut kept, 2 cores, medians of 8 rounds taking turns), quiet: 7.66 ->
        # 7.04 ms an image at 224 px, 4.21 -> 4.15 at 160; beside a fifth of a core of other
        # work: 8.71 -> 7.65 and 4.49 -> 4.17. At 96 and 48 px, where a batch is one or two
        # uneven runs, it was slower (2.20 -> 2.35, 0.66 -> 0.79): those keep the shared threads.
        self.side_by_side = side_by_side(self.per_run, usable_cores())
        options = onnxruntime.SessionOptions()
        if self.side_by_side:
            options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model, options,
                                                    providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, pixels: np.ndarray) -> list[np.ndarray]:
        pixels = np.asarray(pixels, np.float32)
        parts = [pixels[start : start + self.per_run]
                 for start in range(0, max(len(pixels), 1), self.per_run)]
        with block_workers(len(parts) if self.side_by_side else 1, "frozen-part") as each:
            runs = list(each(lambda part: self.session.run(None, {self.input_name: part}),
                             parts))
        return [np.concatenate([found[k] for found in runs]).astype(np.float32, copy=False)
                for k in range(len(runs[0]))]


def keras_to_onnx(model, size: int, *, optimize: bool = True, input_name: str = "pixels"):
    """The ONNX model (opset 17) of a Keras model taking (N, size, size, 3) float32 pixels.

    From the Keras model, not a tf.function around it: tf2onnx then leaves the constants the
    function captures (EfficientNet's and DenseNet's input normalisation) out of the graph's
    inputs, where `from_function` made them inputs no one feeds, and ONNX Runtime refused every
    such file. `optimize` False skips tf2onnx's own graph optimizers."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, size, size, 3), tf.float32, name=input_name),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=ONNX_OPSET,
                                          optimizers=None if optimize else {})
    return proto


def runs_of(size: int) -> int:
    """Images per session run at `size` px: about `PIXELS_PER_RUN` pixels, 1 to 16 images."""
    return max(1, min(16, round(PIXELS_PER_RUN / (size * size))))


def side_by_side(per_run: int, cores: int) -> bool:
    """Whether a pass's batch runs as whole runs side by side, a core each: when a batch of
    `INFERENCE_BATCH` images makes a run for every core."""
    return cores > 1 and INFERENCE_BATCH // per_run >= cores


def frozen_part_runner(
    base, cut: str | None, extractor, size: int, *, pixels: np.ndarray,
    tensorflow_outputs: list[np.ndarray], remaining_seconds: float, progress: ProgressCallback,
) -> OnnxFrozenPart | None:
    """ONNX Runtime for the rest of a pass, or None to keep TensorFlow: chosen by
    `use_onnx_runtime`, then checked on `pixels`, whose TensorFlow output is given."""
    import tensorflow as tf

    sessions = _converted.setdefault(base, {})
    if not use_onnx_runtime(
        gpus=len(tf.config.list_physical_devices("GPU")), importable=not missing_onnx_packages(),
        converted=cut in sessions, remaining_seconds=remaining_seconds,
        forced=os.environ.get(RUNTIME_ENV),
    ):
        return None
    try:
        runner = sessions.get(cut) or OnnxFrozenPart(extractor, size)
        found = runner(pixels)
    except Exception as error:  # any failure of the faster path keeps the usual one
        progress(LogMessage(f"The frozen layers run in TensorFlow: ONNX Runtime could not take "
                            f"them ({type(error).__name__})."))
        return None
    if not same_output(found, tensorflow_outputs):
        progress(LogMessage("The frozen layers run in TensorFlow: ONNX Runtime's output "
                            "differed from it."))
        sessions.pop(cut, None)
        return None
    if cut not in sessions:
        progress(LogMessage("The frozen layers run through ONNX Runtime, faster than TensorFlow "
                            "on this CPU, with the same output (checked on a batch)."))
    sessions[cut] = runner
    return runner


def same_output(found: list[np.ndarray], expected: list[np.ndarray]) -> bool:
    """Whether another runtime's outputs are TensorFlow's (`expected`) within `TOLERANCE`."""
    return len(found) == len(expected) and all(
        a.shape == b.shape and float(np.abs(a - b).max(initial=0.0))
        <= TOLERANCE * max(1.0, float(np.abs(b).max(initial=0.0)))
        for a, b in zip(found, expected, strict=True))


def runs_through_onnx(base, cut: str | None) -> bool:
    """Whether `base`'s frozen part up to `cut` was converted and checked for this run (and
    TensorFlow is not forced): its passes run through `checked_runner`'s session."""
    return checked_runner(base, cut) is not None


def checked_runner(base, cut: str | None) -> OnnxFrozenPart | None:
    """The session an earlier pass of this run converted and checked for `base`'s frozen part
    up to `cut` (None: there is none, or TensorFlow is forced). A later pass (validation, test,
    the pseudo-outliers) takes it from its first batch: tracing TensorFlow's step for each of
    those passes and checking the session again took 3.4 s of a MNIST run at 160 px."""
    if os.environ.get(RUNTIME_ENV) == "tensorflow":
        return None
    return _converted.get(base, {}).get(cut)


def release(base) -> None:
    """Forget the sessions of `base`'s frozen part once its passes are done: a session keeps
    about 200 MB (MobileNetV2 at 224 px) that the rest of the run needs more."""
    if _converted.pop(base, None):
        give_back_memory()
