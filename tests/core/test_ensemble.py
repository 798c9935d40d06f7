"""Ensembles: two real tiny runs on the same images and split (32 and 40 px) are combined; the
saved model is one Keras file that averages the members, scored on the shared test split beside
each member, and exports to every format with the same verification as a single run. Runs
that differ are refused in one sentence, before any model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.compare_runs import FILES, fake_run
from tests.conftest import folder_fingerprint
from tests.core.test_export_web import needs_browser

from finetune_gui.core.data.images import load_rgb
from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.errors import EnsembleError, RunFolderError
from finetune_gui.core.export.benchmark import file_size, read_exports, size_text
from finetune_gui.core.export.formats import FORMATS
from finetune_gui.core.model.parts import features_model, split_classifier
from finetune_gui.core.run.compare import compare_runs
from finetune_gui.core.run.ensemble import ENSEMBLE_FILE
from finetune_gui.core.run.folder import RunFolder
from finetune_gui.core.training.ensemble_run import combine_runs


@pytest.fixture(scope="module")
def member_runs(ensemble_members) -> list[Path]:
    """Two runs on one folder and one split (same seed), at two input sizes (tests/conftest.py)."""
    return ensemble_members


@pytest.fixture(scope="module")
def ensemble(member_runs, tmp_path_factory):
    before = [folder_fingerprint(run) for run in member_runs]
    out = tmp_path_factory.mktemp("ensemble-out") / "ensemble"
    result = combine_runs(member_runs, out)
    assert [folder_fingerprint(run) for run in member_runs] == before  # members untouched
    return result


@pytest.mark.slow
def test_the_saved_model_is_the_mean_of_the_members_on_the_test_split(ensemble, member_runs):
    import keras
    import tensorflow as tf

    run = RunFolder.open(ensemble.path)
    assert run.image_size == 40 and run.classes == RunFolder.open(member_runs[0]).classes
    split = DatasetSplit.load(ensemble.path / "split.json")
    images = np.stack([load_rgb(p, 40) for p, _ in split.test]).astype("float32")
    labels = np.array([label for _, label in split.test])
    # Independently: each member's own file on its own input size, then the mean.
    small = keras.models.load_model(member_runs[0] / "model.keras")
    large = keras.models.load_model(member_runs[1] / "model.keras")
    resized = tf.image.resize(images, (32, 32), method="bilinear").numpy()
    expected = (np.asarray(small(resized)) + np.asarray(large(images))) / 2
    saved = keras.models.load_model(ensemble.path / "model.keras")  # plain Keras, one file
    assert saved.output_shape == (None, 3) and saved.input_shape == (None, 40, 40, 3)
    np.testing.assert_allclose(np.asarray(saved(images)), expected, atol=1e-5)
    assert ensemble.accuracy == pytest.approx(np.mean(expected.argmax(axis=1) == labels))
    assert run.report.accuracy == ensemble.accuracy and run.report.count == len(labels)
    # Heatmaps, the map and suspects need one backbone: an ensemble says so plainly.
    for look_inside in (split_classifier, features_model):
        with pytest.raises(RunFolderError, match="This run is an ensemble of several runs"):
            look_inside(saved)


@pytest.mark.slow
def test_each_member_is_scored_on_the_same_images_beside_the_ensemble(ensemble, member_runs):
    small, large = ensemble.members
    assert (small.image_size, small.resized_inside) == (32, True)
    assert (large.image_size, large.resized_inside) == (40, False)
    # The member at the ensemble's size sees exactly what it saw in its own test.
    assert large.test_accuracy == pytest.approx(RunFolder.open(member_runs[1]).report.accuracy)
    assert large.recorded_test_accuracy == large.test_accuracy
    written = json.loads((ensemble.path / ENSEMBLE_FILE).read_text())
    assert [m["path"] for m in written["members"]] == [str(p) for p in member_runs]
    assert [m["test_accuracy"] for m in written["members"]] == [
        small.test_accuracy, large.test_accuracy]
    assert written["test_accuracy"] == ensemble.accuracy
    comparison = compare_runs([*member_runs, ensemble.path])
    assert comparison.same_data  # the ensemble is on the members' images: its score compares
    assert comparison.names[2].startswith("Ensemble of 2 · data · ")
    assert comparison.metrics["test accuracy"][2] == ensemble.accuracy
    assert comparison.differing["ensemble of"] == [None, None, ("run-32", "run-40")]


FILE_FORMATS = [f for f in FORMATS if f != "web"]


@pytest.mark.slow
def test_the_ensemble_exports_to_every_file_format_and_passes_verification(ensemble, tmp_path):
    from finetune_gui.core.export.job import export_model

    for fmt in FILE_FORMATS:
        # As in test_export: int8 of a network trained one epoch from scratch is only required
        # to be written and reported truthfully; every float format must pass the 99% floor.
        floor = 0.0 if fmt == "tflite-int8" else None
        result = export_model(ensemble.path, fmt, tmp_path / fmt, min_agreement=floor)
        assert result.verification.passed, fmt
        if fmt != "tflite-int8":
            assert result.verification.agreement >= 0.99, fmt
            assert result.verification.max_abs_diff < (0.1 if fmt == "tflite-fp16" else 1e-4)
        card = json.loads(result.card_json.read_text())
        assert card["classes"] == RunFolder.open(ensemble.path).classes
        assert card["input"]["shape"] == [None, 40, 40, 3]
        assert [m["test_accuracy"] for m in card["ensemble"]["members"]] == [
            m.test_accuracy for m in ensemble.members]
        # Size and time per image, measured in the format's own runtime, in both cards.
        speed = card["size_and_speed"]
        assert speed["format"] == fmt and speed["batch"] == 1 and speed["ms_per_image"] > 0
        assert speed["size_bytes"] == file_size(result.model_path) > 0
        page = result.card_markdown.read_text()
        assert "## Ensemble" in page and "## Size and speed on the computer" in page
        assert f"{size_text(speed['size_bytes'])} ({speed['size_bytes']:,} bytes)" in page
    recorded = read_exports(ensemble.path)
    assert [e["format"] for e in recorded][:len(FILE_FORMATS)] == FILE_FORMATS
    assert all(Path(e["path"]).is_relative_to(tmp_path) for e in recorded
               if e["format"] != "web")


@pytest.mark.slow
@needs_browser
def test_the_ensemble_exports_to_a_web_page_checked_and_timed_in_the_browser(ensemble, tmp_path):
    from finetune_gui.core.export.job import export_model

    result = export_model(ensemble.path, "web", tmp_path / "page")
    assert result.verification.passed and result.verification.agreement >= 0.99
    speed = json.loads(result.card_json.read_text())["size_and_speed"]
    assert speed["runtime"].startswith("the page's own classify() in headless Chromium")
    assert speed["size_bytes"] == result.model_path.stat().st_size
    assert 0 < speed["fastest_ms"] <= speed["ms_per_image"] <= speed["slowest_ms"]
    assert speed["runs"] >= 5


# -- refusals: one sentence, nothing written, no model loaded ----------------------------------
def _fake(tmp_path: Path, name: str, **changes) -> Path:
    run = fake_run(tmp_path / name, changes.pop("root", "/data/pets"), FILES, 3)
    split_file = run / "split.json"
    split = json.loads(split_file.read_text())
    if "classes" in changes:
        (run / "labels.txt").write_text("\n".join(changes["classes"]) + "\n")
    if changes.get("other_split"):
        split["train"], split["test"] = split["train"][2:] + split["test"], split["train"][:2]
    if changes.get("no_test"):
        split["train"] += split.pop("test")
        split["test"] = []
    split_file.write_text(json.dumps(split))
    return run


@pytest.mark.parametrize("second,message", [
    ({"classes": ["cats", "wolves"]}, "has the classes cats, dogs but b has cats, wolves"),
    ({"other_split": True}, "split the images into training, validation and test differently"),
    ({"root": "/data/other"}, "learned from /data/pets but b from /data/other"),
])
def test_runs_that_differ_are_refused_in_one_sentence(tmp_path, second, message):
    first = _fake(tmp_path, "a")
    other = _fake(tmp_path, "b", **second)
    out = tmp_path / "ensemble"
    with pytest.raises(EnsembleError) as caught:
        combine_runs([first, other], out)
    text = str(caught.value)
    assert text.startswith("These runs cannot be combined: ") and message in text
    assert text.count(". ") == 0 and text.endswith(".")
    assert not out.exists()


def test_fewer_than_two_runs_and_the_same_run_twice_are_refused(tmp_path):
    first = _fake(tmp_path, "a")
    cases = [
        ([first], "Combining needs at least two runs; got 1."),
        ([first, tmp_path / "a"], "is given twice; give each run once."),
        ([first, _fake(tmp_path, "c", no_test=True)],  # one kept test images the other trained on
         "split the images into training, validation and test differently"),
    ]
    for runs, message in cases:
        with pytest.raises(EnsembleError, match=message):
            combine_runs(runs, tmp_path / "ensemble")
    assert not (tmp_path / "ensemble").exists()


def test_a_used_or_impossible_destination_is_refused_before_any_work(tmp_path):
    first, second = _fake(tmp_path, "a"), _fake(tmp_path, "b")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    for out, message in [
        (tmp_path / "taken", "something is already there"),
        (tmp_path / "no" / "such", "does not exist"),
        (first, "over its member"),
    ]:
        with pytest.raises(EnsembleError, match=message):
            combine_runs([first, second], out)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_runs_without_test_images_combine_whatever_their_seeds(tmp_path):
    """Nothing to protect without test images: runs split by two seeds combine, and the
    ensemble's split lists every image a member trained on as training, the images no member
    trained on as validation, and no test images (read from the files, no model loaded)."""
    from finetune_gui.core.run.ensemble import check_combinable, ensemble_card_lines

    first = _fake(tmp_path, "a", no_test=True)
    second = _fake(tmp_path, "b", no_test=True)
    split_file = second / "split.json"
    other = json.loads(split_file.read_text())  # as another seed would have split the images
    other["train"], other["val"] = other["train"][2:] + other["val"], other["train"][:2]
    split_file.write_text(json.dumps(other))
    split = check_combinable([RunFolder.open(first), RunFolder.open(second)])
    names = {part: sorted(p.relative_to(split.root).as_posix() for p, _ in getattr(split, part))
             for part in ("train", "val", "test")}
    assert names == {"train": sorted(FILES), "val": [], "test": []}  # each image trained once
    # Runs that share their split give it back as it is.
    same = check_combinable([RunFolder.open(first), RunFolder.open(_fake(tmp_path, "c", no_test=True))])
    assert same.counts() == {"train": 10, "val": 2, "test": 0}
    # The model card of such an ensemble says it has no test score, not 0% or a crash.
    card = "\n".join(ensemble_card_lines({"image_size": 32, "test_accuracy": None, "members": [
        {"path": str(first), "backbone": "mobilenetv3small", "image_size": 32,
         "resized_inside": False, "test_accuracy": None}]}))
    assert "neither the ensemble nor its members have a test score" in card
    assert "| 32 px | no test images |" in card
