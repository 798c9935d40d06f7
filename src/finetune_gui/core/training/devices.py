"""Which devices train, and how: chosen automatically, logged, and testable without a GPU.

`plan_devices` is a pure function of the device list and the TF_CONFIG text, so the choices are
unit-tested with a faked list and faked TF_CONFIG strings; `apply_plan` is the one place that
changes TensorFlow's global state.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from dataclasses import dataclass, field

from finetune_gui.core.errors import SettingsError, UserError
from finetune_gui.core.events import LogMessage, ProgressCallback
from finetune_gui.core.words import counted

MIXED_PRECISION_MIN_CAPABILITY = (7, 0)  # Volta and newer have float16 tensor cores


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: tuple[int, int] | None = None


@dataclass(frozen=True)
class ClusterTask:
    """This process's place among the machines that train together, as TF_CONFIG names it."""

    task_type: str  # "chief" or "worker"
    index: int
    address: str
    workers: int  # processes that train together, the chief included
    has_chief: bool


@dataclass(frozen=True)
class DevicePlan:
    """What training will use: how many GPUs, mixed precision or not, which strategy, and why."""

    gpus: tuple[GpuInfo, ...] = ()
    mixed_precision: bool = False
    # "default" (one device), "mirrored" (all GPUs of this machine) or "multiworker" (several
    # machines named by TF_CONFIG, each with all of its GPUs or its CPU)
    strategy: str = "default"
    reasons: tuple[str, ...] = field(default_factory=tuple)
    cluster: ClusterTask | None = None

    @property
    def summary(self) -> str:
        return " ".join(self.reasons)

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder: the "chief" task, or worker 0 without one."""
        if self.cluster is None:
            return True
        if self.cluster.has_chief:
            return self.cluster.task_type == "chief"
        return self.cluster.task_type == "worker" and self.cluster.index == 0


def plan_devices(
    gpus: list[GpuInfo], allow_mixed_precision: bool = True, tf_config: str | None = None
) -> DevicePlan:
    """Mixed precision when every GPU is 7.0+; MirroredStrategy when there are several;
    MultiWorkerMirroredStrategy when `tf_config` names more than one training task.

    `tf_config` is the text of TF_CONFIG; None reads the environment variable, "" means none.
    """
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG", "")
    cluster = parse_tf_config(tf_config)
    plan = _plan_local_devices(gpus, allow_mixed_precision)
    if cluster is None:
        return plan
    role = (
        "it writes the run folder"
        if DevicePlan(cluster=cluster).is_chief
        else "the chief writes the run folder; this one keeps nothing"
    )
    reasons = (
        *plan.reasons,
        f"Training together with {cluster.workers} processes (TF_CONFIG) with "
        f"MultiWorkerMirroredStrategy: this is {cluster.task_type} {cluster.index} at "
        f"{cluster.address}; {role}.",
    )
    return DevicePlan(plan.gpus, plan.mixed_precision, "multiworker", reasons, cluster)


TRAINING_TASK_TYPES = ("chief", "worker")


def parse_tf_config(text: str) -> ClusterTask | None:
    """This process's task when TF_CONFIG names more than one training task, else None.

    Raises SettingsError with a plain message when TF_CONFIG cannot be used.
    """
    if not text.strip():
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}). It should look "
            f'like {{"cluster": {{"worker": ["host1:12345", "host2:12345"]}}, '
            f'"task": {{"type": "worker", "index": 0}}}}.'
        ) from exc
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise SettingsError('TF_CONFIG has no "cluster": name the machines that train together.')
    for task_type, addresses in cluster.items():
        if task_type not in TRAINING_TASK_TYPES:
            raise SettingsError(
                f'TF_CONFIG names a "{task_type}" task; finetune-gui trains with '
                f'MultiWorkerMirroredStrategy, which uses only "chief" and "worker" tasks.'
            )
        if (
            not isinstance(addresses, list)
            or not addresses
            or not all(isinstance(a, str) and ":" in a for a in addresses)
        ):
            raise SettingsError(
                f'TF_CONFIG\'s cluster "{task_type}" must be a list of "host:port" addresses.'
            )
    if len(cluster.get("chief", [])) > 1:
        raise SettingsError(f"TF_CONFIG names {len(cluster['chief'])} chiefs; there can be one.")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise SettingsError(
            'TF_CONFIG has no "task": say which of the cluster\'s machines this one is, '
            'for example "task": {"type": "worker", "index": 0}.'
        )
    task_type, index = task["type"], task.get("index", 0)
    if task_type not in cluster:
        raise SettingsError(f'TF_CONFIG\'s task type "{task_type}" is not in its cluster.')
    if (
        not isinstance(index, int)
        or isinstance(index, bool)
        or not 0 <= index < len(cluster[task_type])
    ):
        raise SettingsError(
            f"TF_CONFIG's task index {index!r} is not one of the {len(cluster[task_type])} "
            f'"{task_type}" addresses (counting from 0).'
        )
    workers = sum(len(addresses) for addresses in cluster.values())
    if workers < 2:
        return None
    return ClusterTask(task_type, index, cluster[task_type][index], workers, "chief" in cluster)


def _plan_local_devices(gpus: list[GpuInfo], allow_mixed_precision: bool) -> DevicePlan:
    if not gpus:
        return DevicePlan((), False, "default", ("No GPU found: training on the CPU.",))
    reasons = [f"{counted(len(gpus), 'GPU')}: {', '.join(g.name for g in gpus)}."]
    capable = all(
        g.compute_capability is not None and g.compute_capability >= MIXED_PRECISION_MIN_CAPABILITY
        for g in gpus
    )
    mixed = allow_mixed_precision and capable
    if mixed:
        reasons.append("Mixed precision (float16) is on; the output layer stays float32.")
    elif not capable:
        reasons.append("Mixed precision is off: it needs compute capability 7.0 or newer.")
    strategy = "mirrored" if len(gpus) > 1 else "default"
    if strategy == "mirrored":
        reasons.append(f"Training on all {len(gpus)} GPUs with MirroredStrategy.")
    return DevicePlan(tuple(gpus), mixed, strategy, tuple(reasons))


def detect_gpus() -> list[GpuInfo]:
    """The GPUs TensorFlow can see, with their compute capability when it reports one."""
    import tensorflow as tf

    found = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        found.append(
            GpuInfo(details.get("device_name", device.name), details.get("compute_capability"))
        )
    return found


def apply_plan(plan: DevicePlan):
    """Set memory growth and the precision policy; return the distribution strategy to build in."""
    import keras
    import tensorflow as tf

    for device in tf.config.list_physical_devices("GPU"):
        # Without memory growth TensorFlow takes all GPU memory at start, and the GUI trains many
        # times; RuntimeError means the GPU is already initialised and the earlier setting stands.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(device, True)
    keras.mixed_precision.set_global_policy("mixed_float16" if plan.mixed_precision else "float32")
    if plan.strategy == "multiworker":
        return multiworker_strategy()
    if plan.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


@functools.cache
def multiworker_strategy():
    """The process's one MultiWorkerMirroredStrategy (it starts a server on this task's port).

    TensorFlow 2.21 can only make it before the process has run its first TensorFlow operation
    ("Collective ops must be configured at program startup"), so a training job makes it first.
    """
    import tensorflow as tf

    from finetune_gui.core.training.keras_multiworker import repair_keras_for_multiworker

    repair_keras_for_multiworker()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as exc:
        raise SettingsError(
            "Training on several machines (TF_CONFIG is set) must start in a fresh process: run "
            "`finetune-gui train` on each machine, or unset TF_CONFIG to train here alone. "
            f"TensorFlow said: {exc}"
        ) from exc


def reset_precision() -> None:
    import keras

    keras.mixed_precision.set_global_policy("float32")


def halve_batch(batch_size: int) -> int | None:
    """The next batch size to try after running out of memory, or None when there is none."""
    return batch_size // 2 if batch_size > 1 else None


def batch_after_out_of_memory(batch_size: int, progress: ProgressCallback) -> int:
    """Half the batch, said as a warning; a plain `UserError` when a batch of 1 ran out too."""
    smaller = halve_batch(batch_size)
    if smaller is None:
        raise UserError(
            "Out of memory even with a batch of 1 image. Choose a smaller image size or backbone."
        )
    progress(
        LogMessage(
            f"Out of memory at batch size {batch_size}; retrying this phase with {smaller}.",
            "warning",
        )
    )
    return smaller
