"""Every step of a training run that reads the whole dataset's features stays inside the
memory budget (issue 30): with the budget scaled down to 0.5 MB and 24,000 images' features
in the disk store (20 MB of training features, 40 times the budget), no step may grow the
arrays it holds by a quarter of them.

numpy's arrays are traced (tracemalloc sees them), each step's growth is its peak less what
was held when it started. The steps are those the run takes on its stored features: the head
search and its history row, the refit on training and validation images, the k-fold held-out
answers ("not sure", calibration, suspect labels), features.npz written and read, and the
distances "not sure" measures. `benchmarks/memory_bound.py` measures the whole run.
"""

from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

TRAIN, VAL, WIDTH, CLASSES = 20_000, 4_000, 256, 3
WHOLE = TRAIN * WIDTH * 4  # the training features as float32: 20 MB


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """Training and validation features of three separable classes, in the disk store."""
    from finetune_gui.core.data.storage import allocate, is_on_disk

    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "0.5")
    monkeypatch.setenv("FINETUNE_GUI_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CLASSES, WIDTH)).astype(np.float32)
    parts = {}
    for name, count in (("train", TRAIN), ("val", VAL)):
        labels = np.arange(count) % CLASSES
        pooled = allocate((count, WIDTH), np.float32)
        assert is_on_disk(pooled)
        for start in range(0, count, 1000):
            rows = labels[start : start + 1000]
            noise = rng.normal(scale=3.0, size=(len(rows), WIDTH)).astype(np.float32)
            pooled[start : start + len(rows)] = centres[rows] + noise
        parts[name] = (pooled, labels)
    return parts


def growth(step) -> tuple[object, int]:
    """(what `step()` returned, the most its traced arrays grew by while it ran)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = step()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_the_head_search_fits_a_sample_and_scores_every_row_a_chunk_at_a_time(stored):
    from finetune_gui.core.model.softmax_head import search_softmax_head
    from finetune_gui.core.training.head_solver import history_row

    (train, train_y), (val, val_y) = stored["train"], stored["val"]
    search, grown = growth(lambda: search_softmax_head(train, train_y, val, val_y, CLASSES))
    assert grown < WHOLE / 4, f"the head search grew by {grown / 2**20:.1f} MB"
    chosen = search.chosen
    assert chosen["sampled_from"] == TRAIN and chosen["images"] < TRAIN  # run.json says so
    assert chosen["val_accuracy"] > 0.9  # scored on every validation row
    row, grown = growth(lambda: history_row(search, train, train_y, 1, 1e-3))
    assert grown < WHOLE / 4 and row["accuracy"] > 0.9


def test_the_refit_solves_on_a_sample_of_training_and_validation_rows(stored):
    from finetune_gui.core.events import ignore_progress
    from finetune_gui.core.model.softmax_head import search_softmax_head
    from finetune_gui.core.training.head_refit import refit_on_train_and_val

    (train, train_y), (val, val_y) = stored["train"], stored["val"]
    chosen = search_softmax_head(train, train_y, val, val_y, CLASSES).head
    layer = SimpleNamespace(weights=[np.zeros((WIDTH, CLASSES), np.float32),
                                     np.zeros(CLASSES, np.float32)], units=CLASSES)
    layer.get_weights = lambda: layer.weights
    layer.set_weights = lambda weights: setattr(layer, "weights", weights)
    classifier = SimpleNamespace(head_layers=[layer])
    activations = SimpleNamespace(train=SimpleNamespace(pooled=train),
                                  val=SimpleNamespace(pooled=val), views=1)
    refit, grown = growth(lambda: refit_on_train_and_val(
        classifier, chosen, activations, train_y, val_y, ["a", "b", "c"], "auto",
        ignore_progress))
    assert grown < WHOLE / 4, f"the refit grew by {grown / 2**20:.1f} MB"
    assert refit["images"] == TRAIN + VAL and refit["sample"] < TRAIN + VAL
    assert refit["finished_on"] == TRAIN + VAL  # then solved on every row


def test_a_head_a_sample_started_is_the_head_solved_on_every_row(stored):
    """The sample chooses the strength and where the solver starts; the head is solved on every
    row a chunk at a time, so it is the one a solver holding every row in RAM finds."""
    from finetune_gui.core.model.head_features import Standardiser
    from finetune_gui.core.model.softmax_head import _folded, search_softmax_head
    from finetune_gui.core.model.softmax_solver import fit_softmax

    (train, train_y), (val, _) = stored["train"], stored["val"]
    search, grown = growth(lambda: search_softmax_head(train, train_y, None, None, CLASSES,
                                                       fallback_l2=1e-2))
    assert grown < WHOLE / 4, f"the finished head grew by {grown / 2**20:.1f} MB"
    row = search.chosen
    assert row["images"] < TRAIN and row["finished_on"] == TRAIN
    every = np.asarray(train[:TRAIN], dtype=np.float64)  # outside the traced step
    scaler = Standardiser(every)
    params, loss, _ = fit_softmax(scaler(every), train_y, CLASSES, 1e-2)
    exact = _folded(params, scaler, {"l2": 1e-2, "train_loss": loss, "iterations": 0,
                                     "standardised": True})
    assert row["train_loss"] == pytest.approx(loss, rel=1e-4)
    new = np.asarray(val[:VAL])
    np.testing.assert_allclose(search.head.probabilities(new), exact.probabilities(new),
                               atol=2e-3)


def test_the_held_out_answers_fit_on_samples_and_answer_every_image(stored):
    import importlib

    # Imported first: a module's own objects are traced too, and are not the step's arrays.
    for name in ("linear_model", "model_selection", "pipeline", "preprocessing"):
        importlib.import_module(f"sklearn.{name}")

    from finetune_gui.core.run.unseen_answers import held_out_probabilities, plain_penalty

    train, train_y = stored["train"]
    answers, grown = growth(lambda: held_out_probabilities(
        train, train_y, CLASSES, plain_penalty(TRAIN)))
    assert grown < WHOLE / 4, f"the k-fold answers grew by {grown / 2**20:.1f} MB"
    assert answers.shape == (TRAIN, CLASSES)
    assert (answers.argmax(axis=1) == train_y).mean() > 0.9  # every image answered


def test_distances_to_the_reference_are_measured_a_chunk_at_a_time(stored):
    from finetune_gui.core.run.distance_signal import DistanceSignal

    train, train_y = stored["train"]
    signal = DistanceSignal.fit("pool", train[:2000], train_y[:2000], straight=True)
    features = np.asarray(train[:8000])
    for measure in (signal.distances, signal.straight_distances):
        # The whole matrix to the 1,000 reference rows: 8,000 x 1,000 float64, 64 MB.
        found, grown = growth(lambda measure=measure: measure(features, leave_out_self=True))
        assert grown < 16 * 2**20 and found.shape == (8000,)


def test_features_npz_is_written_and_read_a_chunk_at_a_time(stored, tmp_path):
    from finetune_gui.core.data.storage import DiskArray
    from finetune_gui.core.run import dataset_features

    train, _ = stored["train"]
    path = tmp_path / "features.npz"
    _, grown = growth(lambda: dataset_features._write_npz(
        path, {"labels": np.zeros(TRAIN, np.int32), "features": (train, np.float16)}))
    assert grown < WHOLE / 4, f"writing features.npz grew by {grown / 2**20:.1f} MB"
    with np.load(path) as data:
        rows, grown = growth(lambda: dataset_features._features_of(path, data))
        assert grown < WHOLE / 4 and isinstance(rows, DiskArray)
        np.testing.assert_array_equal(rows[5:9], np.asarray(train[5:9]).astype(np.float16))


def test_a_capped_sample_keeps_every_class_in_proportion():
    from finetune_gui.core.data.storage import capped_sample

    labels = np.array([0] * 9000 + [1] * 900 + [2] * 3)
    assert capped_sample(labels, len(labels)) is None  # everything fits: no sample
    rows = capped_sample(labels, 1000)
    assert np.all(np.diff(rows) > 0) and len(rows) <= 1003
    counts = np.bincount(labels[rows])
    assert abs(counts[0] - 908) <= 1 and abs(counts[1] - 90) <= 1 and counts[2] == 1


def test_features_npz_beyond_the_budget_are_read_from_the_file(tmp_path, monkeypatch):
    """features.npz stays an ordinary .npz (np.load reads it), written a chunk at a time;
    beyond a quarter of the budget its features are rows read from the file, as float32."""
    from finetune_gui.core.data.storage import DiskArray
    from finetune_gui.core.run import dataset_features

    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "0.5")
    features = np.random.default_rng(0).normal(size=(3000, 64)).astype(np.float32)
    path = tmp_path / "features.npz"
    dataset_features._write_npz(path, {"labels": np.zeros(3000, np.int32),
                                       "features": (features, np.float16)})
    with np.load(path) as data:
        np.testing.assert_array_equal(data["features"], features.astype(np.float16))
        rows = dataset_features._features_of(path, data)
    assert isinstance(rows, DiskArray) and rows.dtype == np.float32
    mask = np.arange(3000) % 7 == 0
    np.testing.assert_array_equal(rows[mask], features[mask].astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(rows[10:20], features[10:20].astype(np.float16).astype(np.float32))


def test_the_duplicate_candidates_are_found_a_block_at_a_time(monkeypatch):
    """Each block of images is compared with every image whose key is near: with thousands of
    images that window holds a large share of the folder, and the block's distance matrices
    must then shrink with the budget rather than grow with the folder."""
    from finetune_gui.core.data.candidates import candidate_pairs
    from finetune_gui.core.data.hashing import DIGEST_BYTES, FINGERPRINT_BYTES, GREY_SIDE

    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "0.5")
    rng = np.random.default_rng(0)
    count, grey = 4000, GREY_SIDE * GREY_SIDE
    head, tail = DIGEST_BYTES + 4, FINGERPRINT_BYTES - DIGEST_BYTES - 4 - grey
    fingerprints = [rng.integers(0, 256, head + grey, dtype=np.uint8).tobytes() + bytes(tail)
                    for _ in range(count)]
    pairs, grown = growth(lambda: candidate_pairs(fingerprints))
    # 512 rows against a third of 4,000 images: five such matrices were 30 MB.
    assert grown < 8 * 2**20, f"the candidate pairs grew by {grown / 2**20:.1f} MB"
    assert pairs.ndim == 2 and pairs.shape[1] == 2


def test_the_duplicate_check_compares_colours_a_chunk_of_pairs_at_a_time(monkeypatch):
    """A folder of look-alikes has hundreds of thousands of candidate pairs (377,628 for 20,000
    generated shapes): two colour thumbnails per pair, and the measures' copies of them, were
    870 MB there and 6.5 GB at 50,000. They go a chunk of pairs at a time, inside the budget."""
    from finetune_gui.core.data.hashing import DIGEST_BYTES, FINGERPRINT_BYTES
    from finetune_gui.core.data.similarity import PixelCheck

    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "0.5")
    rng = np.random.default_rng(1)
    count = 400  # every pair of 400 images: 79,800 pairs, 2 x 768 bytes of colours each
    fingerprints = [bytes(DIGEST_BYTES + 4) + rng.integers(
        0, 256, FINGERPRINT_BYTES - DIGEST_BYTES - 4, dtype=np.uint8).tobytes()
        for _ in range(count)]
    pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    verdicts, grown = growth(lambda: PixelCheck(fingerprints).same_picture(pairs))
    assert grown < 40 * 2**20, f"the colour check grew by {grown / 2**20:.1f} MB"
    assert len(verdicts) == len(pairs) and not any(verdicts)  # random pictures: none the same


def test_the_pseudo_outliers_are_made_one_picture_at_a_time():
    """"Not sure" is chosen with pictures that belong to no class, made from 200 validation
    images. Their random colour fields were drawn for all 200 at once in float64: 0.5 GB at
    224 px, the peak of a 50,000-image run. The same pictures now come one at a time."""
    from finetune_gui.core.run.unsure import pseudo_outliers

    images = np.random.default_rng(2).integers(0, 256, (40, 224, 224, 3), dtype=np.uint8)
    made, grown = growth(lambda: pseudo_outliers(images, seed=3))
    assert made.shape == (80, 224, 224, 3) and made.dtype == np.uint8
    assert not np.array_equal(made[:40], images)  # tiles shuffled
    # The result (twice the input) and its two halves: four times the input, and one picture.
    assert grown < 5 * images.nbytes, f"the pseudo-outliers grew by {grown / 2**20:.1f} MB"


def test_the_files_looked_at_again_stay_within_a_share_of_the_budget(monkeypatch):
    """Pairs of images above 32 px are compared on the files, read again; kept all, they grew
    with the folder (340 MB among 30,000 generated shapes at 96 px)."""
    from finetune_gui.core.data.hashing import FINGERPRINT_BYTES
    from finetune_gui.core.data.similarity import PixelCheck

    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "0.5")
    read = []

    def look(index, side):
        read.append(index)
        return np.full((side, side), index % 256, np.float32)

    check = PixelCheck([bytes(FINGERPRINT_BYTES)] * 400, look)
    for index in range(400):
        assert check._grey(index, 64)[0, 0] == index % 256
    assert check._looked_bytes <= 0.5 * 2**20 / 16 + 64 * 64 * 4  # 16 KB each: 6.4 MB for all
    assert check._grey(399, 64)[0, 0] == 399 % 256 and read.count(399) == 1  # the newest is kept


def test_fine_tuning_inputs_below_the_cut_stay_within_the_budget(monkeypatch):
    """The pooled block outputs below the cut that the top blocks' model reads beside the stored
    activations: copied into RAM whole, they were 0.7 GB for 140,000 images at 96 px."""
    from finetune_gui.core.data.storage import allocate, is_on_disk
    from finetune_gui.core.model.backbones import cut_layer
    from finetune_gui.core.model.build import build_classifier, last_map
    from finetune_gui.core.model.frozen_pass import stored_below_cut
    from finetune_gui.core.settings import TrainingSettings

    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "0.5")
    clf = build_classifier(TrainingSettings(backbone="mobilenetv2", weights="none",
                                            image_size=32), 3)
    width = int(clf.base.output_shape[-1])
    images = 3_000
    pooled = allocate((images, width), np.float32)  # 33 MB: on disk
    assert is_on_disk(pooled)
    rng = np.random.default_rng(0)
    for start in range(0, images, 1000):
        pooled[start : start + 1000] = rng.normal(size=(1000, width)).astype(np.float32)
    cut = cut_layer(clf.ends, 2)
    below, grown = growth(lambda: stored_below_cut(clf, cut, pooled))
    whole = images * below.shape[1] * 4
    assert grown < whole / 4, f"grew by {grown / 2**20:.1f} MB of {whole / 2**20:.1f} MB"
    first = int(last_map(clf.base).shape[-1])
    np.testing.assert_array_equal(below[[0, 1234, images - 1]],
                                  pooled[[0, 1234, images - 1]][:, first : first + below.shape[1]])
