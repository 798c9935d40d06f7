"""The reliability picture on Results: one bar per confidence bin holding answers, its height
the accuracy there, and a sentence with the run's calibration error; empty with no answers."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.run.evaluation import build_report
from finetune_gui.gui.widgets.reliability import ReliabilityPicture


def report_of(probabilities, labels):
    return build_report(["a", "b"], np.array(labels), np.array(probabilities),
                        [f"{i}.png" for i in range(len(labels))])


def test_an_over_confident_run_shows_bars_below_the_diagonal_and_says_so(qtbot):
    # Said 99% sure every time, right half the time.
    probabilities = [[0.99, 0.01]] * 40
    labels = [0, 1] * 20
    picture = ReliabilityPicture()
    qtbot.addWidget(picture)
    picture.show_report(report_of(probabilities, labels))
    assert len(picture.rows) == 1
    row = picture.rows[0]
    assert (row["count"], row["accuracy"]) == (40, 0.5)
    assert row["confidence"] == pytest.approx(0.99)
    # Over the bar: how many answers it holds, so a bar of few answers reads as few.
    assert [label.toPlainText() for label in picture.counts] == ["20 of 40"]
    text = picture.summary.text()
    assert "Calibration error 0.490 on 40 test images" in text and "far from what it says" in text


def test_a_calibrated_run_is_called_close_and_no_report_clears_the_picture(qtbot):
    rng = np.random.default_rng(0)
    sure = rng.uniform(0.5, 1.0, 2000)
    labels = (rng.uniform(size=2000) > sure).astype(int)  # class 0 with probability `sure`
    picture = ReliabilityPicture()
    qtbot.addWidget(picture)
    picture.show_report(report_of(np.stack([sure, 1 - sure], 1), labels))
    assert "how often the model is right is close to what it says" in picture.summary.text()
    assert len(picture.rows) == 5  # confidences from 0.5 to 1 fill 5 of 10 bins
    assert len(picture.counts) == 5
    picture.show_report(None)
    assert picture.rows == [] and picture.counts == [] and picture.summary.text() == (
        "No test answers to compare confidence with.")


def test_a_calibrated_run_on_few_test_images_is_not_called_off(qtbot):
    """On 60 test images a model exactly right about itself scores about 0.1 by chance: the
    page says so instead of "far from what it says"."""
    rng = np.random.default_rng(3)
    sure = rng.uniform(0.5, 1.0, 60)
    labels = (rng.uniform(size=60) > sure).astype(int)
    report = report_of(np.stack([sure, 1 - sure], 1), labels)
    chance, high = report.calibration_error_by_chance
    assert report.calibration_error <= high and chance > 0.05
    picture = ReliabilityPicture()
    qtbot.addWidget(picture)
    picture.show_report(report)
    text = picture.summary.text()
    assert "as close to what it says as so few test images can show" in text
    assert f"about {chance:.3f} on them by chance" in text and "far from" not in text
