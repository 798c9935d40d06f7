"""Large arrays in RAM up to a budget, memory-mapped files beyond it.

A dataset larger than memory then trains with bounded memory: the operating system pages the
cache in and out.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np

_DEFAULT_BUDGET = 2 * 2**30
_lock = threading.Lock()
_in_memory_bytes = 0


def memory_budget() -> int:
    """Bytes of arrays kept in RAM per process; $FINETUNE_GUI_MEMORY_BUDGET_MB overrides 2 GiB."""
    value = os.environ.get("FINETUNE_GUI_MEMORY_BUDGET_MB")
    return int(float(value) * 2**20) if value else _DEFAULT_BUDGET


def spill_dir() -> Path:
    from platformdirs import user_cache_dir

    folder = Path(os.environ.get("FINETUNE_GUI_CACHE_DIR") or user_cache_dir("finetune-gui"))
    folder = folder / "spill"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def allocate(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A zeroed array in RAM if it fits the remaining budget, else a memory-mapped temp file.

    The file is unlinked at once (POSIX), so it disappears with the array, even after a crash.
    """
    global _in_memory_bytes
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with _lock:
        fits = _in_memory_bytes + nbytes <= memory_budget()
        if fits:
            _in_memory_bytes += nbytes
    if fits:
        array = np.zeros(shape, dtype)
        _release_when_collected(array, nbytes)
        return array
    with tempfile.NamedTemporaryFile(dir=spill_dir(), suffix=".npy", delete=False) as handle:
        array = np.memmap(handle, dtype=dtype, mode="w+", shape=shape)
    if os.name == "posix":
        os.unlink(handle.name)
    return array


def _release_when_collected(array: np.ndarray, nbytes: int) -> None:
    import weakref

    def release() -> None:
        global _in_memory_bytes
        with _lock:
            _in_memory_bytes -= nbytes

    weakref.finalize(array, release)


def in_memory_bytes() -> int:
    return _in_memory_bytes
