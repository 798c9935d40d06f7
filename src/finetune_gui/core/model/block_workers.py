"""The head solver's blocks of rows spread over the cores: each evaluation of the objective is
a sum over blocks, and the blocks are independent until they are added."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager


@contextmanager
def block_workers(blocks: int):
    """`map` over the blocks of one evaluation: a thread per core up to the blocks' number
    (numpy's products and ufuncs release the GIL), or in this thread for a single block."""
    workers = min(blocks, usable_cores())
    if workers < 2:
        yield map
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="head-solver") as pool:
        yield pool.map


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
