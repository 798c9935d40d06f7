"""The embedding map and run comparison on the shared run with planted label mistakes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for insight_runs.py
from finetune_gui.core.insight.embedding import embedding_map, far_from_class
from finetune_gui.core.run.compare import compare_runs
from finetune_gui.core.run.folder import METRICS_FILE, SETTINGS_FILE, RunFolder
from finetune_gui.demo import make_shapes_dataset
from insight_runs import flipped_run


@pytest.fixture(scope="module")
def flipped(tmp_path_factory, pretrained_base):
    return flipped_run(tmp_path_factory, pretrained_base)


@pytest.fixture(scope="module")
def image_map(flipped):
    return embedding_map(flipped.run, model=flipped.model)


def test_every_image_of_the_run_gets_a_point_and_its_class(flipped, image_map):
    n = len(image_map.paths)
    assert n == 121  # 3 x 40 images and one planted copy
    assert image_map.points.shape == (n, 2) and np.isfinite(image_map.points).all()
    assert set(image_map.given) == set(flipped.run.classes)
    for path, given in zip(image_map.paths, image_map.given, strict=True):
        assert given == path.parent.name
    assert sum(image_map.explained_variance) > 0.5
    json.dumps(image_map.to_dict())


def test_classes_form_separate_clusters_on_the_map(flipped, image_map):
    clean = np.array([p not in flipped.flipped for p in image_map.paths])
    labels = np.array(image_map.given)[clean]
    points = image_map.points[clean]
    centres = {name: points[labels == name].mean(axis=0) for name in set(labels)}
    names = sorted(centres)
    nearest = [names[np.argmin([np.linalg.norm(p - centres[n]) for n in names])] for p in points]
    # Measured 0.93 (circles apart, squares and triangles touching); chance is 0.33.
    assert np.mean(np.array(nearest) == labels) >= 0.7


def test_mislabelled_images_stand_out_as_outliers_of_their_given_class(flipped, image_map):
    flagged = np.array([p in flipped.flipped for p in image_map.paths])
    # Measured: 4 of the 6 flipped images, and 6 of 115 clean ones (5%).
    assert image_map.outliers[flagged].mean() >= 0.5
    assert image_map.outliers[~flagged].mean() <= 0.1


def test_images_outside_the_run_are_placed_by_their_predicted_class(flipped, tmp_path):
    new = make_shapes_dataset(tmp_path / "new", per_class=2, size=48, seed=99)
    paths = [*sorted(new.rglob("*.png")), flipped.data / "circles" / "circles_030.png"]
    small = embedding_map(flipped.run, paths, model=flipped.model, method="tsne")
    assert small.given[:-1] == [None] * 6 and small.given[-1] == "circles"
    assert small.classes_of_points[:-1] == small.predicted[:-1]
    assert small.points.shape == (7, 2) and small.explained_variance == ()


def test_outliers_use_a_robust_spread():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(40, 8))
    features[:3] += 12.0  # three far points in class "a" must not hide each other
    labels = ["a"] * 20 + ["b"] * 20
    marked = far_from_class(features, labels)
    assert marked[:3].all() and marked[3:].sum() <= 1


def test_comparison_lists_only_differing_settings_with_metrics_and_histories(flipped, tmp_path):
    other = tmp_path / "run"
    shutil.copytree(flipped.run_dir, other)
    settings = json.loads((other / SETTINGS_FILE).read_text())
    settings["lr_head"] = 0.01
    settings["augment"]["flip"] = "horizontal"
    (other / SETTINGS_FILE).write_text(json.dumps(settings))
    metrics = json.loads((other / METRICS_FILE).read_text())
    metrics["accuracy"] = 0.25
    (other / METRICS_FILE).write_text(json.dumps(metrics))

    table = compare_runs([flipped.run, RunFolder.open(other)])
    assert set(table.differing) == {"lr_head", "augment.flip"}
    assert table.differing["lr_head"] == [0.001, 0.01]
    assert table.shared["backbone"] == "mobilenetv2"
    assert table.metrics["test accuracy"] == [flipped.run.report.accuracy, 0.25]
    assert table.best_run("test accuracy") == 0
    assert len(table.names) == 2 and table.names[0] != table.names[1]
    trained = len(RunFolder.read_history(flipped.run_dir))  # the copy has the same history
    assert trained >= 1 and [len(h) for h in table.histories] == [trained, trained]
    rows = table.rows()
    assert rows[0] == ["", *table.names] and ["lr_head", "0.001", "0.01"] in rows
    json.dumps(table.to_dict())
