"""Which devices train, and how: chosen automatically, logged, and testable without a GPU.

`plan_devices` is a pure function of the device list, so the choices are unit-tested with a
faked list; `apply_plan` is the one place that changes TensorFlow's global state.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

MIXED_PRECISION_MIN_CAPABILITY = (7, 0)  # Volta and newer have float16 tensor cores


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: tuple[int, int] | None = None


@dataclass(frozen=True)
class DevicePlan:
    """What training will use: how many GPUs, mixed precision or not, which strategy, and why."""

    gpus: tuple[GpuInfo, ...] = ()
    mixed_precision: bool = False
    strategy: str = "default"  # "default" (one device) or "mirrored" (all GPUs of this machine)
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        return " ".join(self.reasons)


def plan_devices(gpus: list[GpuInfo], allow_mixed_precision: bool = True) -> DevicePlan:
    """Mixed precision when every GPU is 7.0+; MirroredStrategy when there are several."""
    if not gpus:
        return DevicePlan((), False, "default", ("No GPU found: training on the CPU.",))
    reasons = [f"{len(gpus)} GPU(s): {', '.join(g.name for g in gpus)}."]
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
    if plan.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def reset_precision() -> None:
    import keras

    keras.mixed_precision.set_global_policy("float32")


def halve_batch(batch_size: int) -> int | None:
    """The next batch size to try after running out of memory, or None when there is none."""
    return batch_size // 2 if batch_size > 1 else None
