"""Images of coloured shapes: the bundled demo dataset and the test data come from here."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

# Each class differs in shape and colour family, so a small network separates them quickly.
SHAPE_CLASSES = {
    "circles": ("ellipse", (200, 40, 40)),
    "squares": ("rectangle", (40, 90, 200)),
    "triangles": ("triangle", (40, 160, 60)),
}


def _jitter(colour: tuple[int, int, int], rng: random.Random, amount: int = 40) -> tuple[int, ...]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)


def draw_shape(
    shape: str,
    colour,
    size: int,
    rng: random.Random,
    extent_range: tuple[float, float] = (0.35, 0.7),
    jitter: int = 40,
) -> Image.Image:
    """One image: a shape of random size (a share of the side in `extent_range`) and place on a
    noisy light background, its colour varied by up to `jitter` per channel."""
    bg = tuple(rng.randint(200, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(image)
    extent = rng.uniform(*extent_range) * size
    x0 = rng.uniform(0, size - extent)
    y0 = rng.uniform(0, size - extent)
    box = (x0, y0, x0 + extent, y0 + extent)
    fill = _jitter(colour, rng, jitter)
    if shape == "ellipse":
        draw.ellipse(box, fill=fill)
    elif shape == "rectangle":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon(
            [(x0 + extent / 2, y0), (x0, y0 + extent), (x0 + extent, y0 + extent)], fill=fill
        )
    return image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0, 0.8)))


def make_shapes_dataset(
    folder: Path | str,
    per_class: int | dict[str, int] = 30,
    size: int = 48,
    seed: int = 0,
    classes: dict[str, tuple[str, tuple[int, int, int]]] | None = None,
    fmt: str = "png",
) -> Path:
    """Write `per_class` images of each class into `folder/<class>/`; return `folder`."""
    folder = Path(folder)
    rng = random.Random(seed)
    for name, (shape, colour) in (classes or SHAPE_CLASSES).items():
        count = per_class[name] if isinstance(per_class, dict) else per_class
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = draw_shape(shape, colour, size, rng)
            image.save(folder / name / f"{name}_{i:03d}.{fmt}")
    return folder


def demo_dataset_dir() -> Path:
    """The demo dataset shipped in `resources/demo-shapes` (in a source checkout or a frozen app)."""
    from finetune_gui.resources import resource_path

    return resource_path("demo-shapes")
