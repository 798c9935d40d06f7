"""The run's own images as its model sees them: pooled backbone features of every image in the
split, computed once and kept in the run folder (`features.npz`).

Two depths are kept: the pooled output of the backbone (what the picture shows, as far as the
model knows) and statistics of its first block's output (how it looks: colours, edges, texture):
per channel, the mean over positions and the log of the spread over positions (see
`EARLY_POOLING`).
"Not sure" measures how far a new image is from the training images in either space, and
"similar images" ranks the dataset by the first. Features are L2-normalised, so the
distance is the cosine distance (0 = same direction, 2 = opposite), and stored as float16:
10,000 images of MobileNetV2 (1,280 numbers each) take 25 MB. The file records the size and
time of the model it came from; a changed model.keras makes it stale and it is computed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.core.model.frozen_pass import first_block_statistics

FEATURES_FILE = "features.npz"
# How the first block's output becomes one row per image. The mean alone says which colours and
# edges a picture has; the spread says how they are laid out (flat areas or texture
# everywhere). Measured on 6 icon classes against photo crops, at the rule's 5% rate: the mean
# alone called 63% / 75% of photo crops "not sure" (two runs), mean + log spread 83% / 90%,
# with 5% / 7% of the runs' own test images (docs/benchmarks.md). The log evens out a spread
# that varies a hundredfold between a flat icon and a busy photo.
EARLY_POOLING = "mean+log(std+0.001)"
PARTS = ("train", "val", "test")


@dataclass
class DatasetFeatures:
    """One row per image of the run's split: where it is, its label, its part and features."""

    paths: list[Path]
    labels: np.ndarray  # (N,) class index
    parts: np.ndarray  # (N,) "train" / "val" / "test"
    features: np.ndarray  # (N, C) pooled backbone output, L2-normalised
    probabilities: np.ndarray  # (N, K)
    early: np.ndarray  # (N, 2E) first block's output: per-channel mean, then log spread
    # (N, K) the kept head's k-fold answers (uncalibrated) where training computed them for its
    # temperature, NaN elsewhere; None when it did not (core/run/unseen_answers.py)
    held_out: np.ndarray | None = None

    def of_part(self, part: str) -> np.ndarray:
        return self.parts == part


def normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def early_layer(model) -> str:
    """The layer ending the backbone's first block (inside the nested backbone model)."""
    from finetune_gui.core.model.backbones import block_ends, get_backbone
    from finetune_gui.core.model.parts import split_classifier

    # core/model/build.py names every classifier "finetune_<backbone>".
    base = split_classifier(model).base
    return block_ends(base, get_backbone(model.name.removeprefix("finetune_")))[0]


def _first_block_statistics(model, early: str | None = None):
    """The symbolic first-block statistics (EARLY_POOLING) of `model`'s input."""
    import keras

    from finetune_gui.core.model.backbones import output_of
    from finetune_gui.core.model.parts import split_classifier

    parts = split_classifier(model)
    early = early or early_layer(model)
    inner = keras.Model(parts.base.input, output_of(parts.base, early), name="first_block")
    x = model.inputs[0]
    for layer in parts.preprocess:
        x = layer(x)
    return first_block_statistics(inner(x, training=False))


def first_block_model(model):
    """pixels -> first-block statistics: the first block alone, a small part of the network."""
    import keras

    return keras.Model(model.inputs, _first_block_statistics(model), name="first_block_probe")


def probe_model(model, early: str | None = None):
    """pixels -> [first-block statistics (EARLY_POOLING), backbone pooled features,
    probabilities]."""
    import keras

    from finetune_gui.core.model.parts import POOL_LAYER

    first = _first_block_statistics(model, early)
    outputs = [first, model.get_layer(POOL_LAYER).output, model.outputs[0]]
    return keras.Model(model.inputs, outputs, name="unsure_probe")


