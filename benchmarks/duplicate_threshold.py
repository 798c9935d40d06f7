"""Does the scan find planted copies, and leave distinct pictures alone? On real folders.

Run: python benchmarks/duplicate_threshold.py [--per-kind 40] [--folder /tmp/dup-bench]
Four folders of distinct pictures from packages: the 1,797 handwritten digits of scikit-learn
(8 x 8, written at 32 px), Adwaita's 48 px symbolic (line) icons and colour icons
(/usr/share/icons/Adwaita, Debian package adwaita-icon-theme), and 64 px tiles of the two
photos bundled with scikit-learn (featureless sky tiles left out). In each, copies of
`--per-kind` pictures are planted per kind, each kind on different originals. The folder is
scanned with `scan_folder`, as the app does, and every group is scored: a pair of files in one
group is right when it is an original and its planted copy. Results: docs/duplicates.md.
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance
from sklearn.datasets import load_digits, load_sample_images

from finetune_gui.core.data.scan import scan_folder

ICONS = Path("/usr/share/icons/Adwaita/48x48")
KINDS = ("exact", "resized", "jpeg", "crop", "brightness", "flattened")


def flatten(image: Image.Image) -> Image.Image:
    """Transparent pixels on white, as the scan sees them."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image).convert("RGB")


def digits() -> list[Image.Image]:
    pictures = []
    for levels in load_digits().images:
        small = Image.fromarray(np.uint8(255 - levels * 255 / 16))
        pictures.append(small.resize((32, 32), Image.Resampling.BILINEAR).convert("RGB"))
    return pictures


def icons(symbolic: bool) -> list[Image.Image]:
    pictures = []
    for path in sorted(ICONS.rglob("*.png")):
        if ("symbolic" in path.name) == symbolic:
            pictures.append(Image.open(path).convert("RGBA"))
    return pictures


def photo_tiles(side: int = 64) -> list[Image.Image]:
    tiles = []
    for photo in load_sample_images().images:
        for y in range(0, photo.shape[0] - side + 1, side):
            for x in range(0, photo.shape[1] - side + 1, side):
                tile = Image.fromarray(photo[y : y + side, x : x + side])
                if np.asarray(tile.convert("L"), float).std() >= 8:
                    tiles.append(tile)
    return tiles


def one_of_each_drawing(pictures: list[Image.Image]) -> list[Image.Image]:
    """Drop pictures that are another's drawing to within 1.5 grey levels on average at 32 px:
    Adwaita ships some under two names (go-home and user-home, and 35 more)."""
    grey = [np.asarray(flatten(p).convert("L").resize((32, 32), Image.Resampling.BOX), float)
            for p in pictures]
    kept: list[int] = []
    for k in range(len(pictures)):
        if all(np.abs(grey[k] - grey[j]).mean() >= 1.5 for j in kept):
            kept.append(k)
    return [pictures[k] for k in kept]


def planted_copy(picture: Image.Image, kind: str, rng: random.Random) -> tuple[Image.Image, str]:
    """A copy of `picture` of one kind, and the file suffix to save it with."""
    rgb = flatten(picture)
    if kind == "exact":
        return picture, "png"
    if kind == "resized":
        factor = rng.uniform(0.5, 2.0)
        size = (max(4, round(rgb.width * factor)), max(4, round(rgb.height * factor)))
        resample = rng.choice([Image.Resampling.BILINEAR, Image.Resampling.LANCZOS,
                               Image.Resampling.BICUBIC])
        return rgb.resize(size, resample), "png"
    if kind == "jpeg":
        return rgb, f"jpg:{rng.randint(60, 95)}"
    if kind == "crop":
        w, h = rgb.size
        cut_x, cut_y = round(w * rng.uniform(0, 0.05)), round(h * rng.uniform(0, 0.05))
        x0, y0 = rng.randint(0, cut_x), rng.randint(0, cut_y)
        return rgb.crop((x0, y0, w - (cut_x - x0), h - (cut_y - y0))), "png"
    if kind == "brightness":
        return ImageEnhance.Brightness(rgb).enhance(rng.uniform(0.9, 1.1)), "png"
    if kind == "flattened":
        return rgb, "png"
    raise ValueError(kind)


