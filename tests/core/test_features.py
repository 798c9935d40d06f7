"""The frozen part's output as the fast path stores it: each image as it is, then augmented."""

from __future__ import annotations

import numpy as np

from finetune_gui.core.model.build import build_classifier
from finetune_gui.core.model.frozen_pass import extract_features
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.recipe import training_augmentation


def test_the_first_copy_of_every_image_is_the_plain_image_and_the_others_are_augmented():
    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32,
                                augment="strong", seed=0)
    classifier = build_classifier(settings, 3)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)
    plain = extract_features(classifier, images, cut=None)
    scale = np.abs(plain.pooled).max()  # an untrained network's features are tiny
    assert scale > 0
    stored = extract_features(classifier, images, cut=None,
                              augment=training_augmentation(settings), views=3)
    assert stored.views == 3 and stored.pooled.shape[0] == 15
    np.testing.assert_allclose(stored.pooled[:5], plain.pooled, rtol=1e-4, atol=1e-4 * scale)
    for copy in (1, 2):
        assert not np.allclose(stored.pooled[copy * 5 : copy * 5 + 5], plain.pooled, rtol=0,
                               atol=0.05 * scale)
    # One copy is the plain image, augmentation or not.
    single = extract_features(classifier, images, cut=None,
                              augment=training_augmentation(settings), views=1)
    np.testing.assert_allclose(single.pooled, plain.pooled, rtol=1e-4, atol=1e-4 * scale)


def test_fine_tuning_after_a_solved_head_leaves_out_the_dropout_the_head_was_not_fitted_with():
    from finetune_gui.core.model.backbones import cut_layer
    from finetune_gui.core.model.frozen_pass import top_model

    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32,
                                dropout=0.5, seed=0)
    classifier = build_classifier(settings, 3)
    cut = cut_layer(classifier.ends, 1)
    # The activations at the cut and, with the head reading every block, the pooled outputs of
    # the blocks below it.
    rng = np.random.default_rng(1)
    at_cut = [rng.normal(size=(4, *t.shape[1:])).astype("float32")
              for t in top_model(classifier, cut).inputs]
    without = top_model(classifier, cut, dropout=False)
    np.testing.assert_allclose(without(at_cut, training=True), without(at_cut, training=False),
                               rtol=1e-5, atol=1e-6)
    with_dropout = top_model(classifier, cut)
    assert not np.allclose(with_dropout(at_cut, training=True), with_dropout(at_cut,
                                                                            training=False))


def test_a_runs_feature_rows_from_the_stored_activations_match_running_the_whole_network():
    """features.npz's training and validation rows come from what the fast path stored (only
    the layers above the cut and the first block run again); after the top blocks and the head
    changed they must equal a full pass over the pixels, plain copies only."""
    import keras

    from finetune_gui.core.model.backbones import cut_layer
    from finetune_gui.core.run.dataset_features import probe, probe_model
    from finetune_gui.core.training.fast_path import StoredActivations
    from finetune_gui.core.training.kept_features import split_rows

    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32,
                                augment="strong", seed=0)
    classifier = build_classifier(settings, 3)
    rng = np.random.default_rng(2)
    train, val = (rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8) for n in (6, 4))
    cut = cut_layer(classifier.ends, 1)
    stored = StoredActivations(
        extract_features(classifier, train, cut=cut, augment=training_augmentation(settings),
                         views=2),
        extract_features(classifier, val, cut=cut), cut)
    # Training changes the layers above the cut: the stored pooled features are then stale.
    top = next(layer for layer in classifier.base.layers[::-1]
               if isinstance(layer, keras.layers.Conv2D))
    top.set_weights([w * rng.uniform(0, 2, w.shape).astype(w.dtype) for w in top.get_weights()])
    out = classifier.head_layers[-1]
    out.set_weights([rng.normal(size=w.shape).astype("float32") for w in out.get_weights()])

    rows = split_rows(classifier, stored, {"train": train, "val": val})
    seeing = probe_model(classifier.model)
    for part, pixels in (("train", train), ("val", val)):
        expected = probe(seeing, pixels, 3)
        # The last block's 1280 features and every earlier block's, those below the cut taken
        # from the stored pooled features.
        width = classifier.base.output_shape[-1]
        assert width > 1280 and rows[part][1].shape == expected[1].shape == (len(pixels), width)
        for got, want in zip(rows[part], expected, strict=True):
            scale = max(float(np.abs(want).max()), 1e-6)
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * scale)
    # The check above can fail: the last block's features changed with the layers above the cut.
    last = 1280
    stale = stored.train.pooled[:6, :last]
    fresh = probe(seeing, train, 3)[1][:, :last]
    assert not np.allclose(stale / np.linalg.norm(stale, axis=1, keepdims=True),
                           fresh / np.linalg.norm(fresh, axis=1, keepdims=True), atol=1e-3)


