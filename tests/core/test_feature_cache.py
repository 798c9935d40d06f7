"""The fast path: frozen layers computed once and reused across runs with the same key."""

from __future__ import annotations

import numpy as np

from finetune_gui.core.events import LogMessage, StageStarted
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.job import TrainingJob


def _settings(weights, **changes):
    base = dict(
        backbone="mobilenetv2", weights=str(weights), image_size=48, epochs_head=2,
        epochs_finetune=1, unfreeze_blocks=2, batch_size=16, augment="light", seed=0,
    )  # fmt: skip
    return TrainingSettings(**{**base, **changes})


def _run(data, settings, out):
    events = []
    result = TrainingJob(data, settings, out, progress=events.append).run()
    extracted = [
        e.stage for e in events if isinstance(e, StageStarted) and e.stage.startswith("extract")
    ]
    reused = [e.text for e in events if isinstance(e, LogMessage) and e.text.startswith("Reusing")]
    return result, extracted, reused


def test_a_second_head_reuses_the_extraction_and_a_new_cut_does_not(
    small_shapes, pretrained_base, tmp_path
):
    # A folder this small: the same pass takes the test images and the pseudo-outliers too
    # (fast_path.takes_test_images), sparing the test look a trace of the whole network.
    every_pass = ["extract", "extract-val", "extract-test", "extract-pseudo"]
    _, extracted, reused = _run(small_shapes, _settings(pretrained_base), tmp_path / "a")
    assert extracted == every_pass and reused == []

    # Another head, learning rate and epoch count: same frozen output, so no extraction, and
    # the test images' and pseudo-outliers' entries are taken too (no trace of the network).
    other_head = _settings(
        pretrained_base, dense_units=32, dropout=0.4, lr_head=3e-3, epochs_head=3
    )
    second, extracted, reused = _run(small_shapes, other_head, tmp_path / "b")
    assert extracted == [] and [line[line.rindex("(") + 1 : -2] for line in reused] == every_pass
    assert second.status == "completed"

    # Unfreezing more blocks moves the cut: the stored activations no longer apply. The test
    # images' and pseudo-outliers' pooled features do not depend on the cut: those are reused.
    deeper = _settings(pretrained_base, unfreeze_blocks=4)
    _, extracted, reused = _run(small_shapes, deeper, tmp_path / "c")
    assert extracted == ["extract", "extract-val"]
    assert reused == [f"Reusing the frozen layers' output from an earlier run ({stage})."
                      for stage in ("extract-test", "extract-pseudo")]


def test_training_with_a_tiny_memory_budget_spills_to_disk_and_still_reaches_high_accuracy(
    monkeypatch, other_shapes_dir, pretrained_base, tmp_path
):
    """Bounded memory: with a 0.5 MB budget the decoded pixels and the stored activations go to
    disk files (DiskArray) instead of RAM, and training on them is as good."""
    from finetune_gui.core.data import storage

    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "0.5")
    monkeypatch.setenv("FINETUNE_GUI_CACHE_DIR", str(tmp_path / "fresh-cache"))
    spilled: list[int] = []
    real_init = storage.DiskArray.__init__

    def recording_init(self, path, shape, dtype, *args, **kwargs):
        if kwargs.get("create"):  # a new array that did not fit the budget (not a cache file)
            spilled.append(int(np.prod(shape)) * np.dtype(dtype).itemsize)
        real_init(self, path, shape, dtype, *args, **kwargs)

    monkeypatch.setattr(storage.DiskArray, "__init__", recording_init)
    result = TrainingJob(
        other_shapes_dir, _settings(pretrained_base, epochs_head=4), tmp_path / "run"
    ).run()
    # Learned from the arrays on disk (chance is 0.33; one session measured 16 of 18).
    assert result.status == "completed" and result.report.accuracy >= 0.8
    # 84 training images of 48 px are 0.58 MB as pixels alone; their activations more again.
    assert len(spilled) >= 2 and sum(spilled) > 1_000_000


def test_a_cache_entry_keeps_the_first_block_statistics_and_an_older_one_has_none(
    tmp_path, monkeypatch
):
    from finetune_gui.core.model.frozen_pass import CachedFeatures
    from finetune_gui.core.training import feature_cache

    monkeypatch.setenv("FINETUNE_GUI_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    pooled, early = rng.normal(size=(6, 8)).astype(np.float32), rng.normal(size=(3, 4))
    feature_cache.save("with-early", CachedFeatures(pooled, None, 2, early.astype(np.float32)))
    found = feature_cache.load("with-early")
    np.testing.assert_array_equal(found.pooled, pooled)
    np.testing.assert_array_equal(found.early, early.astype(np.float32))
    assert found.views == 2 and found.at_cut is None

    feature_cache.save("older", CachedFeatures(pooled, None, 2))
    assert feature_cache.load("older").early is None
