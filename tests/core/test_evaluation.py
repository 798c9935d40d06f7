"""Metrics computed right, on numbers small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.run.evaluation import EvaluationReport, build_report, format_report


@pytest.fixture
def report() -> EvaluationReport:
    y_true = [0, 0, 0, 1, 1, 2]
    probs = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.6, 0.3, 0.1],
            [0.2, 0.7, 0.1],  # a circle called a square with 70%
            [0.1, 0.8, 0.1],
            [0.05, 0.05, 0.9],  # a square called a triangle with 90%
            [0.1, 0.1, 0.8],
        ]
    )
    paths = [f"img{i}.png" for i in range(6)]
    return build_report(["circle", "square", "triangle"], y_true, probs, paths)


def test_accuracy_confusion_and_per_class_numbers(report):
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    circle, square, triangle = report.per_class
    assert (circle.precision, circle.recall, circle.support) == (1.0, pytest.approx(2 / 3), 3)
    assert (square.precision, square.recall) == (0.5, 0.5)
    assert (triangle.precision, triangle.recall) == (0.5, 1.0)
    assert report.macro_avg["recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert report.weighted_avg["recall"] == pytest.approx(4 / 6)


def test_misclassified_are_sorted_by_confidence(report):
    assert [(m.path, m.true_label, m.predicted_label) for m in report.misclassified] == [
        ("img4.png", "square", "triangle"),
        ("img2.png", "circle", "square"),
    ]
    assert report.misclassified[0].confidence == pytest.approx(0.9)


def test_roc_auc_one_vs_rest_and_cells_open_their_images(report):
    # Of the 5 non-triangles, 4 get a lower triangle score than the triangle (0.8); img4 gets 0.9.
    assert report.roc_auc["triangle"] == pytest.approx(0.8)
    assert report.roc_auc["circle"] == pytest.approx(1.0)
    # Squares: img3 (0.8) outranks all 4 others, img4 (0.05) only ties img0: 4.5 of 8 pairs.
    assert report.roc_auc["square"] == pytest.approx(4.5 / 8)
    assert report.roc_auc["macro"] == pytest.approx((1.0 + 4.5 / 8 + 0.8) / 3)
    assert report.files_in_cell(0, 1) == ["img2.png"]
    assert report.files_in_cell(0, 0) == ["img0.png", "img1.png"]


def test_a_class_missing_from_the_test_set_has_no_auc_instead_of_a_crash():
    r = build_report(
        ["a", "b", "c"], [0, 1], np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1]]), ["x", "y"]
    )
    assert r.roc_auc["c"] is None and r.per_class[2].support == 0


def test_report_round_trips_and_prints(report):
    again = EvaluationReport.from_dict(report.to_dict())
    assert again == report
    text = format_report(report)
    assert (
        "Test accuracy 66.7% (95% interval 30.0%-90.3%) on 6 images" in text
        and "Only 6 test images: this is a rough estimate" in text
        and "img4.png: is square, predicted triangle (90%)" in text
    )
    # Said 60% and right, 70% and wrong, 80% twice and right, 90% once right once wrong:
    # (0.4 + 0.7 + 2 * 0.2 + 2 * 0.4) / 6.
    assert "Calibration error 0.383 on the test images" in text


def test_accuracy_and_each_class_carry_a_wilson_interval_that_survives_metrics_json(report):
    from finetune_gui.core.run.intervals import wilson_interval

    correct = round(report.accuracy * report.count)
    assert report.accuracy_interval == wilson_interval(correct, report.count)
    for metrics in report.per_class:
        hits = round(metrics.recall * metrics.support)
        assert metrics.recall_interval == wilson_interval(hits, metrics.support)
    import json

    data = json.loads(json.dumps(report.to_dict()))  # as metrics.json holds it
    assert tuple(data["accuracy_interval"]) == report.accuracy_interval
    assert "rough estimate" in data["rough_estimate_note"]
    assert EvaluationReport.from_dict(data) == report


def test_no_test_images_give_an_empty_report_not_a_crash():
    empty = build_report(["a", "b"], np.zeros(0, dtype=int), np.zeros((0, 2)), [])
    assert empty.count == 0 and empty.accuracy == 0.0 and empty.confusion == [[0, 0], [0, 0]]
    assert empty.accuracy_interval == (0.0, 1.0) and empty.rough_note == ""
