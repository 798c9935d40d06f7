"""Large arrays in RAM up to a budget, in a disk file beyond it.

A dataset larger than memory then trains with bounded memory. The disk store reads and writes
rows with pread/pwrite rather than a memory map: a map keeps every touched page resident, so the
process would grow to the size of the data anyway.
"""

from __future__ import annotations

import os
import tempfile
import threading
import weakref
from pathlib import Path

import numpy as np

_DEFAULT_BUDGET = 2 * 2**30
_lock = threading.Lock()
_in_memory_bytes = 0


def use_small_pages() -> None:
    """Ask numpy not to back large arrays with transparent huge pages (it does by default on
    Linux), unless $NUMPY_MADVISE_HUGEPAGE says otherwise.

    Measured on a 2-core VM with the kernel's THP "madvise" setting: a default run on 5,709
    images at 160 px took 48.5 and 49.2 s with huge pages, 42.7 and 42.5 s without (decoding
    2.6-3.2 s against 1.2, the test look 1.4-2.2 against 0.6; 1,797 digits at 48 px: 43.7 and
    43.6 s against 41.0 and 41.0); filling a fresh 440 MB array
    took 0.07 s when free huge pages were at hand and 2-6 s when the kernel first had to compact
    memory for them, against 0.2 s every time with small pages.
    """
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    import contextlib
    import importlib

    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        with contextlib.suppress(ImportError, AttributeError):
            importlib.import_module(module)._set_madvise_hugepage(False)
            return


use_small_pages()  # every engine path stores its large arrays through this module


def memory_budget() -> int:
    """Bytes of arrays kept in RAM per process; $FINETUNE_GUI_MEMORY_BUDGET_MB overrides 2 GiB."""
    value = os.environ.get("FINETUNE_GUI_MEMORY_BUDGET_MB")
    return int(float(value) * 2**20) if value else _DEFAULT_BUDGET


def store_budget() -> int:
    """Bytes the stored arrays (`allocate`: decoded images, features) may keep in RAM: half the
    budget. The other half is the steps' working memory (`rows_in_budget`): with the whole
    budget for stored arrays, the head solver's sample, the refit and the test pass came on top
    of it, and 50,000 images at 224 px peaked at 4.3 GB after the scan with a 2 GiB budget."""
    return memory_budget() // 2


def rows_in_budget(row_bytes: int, share: int = 8, least: int = 128) -> int:
    """How many rows of `row_bytes` a step may hold in RAM at once: a `share`-th of the working
    half of the memory budget (`store_budget` holds the other), at least `least`. The cap on a
    step that needs its rows together (a solver, a k-fold fit) rather than one batch at a time;
    with the budget's 2 GiB, 6,000 rows of 2,800 8-byte numbers."""
    working = memory_budget() - store_budget()
    return max(least, working // share // max(int(row_bytes), 1))


def capped_sample(labels, cap: int, seed: int = 0) -> np.ndarray | None:
    """Sorted indices of at most about `cap` of the rows with `labels`, each class in
    proportion and every class kept; None when all of them fit (no sample is needed).

    Where a statistic needs no more than `cap` rows (a head's weights, a temperature), a
    sample keeps its working arrays inside the budget whatever the number of images; sorted,
    so a disk store reads it in runs.
    """
    labels = np.asarray(labels)
    if len(labels) <= cap:
        return None
    rng = np.random.default_rng(seed)
    share = cap / len(labels)
    picked = []
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        picked.append(rng.choice(rows, max(1, int(len(rows) * share)), replace=False))
    return np.sort(np.concatenate(picked))


def row_chunks(total: int, row_bytes: int):
    """Slices of at most a 64th of the budget's worth of rows (at least 128), covering `total`
    rows: a pass over a whole-dataset array one chunk at a time."""
    step = rows_in_budget(row_bytes, share=64)
    for start in range(0, total, step):
        yield slice(start, min(start + step, total))


def cache_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("FINETUNE_GUI_CACHE_DIR") or user_cache_dir("finetune-gui"))


