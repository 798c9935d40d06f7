"""GPU choices, made from a faked device list: this machine and CI have no GPU."""

from __future__ import annotations

import pytest

from finetune_gui.core.training.devices import (
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


# -- several machines: TF_CONFIG --------------------------------------------------------------
def _tf_config(cluster: dict, task_type: str, index: int) -> str:
    import json

    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


TWO_WORKERS = {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}
CHIEF_AND_WORKERS = {"chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222", "10.0.0.3:2222"]}


def test_no_tf_config_is_one_machine_and_its_own_chief():
    plan = plan_devices([], tf_config="")
    assert plan.strategy == "default" and plan.cluster is None and plan.is_chief


def test_tf_config_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _tf_config(TWO_WORKERS, "worker", 1))
    plan = plan_devices([])
    assert plan.strategy == "multiworker" and plan.cluster.index == 1


def test_two_workers_train_with_multiworker_strategy_and_worker_0_is_chief():
    first = plan_devices([], tf_config=_tf_config(TWO_WORKERS, "worker", 0))
    second = plan_devices([], tf_config=_tf_config(TWO_WORKERS, "worker", 1))
    assert first.strategy == second.strategy == "multiworker"
    assert first.is_chief and not second.is_chief
    assert first.cluster.workers == 2 and first.cluster.address == "10.0.0.1:12345"
    assert "MultiWorkerMirroredStrategy" in first.summary and "writes the run folder" in first.summary
    assert "keeps nothing" in second.summary


def test_with_a_chief_task_only_the_chief_writes_not_worker_0():
    chief = plan_devices([], tf_config=_tf_config(CHIEF_AND_WORKERS, "chief", 0))
    worker0 = plan_devices([], tf_config=_tf_config(CHIEF_AND_WORKERS, "worker", 0))
    assert chief.is_chief and not worker0.is_chief
    assert chief.cluster.workers == 3 and worker0.strategy == "multiworker"


def test_a_cluster_of_one_trains_alone():
    plan = plan_devices([], tf_config=_tf_config({"worker": ["localhost:1"]}, "worker", 0))
    assert plan.strategy == "default" and plan.is_chief


def test_several_machines_keep_the_gpu_choices_of_each_machine():
    gpus = [GpuInfo("A100", (8, 0)), GpuInfo("A100", (8, 0))]
    plan = plan_devices(gpus, tf_config=_tf_config(TWO_WORKERS, "worker", 1))
    assert plan.strategy == "multiworker" and plan.mixed_precision and len(plan.gpus) == 2


@pytest.mark.parametrize(
    "text,message",
    [
        ('{"cluster": {"worker": ["a:1", "b:2"]', "not valid JSON"),
        ('["worker"]', 'no "cluster"'),
        ('{"task": {"type": "worker", "index": 0}}', 'no "cluster"'),
        ('{"cluster": {"worker": ["a:1", "b:2"]}}', 'no "task"'),
        ('{"cluster": {"worker": "a:1,b:2"}, "task": {"type": "worker"}}', '"host:port"'),
        ('{"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker"}}', '"host:port"'),
        ('{"cluster": {"worker": ["a:1"], "ps": ["c:3"]}, "task": {"type": "worker"}}', '"ps" task'),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "chief"}}', "not in its cluster"),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            "task index 2",
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": "1"}}',
            "task index '1'",
        ),
        (
            '{"cluster": {"chief": ["a:1", "b:2"], "worker": ["c:3"]}, "task": {"type": "worker"}}',
            "2 chiefs",
        ),
    ],
)
def test_a_malformed_tf_config_is_a_settings_error_with_a_plain_message(text, message):
    import re

    from finetune_gui.core.errors import SettingsError

    with pytest.raises(SettingsError, match=re.escape(message)) as caught:
        plan_devices([], tf_config=text)
    assert "TF_CONFIG" in str(caught.value) and "Traceback" not in str(caught.value)


def test_a_job_on_a_faked_gpu_that_fails_leaves_the_next_run_in_float32(small_shapes, tmp_path):
    """The GUI trains many times in one process: mixed precision turned on for one run (a GPU
    was found) must not leak into the next, even when that run failed part-way."""
    import keras

    from finetune_gui.core.events import StageStarted
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    class Broke(Exception):
        pass

    seen = []

    def fail_while_reading(event) -> None:
        if isinstance(event, StageStarted) and event.stage == "decode":  # after the plan
            seen.append(keras.mixed_precision.global_policy().name)
            raise Broke()

    settings = TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32)
    job = TrainingJob(small_shapes, settings, tmp_path / "run", progress=fail_while_reading,
                      gpu_lister=lambda: [GpuInfo("Fake A100", (8, 0))])
    with pytest.raises(Broke):
        job.run()
    assert seen == ["mixed_float16"]  # the run itself was planned for the GPU
    assert keras.mixed_precision.global_policy().name == "float32"
