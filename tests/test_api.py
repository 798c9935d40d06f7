"""The public Python API on a tiny real run: 3 classes x 12 images of 32 px, no pretrained
weights (nothing to download), one epoch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from finetune_gui import api
from finetune_gui.demo import make_shapes_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    data = make_shapes_dataset(root / "data", per_class=12, size=32, seed=5)
    run = api.train(data=data, out=root / "run", weights="none", image_size=32, epochs_head=1,
                    epochs_finetune=0, batch_size=16, augment="none")
    return root, data, run


def test_train_takes_settings_by_keyword_and_returns_the_run(tiny):
    root, _, run = tiny
    assert run.status == "completed" and run.run_dir == root / "run"
    assert run.classes == ["circles", "squares", "triangles"]
    stored = json.loads((run.run_dir / "settings.json").read_text())
    assert (stored["weights"], stored["image_size"], stored["epochs_head"]) == ("none", 32, 1)
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert run.accuracy == metrics["accuracy"] and run.metrics["count"] == metrics["count"] > 0
    assert run.message.startswith("Finished")


def test_train_refuses_an_unknown_or_bad_setting_and_writes_nothing(tiny, tmp_path):
    _, data, _ = tiny
    with pytest.raises(api.UserError, match="Unknown setting"):
        api.train(data=data, out=tmp_path / "a", colour="red")
    with pytest.raises(api.UserError, match="'batch_size' must be between 1 and 4096"):
        api.train(data=data, out=tmp_path / "b", batch_size=0)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_scores_a_labelled_folder(tiny):
    _, data, run = tiny
    scored = api.evaluate(run=run.run_dir, data=data)
    assert scored.count == 36
    confusion = np.array(scored.metrics["confusion"])
    assert confusion.sum() == 36
    assert scored.accuracy == pytest.approx(np.trace(confusion) / 36)


def test_predict_ranks_classes_and_names_unreadable_images(tiny, tmp_path):
    _, data, run = tiny
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    good = sorted((data / "circles").iterdir())[0]
    first, second = api.predict(run=run.run_dir, images=[good, broken], top_k=2)
    assert first.path == good and first.error is None and len(first.top) == 2
    assert (first.label, first.probability) == first.top[0]
    assert first.top[0][1] >= first.top[1][1] and first.label in run.classes
    assert second.label is None and second.error
    with pytest.raises(api.UserError, match="top_k"):
        api.predict(run=run.run_dir, images=[good], top_k=0)
    with pytest.raises(api.UserError, match="No such image file"):
        api.predict(run=run.run_dir, images=[tmp_path / "missing.png"])


def test_export_writes_a_verified_model_with_labels(tiny, tmp_path):
    _, _, run = tiny
    exported = api.export(run=run.run_dir, to=tmp_path / "shipped")
    assert exported.format == "keras" and exported.model_path.is_file()
    names = {p.name for p in exported.written}
    assert {"labels.txt", exported.model_path.name} <= names
    assert exported.agreement == 1.0 and exported.images_checked > 0
    assert exported.replaced == []
    with pytest.raises(api.UserError, match="replace=True"):  # never silently replaced
        api.export(run=run.run_dir, to=tmp_path / "shipped")


def test_explain_returns_the_heatmap_and_writes_the_png(tiny, tmp_path):
    _, data, run = tiny
    image = sorted((data / "squares").iterdir())[0]
    explained = api.explain(run=run.run_dir, image=image, out=tmp_path / "why.png",
                            class_name="squares")
    assert explained.label == "squares" and 0.0 <= explained.probability <= 1.0
    assert explained.heatmap.ndim == 2 and 0.0 <= explained.heatmap.min() <= 1.0
    assert explained.written == tmp_path / "why.png"
    assert Image.open(explained.written).size[0] > 0
    with pytest.raises(api.UserError, match="Unknown class"):
        api.explain(run=run.run_dir, image=image, class_name="dogs")
