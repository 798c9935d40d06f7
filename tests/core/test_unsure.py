""""Not sure": calibrated at the end of training, written into the run, applied by predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.unrelated_images import write_digits


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory, other_shapes_dir, pretrained_base):
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    settings = TrainingSettings(
        backbone="mobilenetv2", weights=str(pretrained_base), image_size=48, epochs_head=8,
        epochs_finetune=0, batch_size=16, augment="none", patience=0, seed=0,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("unsure") / "run"
    assert TrainingJob(other_shapes_dir, settings, folder).run().status == "completed"
    return RunFolder.open(folder)


def unsure_share(run, paths) -> float:
    from finetune_gui.core.run.predict import predict_images

    predictions = predict_images(run, paths)
    assert not any(p.error for p in predictions)
    return float(np.mean([p.unsure is not None for p in predictions]))


def test_training_writes_the_rule_with_its_measured_numbers(shapes_run):
    from finetune_gui.core.run.unsure import SIGNALS, UNSURE_FILE

    rule = json.loads((shapes_run.path / UNSURE_FILE).read_text("utf-8"))
    assert set(rule["signals"]) <= set(SIGNALS)
    measured = rule["measured"]
    assert measured["validation_images"] == 36  # 15% of 240 images
    assert len(measured["candidates"]) == 7  # every non-empty set of the three signals
    chosen = measured["candidates"]["+".join(rule["signals"])]["pseudo_outliers_unsure"]
    assert chosen == max(c["pseudo_outliers_unsure"] for c in measured["candidates"].values())
    assert (shapes_run.path / "features.npz").is_file()


def test_unrelated_pictures_are_not_sure_and_own_test_images_are(shapes_run, tmp_path):
    """Hand-written digits to a shapes model: measured 100% not sure, own test images 5.6%.
    (Photo crops reach 65% here: a base that only ever saw shapes cannot tell photos apart as
    well; docs/benchmarks.md measures photos on a real icon run.)"""
    test_paths = [p for p, _ in json_split(shapes_run)["test"]]
    digits = write_digits(tmp_path / "digits", 40)
    assert unsure_share(shapes_run, test_paths) <= 0.15
    assert unsure_share(shapes_run, digits) >= 0.8


def test_without_the_rule_nothing_is_not_sure(shapes_run, tmp_path):
    """The same unrelated pictures get a confident class when the rule is switched off."""
    from finetune_gui.core.run.predict import predict_paths

    digits = write_digits(tmp_path / "digits", 20)

    class NoRule:
        def judge(self, early, pooled, probabilities):
            return [None] * len(pooled)

    found = list(predict_paths(shapes_run, digits, rule=NoRule()))
    assert all(p.unsure is None and p.label in shapes_run.classes for p in found)


def test_an_old_run_gets_its_rule_on_first_use(shapes_run, tmp_path):
    import shutil

    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.run.unsure import UNSURE_FILE, unsure_rule

    old = tmp_path / "old"
    shutil.copytree(shapes_run.path, old)
    (old / UNSURE_FILE).unlink()
    (old / "features.npz").unlink()
    rule = unsure_rule(RunFolder.open(old))
    assert rule is not None and (old / UNSURE_FILE).is_file()
    again = json.loads((old / UNSURE_FILE).read_text("utf-8"))
    first = json.loads((shapes_run.path / UNSURE_FILE).read_text("utf-8"))
    assert again["signals"] == first["signals"]
    assert again["measured"]["candidates"] == first["measured"]["candidates"]


def json_split(run):
    from finetune_gui.core.insight.suspects import load_run_split

    split = load_run_split(run)
    return {"test": split.test}


def test_the_report_and_the_model_card_say_how_to_apply_the_rule(shapes_run):
    from finetune_gui.core.insight.report import _unsure_section
    from finetune_gui.core.run.unsure import card_text, unsure_rule

    rule = unsure_rule(shapes_run)
    section = _unsure_section(shapes_run, None, None)
    assert "<h2>Not sure</h2>" in section and "Chosen because" in section
    for fmt in ("keras", "tflite", "onnx"):
        text = card_text(rule, fmt)
        assert text.startswith('Answer "not sure" when')
        if "confidence" in rule.signals:
            assert f"{rule.min_confidence:.6f}" in text
        if fmt != "keras" and set(rule.signals) & {"look", "content"}:
            fallback = rule.measured["confidence_only_min_confidence"]
            assert f"below {fallback:.6f}" in text