def with_transparency(picture: Image.Image) -> Image.Image:
    """An original with an alpha channel (white made transparent) for the 'flattened' kind."""
    if picture.mode == "RGBA":
        return picture
    rgba = picture.convert("RGBA")
    levels = np.asarray(rgba).copy()
    levels[..., 3] = np.where(levels[..., :3].min(axis=2) >= 250, 0, 255)
    return Image.fromarray(levels, "RGBA")


def save(picture: Image.Image, path: Path, suffix: str) -> Path:
    if suffix.startswith("jpg"):
        path = path.with_suffix(".jpg")
        flatten(picture).save(path, "JPEG", quality=int(suffix.split(":")[1]))
    else:
        path = path.with_suffix(".png")
        picture.save(path)
    return path


def write_folder(folder: Path, pictures: list[Image.Image], per_kind: int, seed: int):
    """Originals in folder/pictures, copies in folder/copies; returns {copy: (original, kind)}."""
    rng = random.Random(seed)
    for name in ("pictures", "copies"):
        (folder / name).mkdir(parents=True)
    chosen = rng.sample(range(len(pictures)), per_kind * len(KINDS))
    kind_of = {k: KINDS[n // per_kind] for n, k in enumerate(chosen)}
    planted = {}
    for k, picture in enumerate(pictures):
        kind = kind_of.get(k)
        if kind == "flattened":
            picture = with_transparency(picture)
        original = save(picture, folder / "pictures" / f"p{k:04d}", "png")
        if kind:
            copy, suffix = planted_copy(picture, kind, rng)
            planted[save(copy, folder / "copies" / f"c{k:04d}_{kind}", suffix)] = (original, kind)
    return planted


def score(folder: Path, planted: dict) -> dict:
    started = time.perf_counter()
    scan = scan_folder(folder)
    seconds = time.perf_counter() - started
    pairs = {frozenset((copy, original)) for copy, (original, _) in planted.items()}
    found = {frozenset(p) for g in scan.duplicate_groups for p in combinations(g.paths, 2)}
    copies_in = [sum(p.parent.name == "copies" for p in g.paths) for g in scan.duplicate_groups]
    distinct_flagged = {
        p for g in scan.duplicate_groups for p in g.paths
        if p.parent.name == "pictures" and sum(q.parent.name == "pictures" for q in g.paths) > 1
    }
    recall = {kind: np.mean([frozenset((c, o)) in found for c, (o, k) in planted.items() if k == kind])
              for kind in KINDS}
    return {
        "images": len(scan.records),
        "seconds": seconds,
        "precision": len(found & pairs) / max(len(found), 1),
        "recall": recall,
        "distinct_flagged": len(distinct_flagged) / sum(p.parent.name == "pictures" for p in
                                                       (r.path for r in scan.records)),
        "largest_group": max((len(g.paths) for g in scan.duplicate_groups), default=0),
        "over_planted": sum(len(g.paths) > c + 1 for g, c in zip(scan.duplicate_groups, copies_in,
                                                                strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/dup-bench"))
    args = parser.parse_args()
    sets = {
        "handwritten digits": digits(),
        "line icons": one_of_each_drawing(icons(symbolic=True)),
        "colour icons": one_of_each_drawing(icons(symbolic=False)),
        "photo tiles": photo_tiles(),
    }
    shutil.rmtree(args.folder, ignore_errors=True)
    print("| folder | images | scan s | pair precision | distinct flagged | largest group | groups > planted+1 | "
          + " | ".join(KINDS) + " |")
    for seed, (name, pictures) in enumerate(sets.items()):
        per_kind = min(args.per_kind, len(pictures) // (2 * len(KINDS)))
        planted = write_folder(args.folder / name.replace(" ", "_"), pictures, per_kind, seed)
        r = score(args.folder / name.replace(" ", "_"), planted)
        print(f"| {name} | {r['images']} | {r['seconds']:.1f} | {r['precision']:.1%} | "
              f"{r['distinct_flagged']:.2%} | {r['largest_group']} | {r['over_planted']} | "
              + " | ".join(f"{r['recall'][k]:.0%}" for k in KINDS) + f" | ({per_kind} per kind)",
              flush=True)


if __name__ == "__main__":
    main()
