"""Size and speed of an exported file, measured at export in the format's own runtime.

Speed is the time to classify one image (batch 1, as an app classifying a photo does) with the
runtime that will run the file: Keras, TensorFlow (SavedModel signature), the TensorFlow Lite
interpreter, ONNX Runtime. A few warm-up runs come first (the first calls build kernels and
caches), then repeated runs until `MAX_RUNS` or `TIME_BUDGET` seconds; the median is kept, so a
moment when another program took the processor does not count. Each export's figures are also
kept in the run folder's `exports.json`, for the Export page's table across formats.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.errors import ExportError
from finetune_gui.core.files import atomic_write_text

EXPORTS_FILE = "exports.json"
WARM_UP_RUNS = 3
MIN_RUNS = 5
MAX_RUNS = 30
TIME_BUDGET = 3.0  # seconds of timed runs, at most (after MIN_RUNS)

RUNTIMES = {
    "keras": "Keras 3 on TensorFlow, a direct call model(pixels)",
    "savedmodel": "TensorFlow, the serving_default signature",
    "tflite": "TensorFlow Lite interpreter (XNNPACK on CPU)",
    "tflite-fp16": "TensorFlow Lite interpreter (XNNPACK on CPU)",
    "tflite-int8": "TensorFlow Lite interpreter, integer kernels",
    "onnx": "ONNX Runtime, CPU execution provider",
    "web": "the page's own classify() in headless Chromium (ONNX Runtime Web, WebAssembly), "
           "from the picture file's bytes",
}


@dataclass(frozen=True)
class SpeedMeasurement:
    """How big an exported file is and how long it takes per image on this computer."""

    format: str
    size_bytes: int
    ms_per_image: float  # median of the timed runs
    fastest_ms: float
    slowest_ms: float
    runs: int  # timed runs, after the warm-up
    warm_up_runs: int
    batch: int
    runtime: str
    computer: str  # processor and core count: the figures hold for this computer only
    measured: str

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def size_text(self) -> str:
        return size_text(self.size_bytes)


def size_text(size_bytes: int) -> str:
    """Bytes as a person reads them: 930 KB, 3.6 MB."""
    if size_bytes < 1000 * 1000:
        return f"{size_bytes / 1000:.0f} KB"
    return f"{size_bytes / 1e6:.1f} MB"


def file_size(path: Path) -> int:
    """The bytes of a file, or of every file in a folder (a SavedModel)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def this_computer() -> str:
    processor = platform.processor() or platform.machine()
    return f"{platform.system()} {processor}, {os.cpu_count()} logical cores"


def measure_speed(
    fmt: str, path: Path, image: np.ndarray, image_file: Path | None = None
) -> SpeedMeasurement:
    """Time one-image predictions of the exported `path` (format `fmt`) on `image` (H x W x 3);
    the web page is timed in the browser on `image_file`, the picture `image` was read from."""
    if fmt == "web":
        if image_file is None:
            raise ValueError("the web page is timed on an image file")
        times = _time_in_browser(Path(path), Path(image_file))
    else:
        pixels = np.asarray(image, dtype=np.float32)[None]
        times = _time_calls(_single_image_runner(fmt, Path(path), pixels))
    return SpeedMeasurement(
        format=fmt, size_bytes=file_size(path), ms_per_image=statistics.median(times),
        fastest_ms=min(times), slowest_ms=max(times), runs=len(times),
        warm_up_runs=WARM_UP_RUNS, batch=1, runtime=RUNTIMES[fmt], computer=this_computer(),
        measured=time.strftime("%Y-%m-%dT%H:%M:%S"))


def _time_calls(classify: Callable[[], object]) -> list[float]:
    """Milliseconds of each timed call, after the warm-up calls."""
    for _ in range(WARM_UP_RUNS):
        classify()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < MAX_RUNS and (len(times) < MIN_RUNS
                                     or time.perf_counter() - started < TIME_BUDGET):
        begin = time.perf_counter()
        classify()
        times.append((time.perf_counter() - begin) * 1000)
    return times


