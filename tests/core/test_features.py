"""The frozen part's output as the fast path stores it: each image as it is, then augmented."""

from __future__ import annotations

import numpy as np

from finetune_gui.core.model.build import build_classifier
from finetune_gui.core.model.features import extract_features
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
    from finetune_gui.core.model.features import top_model

    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32,
                                dropout=0.5, seed=0)
    classifier = build_classifier(settings, 3)
    cut = cut_layer(classifier.ends, 1)
    at_cut = np.random.default_rng(1).normal(size=(4, *top_model(classifier, cut).input_shape[1:]))
    at_cut = at_cut.astype("float32")
    without = top_model(classifier, cut, dropout=False)
    np.testing.assert_allclose(without(at_cut, training=True), without(at_cut, training=False),
                               rtol=1e-5, atol=1e-6)
    with_dropout = top_model(classifier, cut)
    assert not np.allclose(with_dropout(at_cut, training=True), with_dropout(at_cut,
                                                                            training=False))
