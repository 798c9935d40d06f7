"""The frozen pass through ONNX Runtime (issue 26): chosen only where it saves time, and the
features it stores are TensorFlow's within the stated tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from finetune_gui.core.events import LogMessage
from finetune_gui.core.model import onnx_pass
from finetune_gui.core.model.build import build_classifier
from finetune_gui.core.model.frozen_pass import extract_features
from finetune_gui.core.model.onnx_pass import (
    CONVERT_SECONDS,
    RUNTIME_ENV,
    SAVED_SHARE,
    TOLERANCE,
    same_output,
    use_onnx_runtime,
)
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.recipe import training_augmentation

WORTH_IT = 2 * CONVERT_SECONDS / SAVED_SHARE  # TensorFlow seconds a conversion pays for twice


def test_onnx_runtime_runs_the_frozen_pass_only_on_a_cpu_and_only_when_it_saves_time():
    def choose(**given):
        facts = dict(gpus=0, importable=True, converted=False, remaining_seconds=WORTH_IT)
        return use_onnx_runtime(**(facts | given))

    assert choose()
    assert not choose(gpus=1)  # TensorFlow on the GPU
    assert not choose(importable=False)
    # A short pass does not pay for converting; once converted, any pass uses it.
    assert not choose(remaining_seconds=CONVERT_SECONDS)
    assert choose(remaining_seconds=1.0, converted=True)
    # The setting that turns the choice off, or on for a test.
    assert not choose(forced="tensorflow")
    assert choose(forced="onnxruntime", remaining_seconds=0.0, gpus=1)
    assert not choose(forced="onnxruntime", importable=False)


def test_the_first_pass_counts_the_images_later_passes_would_send_through_the_faster_runtime(
    monkeypatch, classifier, tmp_path
):
    """On 1,797 digits at 160 px the training images alone did not pay for converting, so the
    validation pass and the test look (the whole network) ran in TensorFlow too: the first
    pass's estimate now counts every image the run's later passes put through the frozen part."""
    from finetune_gui.core.data.split import DatasetSplit
    from finetune_gui.core.model import frozen_pass
    from finetune_gui.core.training.fast_path import store_activations

    asked = []

    def decline(**facts):
        asked.append(facts["remaining_seconds"])
        return False

    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    monkeypatch.setattr(onnx_pass, "use_onnx_runtime", decline)
    ticks = iter(range(10**6))  # each reading of the clock moves it on a second
    monkeypatch.setattr(frozen_pass.time, "perf_counter", lambda: float(next(ticks)))
    images = np.random.default_rng(3).integers(0, 256, (40, 32, 32, 3)).astype(np.uint8)
    extract_features(classifier[1], images, cut=None, batch_size=8)
    extract_features(classifier[1], images, cut=None, batch_size=8, later_images=400)
    # A second per batch of 8, 3 batches left in the pass; then 400 more images too.
    assert asked == [3.0, 3.0 + 400 / 8]

    asked.clear()
    settings = classifier[0].with_changes(image_size=32)
    items = [(tmp_path / f"{i}.png", i % 3) for i in range(40)]
    for (path, _), pixels in zip(items, images, strict=True):
        Image.fromarray(pixels).save(path)
    split = DatasetSplit(tmp_path, ["a", "b", "c"], items[:16], items[16:32], items[32:])
    store_activations(classifier[1], settings, split, (images[:16], images[16:32]), cut=None,
                      augment=None, views=1, batch_size=8, progress=lambda e: None, cancel=None)
    # Each pass decides at its second batch of 8. Training: no batch left, then 16 validation
    # and 8 test images; validation: the test's 8 (then the pseudo-outliers', alone).
    assert asked[:2] == [0.0 + 24 / 8, 0.0 + 8 / 8]


@pytest.fixture(scope="module")
def classifier():
    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32,
                                augment="strong", seed=0)
    return settings, build_classifier(settings, 3)


def passes(monkeypatch, classifier, images, **options):
    """The same pass in TensorFlow and through ONNX Runtime, with the log of the second."""
    model = classifier[1]
    found = {}
    for runtime in ("tensorflow", "onnxruntime"):
        monkeypatch.setenv(RUNTIME_ENV, runtime)
        logs = []
        found[runtime] = extract_features(model, images, batch_size=8, progress=logs.append,
                                          **options)
    return found["tensorflow"], found["onnxruntime"], [e.text for e in logs
                                                       if isinstance(e, LogMessage)]


@pytest.mark.parametrize("pixels_per_run", [onnx_pass.PIXELS_PER_RUN, 3 * 32 * 32])
def test_onnx_runtime_stores_tensorflows_features(monkeypatch, classifier, pixels_per_run):
    """Also when each batch of 8 runs as 3 + 3 + 2 images (`runs_of`, as at 224 px)."""
    from finetune_gui.core.model.backbones import cut_layer

    monkeypatch.setattr(onnx_pass, "PIXELS_PER_RUN", pixels_per_run)
    monkeypatch.setattr(onnx_pass, "_converted", type(onnx_pass._converted)())

    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3)).astype(np.uint8)
    cut = cut_layer(classifier[1].ends, 1)
    tensorflow, onnx, log = passes(monkeypatch, classifier, images, cut=cut)
    assert any("ONNX Runtime" in line and "same output" in line for line in log)
    for name in ("pooled", "at_cut", "early"):
        want, got = np.asarray(getattr(tensorflow, name)), np.asarray(getattr(onnx, name))
        assert got.shape == want.shape and np.abs(want).max() > 0
        # Measured 5e-7 here; the stated bound is TOLERANCE of the largest value (at least 1).
        assert np.abs(got - want).max() <= TOLERANCE * max(1.0, np.abs(want).max()), name


def test_large_images_run_side_by_side_a_core_each_small_ones_share_the_cores():
    """Measured in the frozen pass on 2 cores: side by side was faster at 128-224 px (a batch
    of 16 makes 2-8 runs), slower at 48 and 96 px (one or two uneven runs)."""
    from finetune_gui.core.model.onnx_pass import runs_of, side_by_side

    on_two = {size: side_by_side(runs_of(size), 2) for size in (48, 96, 128, 160, 224)}
    assert on_two == {48: False, 96: False, 128: True, 160: True, 224: True}
    assert not side_by_side(runs_of(224), 1)  # one core: nothing to put side by side
    # Eight cores: only a batch that makes eight runs goes side by side.
    assert side_by_side(runs_of(224), 8) and not side_by_side(runs_of(160), 8)


@pytest.mark.parametrize("cores", [1, 3])
def test_runs_side_by_side_give_one_runs_outputs_in_the_images_order(monkeypatch, classifier,
                                                                    cores):
    """Side by side, each run has one thread and the runs of a call are spread over the cores;
    otherwise ONNX Runtime's own threads run them one after another. Either way the outputs
    are one run's, in the images' order."""
    from finetune_gui.core.model.frozen_pass import build_extractor

    monkeypatch.setattr(onnx_pass, "usable_cores", lambda: cores)
    monkeypatch.setattr(onnx_pass, "PIXELS_PER_RUN", 3 * 32 * 32)  # runs of 3, as at 224 px
    spread = []
    real_workers = onnx_pass.block_workers

    def counted(blocks, name):
        spread.append(blocks)
        return real_workers(blocks, name)

    monkeypatch.setattr(onnx_pass, "block_workers", counted)
    part = onnx_pass.OnnxFrozenPart(build_extractor(classifier[1], None), 32)
    assert part.side_by_side is (cores > 1)
    threads = part.session.get_session_options().intra_op_num_threads
    assert threads == (1 if cores > 1 else 0)  # 0: ONNX Runtime's own choice
    images = np.random.default_rng(4).integers(0, 256, (7, 32, 32, 3)).astype(np.float32)
    found = part(images)
    assert spread == [3 if cores > 1 else 1]  # 7 images: runs of 3 + 3 + 1
    alone = [part.session.run(None, {part.input_name: images[k : k + 1]}) for k in range(7)]
    for k, output in enumerate(found):
        want = np.concatenate([run[k] for run in alone])
        assert output.shape == want.shape
        np.testing.assert_allclose(output, want, rtol=0, atol=1e-5 * max(1, np.abs(want).max()))


def test_a_split_with_no_images_is_not_announced_as_zero_images(classifier):
    """With --val-fraction 0 the log said "Reading 0 images at 48 px" and "Computing frozen
    layers once (0 images)"."""
    from finetune_gui.core.data.pipeline import decode_images

    events = []
    assert decode_images([], 32, progress=events.append).shape == (0, 32, 32, 3)
    found = extract_features(classifier[1], np.zeros((0, 32, 32, 3), np.uint8), cut=None,
                             progress=events.append)
    assert len(found.pooled) == 0 and events == []


