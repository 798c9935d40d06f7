"""GPU choices, made from a faked device list: this machine and CI have no GPU."""

from __future__ import annotations

import pytest

from finetune_gui.core.devices import (
    GpuInfo,
    apply_plan,
    halve_batch,
    plan_devices,
    reset_precision,
)


def test_no_gpu_trains_on_the_cpu_in_float32():
    plan = plan_devices([])
    assert (plan.mixed_precision, plan.strategy) == (False, "default")
    assert "CPU" in plan.summary


def test_one_modern_gpu_uses_mixed_precision_on_one_device():
    plan = plan_devices([GpuInfo("RTX 3090", (8, 6))])
    assert plan.mixed_precision and plan.strategy == "default"
    assert "output layer stays float32" in plan.summary


def test_an_old_gpu_keeps_float32_and_says_why():
    plan = plan_devices([GpuInfo("GTX 1080", (6, 1))])
    assert not plan.mixed_precision
    assert "needs compute capability 7.0" in plan.summary


def test_several_gpus_are_all_used_with_mirrored_strategy():
    plan = plan_devices([GpuInfo("A100", (8, 0)), GpuInfo("A100", (8, 0))])
    assert plan.strategy == "mirrored" and plan.mixed_precision
    assert "all 2 GPUs" in plan.summary


def test_mixed_old_and_new_gpus_stay_in_float32():
    assert not plan_devices([GpuInfo("V100", (7, 0)), GpuInfo("K80", (3, 7))]).mixed_precision


def test_unknown_capability_is_not_assumed_capable():
    assert not plan_devices([GpuInfo("mystery", None)]).mixed_precision


def test_applying_a_plan_sets_and_resets_the_precision_policy():
    import keras
    import tensorflow as tf

    strategy = apply_plan(plan_devices([GpuInfo("A100", (8, 0))]))
    try:
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert strategy is tf.distribute.get_strategy()
    finally:
        reset_precision()
    assert keras.mixed_precision.global_policy().name == "float32"


def test_a_mirrored_plan_builds_a_mirrored_strategy():
    import tensorflow as tf

    strategy = apply_plan(plan_devices([GpuInfo("a", (8, 0)), GpuInfo("b", (8, 0))]))
    reset_precision()
    assert isinstance(strategy, tf.distribute.MirroredStrategy)


@pytest.mark.parametrize("size,expected", [(64, 32), (3, 1), (1, None)])
def test_out_of_memory_halves_the_batch_until_one(size, expected):
    assert halve_batch(size) == expected
