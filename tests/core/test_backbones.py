"""The registry: every named backbone builds, reports its size, and is cut only between blocks."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.errors import SettingsError, WeightsError
from finetune_gui.core.model import backbones
from finetune_gui.core.model.backbones import (
    BACKBONES,
    block_ends,
    build_base,
    cut_layer,
    get_backbone,
    output_of,
)

REQUIRED = [
    "vgg16",
    "vgg19",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50v2",
    "resnet101v2",
    "resnet152v2",
    "inceptionv3",
    "xception",
    "mobilenetv2",
    "mobilenetv3small",
    "mobilenetv3large",
    "efficientnetb0",
    "efficientnetb1",
    "efficientnetb2",
    "efficientnetb3",
    "efficientnetv2b0",
    "efficientnetv2s",
    "densenet121",
    "convnexttiny",
]


def test_every_required_backbone_is_registered():
    assert set(REQUIRED) <= set(BACKBONES)


def test_names_are_forgiving_and_unknown_names_list_the_choices():
    assert get_backbone("MobileNet-V2").name == "mobilenetv2"
    with pytest.raises(SettingsError, match=r"Choose one of: .*resnet50"):
        get_backbone("alexnet")


@pytest.mark.parametrize(
    "name",
    ["mobilenetv3small", "mobilenetv2", "efficientnetb0", "resnet50", "densenet121", "vgg16"],
)
def test_parameter_count_matches_the_built_model(name):
    spec = get_backbone(name)
    base = build_base(spec, 32, None)
    assert round(base.count_params() / 1e6, 2) == spec.params_millions


@pytest.mark.parametrize(
    "name", ["mobilenetv2", "resnet50", "efficientnetb0", "convnexttiny", "xception", "inceptionv3"]
)
def test_every_block_cut_splits_the_network_exactly(name):
    """Bottom then top at each block boundary equals the whole base: no residual is cut."""
    import keras

    spec = get_backbone(name)
    size = max(32, spec.min_size)
    base = build_base(spec, size, None)
    ends = block_ends(base, spec)
    assert len(ends) >= 5
    x = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    whole = np.asarray(base(x, training=False))
    for n in (1, 2, len(ends) // 2, len(ends) - 1):
        cut = cut_layer(ends, n)
        bottom = keras.Model(base.input, output_of(base, cut))
        top = keras.Model(output_of(base, cut), base.output)
        np.testing.assert_allclose(np.asarray(top(bottom(x))), whole, rtol=1e-4, atol=1e-4)


def test_unfreeze_zero_means_no_cut_and_large_n_stops_at_the_stem():
    ends = ["a", "b", "c", "d"]
    assert cut_layer(ends, 0) is None
    assert cut_layer(ends, 1) == "c"
    assert cut_layer(ends, 99) == "a"


def test_too_small_images_are_refused():
    with pytest.raises(SettingsError, match="at least 75 pixels"):
        build_base(get_backbone("inceptionv3"), 32, None)


def test_offline_imagenet_download_names_the_file_and_the_two_ways_out(monkeypatch, tmp_path):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/x/mobilenet_v2_weights_96_no_top.h5: "
            "None -- [Errno -3] Temporary failure in name resolution"
        )

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(WeightsError) as caught:
        build_base(get_backbone("mobilenetv2"), 96, "imagenet")
    message = str(caught.value)
    assert "mobilenet_v2_weights_96_no_top.h5" in message
    assert "local weights file" in message and "train from scratch without pretrained weights" in message


def test_a_damaged_cached_download_is_removed_with_a_message(monkeypatch, tmp_path):
    from keras.src.utils import file_utils

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / "resnet50_notop.h5"
    cached.parent.mkdir()
    cached.write_bytes(b"half a download")

    def checksum_failed_then_offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid/w/resnet50_notop.h5: offline")

    monkeypatch.setattr(file_utils, "get_file", checksum_failed_then_offline)
    with pytest.raises(WeightsError, match="damaged or incomplete, so it was removed"):
        build_base(get_backbone("resnet50"), 32, "imagenet")
    assert not cached.exists()


def test_a_weights_file_saved_from_the_same_backbone_loads_and_changes_the_base(tmp_path):
    spec = get_backbone("mobilenetv3small")
    donor = build_base(spec, 32, None)
    for w in donor.weights:
        if "kernel" in w.path:
            w.assign(np.full(w.shape, 0.01, dtype="float32"))
    path = tmp_path / "base.weights.h5"
    donor.save_weights(path)
    loaded = build_base(spec, 32, str(path))
    fresh = build_base(spec, 32, None)
    x = np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(donor(x)), rtol=1e-5, atol=0)
    assert not np.allclose(np.asarray(loaded(x)), np.asarray(fresh(x)), rtol=1e-3, atol=0)


def test_a_weights_file_for_another_architecture_is_a_clear_message(tmp_path):
    other = build_base(get_backbone("mobilenetv3small"), 32, None)
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(WeightsError, match="does not fit ResNet50"):
        build_base(get_backbone("resnet50"), 32, str(path))


@pytest.mark.parametrize(
    "content,match", [(b"", "damaged|does not fit"), (b"not hdf5 at all", "damaged|does not fit")]
)
def test_a_damaged_weights_file_is_a_clear_message(tmp_path, content, match):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=match):
        build_base(get_backbone("mobilenetv3small"), 32, str(path))


def test_missing_and_wrong_type_weights_files_are_refused(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        backbones.load_weights_file(None, get_backbone("vgg16"), tmp_path / "nope.h5")
    text = tmp_path / "weights.txt"
    text.write_text("x")
    with pytest.raises(WeightsError, match="not a Keras weights file"):
        backbones.load_weights_file(None, get_backbone("vgg16"), text)
