"""The pictures' grey levels as a second view for the labelling proposals: read when the user's
labels say they help (a network that barely sees the classes), left out when they do not (a
network that sees them well), and taken from the check's fingerprints, no file read again."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from finetune_gui.core.data.hashing import fingerprint_image, grey_thumbnail
from finetune_gui.core.label.pixel_view import PIXEL_SIDE, beside, grey_levels, spread_like
from finetune_gui.core.label.proposals import propose


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's handwritten digits: their grey levels at 16 px (0-255) and classes."""
    from sklearn.datasets import load_digits

    found = load_digits()
    levels = np.kron(found.images, np.ones((2, 2))).reshape(len(found.images), -1) * 255 / 16
    return levels.astype(np.float32), found.target.astype(int)


def network_features(truth: np.ndarray, signal: float, seed: int = 0) -> np.ndarray:
    """Stand-in network features: each class's centre times `signal`, plus unit noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, 64))
    return (centres[truth] * signal + rng.normal(size=(len(truth), 64))).astype(np.float32)


def tenth_labelled(truth: np.ndarray, seed: int = 0) -> dict[int, str]:
    rng = np.random.default_rng(seed)
    return {int(r): str(truth[r]) for c in range(10)
            for r in rng.choice(np.flatnonzero(truth == c), 18, replace=False)}


def right_on_the_rest(proposals, labelled: dict[int, str], truth: np.ndarray) -> float:
    rest = np.setdiff1d(np.arange(len(truth)), list(labelled))
    return float((proposals.label_index()[rest] == truth[rest]).mean())


def test_grey_levels_help_where_the_network_barely_sees_the_classes(digits):
    levels, truth = digits
    weak = network_features(truth, signal=0.25)
    labelled, classes = tenth_labelled(truth), [str(c) for c in range(10)]
    alone = propose(weak, labelled, classes)
    both = propose(weak, labelled, classes, pixels=spread_like(levels, weak))
    assert both.with_pixels and not alone.with_pixels
    assert "also read the pictures' own grey levels" in both.estimate_text()
    assert "grey levels" not in alone.estimate_text()
    with_pixels, without = (right_on_the_rest(p, labelled, truth) for p in (both, alone))
    assert with_pixels > without + 0.2, (with_pixels, without)
    assert with_pixels > 0.9


def test_grey_levels_are_left_out_where_they_only_add_noise(digits):
    _, truth = digits
    strong = network_features(truth, signal=1.0)
    noise = np.random.default_rng(1).uniform(0, 255, (len(truth), PIXEL_SIDE**2))
    labelled, classes = tenth_labelled(truth), [str(c) for c in range(10)]
    both = propose(strong, labelled, classes,
                   pixels=spread_like(noise.astype(np.float32), strong))
    alone = propose(strong, labelled, classes)
    assert not both.with_pixels
    np.testing.assert_array_equal(both.probabilities, alone.probabilities)


def test_the_grey_levels_are_the_fingerprints_thumbnail_halved_and_spread_like_the_features():
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    fingerprint = fingerprint_image(picture)
    thumbnail = grey_thumbnail(fingerprint)
    levels = grey_levels([fingerprint, None])
    expected = thumbnail.reshape(16, 2, 16, 2).mean(axis=(1, 3)).ravel()
    np.testing.assert_allclose(levels[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(levels[1], levels[0])  # no fingerprint: the others' mean

    features = rng.normal(size=(50, 8)).astype(np.float32) * 7
    grey = rng.uniform(0, 255, (50, PIXEL_SIDE**2)).astype(np.float32)
    joined = beside(features, spread_like(grey, features))
    np.testing.assert_array_equal(joined[:, :8], features)
    np.testing.assert_allclose(beside(features, spread_like(grey, features), 2.0)[:, 8:],
                               2 * joined[:, 8:], rtol=1e-6)

    def spread(x):
        return np.sqrt(np.mean(np.sum((x - x.mean(axis=0)) ** 2, axis=1)))

    assert spread(joined[:, 8:]) == pytest.approx(spread(features), rel=1e-4)


def test_the_labeller_reads_the_grey_levels_of_the_checked_folder(tmp_path):
    """From a folder: the check's fingerprints give the view; a network that sees nothing of
    the digits (noise) is helped by them, and the page asked follows the network's own
    answers (what teaches the model to be trained), not the proposals'."""
    from sklearn.datasets import load_digits

    from finetune_gui.core.label.asking import asking_order
    from finetune_gui.core.label.features import FeatureSource, PictureFeatures
    from finetune_gui.core.label.labeller import Labeller
    from finetune_gui.core.label.pictures import check_folder
    from finetune_gui.core.label.session import LabelSession

    found = load_digits()
    for k in range(300):
        grey = (255 - found.images[k] * 255 / 16).astype(np.uint8)
        Image.fromarray(grey).resize((32, 32), Image.Resampling.BICUBIC).save(
            tmp_path / f"{k:03d}.png")
    pictures = check_folder(tmp_path)
    truth = np.array([found.target[int(p.stem)] for p in pictures.pictures])
    noise = np.random.default_rng(0).normal(size=(len(truth), 32)).astype(np.float32)
    classes = [str(c) for c in range(10)]
    labeller = Labeller(pictures, PictureFeatures(noise, [], None),
                        LabelSession(tmp_path, FeatureSource(), classes=classes))
    rng = np.random.default_rng(0)
    for c in range(10):
        for row in rng.choice(np.flatnonzero(truth == c), 4, replace=False):
            labeller.session.set_label(labeller.names[row], str(c))
    view = labeller.refresh()
    assert view.proposals.with_pixels
    network = view.proposals.network_probabilities
    assert network is not None and not np.allclose(network, view.proposals.probabilities)
    assert view.ask == asking_order(noise, network, labeller.decided(), 24)
    assert right_on_the_rest(view.proposals, labeller.labelled_rows(), truth) > 0.7
    assert len(view.ask) == 24 and not labeller.decided()[view.ask].any()
