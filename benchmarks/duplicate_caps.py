"""What the caps of the duplicate candidates (`core/data/candidates.py`) cost: candidates and
confirmed pairs with the caps and without them, on each folder given.

    python benchmarks/duplicate_caps.py FOLDER [FOLDER:N ...]

`FOLDER:N` takes N of the folder's images at random (seed 0). Images with the same pixels count
once, as in the scan (exact copies are grouped before any candidate is proposed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from finetune_gui.core.data.candidates import candidate_pairs
from finetune_gui.core.data.hashing import fingerprint_image, pixel_digest
from finetune_gui.core.data.similarity import PixelCheck

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def distinct_fingerprints(paths: list[Path]) -> list[bytes]:
    prints, seen = [], set()
    for path in paths:
        with Image.open(path) as image:
            fingerprint = fingerprint_image(image)
        if pixel_digest(fingerprint) not in seen:
            seen.add(pixel_digest(fingerprint))
            prints.append(fingerprint)
    return prints


def confirmed(prints: list[bytes], **caps) -> tuple[int, set, float]:
    started = time.perf_counter()
    pairs = candidate_pairs(prints, **caps)
    verdicts = np.asarray(PixelCheck(prints).same_picture(pairs), bool)
    return len(pairs), {tuple(p) for p in pairs[verdicts].tolist()}, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folders", nargs="+")
    args = parser.parse_args()
    print("| folder | distinct pictures | candidates uncapped / capped "
          "| confirmed uncapped / capped | seconds uncapped / capped |")
    print("|---|---|---|---|---|")
    for spec in args.folders:
        root, _, count = spec.partition(":")
        paths = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if count:
            paths = [paths[i] for i in np.random.default_rng(0).permutation(len(paths))[: int(count)]]
        prints = distinct_fingerprints(paths)
        n_all, all_pairs, t_all = confirmed(prints, window=len(prints), close_limit=len(prints))
        n_capped, capped_pairs, t_capped = confirmed(prints)
        print(f"| {spec} | {len(prints):,} | {n_all:,} / {n_capped:,} "
              f"| {len(all_pairs):,} / {len(capped_pairs):,} | {t_all:.1f} / {t_capped:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