# The same loop as _time_calls, run inside the page so the browser's own clock times it.
_BROWSER_LOOP = """(async (text, warm, least, most, budget) => {
  const bytes = Uint8Array.from(atob(text), c => c.charCodeAt(0));
  const picture = new Blob([bytes]);
  for (let i = 0; i < warm; i++) await window.finetuneGui.classify(picture);
  const times = [];
  const started = performance.now();
  while (times.length < most && (times.length < least || performance.now() - started < budget)) {
    const begin = performance.now();
    await window.finetuneGui.classify(picture);
    times.push(performance.now() - begin);
  }
  return times;
})"""


def _time_in_browser(page: Path, image_file: Path) -> list[float]:
    import base64

    from finetune_gui.core.export.browser_check import Browser

    text = base64.b64encode(image_file.read_bytes()).decode()
    with Browser(page) as browser:
        browser.wait_ready()
        times = browser.evaluate(f"{_BROWSER_LOOP}({json.dumps(text)}, {WARM_UP_RUNS}, "
                                 f"{MIN_RUNS}, {MAX_RUNS}, {TIME_BUDGET * 1000})")
    return [float(t) for t in times]


def _single_image_runner(fmt: str, path: Path, pixels: np.ndarray) -> Callable[[], object]:
    """A function that classifies `pixels` once with the file's own runtime, loaded once."""
    from finetune_gui.core.export.runtimes import dequantise, quantise
    from finetune_gui.core.export.serving import INPUT_NAME, OUTPUT_NAME, SIGNATURE

    if fmt == "keras":
        import keras

        model = keras.models.load_model(path, compile=False)
        return lambda: np.asarray(model(pixels, training=False))
    if fmt == "savedmodel":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures[SIGNATURE]
        tensor = tf.constant(pixels)
        return lambda: serve(**{INPUT_NAME: tensor})[OUTPUT_NAME].numpy()
    if fmt.startswith("tflite"):
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter moves to ai_edge_litert
            interpreter = tf.lite.Interpreter(model_path=str(path))
        source = interpreter.get_input_details()[0]
        result = interpreter.get_output_details()[0]
        interpreter.resize_tensor_input(source["index"], list(pixels.shape))
        interpreter.allocate_tensors()
        values = quantise(pixels, source)

        def run_tflite():
            interpreter.set_tensor(source["index"], values)
            interpreter.invoke()
            return dequantise(interpreter.get_tensor(result["index"]), result)

        return run_tflite
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda: session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
    raise ValueError(f"no runtime for the format {fmt!r}")


def speed_card_lines(speed: dict | None) -> list[str]:
    """The model card's section on size and speed (nothing when it was not measured)."""
    if not speed:
        return []
    return [
        "## Size and speed on the computer that exported it",
        "",
        f"- File size: {size_text(speed['size_bytes'])} ({speed['size_bytes']:,} bytes)",
        f"- Time per image: {speed['ms_per_image']:.2f} ms (median of {speed['runs']} runs of "
        f"batch {speed['batch']} after {speed['warm_up_runs']} warm-up runs; fastest "
        f"{speed['fastest_ms']:.2f} ms, slowest {speed['slowest_ms']:.2f} ms)",
        f"- Runtime: {speed['runtime']}; computer: {speed['computer']}; measured "
        f"{speed['measured']}. Other computers and runtimes give other times.",
        "",
    ]


# -- the run's record of its exports ----------------------------------------------------------
def record_export(run_path: Path, speed: SpeedMeasurement, model_path: Path) -> bool:
    """Keep this export's size and speed in the run's exports.json (the latest per format).

    A run folder that cannot be written (read-only, full) costs only the record: the export
    itself is done. Returns whether the record was written.
    """
    records = {entry["format"]: entry for entry in read_exports(run_path)}
    records[speed.format] = {**speed.to_dict(), "path": str(model_path)}
    ordered = [records[name] for name in RUNTIMES if name in records]
    try:
        atomic_write_text(Path(run_path) / EXPORTS_FILE, json.dumps(ordered, indent=2))
    except (OSError, ExportError):
        return False
    return True


def read_exports(run_path: Path) -> list[dict]:
    """The size and speed of each format exported from this run so far (the latest of each),
    in the order of the export formats; empty when none was (or the record is unreadable)."""
    source = Path(run_path) / EXPORTS_FILE
    try:
        entries = json.loads(source.read_text("utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    keys = set(SpeedMeasurement.__dataclass_fields__)
    return [e for e in entries if isinstance(e, dict) and keys <= set(e) and e["format"] in RUNTIMES]