def test_augmented_views_through_onnx_runtime_keep_the_plain_copy_first(monkeypatch,
                                                                        classifier):
    settings, _ = classifier
    images = np.random.default_rng(1).integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    tensorflow, onnx, _ = passes(monkeypatch, classifier, images, cut=None, views=2,
                                 augment=training_augmentation(settings))
    scale = float(np.abs(tensorflow.pooled).max())
    assert same_output([onnx.pooled[:24]], [tensorflow.pooled[:24]])
    assert not np.allclose(onnx.pooled[24:], onnx.pooled[:24], rtol=0, atol=0.05 * scale)


def test_outputs_are_the_same_within_the_tolerance_of_their_scale():
    pooled = np.linspace(0, 11.6, 2784, dtype=np.float32)[None]
    assert same_output([pooled + 1.6e-4], [pooled])  # pretrained MobileNetV2 at 224 px
    assert not same_output([pooled * 1.01], [pooled])  # one percent off
    assert not same_output([pooled[:, :10]], [pooled])  # another shape
    assert not same_output([pooled], [pooled, pooled])  # an output missing


def test_a_runtime_that_fails_or_differs_leaves_the_pass_to_tensorflow(monkeypatch, classifier):
    images = np.random.default_rng(2).integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)

    class Broken:
        def __init__(self, extractor, size):
            raise RuntimeError("unsupported layer")

    monkeypatch.setattr(onnx_pass, "OnnxFrozenPart", Broken)
    monkeypatch.setattr(onnx_pass, "_converted", type(onnx_pass._converted)())
    tensorflow, fallen_back, log = passes(monkeypatch, classifier, images, cut=None)
    assert any("run in TensorFlow" in line and "RuntimeError" in line for line in log)
    np.testing.assert_array_equal(fallen_back.pooled, tensorflow.pooled)

    class Off:
        def __init__(self, extractor, size):
            pass

        def __call__(self, pixels):
            return [np.full((len(pixels), 32), 9.0, np.float32),
                    np.zeros((len(pixels), 2784), np.float32)]

    monkeypatch.setattr(onnx_pass, "OnnxFrozenPart", Off)
    tensorflow, checked, log = passes(monkeypatch, classifier, images, cut=None)
    assert any("differed" in line for line in log)
    np.testing.assert_array_equal(checked.pooled, tensorflow.pooled)


