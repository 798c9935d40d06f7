"""What a run pays once instead of again (issue 26): the frozen part traced once for all of a
run's passes, the test images taken by that pass when it is cheap, fine-tuning compiled
without a symbolic run of its model, and its training step traced on a second thread while
phase 1 solves the head. Each keeps what the run computes."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.model.build import build_classifier
from finetune_gui.core.model.onnx_pass import RUNTIME_ENV
from finetune_gui.core.settings import TrainingSettings


@pytest.fixture(scope="module")
def classifier():
    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32, seed=0)
    return build_classifier(settings, 3)


def pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)


def test_a_runs_passes_share_one_trace_of_the_frozen_part(monkeypatch, classifier):
    """The training, validation and test passes (any number of images, a last short batch)
    run one traced step; before, each pass traced its own (1.3-2.8 s apiece on 150 faces)."""
    from finetune_gui.core.model import frozen_pass
    from finetune_gui.core.model.backbones import cut_layer

    monkeypatch.setenv(RUNTIME_ENV, "tensorflow")
    cut = cut_layer(classifier.ends, 2)
    train = frozen_pass.extract_features(classifier, pixels(21, 0), cut=cut, batch_size=8)
    val = frozen_pass.extract_features(classifier, pixels(5, 1), cut=cut, batch_size=8)
    test = frozen_pass.extract_features(classifier, pixels(11, 2), cut=cut, batch_size=8,
                                        keep_cut=False)
    part = frozen_pass.frozen_part(classifier, cut, (32, 32, 3))
    assert part.step.experimental_get_tracing_count() == 1
    assert part.seconds_per_image is not None and part.seconds_per_image > 0
    # What the shared step stored is what the extractor computes on those images.
    extractor = frozen_pass.build_extractor(classifier, cut)
    for found, images in ((train, pixels(21, 0)), (val, pixels(5, 1)), (test, pixels(11, 2))):
        *_, pooled = extractor(images.astype(np.float32), training=False)
        np.testing.assert_allclose(found.pooled, np.asarray(pooled), rtol=1e-5, atol=1e-5)
    assert train.at_cut.shape[0] == 21 and test.at_cut is None
    # Another cut is another frozen part.
    assert frozen_pass.frozen_part(classifier, None, (32, 32, 3)) is not part


def test_the_frozen_pass_takes_the_test_images_in_tensorflow_only_when_that_is_cheap():
    from finetune_gui.core.training.fast_path import (
        WHOLE_NETWORK_TRACE_SECONDS,
        takes_test_images,
    )

    assert takes_test_images(None, False)  # no fine-tuning: the frozen part is the kept one
    assert takes_test_images("block_14_add", True)  # through ONNX Runtime: a quarter at stake
    # In TensorFlow: when the pass costs no more than the whole network's trace it saves.
    assert takes_test_images("block_14_add", False, WHOLE_NETWORK_TRACE_SECONDS / 2)
    assert not takes_test_images("block_14_add", False, WHOLE_NETWORK_TRACE_SECONDS * 2)
    assert not takes_test_images("block_14_add", False, None)  # not timed: not known


def test_a_small_runs_test_look_comes_from_its_frozen_pass(monkeypatch, tmp_path, classifier):
    from PIL import Image

    from finetune_gui.core.data.split import DatasetSplit
    from finetune_gui.core.model.backbones import cut_layer
    from finetune_gui.core.training import fast_path

    monkeypatch.setenv(RUNTIME_ENV, "tensorflow")
    monkeypatch.setenv("FINETUNE_GUI_CACHE_DIR", str(tmp_path / "cache"))
    images = pixels(40, 3)
    items = [(tmp_path / f"{i}.png", i % 3) for i in range(40)]
    for (path, _), picture in zip(items, images, strict=True):
        Image.fromarray(picture).save(path)
    split = DatasetSplit(tmp_path, ["a", "b", "c"], items[:20], items[20:30], items[30:])
    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32, seed=0)

    def stored():
        return fast_path.store_activations(
            classifier, settings, split, (images[:20], images[20:30]),
            cut=cut_layer(classifier.ends, 2), augment=None, views=1, batch_size=8,
            progress=lambda event: None, cancel=None)

    found = stored()
    assert found.test is not None and len(found.test.pooled) == 10
    assert found.pseudo is not None
    # Where that pass would cost more than the trace it saves, the test look traces instead.
    monkeypatch.setattr(fast_path, "WHOLE_NETWORK_TRACE_SECONDS", 0.0)
    monkeypatch.setenv("FINETUNE_GUI_CACHE_DIR", str(tmp_path / "cache-2"))
    found = stored()
    assert found.test is None and found.pseudo is None


def test_answers_near_a_tie_come_from_the_traced_frozen_part_as_the_saved_model_gives_them(
        monkeypatch, classifier):
    """The test look asks TensorFlow again about answers near a tie (the stored features are
    ONNX Runtime's within its tolerance): through the frozen part's step a pass traced already
    and the head, with the whole saved model's numbers, not a trace of the whole network (2 s
    of a MNIST run for 6 images). Without a traced part the whole model answers."""
    from finetune_gui.core.model import frozen_pass
    from finetune_gui.core.model.backbones import cut_layer
    from finetune_gui.core.run import dataset_features
    from finetune_gui.core.training import held_out

    monkeypatch.setenv(RUNTIME_ENV, "tensorflow")
    seeing = dataset_features.probe_model(classifier.model)
    above = frozen_pass.above_stored_model(classifier, None)
    images = pixels(5, 7)
    whole = dataset_features.probe(seeing, images, 3)
    calls = []
    monkeypatch.setattr(held_out, "probe", counted(dataset_features.probe, calls))
    classifier.frozen_parts.clear()
    fallback = held_out.answers_in_tensorflow(classifier, above, seeing, images, 3)
    assert len(calls) == 1  # nothing traced yet: the whole model answered
    frozen_pass.extract_features(classifier, pixels(9, 8), cut=cut_layer(classifier.ends, 2),
                                 batch_size=8)
    part = frozen_pass.traced_part(classifier, (32, 32, 3))
    found = held_out.answers_in_tensorflow(classifier, above, seeing, images, 3)
    assert len(calls) == 1 and part.step.experimental_get_tracing_count() == 1
    for answers in (fallback, found):
        for mine, theirs in zip(answers, whole, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert frozen_pass.traced_part(classifier, (48, 48, 3)) is None  # another image size


def small_model(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


def counted(call, runs: list):
    """`call`, noting each run in `runs`."""

    def run(*args, **kwargs):
        runs.append(1)
        return call(*args, **kwargs)

    return run


def test_compiling_a_built_model_does_not_run_it_and_trains_as_before(monkeypatch):
    """The optimizer's and metric's variables are made from the model's known output, without
    the symbolic run of the model (0.34-0.38 s of fine-tuning's 2.1 s on 150 faces); fit then
    traces its step once and trains to the same weights."""
    import keras

    from finetune_gui.core.training import recipe

    x = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    y = np.arange(20) % 3
    trained = []
    for lean in (True, False):
        model = small_model(0)
        runs = []
        model.call = counted(model.call, runs)
        if not lean:
            monkeypatch.setattr(recipe, "_build_from_output_spec", lambda *args: False)
        recipe.compile_for_training(model, "adam", 0.01)
        assert model.optimizer.built and model._compile_metrics.built
        assert (runs == []) == lean  # the symbolic build runs the model; the lean one does not
        model.fit(x, y, batch_size=5, epochs=2, verbose=0, shuffle=False)
        trained.append(model.get_weights())
    for lean_weights, full_weights in zip(*trained, strict=True):
        np.testing.assert_allclose(lean_weights, full_weights, rtol=1e-6, atol=1e-7)
    assert keras.ops.convert_to_numpy(model.optimizer.iterations) == 8


def test_a_step_traced_and_run_beforehand_is_the_one_fit_runs_and_it_changed_nothing():
    from finetune_gui.core.data.pipeline import batches
    from finetune_gui.core.training.finetune_prep import run_first_step, trace_training_step
    from finetune_gui.core.training.recipe import compile_for_training

    x = np.random.default_rng(1).normal(size=(30, 6)).astype(np.float32)
    y = (np.arange(30) % 3).astype(np.int64)
    w = np.ones(30, np.float32)

    def data(rows: int = 30):
        return batches([x[:rows], y[:rows], w[:rows]], 8, shuffle=True, seed=0, repeat=True)

    trained = []
    for prepared in (True, False):
        model = small_model(1)
        compile_for_training(model, "adam", 0.01)
        before = [v.copy() for v in model.get_weights()]
        moments = [v.numpy().copy() for v in model.optimizer.variables]
        if prepared:
            assert trace_training_step(model, data(2)) and run_first_step(model, data(2))
            # Run at learning rate 0, then put back: no weight moved, the optimizer is new.
            for now, then in zip(model.get_weights(), before, strict=True):
                np.testing.assert_array_equal(now, then)
            for now, then in zip(model.optimizer.variables, moments, strict=True):
                np.testing.assert_array_equal(now.numpy(), then)
            step = next(cell.cell_contents for cell in model.train_function.__closure__
                        if hasattr(cell.cell_contents, "experimental_get_tracing_count"))
        model.fit(data(), epochs=2, steps_per_epoch=4, verbose=0)
        assert int(model.optimizer.iterations.numpy()) == 8
        trained.append(model.get_weights())
    assert step.experimental_get_tracing_count() == 1  # fit took the trace made before
    # And it trained as a model that was never prepared.
    for one, other in zip(*trained, strict=True):
        np.testing.assert_allclose(one, other, rtol=1e-6, atol=1e-7)


def test_fine_tuning_is_prepared_only_where_its_thread_sees_the_runs_devices():
    import keras
    import tensorflow as tf

    from finetune_gui.core.training.finetune_prep import can_prepare

    assert can_prepare(tf.distribute.get_strategy(), 310, 6)
    # Only where phase 1 lasts long enough to prepare it during: not for 106 faces in 2
    # classes (phase 1 0.3 s), for 310 icons in 6 (2.4 s).
    assert not can_prepare(tf.distribute.get_strategy(), 106, 2)
    assert not can_prepare(tf.distribute.MirroredStrategy(["/cpu:0"]), 310, 6)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        assert not can_prepare(tf.distribute.get_strategy(), 310, 6)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_classifiers_frozen_parts_go_with_it(monkeypatch):
    """A process that trains many times (`--auto`'s trials, an ensemble, the tests) keeps no
    classifier alive through the traced parts of its passes."""
    import gc
    import weakref

    monkeypatch.setenv(RUNTIME_ENV, "tensorflow")
    from finetune_gui.core.model.frozen_pass import extract_features

    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32, seed=0)
    made = build_classifier(settings, 2)
    extract_features(made, pixels(12, 4), cut=None, batch_size=8)
    assert made.frozen_parts
    gone = weakref.ref(made.base)
    del made
    gc.collect()
    assert gone() is None
