"""Reusing extracted features across runs: trying five heads costs one extraction.

A cache entry is keyed by everything that changes what the frozen part computes: the image files
(path, size, modification time), backbone, weights, input size, augmentation, number of views,
the cut, and the seed. Head settings, learning rates and epochs are not in the key on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from finetune_gui.core.data.storage import DiskArray, allocate, cache_root, memory_budget
from finetune_gui.core.model.frozen_pass import CachedFeatures

MAX_CACHE_BYTES = 20 * 2**30
_CHUNK_ROWS = 256


def file_identity(path: Path) -> str:
    stat = os.stat(path)
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def weights_identity(weights: str) -> str:
    """ "imagenet", "none", or the content hash of a weights file (renaming it keeps the cache)."""
    if weights in ("imagenet", "none"):
        return weights
    digest = hashlib.sha1()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"file:{digest.hexdigest()}"


def cache_key(paths: list[Path], **facts) -> str:
    import keras

    digest = hashlib.sha256()
    # "jpeg": entries made while big JPEGs were decoded at reduced scale (Pillow's draft) hold
    # features of other pixels than the app reads now, so they must not be found.
    # "views": entries made while the first copy of each image was augmented too (before the
    # plain copy was always kept) hold other features.
    identity = {**facts, "keras": keras.__version__, "jpeg": "full-size decode",
                "views": f"plain first, {facts.get('views', 1)} in all"}
    digest.update(json.dumps(identity, sort_keys=True, default=str).encode())
    for path in paths:
        digest.update(file_identity(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def entry_dir(key: str) -> Path:
    return cache_root() / "features" / key


def has(key: str) -> bool:
    """Whether an entry for `key` is stored (without reading it)."""
    return (entry_dir(key) / "meta.json").exists()


def load(key: str) -> CachedFeatures | None:
    """The cached features for `key`, or None (a damaged entry counts as missing and is removed)."""
    folder = entry_dir(key)
    meta_file = folder / "meta.json"
    if not meta_file.exists():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        arrays = {
            name: _read_array(folder / f"{name}.rows", spec)
            for name, spec in meta["arrays"].items()
        }
    except (OSError, ValueError, KeyError):
        shutil.rmtree(folder, ignore_errors=True)
        return None
    os.utime(meta_file)  # recently used: pruned last
    early = arrays.get("early")  # an entry from before it was kept: computed again on demand
    early = None if early is None else np.asarray(early)
    return CachedFeatures(arrays["pooled"], arrays.get("at_cut"), int(meta["views"]), early)


def save(key: str, features: CachedFeatures) -> None:
    """Store `features` under `key`; written to a temporary folder and renamed into place."""
    folder = entry_dir(key)
    if folder.exists():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{key}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    arrays = {"pooled": features.pooled}
    if features.at_cut is not None:
        arrays["at_cut"] = features.at_cut
    if features.early is not None:
        arrays["early"] = features.early
    try:
        meta = {"views": features.views, "arrays": {}}
        for name, array in arrays.items():
            _write_array(staging / f"{name}.rows", array)
            meta["arrays"][name] = {"shape": list(array.shape), "dtype": str(np.dtype(array.dtype))}
        (staging / "meta.json").write_text(json.dumps(meta))
        os.replace(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # a full disk only costs the reuse
        return
    prune()


def _write_array(path: Path, array) -> None:
    with open(path, "wb") as handle:
        for start in range(0, len(array), _CHUNK_ROWS):
            handle.write(np.ascontiguousarray(array[start : start + _CHUNK_ROWS]).tobytes())


def _read_array(path: Path, spec: dict):
    shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
    expected = int(np.prod(shape)) * dtype.itemsize
    if path.stat().st_size != expected:
        raise ValueError(f"{path} has the wrong size")
    if expected <= memory_budget() // 4:
        target = allocate(shape, dtype)
        if not isinstance(target, DiskArray):
            target[...] = np.fromfile(path, dtype).reshape(shape)
            return target
    return DiskArray(path, shape, dtype, create=False, delete=False)


def prune(limit: int = MAX_CACHE_BYTES) -> None:
    """Remove the least recently used entries until the cache is under `limit` bytes."""
    root = cache_root() / "features"
    entries = []
    for folder in root.iterdir() if root.exists() else []:
        meta = folder / "meta.json"
        if folder.name.startswith(".") or not meta.exists():
            continue
        size = sum(p.stat().st_size for p in folder.iterdir())
        entries.append((meta.stat().st_mtime, size, folder))
    total = sum(size for _, size, _ in entries)
    for _, size, folder in sorted(entries):
        if total <= limit:
            break
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
