"""The classifier: built-in preprocessing equal to Keras's, block freezing, a self-contained file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from finetune_gui.core.errors import UserError
from finetune_gui.core.model.backbones import output_of
from finetune_gui.core.model.build import (
    TAP_PREFIX,
    build_classifier,
    count_trainable,
    describe_blocks,
    preprocessing_layers,
    set_trainable_blocks,
)
from finetune_gui.core.settings import TrainingSettings


@pytest.mark.parametrize(
    "mode,reference",
    [
        ("tf", "keras.applications.mobilenet_v2.preprocess_input"),
        ("caffe", "keras.applications.resnet50.preprocess_input"),
        ("torch", "keras.applications.densenet.preprocess_input"),
    ],
)
def test_preprocessing_layers_match_keras_preprocess_input(mode, reference):
    import keras

    module, _, name = reference.rpartition(".")
    keras_fn = getattr(eval(module, {"keras": keras}), name)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    x = keras.ops.convert_to_tensor(pixels)
    for layer in preprocessing_layers(mode):
        x = layer(x)
    np.testing.assert_allclose(np.asarray(x), keras_fn(pixels.copy()), rtol=1e-5, atol=1e-4)


def test_classifier_outputs_probabilities_for_raw_pixels():
    clf = build_classifier(
        TrainingSettings(backbone="mobilenetv3small", weights="none", image_size=32), 3
    )
    probs = clf.model.predict(np.zeros((4, 32, 32, 3), "uint8"), verbose=0)
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_two_classes_get_two_softmax_outputs():
    clf = build_classifier(
        TrainingSettings(backbone="mobilenetv3small", weights="none", image_size=32), 2
    )
    assert clf.model.output_shape == (None, 2)


def test_unfreezing_more_blocks_trains_more_parameters_and_matches_the_description():
    settings = TrainingSettings(
        backbone="mobilenetv2", weights="imagenet", image_size=32, unfreeze_blocks=3
    )
    clf = build_classifier(settings.with_changes(weights="none"), 3)  # same shapes, no download
    counts = [set_trainable_blocks(clf, n) for n in (0, 1, 3, 6)]
    assert counts == sorted(counts) and len(set(counts)) == 4
    # The head alone: it reads the last block's 1280 features and every earlier block's.
    earlier = sum(int(output_of(clf.base, end).shape[-1]) for end in clf.ends[:-1])
    assert earlier > 0 and counts[0] == (1280 + earlier) * 3 + 3
    described = describe_blocks(settings, 3)
    assert described.trainable_params == counts[2]
    assert [b.trainable for b in described.blocks].count(True) == 3
    assert not described.blocks[0].trainable and described.blocks[0].name == "stem"


def test_batchnorm_stays_in_inference_mode_when_unfrozen(tmp_path):
    """With pretrained weights, a training-mode call must not change BatchNorm statistics."""
    import keras

    from finetune_gui.core.model.backbones import build_base, get_backbone

    weights = tmp_path / "base.weights.h5"
    build_base(get_backbone("mobilenetv2"), 32, None).save_weights(weights)
    clf = build_classifier(
        TrainingSettings(backbone="mobilenetv2", weights=str(weights), image_size=32), 3
    )
    set_trainable_blocks(clf, 2)
    top = [layer for layer in clf.base.layers if not layer.name.startswith(TAP_PREFIX)][-10:]
    assert any(layer.trainable for layer in top), "the top blocks are unfrozen"
    norms = [layer for layer in top if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms, "the top blocks hold BatchNorm layers"
    before = [n.moving_mean.numpy().copy() for n in norms]
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    clf.model(pixels, training=True)
    for norm, old in zip(norms, before, strict=True):
        np.testing.assert_array_equal(norm.moving_mean.numpy(), old)


def test_from_scratch_batchnorm_learns_its_statistics():
    import keras

    clf = build_classifier(
        TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32), 3
    )
    set_trainable_blocks(clf, -1)
    norm = next(
        layer for layer in clf.base.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    before = norm.moving_mean.numpy().copy()
    clf.model(
        np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32"), training=True
    )
    assert not np.array_equal(norm.moving_mean.numpy(), before)
    width = clf.base.output_shape[-1]  # what the head reads: every block's pooled output
    assert count_trainable(clf.model) == count_trainable(clf.base) + width * 3 + 3


def test_saved_model_loads_in_plain_keras_without_this_package(tmp_path):
    clf = build_classifier(TrainingSettings(backbone="resnet50", weights="none", image_size=32), 3)
    path = tmp_path / "model.keras"
    clf.model.save(path)
    pixels = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.save(tmp_path / "pixels.npy", pixels)
    expected = clf.model.predict(pixels, verbose=0)
    script = (
        "import sys, numpy as np, keras\n"
        "assert 'finetune_gui' not in sys.modules\n"
        f"m = keras.models.load_model(r'{path}')\n"
        f"print(repr(m.predict(np.load(r'{tmp_path / 'pixels.npy'}'), verbose=0).tolist()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    np.testing.assert_allclose(
        np.array(eval(out.stdout.strip().splitlines()[-1])), expected, rtol=1e-4, atol=1e-5
    )


def test_the_head_reads_the_average_of_every_block_and_the_last_block_setting_reads_one():
    """The pooled features the head reads are the last block's average followed by every
    earlier block's, exactly as averaging each block's output on its own gives."""
    import keras

    from finetune_gui.core.model.parts import features_model

    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32)
    clf = build_classifier(settings, 3)
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    pooled, _ = features_model(clf.model)(pixels)
    plain = clf.base.get_layer(clf.ends[-1])  # the base's own last layer
    x = pixels
    for layer in clf.preprocess_layers:
        x = layer(x)
    maps = keras.Model(clf.base.input, [output_of(clf.base, e) for e in clf.ends])(x)
    expected = np.concatenate([np.mean(m, axis=(1, 2)) for m in [maps[-1], *maps[:-1]]], axis=1)
    assert plain.name == "out_relu" and pooled.shape == expected.shape
    np.testing.assert_allclose(pooled, expected, rtol=1e-4, atol=1e-5)

    last_only = build_classifier(settings.with_changes(head_reads="last-block"), 3)
    assert last_only.base.output_shape[-1] == 1280 < clf.base.output_shape[-1]
    assert describe_blocks(settings, 3).head_params == clf.base.output_shape[-1] * 3 + 3


def test_a_run_saved_before_the_head_read_every_block_is_rebuilt_reading_the_last_one():
    recorded = TrainingSettings().to_dict()
    del recorded["head_reads"]  # run.json's settings as an older version wrote them
    assert TrainingSettings.from_dict(recorded, of_run=True).head_reads == "last-block"
    # Settings of a project or the remembered session take today's default.
    assert TrainingSettings.from_dict(recorded).head_reads == "every-block"
    kept = TrainingSettings(head_reads="last-block").to_dict()
    assert TrainingSettings.from_dict(kept).head_reads == "last-block"
    with pytest.raises(UserError, match=r"head_reads.*every-block, last-block"):
        TrainingSettings(head_reads="middle")


def test_a_deep_base_gets_the_last_block_of_each_resolution_within_the_budget():
    """Every block end of a ResNet50 would add 13,056 features to its 2,048: the head reads the
    end of each resolution instead, and the fast path's inputs follow the taps below a cut."""
    from finetune_gui.core.model.backbones import cut_layer
    from finetune_gui.core.model.build import TAP_BUDGET, tapped_ends
    from finetune_gui.core.model.frozen_pass import stored_below_cut, top_model

    settings = TrainingSettings(backbone="resnet50", weights="none", image_size=64)
    clf = build_classifier(settings, 2)
    plain = build_classifier(settings.with_changes(head_reads="last-block"), 2).base
    chosen = tapped_ends(plain, clf.ends)
    sides = [output_of(plain, clf.ends[i]).shape[1] for i in chosen]
    assert len(chosen) >= 3 and sides == sorted(set(sides), reverse=True)  # one per resolution
    width = clf.base.output_shape[-1]
    assert 2048 < width <= (1 + TAP_BUDGET) * 2048
    assert describe_blocks(settings, 2).head_params == width * 2 + 2
    cut = cut_layer(clf.ends, 4)
    below = [i for i in chosen if i <= clf.ends.index(cut)]
    pooled = np.zeros((3, width), np.float32)
    constants = stored_below_cut(clf, cut, pooled)
    assert constants.shape == (3, sum(output_of(plain, clf.ends[i]).shape[-1] for i in below))
    assert [tuple(t.shape[1:]) for t in top_model(clf, cut).inputs][1] == constants.shape[1:]