def test_the_session_is_released_once_the_frozen_passes_are_done(monkeypatch, classifier):
    """A session holds about 200 MB at 224 px that the rest of a run needs more."""
    model = classifier[1]
    images = np.random.default_rng(3).integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    monkeypatch.setenv(RUNTIME_ENV, "onnxruntime")
    extract_features(model, images, cut=None, batch_size=8)
    assert None in onnx_pass._converted[model.base]  # the validation pass would reuse it
    onnx_pass.release(model.base)
    assert model.base not in onnx_pass._converted


def test_efficientnet_and_densenet_run_through_onnx_runtime_too(monkeypatch):
    """Their input normalisation is a constant the converted function captured: tf2onnx's
    from_function made it an input no one fed, and every pass fell back to TensorFlow."""
    monkeypatch.setattr(onnx_pass, "_converted", type(onnx_pass._converted)())
    for backbone in ("efficientnetb0", "densenet121"):
        settings = TrainingSettings(backbone=backbone, weights="none", image_size=32)
        model = build_classifier(settings, 3)
        images = np.random.default_rng(4).integers(0, 256, (16, 32, 32, 3)).astype(np.uint8)
        found = {}
        for runtime in ("tensorflow", "onnxruntime"):
            monkeypatch.setenv(RUNTIME_ENV, runtime)
            logs = []
            found[runtime] = extract_features(model, images, cut=None, batch_size=8,
                                              progress=logs.append)
        said = [e.text for e in logs if isinstance(e, LogMessage)]
        assert any("through ONNX Runtime" in line for line in said), (backbone, said)
        assert same_output([found["onnxruntime"].pooled], [found["tensorflow"].pooled])
        onnx_pass.release(model.base)