def probe(probe, images: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(early features, normalised pooled features, probabilities) for uint8 images."""
    from finetune_gui.core.data.pipeline import INFERENCE_BATCH, batches

    if len(images) == 0:
        widths = [int(t.shape[-1]) for t in probe.outputs]
        empty = [np.zeros((0, w), np.float32) for w in widths[:2]]
        return empty[0], empty[1], np.zeros((0, classes), np.float32)
    early, pooled, probs = probe.predict(batches([images], INFERENCE_BATCH), verbose=0)
    return (
        np.asarray(early, np.float32),
        normalise(pooled),
        np.asarray(probs, np.float32)[:, :classes],
    )


def model_stamp(run) -> str:
    info = run.model_path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}"


def load_cached(run) -> DatasetFeatures | None:
    """The stored features when they belong to the run's current model, else None."""
    source = run.path / FEATURES_FILE
    if not source.is_file():
        return None
    try:
        with np.load(source, allow_pickle=False) as data:
            if str(data["model"]) != model_stamp(run):
                return None
            if "early_pooling" not in data or str(data["early_pooling"]) != EARLY_POOLING:
                return None  # first-block rows of another kind (an older version's mean only)
            return DatasetFeatures(
                [Path(p) for p in data["paths"]],
                data["labels"].astype(int),
                data["parts"].astype(str),
                _features_of(source, data),
                data["probabilities"].astype(np.float32),
                data["early"].astype(np.float32),
                data["held_out"].astype(np.float32) if "held_out" in data else None,
            )
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache is computed again, never trusted


def _features_of(source: Path, data):
    """The features as float32: in RAM when they fit a quarter of the memory budget, as
    before; beyond it read from the file a few rows at a time (the disk store), so a folder of
    200,000 images does not load 2 GB of them."""
    from finetune_gui.core.data.storage import memory_budget

    shape = data["labels"].shape[:1]
    with data.zip.open("features.npy") as member:
        header_shape = _npy_header(member)[0]
    if int(np.prod(header_shape)) * 4 > memory_budget() // 4 and shape[0] == header_shape[0]:
        rows = _member_rows(source, "features")
        if rows is not None:
            return rows
    return data["features"].astype(np.float32)


def save(run, found: DatasetFeatures) -> None:
    """Write features.npz (an ordinary uncompressed .npz) one chunk of rows at a time, so the
    float16 copy of every image's features is never made whole in RAM."""
    from finetune_gui.core.files import atomic_write_with

    arrays = {
        "model": np.array(model_stamp(run)),
        "early_pooling": np.array(EARLY_POOLING),
        "paths": np.array([str(p) for p in found.paths]),
        "labels": found.labels.astype(np.int32),
        "parts": found.parts.astype(str),
        "features": (found.features, np.float16),
        "probabilities": found.probabilities.astype(np.float16),
        "early": found.early.astype(np.float32),
    }
    if found.held_out is not None:
        arrays["held_out"] = found.held_out.astype(np.float32)
    atomic_write_with(run.path / FEATURES_FILE, lambda tmp: _write_npz(tmp, arrays),
                      suffix=".npz")


def _write_npz(path: Path, arrays: dict) -> None:
    import zipfile

    from numpy.lib import format as npy

    from finetune_gui.core.data.storage import row_chunks

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                if not isinstance(value, tuple):
                    npy.write_array(member, np.asanyarray(value), allow_pickle=False)
                    continue
                rows, dtype = value
                npy.write_array_header_1_0(member, {"descr": npy.dtype_to_descr(np.dtype(dtype)),
                                                    "fortran_order": False,
                                                    "shape": tuple(rows.shape)})
                width = int(np.prod(rows.shape[1:]))
                for chunk in row_chunks(len(rows), 4 * width):
                    member.write(np.ascontiguousarray(rows[chunk], dtype).tobytes())


def _npy_header(handle) -> tuple:
    """(shape, fortran order, dtype) of the .npy data starting at `handle`'s position."""
    from numpy.lib import format as npy

    version = npy.read_magic(handle)
    read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    return read(handle)


def _member_rows(path: Path, name: str):
    """The rows of an .npz member read from the file when needed (a `DiskArray`, float32),
    or None when the member is not stored plainly (compressed, or written by another tool)."""
    import zipfile

    from finetune_gui.core.data.storage import DiskArray

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as handle:
            handle.seek(info.header_offset + 26)
            name_length, extra_length = np.frombuffer(handle.read(4), "<u2")
            handle.seek(info.header_offset + 30 + int(name_length) + int(extra_length))
            shape, fortran, dtype = _npy_header(handle)
            offset = handle.tell()
    if fortran or dtype.hasobject:
        return None
    return DiskArray(path, shape, dtype, create=False, delete=False, offset=offset,
                     read_as=np.float32)


def dataset_features(
    run,
    *,
    model=None,
    pixels: dict[str, np.ndarray] | None = None,
    known: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    seeing=None,
    data_root: Path | str | None = None,
    held_out: np.ndarray | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> DatasetFeatures:
    """The run's dataset features: from `features.npz`, or computed now and saved.

    `known` may hold some parts' rows already computed ((early, normalised pooled,
    probabilities), as `probe` returns them: the training job has them from training and from
    scoring the test split), `pixels` already decoded images of other parts, so that nothing
    is read or run twice; `seeing` is the `probe_model` when the caller has built it;
    `held_out` the training then validation images' k-fold answers, kept beside them.
    """
    cached = load_cached(run)
    if cached is not None:
        return cached
    from finetune_gui.core.data.pipeline import decode_images
    split = run.split(data_root)
    pixels, known = pixels or {}, known or {}
    paths, labels, parts, features, probabilities, early = [], [], [], [], [], []
    total = sum(len(getattr(split, part)) for part in PARTS)
    for part in PARTS:
        items = getattr(split, part)
        if not items:
            continue
        rows = known.get(part)
        if rows is None or len(rows[0]) != len(items):
            images = pixels.get(part)
            if images is None or len(images) != len(items):
                images = decode_images(
                    [p for p, _ in items], run.image_size, progress=progress, cancel=cancel,
                    stage="features",
                )
            if seeing is None:
                seeing = probe_model(model or run.load_model())
            rows = probe(seeing, images, len(run.classes))
        first, pooled, probs = rows
        paths += [p for p, _ in items]
        labels += [label for _, label in items]
        parts += [part] * len(items)
        features.append(pooled)
        probabilities.append(probs)
        early.append(first)
    result = DatasetFeatures(
        paths,
        np.array(labels, dtype=int),
        np.array(parts, dtype=str),
        _stacked(features, total),
        np.concatenate(probabilities) if probabilities else np.zeros((0, len(run.classes))),
        np.concatenate(early) if early else np.zeros((0, 0), np.float32),
        _beside_test_rows(held_out, len(split.train) + len(split.val), total),
    )
    save(run, result)
    return result


def _beside_test_rows(held_out: np.ndarray | None, learned: int, total: int):
    """The training and validation images' `held_out` rows, NaN for the test images after
    them; None when there are none, or not one for each of those images."""
    if held_out is None or len(held_out) != learned:
        return None
    rows = np.full((total, held_out.shape[1]), np.nan, np.float32)
    rows[:learned] = held_out
    return rows


def _stacked(pieces: list, total: int):
    """The parts' pooled features one after another, in an array the memory budget holds (or
    the disk store beyond it), copied a chunk at a time: never a second whole copy in RAM."""
    from finetune_gui.core.data.storage import allocate, row_chunks

    if not pieces:
        return np.zeros((0, 0), np.float32)
    width = int(pieces[0].shape[1])
    out = allocate((total, width), np.float32)
    start = 0
    for piece in pieces:
        for chunk in row_chunks(len(piece), 4 * width):
            rows = np.asarray(piece[chunk], np.float32)
            out[start + chunk.start : start + chunk.stop] = rows
        start += len(piece)
    return out
