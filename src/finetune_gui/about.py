"""What this copy of finetune-gui runs on: its version and those of Python, TensorFlow, Keras and
Qt, and the GPUs in use. `finetune-gui --version` prints it; the About dialog shows it; a bug
report needs it.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

from finetune_gui import __version__

NO_GPU = "none: CPU only"
NOT_INSTALLED = "not installed"


def version_facts(gpu_lister: Callable[[], list] | None = None) -> dict[str, str]:
    """Name -> version, in the order people read them. Imports TensorFlow (seconds, the first
    time) with its start-up messages sent to the log file."""
    from finetune_gui.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    if gpu_lister is None:
        from finetune_gui.core.training.devices import detect_gpus

        gpu_lister = detect_gpus
    return {
        "finetune-gui": __version__,
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
        "TensorFlow": tf.__version__,
        "Keras": keras.__version__,
        "Qt": _qt_version(),
        "GPU": describe_gpus(gpu_lister()),
        "System": f"{platform.system()} {platform.release()} ({platform.machine()})",
    }


def version_text(gpu_lister: Callable[[], list] | None = None) -> str:
    """The facts as lines of text: "finetune-gui 0.1.0", then one "Name: version" line each."""
    facts = version_facts(gpu_lister)
    first = f"finetune-gui {facts.pop('finetune-gui')}"
    width = max(len(name) for name in facts) + 1
    return "\n".join([first, *(f"{name + ':':<{width}} {value}" for name, value in facts.items())])


def describe_gpus(gpus: list) -> str:
    if not gpus:
        return NO_GPU
    return ", ".join(
        f"{gpu.name} (compute capability {gpu.compute_capability[0]}.{gpu.compute_capability[1]})"
        if gpu.compute_capability
        else gpu.name
        for gpu in gpus
    )


def _qt_version() -> str:
    """The Qt library in use and the PySide6 binding, without starting any Qt application."""
    try:
        import PySide6
        from PySide6 import QtCore
    except ImportError:
        return NOT_INSTALLED
    return f"{QtCore.qVersion()} (PySide6 {PySide6.__version__})"
