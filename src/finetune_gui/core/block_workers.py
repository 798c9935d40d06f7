"""Independent blocks of work spread over the cores: the head solver's blocks of rows (each
evaluation of the objective is a sum over blocks, independent until they are added), the
frozen pass's runs of images through ONNX Runtime and the duplicate check's batches of pairs.
Shared by the Data and Model steps' code, so it sits beside them."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager


@contextmanager
def block_workers(blocks: int, name: str = "head-solver"):
    """`map` over the blocks of one evaluation: a thread per core up to the blocks' number
    (numpy's products and ufuncs, and ONNX Runtime's runs, release the GIL), or in this thread
    for a single block. `name` names the threads."""
    workers = min(blocks, usable_cores())
    if workers < 2:
        yield map
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        yield pool.map


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
