"""Probabilities that mean what they say: the temperature fitted on answers the model did not
learn, folded into the saved model, the same in every export, and no answer changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from finetune_gui.core.data.images import load_rgb
from finetune_gui.core.export.card import CARD_JSON, CARD_MARKDOWN
from finetune_gui.core.run.calibration import (
    calibration_verdict,
    error_by_chance,
    expected_calibration_error,
    fit_temperature,
    reliability,
    with_temperature,
)


def honest_answers(temperature: float, n: int = 3000, classes: int = 4, seed: int = 0):
    """Answers whose labels are drawn from softmax(z) (calibrated at T = 1), reported as
    softmax(z / temperature): over-confident for temperature < 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, size=(n, classes))
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(classes, p=p) for p in truth])
    said = np.exp(logits / temperature)
    return said / said.sum(1, keepdims=True), labels


def test_an_over_confident_model_gets_its_temperature_back_and_a_small_calibration_error():
    said, labels = honest_answers(temperature=1 / 3)
    fitted = fit_temperature(said, labels)
    assert fitted == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(said, labels)
    after = expected_calibration_error(with_temperature(said, fitted), labels)
    assert before > 0.1 and after < 0.03
    # No answer changes: the largest probability stays the largest.
    assert (with_temperature(said, fitted).argmax(1) == said.argmax(1)).all()


def test_a_calibrated_model_is_left_as_it_is_and_too_few_answers_fit_nothing():
    said, labels = honest_answers(temperature=1.0)
    assert fit_temperature(said, labels) == pytest.approx(1.0, abs=0.1)
    assert fit_temperature(said[:10], labels[:10]) == 1.0


def test_answers_that_are_all_right_are_not_made_surer_than_so_few_can_show():
    """36 right answers of 36 pushed the log loss's temperature to its floor (0.05): the model
    then said at least 99.4% on every test image, a twelfth of them wrong. Calibrated, their
    mean confidence is 37 / 38 (Laplace's rule of succession), whether they were said less or
    more sure than that, and no answer changes."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 1.0, size=(36, 3))
    labels = logits.argmax(1)
    for margin in (2.0, 12.0):  # said about 90% sure, then about 100% sure
        sharp = logits.copy()
        sharp[np.arange(36), labels] += margin
        said = np.exp(sharp) / np.exp(sharp).sum(1, keepdims=True)
        calibrated = with_temperature(said, fit_temperature(said, labels))
        assert calibrated.max(1).mean() == pytest.approx(37 / 38, abs=1e-3)
        assert (calibrated.argmax(1) == labels).all()


def test_where_mistakes_were_seen_the_temperature_is_the_log_loss_optimum_or_less_sure():
    """On answers with their share of mistakes the temperature is the log loss's optimum,
    unless that leaves them surer on average than their right answers support: then it is
    raised just enough. Either way they end up calibrated."""
    from scipy.optimize import minimize_scalar

    from finetune_gui.core.run.calibration import mean_log_loss

    raised = 0
    for seed in range(6):
        said, labels = honest_answers(temperature=0.5, n=400, seed=seed)
        best = minimize_scalar(lambda t: mean_log_loss(said, labels, t),  # noqa: B023
                               bounds=(0.1, 10), method="bounded", options={"xatol": 1e-5}).x
        fitted = fit_temperature(said, labels)
        supported = ((said.argmax(1) == labels).sum() + 1) / (400 + 2)
        if with_temperature(said, best).max(1).mean() <= supported:
            assert fitted == pytest.approx(best, rel=1e-3)
        else:
            raised += 1
            assert fitted > best
            assert with_temperature(said, fitted).max(1).mean() == pytest.approx(supported,
                                                                                  abs=1e-4)
        assert expected_calibration_error(with_temperature(said, fitted), labels) < 0.06
    assert 0 < raised < 6  # both sides of the edge were met


def test_reliability_rows_hold_every_answer_and_the_error_weighs_them():
    said, labels = honest_answers(temperature=1 / 3, n=600)
    rows = reliability(said, labels, bins=10)
    assert sum(r["count"] for r in rows) == 600
    assert sum(r["right"] for r in rows) == int((said.argmax(1) == labels).sum())
    assert all(r["right"] == round(r["accuracy"] * r["count"]) for r in rows)
    assert all(r["low"] < r["confidence"] <= r["high"] for r in rows)
    by_hand = sum(r["count"] * abs(r["confidence"] - r["accuracy"]) for r in rows) / 600
    assert expected_calibration_error(said, labels, bins=10) == pytest.approx(by_hand)


# -- a real run ------------------------------------------------------------------------------
def test_the_error_chance_alone_gives_shrinks_with_the_test_split_and_bounds_honest_models():
    """A perfectly calibrated model still scores well above 0 on a few hundred test images: the
    Results page and the model card say how much chance alone gives."""
    assert error_by_chance(np.ones(50)) == (0.0, 0.0)  # always right when 100% sure
    assert error_by_chance(np.zeros(0)) is None
    few, _ = honest_answers(1.0, n=148, seed=1)
    many, _ = honest_answers(1.0, n=3000, seed=1)
    mean_few, high_few = error_by_chance(few.max(1))
    mean_many, _ = error_by_chance(many.max(1))
    assert 0.04 < mean_few < high_few and mean_many < mean_few / 3
    # Honest models' errors fall below the 95th percentile about 95 times in 100.
    within = []
    for seed in range(60):
        said, labels = honest_answers(1.0, n=148, seed=100 + seed)
        within.append(expected_calibration_error(said, labels) <= error_by_chance(said.max(1))[1])
    assert 0.85 <= np.mean(within) <= 1.0
    # Said 99% sure and right half the time is far off, whatever the size.
    assert "far from what it says" in calibration_verdict(0.49, error_by_chance(np.full(40, 0.99)))
    assert "as close to what it says as so few test images can show" in calibration_verdict(
        0.12, (0.094, 0.135))
    assert "close to what it says" in calibration_verdict(0.02, (0.01, 0.02))
    # Above "close" on 201 digits, within chance's 0.048 (95th percentile 0.068): not "off".
    assert "as close to what it says as so few test images can show" in calibration_verdict(
        0.054, (0.048, 0.068))
    assert "somewhat off" in calibration_verdict(0.08, (0.048, 0.068))


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory, pretrained_base) -> Path:
    import finetune_gui.core.training.calibrate_model as calibrate_model
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob
    from finetune_gui.demo import make_shapes_dataset

    root = tmp_path_factory.mktemp("calibration")
    data = make_shapes_dataset(root / "data", per_class=30, size=48, seed=11)
    settings = TrainingSettings(backbone="mobilenetv2", weights=str(pretrained_base),
                                image_size=48, epochs_head=1, epochs_finetune=0, seed=0)
    fold = calibrate_model.fold_into_output_layer

    def remember_then_fold(layer, temperature):
        BEFORE_CALIBRATION.extend(np.array(w) for w in layer.get_weights())
        fold(layer, temperature)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calibrate_model, "fold_into_output_layer", remember_then_fold)
        assert TrainingJob(data, settings, root / "run").run().status == "completed"
    return root / "run"


BEFORE_CALIBRATION: list = []  # the output layer's kernel and bias as training left them


def uncalibrated_copy(model, temperature: float):
    """The saved model with the temperature taken out of its output layer again."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    layer = copy.get_layer("probabilities")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * temperature, bias * temperature])
    return copy


