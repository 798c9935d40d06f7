"""Exporting a trained model for other programs, checked before it is kept.

Every export is built in a private scratch folder, reloaded with the runtime that will use it
(Keras, TensorFlow, TensorFlow Lite, ONNX Runtime) and compared with the Keras model on
held-out images. Only a file that passes is copied to the destination, together with
labels.txt, metrics.json and a model card (Markdown and JSON); the copies are staged beside
their targets and renamed into place at the end, so a failure, a full disk or a cancel leaves
no partial file behind.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from finetune_gui import __version__
from finetune_gui.core.data.dataset import DatasetSplit
from finetune_gui.core.errors import DatasetError, ExportError, SettingsError
from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.export.templates import LOADER_FILE, LOADER_TEMPLATE  # the card's loader
from finetune_gui.core.files import _describe_os_error, give_user_permissions
from finetune_gui.core.model.backbones import get_backbone, weights_kind
from finetune_gui.core.run.folder import (
    LABELS_FILE,
    METRICS_FILE,
    SPLIT_FILE,
    RunFolder,
)

CARD_MARKDOWN = "model_card.md"
CARD_JSON = "model_card.json"
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
SIGNATURE = "serving_default"
MAX_VERIFY_IMAGES = 200
MAX_CALIBRATION_IMAGES = 100
PREDICT_CHUNK = 32
ONNX_OPSET = 17
# Float formats must pick the Keras model's class on 99% of images; full-integer weights and
# activations move probabilities by several hundredths, so int8 has a lower floor of 90%.
FLOAT_MIN_AGREEMENT = 0.99
INT8_MIN_AGREEMENT = 0.90
STEPS = ("images", "convert", "verify", "card", "save")


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
    )
}


@dataclass(frozen=True)
class Verification:
    """How closely the exported file follows the Keras model on the same images."""

    n_images: int
    images: str  # where they came from, in words
    agreement: float  # share of images where both pick the same top class
    max_abs_diff: float  # the largest difference of any class probability on any image
    near_tie_flips: int  # disagreements where the Keras model's top two were within tie_margin
    judged_agreement: float  # agreement counting near-tie flips as agreeing
    min_agreement: float
    tie_margin: float
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExportResult:
    format: str
    model_path: Path
    written: list[Path]  # model, labels.txt, metrics.json (when the run has it), both cards
    card_markdown: Path
    card_json: Path
    verification: Verification

    @property
    def agreement(self) -> float:
        return self.verification.agreement

    @property
    def max_abs_diff(self) -> float:
        return self.verification.max_abs_diff

    @property
    def n_images(self) -> int:
        return self.verification.n_images


def export_model(
    run: RunFolder | Path | str,
    fmt: str,
    to: Path | str,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    data_root: Path | str | None = None,
    min_agreement: float | None = None,
) -> ExportResult:
    """Write `run`'s model as `fmt` to `to`, verified, with labels and a model card beside it.

    `to` ending in the format's suffix (.keras, .tflite, .onnx) names the model file; anything
    else is a folder (created if its parent exists) that receives the model under its default
    name. `data_root` is where the run's images are now, if the folder was moved. `min_agreement`
    overrides the format's floor for the share of images where the export and Keras agree.
    """
    run = run if isinstance(run, RunFolder) else RunFolder.open(run)
    spec = _format(fmt)
    if fmt == "onnx":
        _require_onnx()
    floor = spec.min_agreement if min_agreement is None else float(min_agreement)
    if not 0.0 <= floor <= 1.0:
        raise SettingsError(f"The minimum agreement must be between 0 and 1; got {min_agreement}.")
    folder, model_target = _destination(spec, to)
    _check_destination(run, spec, folder, model_target)
    progress(StageStarted("export", len(STEPS), f"Exporting {run.path.name} as {spec.title}"))

    scratch = Path(tempfile.mkdtemp(prefix="finetune-gui-export-"))
    try:
        out = scratch / "out"
        out.mkdir()
        split = _load_split(run, data_root)
        verify_paths, described = _verification_paths(split, progress)
        verify_images = _decode(verify_paths, run.image_size, progress, cancel)
        calibration = None
        if fmt == "tflite-int8":
            calibration = _decode(
                _calibration_paths(split), run.image_size, progress, cancel
            )
        progress(StageProgress("export", 1, len(STEPS)))
        check_cancel(cancel)

        model = _session.model(run)
        reference = _predict_keras_model(model, verify_images)
        built = out / model_target.name
        _convert(spec, run, model, built, calibration)
        progress(StageProgress("export", 2, len(STEPS)))
        check_cancel(cancel)

        exported = _run_export(spec, built, verify_images)
        verification = judge(reference, exported, spec, floor, described)
        progress(LogMessage(f"{spec.title}: " + _verification_line(verification)))
        if not verification.passed:
            raise ExportError(_failure_message(spec, verification))
        progress(StageProgress("export", 3, len(STEPS)))
        check_cancel(cancel)

        shutil.copyfile(run.path / LABELS_FILE, out / LABELS_FILE)
        has_metrics = (run.path / METRICS_FILE).is_file()
        if has_metrics:
            shutil.copyfile(run.path / METRICS_FILE, out / METRICS_FILE)
        card = model_card(run, spec, built, model_target.name, split, verification, progress)
        (out / CARD_JSON).write_text(
            json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        (out / CARD_MARKDOWN).write_text(card_markdown(card), encoding="utf-8")
        shutil.copyfile(LOADER_TEMPLATE, out / LOADER_FILE)
        progress(StageProgress("export", 4, len(STEPS)))
        check_cancel(cancel)

        names = [model_target.name, LABELS_FILE, *([METRICS_FILE] if has_metrics else [])]
        names += [CARD_MARKDOWN, CARD_JSON, LOADER_FILE]
        written = _publish([(out / name, folder / name) for name in names], folder, cancel)
        progress(StageProgress("export", 5, len(STEPS)))
        progress(LogMessage(f"Exported {model_target} ({spec.title})."))
        return ExportResult(
            fmt, model_target, written, folder / CARD_MARKDOWN, folder / CARD_JSON, verification
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- where the files go -----------------------------------------------------------------------
def _format(fmt: str) -> ExportFormat:
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'; available: {', '.join(FORMATS)}.")
    return FORMATS[fmt]


def _require_onnx() -> None:
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


def _destination(spec: ExportFormat, to: Path | str) -> tuple[Path, Path]:
    """(folder, model path) for a destination that names either the model file or a folder."""
    to = Path(to).expanduser()
    suffix = to.suffix.lower()
    if spec.suffix and suffix == spec.suffix:
        return to.parent, to
    other = {f.suffix for f in FORMATS.values() if f.suffix} - {spec.suffix}
    if suffix in other:
        hint = f"a path ending in {spec.suffix} or a folder" if spec.suffix else "a folder"
        raise ExportError(
            f"{to} ends in {suffix}, which is not a {spec.title} file; give {hint}."
        )
    return to, to / spec.file_name


def _check_destination(
    run: RunFolder, spec: ExportFormat, folder: Path, model_target: Path
) -> None:
    """Refuse, before any slow work, a destination that cannot be written."""
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise ExportError(f"Cannot export to {folder}: {parent} is a file, not a folder.")
    if not folder.is_dir() and not folder.parent.is_dir():
        raise ExportError(f"Cannot export to {folder}: the folder {folder.parent} does not exist.")
    if folder.is_dir() and folder.resolve() == run.path.resolve():
        raise ExportError(
            f"Cannot export into the run folder {folder} itself; choose another folder."
        )
    makes_folder = not spec.suffix
    if model_target.is_dir() and not makes_folder:
        raise ExportError(f"Cannot write {model_target}: a folder of that name is in the way.")
    if model_target.exists() and not model_target.is_dir() and makes_folder:
        raise ExportError(f"Cannot write {model_target}: a file of that name is in the way.")


def _publish(pairs: list[tuple[Path, Path]], folder: Path, cancel) -> list[Path]:
    """Copy each (source, target) to a hidden file beside its target, then rename all.

    Only renames happen after the last copy succeeded, so a full disk or a cancel while
    copying leaves the destination as it was (a folder created here is removed again).
    """
    created = False
    if not folder.is_dir():
        try:
            folder.mkdir()
            created = True
        except OSError as exc:
            raise ExportError(_describe_os_error(folder, exc)) from exc
    staged: list[tuple[Path, Path]] = []
    try:
        for source, target in pairs:
            check_cancel(cancel)
            staged.append((_stage(source, target), target))
        for temporary, target in staged:
            _replace(temporary, target)
        return [target for _, target in staged]
    finally:
        for temporary, _ in staged:
            _remove(temporary)
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _stage(source: Path, target: Path) -> Path:
    prefix, suffix = f".{target.name}.", ".part"
    temporary = None
    try:
        if source.is_dir():
            temporary = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=target.parent))
            give_user_permissions(temporary)
            _copy_tree(source, temporary)
        else:
            handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
            os.close(handle)
            temporary = Path(name)
            give_user_permissions(temporary)
            _copy_file(source, temporary)
    except OSError as exc:
        if temporary is not None:
            _remove(temporary)
        raise ExportError(_describe_os_error(target, exc)) from exc
    return temporary


def _copy_file(source: Path, target: Path) -> None:
    # Our own copy with fsync: shutil.copytree would bundle a full disk into shutil.Error
    # without an errno, and the rename must not reach the disk before the bytes do.
    with open(source, "rb") as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())


def _copy_tree(source: Path, target: Path) -> None:
    for here, dirs, files in os.walk(source):
        destination = target / Path(here).relative_to(source)
        destination.mkdir(exist_ok=True)
        for name in dirs:
            (destination / name).mkdir(exist_ok=True)
        for name in files:
            _copy_file(Path(here) / name, destination / name)


def _replace(temporary: Path, target: Path) -> None:
    try:
        if temporary.is_dir() and target.is_dir():
            # A folder cannot be renamed over a non-empty folder: move the old one aside first.
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            os.replace(temporary, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, target)
    except OSError as exc:
        raise ExportError(_describe_os_error(target, exc)) from exc


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


# -- the images the export is checked and calibrated on ---------------------------------------
def _load_split(run: RunFolder, data_root: Path | str | None) -> DatasetSplit:
    source = run.path / SPLIT_FILE
    if not source.is_file():
        raise ExportError(
            f"The run folder {run.path} has no {SPLIT_FILE}, so there are no held-out images "
            f"to check the export against."
        )
    try:
        split = DatasetSplit.load(source, Path(data_root).expanduser() if data_root else None)
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"The run folder {run.path} has a damaged {SPLIT_FILE}: {exc}.") from exc
    if not split.root.is_dir():
        raise ExportError(
            f"The images of this run are no longer in {split.root}, and the export must be "
            f"checked on some of them. Put the folder back, or give its new place "
            f"(finetune-gui export ... --data FOLDER)."
        )
    return split


def _verification_paths(split: DatasetSplit, progress) -> tuple[list[Path], str]:
    """Held-out images (test first, then validation) that still exist, and how to name them."""
    held_out = [("test", p) for p, _ in split.test] + [("validation", p) for p, _ in split.val]
    kind = "held-out images"
    if not held_out:
        held_out = [("training", p) for p, _ in split.train]
        kind = "training images (the run has no test or validation images)"
    present = [(name, p) for name, p in held_out if p.is_file()]
    if not present:
        raise ExportError(
            f"None of the {len(held_out)} images to check the export on is in {split.root} "
            f"any more, so the export cannot be verified. Put the images back, or give the "
            f"folder's new place (finetune-gui export ... --data FOLDER)."
        )
    if len(present) < len(held_out):
        progress(
            LogMessage(
                f"{len(held_out) - len(present)} of {len(held_out)} images to verify on are "
                f"missing from {split.root}; verifying on the {len(present)} that remain.",
                "warning",
            )
        )
    chosen = _spread(present, MAX_VERIFY_IMAGES)
    if kind == "held-out images":
        counts = Counter(name for name, _ in chosen)  # insertion order: test, then validation
        kind = f"held-out images ({', '.join(f'{n} {name}' for name, n in counts.items())})"
    return [p for _, p in chosen], kind


def _calibration_paths(split: DatasetSplit) -> list[Path]:
    present = [p for p, _ in split.train if p.is_file()]
    if not present:
        raise ExportError(
            f"The int8 export is calibrated on the training images, and none of them is in "
            f"{split.root} any more. Put them back, or give the folder's new place "
            f"(finetune-gui export ... --data FOLDER)."
        )
    return _spread(present, MAX_CALIBRATION_IMAGES)


def _spread(items: list, limit: int) -> list:
    """At most `limit` items, evenly spaced, so every class (the lists are sorted) is included."""
    if len(items) <= limit:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit)]


def _decode(paths: list[Path], size: int, progress, cancel) -> np.ndarray:
    from finetune_gui.core.data.pipeline import decode_images

    try:
        return np.asarray(decode_images(paths, size, progress=progress, cancel=cancel))
    except DatasetError as exc:
        raise ExportError(f"The export could not read its check images: {exc}") from exc


# -- conversion -------------------------------------------------------------------------------
def _convert(spec, run: RunFolder, model, target: Path, calibration) -> None:
    """Build the model file (or SavedModel folder) at `target`, in the scratch folder."""
    try:
        if spec.name == "keras":
            # The run's own file, byte for byte: what was trained is what is shipped.
            shutil.copyfile(run.model_path, target)
        elif spec.name == "savedmodel":
            _copy_tree(_session.saved_model(run), target)
        elif spec.name.startswith("tflite"):
            target.write_bytes(tflite_bytes(_session.saved_model(run), spec.name, calibration))
        elif spec.name == "onnx":
            target.write_bytes(onnx_bytes(model, run.image_size))
    except (ExportError, MemoryError):
        raise
    except Exception as exc:  # converters raise anything; the user needs one line
        raise ExportError(
            f"Converting the model to {spec.title} failed: {exc}. Nothing was saved; the "
            f"Keras format always works."
        ) from exc


def _serving_function(model, size: int):
    import tensorflow as tf

    signature = [tf.TensorSpec([None, size, size, 3], tf.float32, name=INPUT_NAME)]

    def serve(pixels):
        return {OUTPUT_NAME: model(pixels, training=False)}

    return serve, signature


@dataclass
class _LoadedModel:
    key: tuple  # model file, its mtime and size, image size: a retrained file is a new key
    model: object
    saved_model: Path | None = None


class _SessionModels:
    """The last exported run's Keras model and SavedModel, kept for the next export.

    Loading a model takes seconds and writing a SavedModel traces the whole network (seconds
    for a small model, a minute for a large one); the SavedModel and all three TensorFlow Lite
    formats start from it, and the GUI often exports several formats in a row. Only the latest
    model is kept, and its SavedModel is deleted when the next model or the process comes.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entry: _LoadedModel | None = None

    def model(self, run: RunFolder):
        with self.lock:
            return self._entry(run).model

    def saved_model(self, run: RunFolder) -> Path:
        with self.lock:
            entry = self._entry(run)
            if entry.saved_model is None or not (entry.saved_model / "saved_model.pb").is_file():
                folder = Path(tempfile.mkdtemp(prefix="finetune-gui-savedmodel-")) / "saved_model"
                try:
                    write_saved_model(entry.model, run.image_size, folder)
                except BaseException:
                    shutil.rmtree(folder.parent, ignore_errors=True)
                    raise
                entry.saved_model = folder
            return entry.saved_model

    def forget(self) -> None:
        if self.entry is not None and self.entry.saved_model is not None:
            shutil.rmtree(self.entry.saved_model.parent, ignore_errors=True)
        self.entry = None

    def _entry(self, run: RunFolder) -> _LoadedModel:
        stat = run.model_path.stat()
        key = (str(run.model_path.resolve()), stat.st_mtime_ns, stat.st_size, run.image_size)
        if self.entry is None or self.entry.key != key:
            self.forget()
            self.entry = _LoadedModel(key, run.load_model())
        return self.entry