def spill_dir() -> Path:
    folder = cache_root() / "spill"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class StackedRows:
    """The first `count` rows of each of several arrays (RAM or the disk store), one part after
    another, as one read-only array: a slice or an index array reads only those rows, so two
    parts are used together (the refit's training and validation features) without being
    copied together."""

    def __init__(self, *parts: tuple[object, int]) -> None:
        self.parts = [array for array, _ in parts]
        self.starts = np.cumsum([0] + [int(count) for _, count in parts])
        first = self.parts[0]
        self.shape = (int(self.starts[-1]), *first.shape[1:])
        self.dtype = np.dtype(first.dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            index = np.arange(*key.indices(len(self)))
        else:
            index = np.asarray(key)
            index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64)
        out = np.empty((len(index), *self.shape[1:]), self.dtype)
        for k, array in enumerate(self.parts):
            inside = (index >= self.starts[k]) & (index < self.starts[k + 1])
            if inside.any():
                local = index[inside] - self.starts[k]
                contiguous = bool(np.all(np.diff(local) == 1))
                rows = array[local[0] : local[-1] + 1] if contiguous else array[local]
                out[inside] = np.asarray(rows)
        return out


class DiskArray:
    """A fixed-shape array in a file: `a[i] = x`, `a[i:j] = x`, `a[index_array]` and `a[i:j]`.

    Row reads of sorted indices coalesce into one read per contiguous run.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype, *, create: bool, delete: bool,
                 offset: int = 0, read_as=None):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.stored = np.dtype(dtype)
        # Rows come back as `read_as` (a float16 file read as float32, as np.load's users
        # converted it), stored as `dtype` from byte `offset` on (a member of an .npz).
        self.dtype = np.dtype(read_as or dtype)
        self.offset = int(offset)
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape)) * self.stored.itemsize
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self._fd = os.open(self.path, flags, 0o600)
        if create:
            os.ftruncate(self._fd, self.shape[0] * self.row_bytes)
        if delete and os.name == "posix":
            os.unlink(self.path)  # the data lives until the descriptor closes, even after a crash
        self._finalizer = weakref.finalize(self, os.close, self._fd)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _rows(self, start: int, stop: int) -> np.ndarray:
        data = os.pread(self._fd, (stop - start) * self.row_bytes,
                        self.offset + start * self.row_bytes)
        rows = np.frombuffer(data, self.stored).reshape((stop - start, *self.row_shape))
        return rows.astype(self.dtype)  # a copy: the buffer is not writable

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                return self[np.arange(start, stop, step)]
            return self._rows(start, stop)
        if isinstance(key, int | np.integer):
            return self._rows(int(key), int(key) + 1)[0]
        index = np.asarray(key)
        index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64)
        out = np.empty((len(index), *self.row_shape), self.dtype)
        order = np.argsort(index, kind="stable")
        sorted_index = index[order]
        run_start = 0
        for i in range(1, len(sorted_index) + 1):
            if i == len(sorted_index) or sorted_index[i] != sorted_index[i - 1] + 1:
                rows = self._rows(int(sorted_index[run_start]), int(sorted_index[i - 1]) + 1)
                out[order[run_start:i]] = rows
                run_start = i
        return out

    def __setitem__(self, key, value) -> None:
        if isinstance(key, int | np.integer):
            start, stop = int(key), int(key) + 1
        elif isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(len(self))
        else:
            raise TypeError("DiskArray supports writing one row or a contiguous slice")
        data = np.ascontiguousarray(value, dtype=self.stored)
        expected = (stop - start) * self.row_bytes
        if data.nbytes != expected:
            data = np.broadcast_to(data, (stop - start, *self.row_shape)).copy()
        os.pwrite(self._fd, data.tobytes(), self.offset + start * self.row_bytes)

    def astype(self, dtype, copy=True) -> np.ndarray:
        return np.asarray(self, dtype=dtype)

    def __array__(self, dtype=None, copy=None):
        whole = self._rows(0, len(self))
        return whole.astype(dtype) if dtype is not None else whole


def is_on_disk(array) -> bool:
    return isinstance(array, DiskArray)


def allocate(shape: tuple[int, ...], dtype):
    """A zeroed array in RAM if it fits the remaining budget, else an anonymous `DiskArray`."""
    global _in_memory_bytes
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with _lock:
        fits = _in_memory_bytes + nbytes <= store_budget()
        if fits:
            _in_memory_bytes += nbytes
    if fits:
        array = np.zeros(shape, dtype)
        weakref.finalize(array, _release, nbytes)
        return array
    handle, name = tempfile.mkstemp(dir=spill_dir(), suffix=".rows")
    os.close(handle)
    return DiskArray(Path(name), shape, dtype, create=True, delete=True)


def _release(nbytes: int) -> None:
    global _in_memory_bytes
    with _lock:
        _in_memory_bytes -= nbytes


def give_back_memory() -> None:
    """Collect, then return the allocator's free memory to the system (glibc only): memory a
    step freed (a scan's records, a conversion's graphs) otherwise stays the process's."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    # Another C library has no malloc_trim: its memory is reused by the process all the same.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