@pytest.mark.slow
@pytest.mark.parametrize("finetune,all_ties", [(0, False), (1, False), (0, True)])
def test_the_test_split_is_scored_from_the_frozen_pass_as_the_saved_model_scores_it(
    monkeypatch, small_shapes, pretrained_base, tmp_path, finetune, all_ties
):
    """The test images go through the frozen part in the frozen pass (through ONNX Runtime),
    and the final look runs only the head on them: the same classes and, within float
    tolerance, the same probabilities as the saved model.keras gives those images. With
    every answer near a tie (`all_ties`), every one is taken from the saved model itself."""
    import keras

    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.events import StageStarted
    from finetune_gui.core.run.dataset_features import load_cached
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.run.unsure import UNSURE_FILE, unsure_rule
    from finetune_gui.core.training import held_out
    from finetune_gui.core.training.job import TrainingJob

    monkeypatch.setenv(RUNTIME_ENV, "onnxruntime")
    if all_ties:
        monkeypatch.setattr(held_out, "TIE_MARGIN", 1.01)
    settings = TrainingSettings(backbone="mobilenetv2", weights=str(pretrained_base),
                                image_size=32, epochs_head=1, epochs_finetune=finetune, augment="none",
                                finetune_when="always", test_fraction=0.3, seed=0)
    stages = []
    TrainingJob(small_shapes, settings, tmp_path / "run",
                progress=lambda e: stages.append(e.stage) if isinstance(e, StageStarted)
                else None).run()
    run = RunFolder.open(tmp_path / "run")
    test_paths = [p for p, _ in run.split().test]
    assert len(test_paths) >= 9
    head_only = run.facts.kept_model != "fine-tuned"
    assert "extract-test" in stages and "extract-pseudo" in stages
    model = keras.models.load_model(run.model_path)
    want = model.predict(decode_images(test_paths, 32), verbose=0)
    by_path = {Path(p["path"]): p for p in run.report.predictions}
    got = np.array([by_path[p]["probabilities"] for p in test_paths])
    assert np.abs(got - want).max() < (2e-6 if all_ties else 1e-4), head_only
    assert [by_path[p]["predicted"] for p in test_paths] == list(want.argmax(axis=1))
    # The "not sure" rule calibrated on the pseudo-outliers' rows from the frozen pass is the
    # one calibrated afterwards through the saved model.
    saved = json.loads((run.path / UNSURE_FILE).read_text())
    (run.path / UNSURE_FILE).unlink()
    again = unsure_rule(RunFolder.open(run.path)).to_dict()
    assert flat(saved).keys() == flat(again).keys()
    for key, value in flat(saved).items():
        assert value == (pytest.approx(flat(again)[key], rel=1e-3, abs=1e-4)
                         if isinstance(value, float) else flat(again)[key]), key
    kept = load_cached(run)
    rows = {p: i for i, p in enumerate(kept.paths)}
    # features.npz keeps probabilities as float16
    np.testing.assert_allclose(kept.probabilities[[rows[p] for p in test_paths]], got, atol=1e-3)


def flat(tree, prefix: str = "") -> dict:
    """Nested dicts and lists as one dict of leaves keyed by their path."""
    if isinstance(tree, dict | list):
        pairs = tree.items() if isinstance(tree, dict) else enumerate(tree)
        return {k: v for key, value in pairs for k, v in flat(value, f"{prefix}/{key}").items()}
    return {prefix: tree}


def test_a_later_pass_takes_the_checked_session_from_its_first_batch(monkeypatch, classifier):
    """The validation, test and pseudo-outlier passes run through the session the first pass
    converted and checked: TensorFlow's step is neither traced nor run for them (its trace
    took about a second a pass), and they store what that session gives."""
    model = classifier[1]
    monkeypatch.setattr(onnx_pass, "_converted", type(onnx_pass._converted)())
    monkeypatch.setenv(RUNTIME_ENV, "onnxruntime")
    images = np.random.default_rng(4).integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    extract_features(model, images, cut=None, batch_size=8)
    session = onnx_pass._converted[model.base][None]
    from finetune_gui.core.model import frozen_pass

    built = frozen_pass.build_extractor
    tensorflow_calls = []

    def counted_extractor(*args, **kwargs):
        extractor = built(*args, **kwargs)

        def called(*inputs, **options):
            tensorflow_calls.append(1)
            return extractor(*inputs, **options)

        called.outputs = extractor.outputs
        return called

    monkeypatch.setattr(frozen_pass, "build_extractor", counted_extractor)
    monkeypatch.setattr(model, "frozen_parts", {})  # built afresh, with the counted extractor
    later = np.random.default_rng(5).integers(0, 256, (20, 32, 32, 3)).astype(np.uint8)
    found = extract_features(model, later, cut=None, batch_size=8)
    assert tensorflow_calls == []
    np.testing.assert_array_equal(found.pooled, session(later)[-1])
    # TensorFlow forced: the session is not taken, and TensorFlow's step runs.
    monkeypatch.setenv(RUNTIME_ENV, "tensorflow")
    forced = extract_features(model, later, cut=None, batch_size=8)
    assert tensorflow_calls and same_output([forced.pooled], [found.pooled])