def test_the_saved_model_says_the_calibrated_probabilities_with_the_same_answers(calibrated_run):
    from finetune_gui.core.export.runtimes import predict_keras_model
    from finetune_gui.core.run.folder import RunFolder

    run = RunFolder.open(calibrated_run)
    calibration = json.loads((calibrated_run / "run.json").read_text())["calibration"]
    assert calibration["answers"] >= 70  # k-fold answers on training + validation images
    temperature = run.facts.temperature
    assert temperature != 1.0 and calibration["log_loss_after"] < calibration["log_loss_before"]
    images = np.stack([load_rgb(p, 48) for p, _ in run.split().test])
    model = run.load_model()
    # The saved output layer is the trained one divided by the temperature.
    kernel, bias = model.get_layer("probabilities").get_weights()
    assert kernel == pytest.approx(BEFORE_CALIBRATION[0] / temperature, rel=1e-5, abs=1e-7)
    assert bias == pytest.approx(BEFORE_CALIBRATION[1] / temperature, rel=1e-5, abs=1e-7)
    saved = predict_keras_model(model, images)
    raw = predict_keras_model(uncalibrated_copy(model, temperature), images)
    assert (saved.argmax(1) == raw.argmax(1)).all()
    assert saved == pytest.approx(with_temperature(raw, temperature), abs=1e-4)
    # The test split's calibration error is what the model card and Results show.
    assert run.report.calibration_error is not None


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_every_export_gives_the_calibrated_probabilities(calibrated_run, tmp_path, fmt):
    from finetune_gui.core.export.formats import FORMATS
    from finetune_gui.core.export.job import export_model
    from finetune_gui.core.export.runtimes import predict_keras_model, run_export
    from finetune_gui.core.run.folder import RunFolder

    run = RunFolder.open(calibrated_run)
    result = export_model(calibrated_run, fmt, tmp_path / fmt)
    images = np.stack([load_rgb(p, 48) for p, _ in run.split().test])
    exported = run_export(FORMATS[fmt], Path(result.model_path), images)
    raw = predict_keras_model(uncalibrated_copy(run.load_model(), run.facts.temperature), images)
    assert exported == pytest.approx(with_temperature(raw, run.facts.temperature), abs=1e-3)
    # The model card says how the probabilities were calibrated and how well, on the test split.
    card = json.loads((tmp_path / fmt / CARD_JSON).read_text())
    assert card["output"]["calibration"]["temperature"] == pytest.approx(run.facts.temperature)
    error = card["test_metrics"]["calibration_error"]
    assert error == pytest.approx(run.report.calibration_error)
    markdown = (tmp_path / fmt / CARD_MARKDOWN).read_text()
    assert f"Calibration error {error:.3f} on the test images" in markdown
    chance = card["test_metrics"]["calibration_error_by_chance"][0]
    assert chance == pytest.approx(run.report.calibration_error_by_chance[0])
    assert f"would score {chance:.3f} on this many test images by chance alone" in markdown