def test_without_a_fine_tuning_phase_the_rows_come_from_the_stored_pooled_features():
    from finetune_gui.core.run.dataset_features import probe, probe_model
    from finetune_gui.core.training.fast_path import StoredActivations
    from finetune_gui.core.training.kept_features import split_rows

    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32, seed=0)
    classifier = build_classifier(settings, 2)
    images = np.random.default_rng(3).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)
    found = extract_features(classifier, images, cut=None)
    assert found.early.shape == (5, 2 * 16)  # the first block's 16 channels: mean, log spread
    expected = probe(probe_model(classifier.model), images, 2)
    # A cache entry from before the first block's statistics were kept: they are computed.
    older = type(found)(found.pooled, None, 1, None)
    for stored in (found, older):
        rows = split_rows(classifier, StoredActivations(stored, stored, None),
                          {"train": images, "val": images[:0]})
        assert set(rows) == {"train"}  # no validation images, no rows
        for got, want in zip(rows["train"], expected, strict=True):
            scale = max(float(np.abs(want).max()), 1e-6)
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * scale)


def test_phase_2s_model_on_stored_activations_answers_as_the_whole_network_does():
    """Phase 2 trains the layers above the cut on what the frozen pass stored: with the head
    reading every block (taps below and above the cut) or the last block only, at any cut,
    those layers must give the whole network's pooled features and probabilities, and the
    frozen pass's pooled features must be the network's own."""
    import keras

    from finetune_gui.core.model.backbones import cut_layer
    from finetune_gui.core.model.frozen_pass import above_stored_model, stored_inputs, top_model

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.float32)
    for reads in ("every-block", "last-block"):
        settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32,
                                    head_reads=reads, dropout=0.0, seed=0)
        classifier = build_classifier(settings, 3)
        pooled = keras.Model(classifier.model.input, classifier.head_layers[0].output)
        expected_pooled = pooled.predict(images, verbose=0)
        head = classifier.head_layers[-1]  # weights for an untrained base's tiny features
        kernel, bias = head.get_weights()
        kernel = rng.normal(size=kernel.shape) / np.abs(expected_pooled).max()
        head.set_weights([kernel.astype("float32"), bias])
        expected = classifier.model.predict(images, verbose=0)
        assert expected.max() - expected.min() > 0.05  # answers that tell heads apart
        for blocks in (1, 3):
            cut = cut_layer(classifier.ends, blocks)
            stored = extract_features(classifier, images, cut=cut)
            np.testing.assert_allclose(stored.pooled, expected_pooled, rtol=1e-5, atol=1e-6)
            inputs = stored_inputs(classifier, cut, stored)
            np.testing.assert_allclose(
                top_model(classifier, cut, dropout=False).predict(inputs, verbose=0), expected,
                rtol=1e-5, atol=1e-6)
            features, answers = above_stored_model(classifier, cut).predict(inputs, verbose=0)
            np.testing.assert_allclose(features, expected_pooled, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(answers, expected, rtol=1e-5, atol=1e-6)