_session = _SessionModels()
atexit.register(_session.forget)


def write_saved_model(model, size: int, folder: Path) -> None:
    """A SavedModel whose `serving_default` maps float32 `pixels` (0-255) to `probabilities`."""
    import keras

    serve, signature = _serving_function(model, size)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=signature)
    archive.write_out(str(folder), verbose=False)


def tflite_bytes(saved_model: Path, fmt: str, calibration: np.ndarray | None) -> bytes:
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
    import tensorflow as tf
    import tf2onnx

    serve, signature = _serving_function(model, size)
    # autograph=False: `serve` has no Python control flow, and AutoGraph fails to parse the
    # closure's source (a warning asking to report it to the TensorFlow team).
    function = tf.function(serve, input_signature=signature, autograph=False)
    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=signature, opset=ONNX_OPSET
    )
    # tf2onnx names the free batch dimension "unk__123"; a readable name helps in viewers.
    for value in [*proto.graph.input, *proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return proto.SerializeToString()


# -- running the exported file ----------------------------------------------------------------
def _predict_keras_model(model, images: np.ndarray) -> np.ndarray:
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

    return _predict_keras_model(keras.models.load_model(path), images)


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


PREDICTORS: dict[str, Callable[[Path, np.ndarray], np.ndarray]] = {
    "keras": predict_keras_file,
    "savedmodel": predict_saved_model,
    "tflite": predict_tflite,
    "tflite-fp16": predict_tflite,
    "tflite-int8": predict_tflite,
    "onnx": predict_onnx,
}


def _run_export(spec: ExportFormat, path: Path, images: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(PREDICTORS[spec.name](path, images), dtype=np.float32)
    except MemoryError:
        raise
    except Exception as exc:  # a file its own runtime cannot run is a failed export
        raise ExportError(
            f"The {spec.title} file was written but cannot be run by its own runtime: {exc}. "
            f"Nothing was saved."
        ) from exc


def judge(
    reference: np.ndarray,
    exported: np.ndarray,
    spec: ExportFormat,
    min_agreement: float,
    images: str = "images",
) -> Verification:
    """Compare the exported model's probabilities with the Keras model's on the same images."""
    n = len(reference)
    if exported.shape != reference.shape or not np.all(np.isfinite(exported)):
        return Verification(
            n, images, 0.0, float("inf"), 0, 0.0, min_agreement, spec.tie_margin, False
        )
    same = exported.argmax(axis=1) == reference.argmax(axis=1)
    top_two = np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else None
    near_tie = (
        (top_two[:, 1] - top_two[:, 0]) < spec.tie_margin
        if top_two is not None
        else np.zeros(n, dtype=bool)
    )
    flips = int(np.sum(~same & near_tie))
    agreement = float(same.mean()) if n else 0.0
    judged = float((same | near_tie).mean()) if n else 0.0
    return Verification(
        n_images=n,
        images=images,
        agreement=agreement,
        max_abs_diff=float(np.abs(exported - reference).max()) if n else 0.0,
        near_tie_flips=flips,
        judged_agreement=judged,
        min_agreement=min_agreement,
        tie_margin=spec.tie_margin,
        passed=n > 0 and judged >= min_agreement,
    )


def _verification_line(v: Verification) -> str:
    ties = f" ({v.near_tie_flips} near-tie swaps)" if v.near_tie_flips else ""
    return (
        f"same top class as Keras on {v.agreement:.1%} of {v.n_images} {v.images}{ties}; "
        f"largest probability difference {v.max_abs_diff:.2g}."
    )


def _failure_message(spec: ExportFormat, v: Verification) -> str:
    if not np.isfinite(v.max_abs_diff):
        what = "gives missing or invalid numbers (NaN, infinity or the wrong shape)"
    else:
        what = (
            f"picks the Keras model's class for only {v.judged_agreement:.1%} of "
            f"{v.n_images} {v.images}, where {v.min_agreement:.0%} is needed, and its "
            f"probabilities differ by up to {v.max_abs_diff:.3f}"
        )
    advice = (
        " Full-integer quantisation loses this much on some models: export tflite-fp16 "
        "instead, or accept it with a lower --min-agreement."
        if spec.name == "tflite-int8"
        else " This is a converter problem; the Keras format always works."
    )
    return f"The {spec.title} export does not behave like the trained model: it {what}. " \
        f"Nothing was saved.{advice}"


# -- the model card ---------------------------------------------------------------------------
PREPROCESSING = {
    "tf": "scaled to -1..1",
    "caffe": "RGB to BGR, ImageNet mean subtracted",
    "torch": "ImageNet mean and standard deviation",
    "none": "the backbone normalises the pixels itself",
}


def model_card(
    run: RunFolder,
    spec: ExportFormat,
    model_file: Path,
    file_name: str,
    split: DatasetSplit,
    verification: Verification,
    progress: ProgressCallback = ignore_progress,
) -> dict:
    """Everything a user of the file needs to know, as a JSON-ready dict."""
    import keras
    import tensorflow as tf

    backbone = get_backbone(run.settings.backbone)
    size = run.image_size
    report = run.report
    quantisation = _tflite_quantisation(model_file) if spec.name == "tflite-int8" else None
    card = {
        "name": run.path.name,
        "format": spec.name,
        "format_title": spec.title,
        "purpose": spec.purpose,
        "file": file_name,
        "file_sha256": tree_sha256(model_file),
        "labels_file": LABELS_FILE,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "exported_with": {
            "finetune_gui": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "classes": list(run.classes),
        "input": _input_card(size, backbone.preprocess, quantisation),
        "output": {
            "name": OUTPUT_NAME,
            "shape": [None, len(run.classes)],
            "meaning": "softmax probabilities, one per class in labels.txt order (sum 1)",
        },
        "backbone": {
            "name": backbone.name,
            "keras_application": backbone.keras_name,
            "weights": _weights_text(run.settings.weights),
            "params_millions": backbone.params_millions,
        },
        "training": {
            "settings": run.settings.to_dict(),
            "status": run.status,
            "best_epoch": run.facts.get("best_epoch"),
            "trained_with": {k: run.facts.get(k) for k in ("tensorflow", "keras", "finetune_gui")},
        },
        "dataset": dataset_summary(split, progress),
        "test_metrics": _metrics_card(report),
        "verification": verification.to_dict(),
        "usage_python": usage_snippet(spec, file_name, size, quantisation),
    }
    return card


def _input_card(size: int, preprocess: str, quantisation: tuple[dict, dict] | None) -> dict:
    data = {
        "name": INPUT_NAME,
        "shape": [None, size, size, 3],
        "dtype": "float32",
        "pixel_range": [0, 255],
        "colour": "RGB",
        "resize": f"bilinear to {size} x {size} pixels, whole image, no crop",
        "preprocessing": f"inside the model ({PREPROCESSING[preprocess]}); give raw pixels",
    }
    if quantisation is not None:
        source, result = quantisation
        data["dtype"] = np.dtype(source["dtype"]).name
        data["quantization"] = {
            "input": {"scale": source["scale"], "zero_point": source["zero_point"]},
            "output": {"scale": result["scale"], "zero_point": result["zero_point"]},
            "rule": "input = round(pixel / scale + zero_point); "
            "probability = (output - zero_point) * scale",
        }
    return data


def _tflite_quantisation(model_file: Path) -> tuple[dict, dict]:
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(model_file))

    def describe(detail: dict) -> dict:
        scale, zero_point = detail["quantization"]
        return {"dtype": detail["dtype"], "scale": float(scale), "zero_point": int(zero_point)}

    return (
        describe(interpreter.get_input_details()[0]),
        describe(interpreter.get_output_details()[0]),
    )


def _weights_text(weights: str) -> str:
    kind = weights_kind(weights)
    if kind == "none":
        return "none (trained from scratch)"
    if kind == "imagenet":
        return "ImageNet (Keras Applications)"
    return f"a local weights file: {Path(weights).name}"


def _metrics_card(report) -> dict | None:
    if report is None:
        return None
    return {
        "images": report.count,
        "accuracy": report.accuracy,
        "accuracy_interval_95": report.accuracy_interval,
        "rough_estimate_note": report.rough_note,
        "macro_avg": report.macro_avg,
        "weighted_avg": report.weighted_avg,
        "per_class": [asdict(m) for m in report.per_class],
        "roc_auc": report.roc_auc,
    }


def dataset_summary(split: DatasetSplit, progress: ProgressCallback = ignore_progress) -> dict:
    """Counts per split and class, and a hash of the file list and of every file's bytes.

    The content hash identifies exactly these images (names, labels, bytes) as they are now;
    it is left out, with the reason, when some files are missing.
    """
    parts = {"train": split.train, "val": split.val, "test": split.test}
    total = sum(len(items) for items in parts.values())
    progress(StageStarted("hash", total, f"Hashing {total} images for the model card"))
    listing, content = hashlib.sha256(), hashlib.sha256()
    missing, done = 0, 0
    for name, items in parts.items():
        for path, label in items:
            line = f"{name}\t{_relative(path, split.root)}\t{label}"
            listing.update(f"{line}\n".encode())
            try:
                with open(path, "rb") as handle:
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
            except OSError:
                missing += 1
                digest = "missing"
            content.update(f"{line}\t{digest}\n".encode())
            done += 1
            if done % 200 == 0 or done == total:
                progress(StageProgress("hash", done, total))
    per_class = {
        name: {
            part: sum(1 for _, label in items if label == index)
            for part, items in parts.items()
        }
        for index, name in enumerate(split.classes)
    }
    return {
        "root": str(split.root),
        "images": total,
        "counts": split.counts(),
        "per_class": per_class,
        "split_seed": split.seed,
        "content_sha256": content.hexdigest() if not missing else None,
        "file_list_sha256": listing.hexdigest(),
        "missing_files": missing,
        "hash_note": (
            "sha256 over every image's split, relative path, label and file sha256, "
            "computed at export time"
            if not missing
            else f"no content hash: {missing} image(s) are missing from the folder"
        ),
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def tree_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's relative paths and file hashes in sorted order."""
    if path.is_file():
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\t{tree_sha256(item)}\n".encode())
    return digest.hexdigest()


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


def usage_snippet(spec: ExportFormat, file_name: str, size: int, quantisation=None) -> str:
    """Ten lines of Python that classify photo.jpg with the exported file (run beside it)."""
    values = {"file": file_name, "size": size, "input_q": "", "output_q": ""}
    if quantisation is not None:
        source, result = quantisation
        values["input_q"] = f"({source['scale']!r}, {source['zero_point']})"
        values["output_q"] = f"({result['scale']!r}, {result['zero_point']})"
    return "\n".join(line.format(**values) for line in _SNIPPETS[spec.name]) + "\n"


def _card_interval(metrics: dict) -> str:
    interval = metrics.get("accuracy_interval_95")
    return f" (95% interval {interval[0]:.1%}-{interval[1]:.1%})" if interval else ""


def _card_range(interval) -> str:
    return f"{interval[0]:.3f}-{interval[1]:.3f}" if interval else "-"


def card_markdown(card: dict) -> str:
    """The model card as a page a person reads."""
    v = card["verification"]
    data = card["dataset"]
    source = card["input"]
    settings = card["training"]["settings"]
    lines = [
        f"# {card['name']}: {card['format_title']}",
        "",
        f"{card['purpose']}",
        "",
        f"- File: `{card['file']}` (sha256 `{card['file_sha256']}`)",
        f"- Labels: `{card['labels_file']}`, one class a line, in output order",
        f"- Exported {card['exported']} with finetune-gui {card['exported_with']['finetune_gui']}, "
        f"TensorFlow {card['exported_with']['tensorflow']}, Keras {card['exported_with']['keras']}",
        "",
        "## Classes",
        "",
        *[f"{i}. {name}" for i, name in enumerate(card["classes"])],
        "",
        "## Input and output",
        "",
        f"- Input `{source['name']}`: {source['dtype']}, shape "
        f"{_shape(source['shape'])}, {source['colour']} pixels "
        f"{source['pixel_range'][0]}-{source['pixel_range'][1]}, "
        f"{source['resize']}; preprocessing is {source['preprocessing']}.",
    ]
    if "quantization" in source:
        q = source["quantization"]
        lines.append(
            f"- Quantisation: input scale {q['input']['scale']:g}, zero point "
            f"{q['input']['zero_point']}; output scale {q['output']['scale']:g}, zero point "
            f"{q['output']['zero_point']} ({q['rule']})."
        )
    lines += [
        f"- Output `{card['output']['name']}`: shape {_shape(card['output']['shape'])}, "
        f"{card['output']['meaning']}.",
        "",
        "## Model and training",
        "",
        f"- Backbone: {card['backbone']['keras_application']} "
        f"({card['backbone']['params_millions']} M parameters), weights: "
        f"{card['backbone']['weights']}",
        f"- Training at {card['input']['shape'][1]} px: {settings['epochs_head']} epoch(s) "
        f"on the new head (learning rate {settings['lr_head']:g}), "
        f"{settings['epochs_finetune']} epoch(s) of fine-tuning with the top "
        f"{settings['unfreeze_blocks']} block(s) unfrozen; batch {settings['batch_size']}, "
        f"{settings['optimizer']}, augmentation {_augment_text(settings['augment'])}, "
        f"dropout {settings['dropout']:g}, seed {settings['seed']}",
        f"- Run status: {card['training']['status']}; best epoch: "
        f"{card['training']['best_epoch']}",
        "",
        "## Data",
        "",
        f"- Folder: `{data['root']}`, {data['images']} images: {data['counts']['train']} "
        f"train, {data['counts']['val']} validation, {data['counts']['test']} test "
        f"(split seed {data['split_seed']})",
        *[
            f"- {name}: {c['train']} train, {c['val']} validation, {c['test']} test"
            for name, c in data["per_class"].items()
        ],
        f"- Content hash: `{data['content_sha256'] or 'not available'}` ({data['hash_note']})",
        f"- File list hash: `{data['file_list_sha256']}`",
        "",
        "## Test results",
        "",
    ]
    metrics = card["test_metrics"]
    if metrics is None:
        lines.append("Not measured: the run ended before its test images were evaluated.")
    else:
        lines += [
            f"Accuracy {metrics['accuracy']:.1%}{_card_interval(metrics)} on "
            f"{metrics['images']} test images; macro F1 {metrics['macro_avg'].get('f1', 0):.3f}.",
            *([metrics["rough_estimate_note"]] if metrics.get("rough_estimate_note") else []),
            "",
            "| class | precision | recall | recall 95% interval | F1 | images |",
            "|---|---|---|---|---|---|",
            *[
                f"| {m['name']} | {m['precision']:.3f} | {m['recall']:.3f} | "
                f"{_card_range(m.get('recall_interval'))} | {m['f1']:.3f} | {m['support']} |"
                for m in metrics["per_class"]
            ],
        ]
    lines += [
        "",
        "## Verification of this file",
        "",
        f"Reloaded with its own runtime and run on {v['n_images']} {v['images']}, then "
        f"compared with the Keras model:",
        "",
        f"- Same top class: {v['agreement']:.1%} of images"
        + (
            f" ({v['near_tie_flips']} swap(s) where the Keras model's top two classes were "
            f"within {v['tie_margin']:g}, counted as agreeing: {v['judged_agreement']:.1%})"
            if v["near_tie_flips"]
            else ""
        ),
        f"- Largest difference of any class probability: {v['max_abs_diff']:.3g}",
        f"- Required: at least {v['min_agreement']:.0%} agreement; passed.",
        "",
        "## Use it in Python",
        "",
        "Run beside the model file and labels.txt:",
        "",
        "```python",
        card["usage_python"].rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


def _shape(shape: list) -> str:
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"


def _augment_text(augment: dict) -> str:
    active = [f"{k} {v}" for k, v in augment.items() if v not in (0, 0.0, "none", None, "")]
    return ", ".join(active) if active else "none"
